// Bounded waits on what controllers and kubelets report: a Job's conditions, a pod's Ready
// condition. Each poll is one `kubectl get -o json`; the timeout is exit 4 with the last thing seen.
import { CliError, EXIT } from './exit-codes';
import { commandLine, tail } from './exec';
import { JobState, KubeObject, jobCounters, jobState, newest, podReady, podSummary, terminatedExitCode, terminationMessage } from './k8s-state';
import { KUBECTL, Kubectl, calls } from './kubectl';
import { Progress } from './progress';

/** How often a wait polls. */
export const POLL_MS = 1000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export type Poll<T> = { done: true; value: T } | { done: false; detail: string };

/** Polls `check` until it is done; after `timeoutS` seconds throws `onTimeout(last detail)`. */
export async function waitUntil<T>(progress: Progress, timeoutS: number, check: () => Promise<Poll<T>>, onTimeout: (detail: string) => CliError): Promise<T> {
  const started = Date.now();
  for (;;) {
    const result = await check();
    if (result.done) return result.value;
    const elapsed = Date.now() - started;
    if (elapsed >= timeoutS * 1000) throw onTimeout(result.detail);
    progress.waiting(elapsed, result.detail);
    await sleep(Math.min(POLL_MS, Math.max(0, timeoutS * 1000 - elapsed)));
  }
}

export interface FinishedJob {
  readonly state: JobState;
  readonly job: KubeObject;
}

/** Waits until Job `name` is Complete or Failed; exit 1 when it does not exist, 4 on timeout. */
export function waitForJob(kubectl: Kubectl, progress: Progress, ns: string, name: string, timeoutS: number): Promise<FinishedJob> {
  return waitUntil<FinishedJob>(progress, timeoutS, async () => {
    const job = await kubectl.json(calls.get(ns, 'job', name));
    if (!job) {
      throw new CliError(EXIT.general, `job ${ns}/${name} not found`, [
        'it is created by `kubectl apply` of dist/ (deploy does that first); someone may have deleted it: run deploy again',
      ]);
    }
    const state = jobState(job);
    if (state.phase === 'Complete' || state.phase === 'Failed') return { done: true, value: { state, job } };
    return { done: false, detail: `job/${name}: ${jobCounters(job)}` };
  }, (detail) => new CliError(EXIT.timeout, `timed out after ${timeoutS}s waiting for job/${name} to finish (last seen: ${detail})`, [
    `see why: ${commandLine(KUBECTL, ['-n', ns, 'describe', 'job', name])} and ${commandLine(KUBECTL, ['-n', ns, 'get', 'pods', '-l', `job-name=${name}`])}`,
    'then run the same command again (it continues where it stopped), with a longer --timeout if the Job is just slow',
  ]));
}

/** Waits until pod `name` is Ready; exit 4 on timeout, saying what the pod was doing. */
export function waitForPodReady(kubectl: Kubectl, progress: Progress, ns: string, name: string, timeoutS: number): Promise<KubeObject> {
  return waitUntil<KubeObject>(progress, timeoutS, async () => {
    const pod = await kubectl.json(calls.get(ns, 'pod', name));
    if (pod && podReady(pod)) return { done: true, value: pod };
    return { done: false, detail: pod ? `pod/${name}: ${podSummary(pod)}` : `pod/${name} not created yet (the StatefulSet creates it)` };
  }, (detail) => new CliError(EXIT.timeout, `timed out after ${timeoutS}s waiting for pod/${name} to become Ready (last seen: ${detail})`, [
    `see why: ${commandLine(KUBECTL, ['-n', ns, 'describe', 'pod', name])} (events at the end) and ${commandLine(KUBECTL, ['-n', ns, 'get', 'pvc'])}`,
    'a claim stuck Pending: the storage class cannot provision (check its provisioner); CreateContainerConfigError: the credentials Secret is missing; ImagePullBackOff: registry access (imageRegistry in lib/profiles.ts)',
    'then run deploy again: finished steps are kept, waits continue',
  ]));
}

export interface JobPodReport {
  /** The newest pod of the Job, if any is left. */
  readonly pod?: string;
  /** Its container's exit code, when it terminated. */
  readonly exitCode?: number;
  /** The last lines of its log, when the kubelet can serve it. */
  readonly log?: string;
  /** What its Job container (`container`) left in its termination message, when given and it did. */
  readonly message?: string;
  /** The command that shows the log. */
  readonly logCommand: string;
}

/** The newest pod of Job `job`: its exit code and log tail, as far as the cluster can tell. */
export async function jobPodReport(kubectl: Kubectl, ns: string, job: string, lines = 20, container?: string): Promise<JobPodReport> {
  const pod = newest(await kubectl.items(calls.jobPods(ns, job)));
  if (!pod) return { logCommand: commandLine(KUBECTL, ['-n', ns, 'logs', '-l', `job-name=${job}`, '--tail=-1']) };
  const logArgs = calls.podLog(ns, pod.metadata.name, lines);
  const log = await kubectl.run(logArgs, { timeoutMs: 15_000 });
  return {
    pod: pod.metadata.name,
    exitCode: terminatedExitCode(pod),
    log: log.code === 0 && log.stdout.trim() !== '' ? tail(log.stdout, lines) : undefined,
    message: container ? terminationMessage(pod, container)?.message : undefined,
    logCommand: commandLine(KUBECTL, ['-n', ns, 'logs', pod.metadata.name, '--tail=-1']),
  };
}

/** The text that shows a failed Job's pod: its log tail, or why there is none. */
export function describeReport(report: JobPodReport): string {
  if (report.log) return `log of pod ${report.pod}${report.exitCode !== undefined ? ` (exit ${report.exitCode})` : ''}:\n${report.log.split('\n').map((l) => `  ${l}`).join('\n')}`;
  if (report.pod) return `pod ${report.pod}${report.exitCode !== undefined ? ` exited ${report.exitCode}` : ''}; its log is not available here`;
  return 'no pod of the Job is left to read a log from';
}
