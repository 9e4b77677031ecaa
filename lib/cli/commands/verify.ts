// `verify`: the four health stages, each reported. Stage 1 asks helm, stage 2 reads the
// chart's pod, stages 3 and 4 are the verification Job of dist/ (which ran them in the cluster).
import { stringify } from 'yaml';
import { CliError, EXIT, ExitCode } from '../exit-codes';
import { commandLine, run } from '../exec';
import { jobState, managerOf, podReady, podSummary } from '../k8s-state';
import { describeRelease, parseRelease, releaseNotFound } from '../helm-release';
import { HELM, KUBECTL, Kubectl, calls } from '../kubectl';
import { checkCluster, checkHelm } from '../preflight';
import { Progress } from '../progress';
import { Target, loadTarget } from '../target';
import { JobPodReport, describeReport, jobPodReport, waitForJob } from '../wait';
import { ReplicaFinding, VERIFY_CONTAINER, parseReplicaReport } from '../../verification/replica-report';
import { DEFAULT_WAITS } from './deploy';

export interface VerifyOptions {
  readonly profile: string;
  /** Wait this long for an unfinished verification Job. @default 0, or the deploy default with `rerun` */
  readonly timeoutS?: number;
  /** Delete the verification Job and create it again from dist/ first, to check now. @default false */
  readonly rerun?: boolean;
}

interface Stage {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
  /** Exit code when this is the first failed stage. */
  readonly code: ExitCode;
  readonly next: string[];
}

const STAGE_NAMES = ['1 release', '2 pod readiness', '3 database ping', '4 schema'];

export async function verify(options: VerifyOptions, progress = new Progress()): Promise<number> {
  const target = loadTarget(options.profile);
  const kubectl = new Kubectl();
  const { namespace: ns } = target;
  await checkCluster(kubectl);
  // An Application renders the chart with helm template: no release to ask helm about.
  const statefulSet = await kubectl.json(calls.get(ns, 'statefulset', target.database.statefulSet));
  const manager = managerOf(statefulSet);
  if (manager?.by !== 'argocd') await checkHelm();
  progress.line(`learnflow-postgres verify: profile ${target.profile}, namespace ${ns}, release ${target.release}`);
  const job = target.jobs.verification;
  if (options.rerun) {
    await kubectl.ok(calls.deleteJob(ns, job));
    const manifest = target.manifests.find((m) => m.kind === 'Job' && m.metadata.name === job)!;
    const created = await kubectl.ok(calls.applyStdin(), { input: stringify(manifest, { lineWidth: 0 }) });
    progress.line(`re-created job/${job} from ${target.distDir}/: ${created.trim()}`);
  }

  const stages: Stage[] = [manager?.by === 'argocd' ? argoStage(target, manager) : await releaseStage(target), await podStage(kubectl, target)];
  stages.push(...(await jobStages(kubectl, progress, target, options.timeoutS ?? (options.rerun ? DEFAULT_WAITS.verification : 0))));

  const width = Math.max(...STAGE_NAMES.map((n) => n.length)) + 6;
  for (const s of stages) progress.line(`${`stage ${s.name}`.padEnd(width)} ${s.ok ? 'ok' : 'FAILED'}: ${s.detail}`);
  const failed = stages.find((s) => !s.ok);
  if (!failed) return EXIT.ok;
  throw new CliError(failed.code, `health check failed at stage ${failed.name}: ${failed.detail}`, failed.next);
}

async function releaseStage(target: Target): Promise<Stage> {
  const args = calls.helmRelease(target);
  const result = await run(HELM, args, { timeoutMs: 60_000 });
  const name = STAGE_NAMES[0];
  const next = [`install or upgrade it: learnflow-postgres deploy --profile ${target.profile}`, `details: helm history ${target.release} -n ${target.namespace}`];
  if (result.code !== 0) {
    const detail = releaseNotFound(result) ? `release ${target.release} not installed in ${target.namespace}` : `${commandLine(HELM, args)}: ${result.stderr.trim()}`;
    return { name, ok: false, detail, code: EXIT.healthCheckFailed, next };
  }
  const release = parseRelease(result.stdout);
  return { name, ok: release.status === 'deployed', detail: `release ${target.release} ${describeRelease(release)}`, code: EXIT.healthCheckFailed, next };
}

/** Stage 1 where Argo CD manages the chart: its StatefulSet is there, from the pinned chart. */
function argoStage(target: Target, manager: NonNullable<ReturnType<typeof managerOf>>): Stage {
  const pinned = `postgresql-${target.chartVersion}`;
  const ok = manager.chart === pinned;
  return {
    name: STAGE_NAMES[0],
    ok,
    detail: `managed by Argo CD Application ${manager.application} (no Helm release): statefulset/${target.database.statefulSet} from chart ${manager.chart ?? '(unknown)'}${ok ? '' : `, dist/ pins ${pinned}`}`,
    code: EXIT.healthCheckFailed,
    next: [`sync the Application: argocd app sync ${manager.application} (or wait for auto-sync), then verify again`],
  };
}

async function podStage(kubectl: Kubectl, target: Target): Promise<Stage> {
  const pod = await kubectl.json(calls.get(target.namespace, 'pod', target.database.pod));
  const ok = podReady(pod);
  return {
    name: STAGE_NAMES[1],
    ok,
    detail: !pod ? `pod ${target.database.pod} not found` : ok ? `pod ${target.database.pod} Ready` : `pod ${target.database.pod} not ready: ${podSummary(pod)}`,
    code: EXIT.healthCheckFailed,
    next: [`see why: ${commandLine(KUBECTL, ['-n', target.namespace, 'describe', 'pod', target.database.pod])}`],
  };
}

/** The verification Job's log line of a stage (`learnflow-verify: stage 3 …`), if the log is there. */
const logLine = (report: JobPodReport, stage: number) =>
  report.log?.split('\n').find((l) => l.includes(`stage ${stage}`))?.replace(/^.*learnflow-verify: /, '');

async function jobStages(kubectl: Kubectl, progress: Progress, target: Target, timeoutS: number): Promise<Stage[]> {
  const ns = target.namespace;
  const job = target.jobs.verification;
  let state = jobState(await kubectl.json(calls.get(ns, 'job', job)));
  if (state.phase === 'Running' && timeoutS > 0) state = (await waitForJob(kubectl, progress, ns, job, timeoutS)).state;
  const [s3, s4] = [STAGE_NAMES[2], STAGE_NAMES[3]];
  const rerun = `check again now: learnflow-postgres verify --profile ${target.profile} --rerun`;
  if (state.phase === 'Missing') {
    const next = [`job/${job} is created by deploy (kubectl apply -f ${target.distDir}/): run learnflow-postgres deploy --profile ${target.profile}`];
    return [s3, s4].map((name) => ({ name, ok: false, detail: `not run: job/${job} not found`, code: EXIT.healthCheckFailed, next }));
  }
  if (state.phase === 'Running') {
    const next = [`wait for it: learnflow-postgres verify --profile ${target.profile} --timeout 600`];
    return [s3, s4].map((name) => ({ name, ok: false, detail: `not finished: job/${job} is still running`, code: EXIT.healthCheckFailed, next }));
  }
  const report = await jobPodReport(kubectl, ns, job, 20, VERIFY_CONTAINER);
  const replicas = parseReplicaReport(report.message ?? '');
  const describe = (f: ReplicaFinding) => `${f.host.split('.')[0]} ${f.state}${f.lagBytes !== null ? ` (${f.lagBytes} bytes behind)` : ''}`;
  const replicaDetail = replicas.length ? `; replicas: ${replicas.map(describe).join(', ')}` : '';
  if (state.phase === 'Complete') {
    return [
      { name: s3, ok: true, detail: `${logLine(report, 3) ?? `job/${job} Complete`}${replicaDetail}`, code: EXIT.ok, next: [] },
      { name: s4, ok: true, detail: logLine(report, 4) ?? `job/${job} Complete`, code: EXIT.ok, next: [] },
    ];
  }
  const why = describeReport(report);
  const logNext = [`read the log: ${report.logCommand}`, rerun];
  if (report.exitCode === EXIT.databaseConnectionFailed) {
    return [
      { name: s3, ok: false, detail: logLine(report, 3) ?? `job/${job} could not connect to ${target.connectionString} (exit 8)`, code: EXIT.databaseConnectionFailed, next: logNext },
      { name: s4, ok: false, detail: 'not run (stage 3 failed)', code: EXIT.healthCheckFailed, next: logNext },
    ];
  }
  const failing = replicas.filter((f) => f.state !== 'streaming');
  if (report.exitCode === EXIT.healthCheckFailed && failing.length > 0) {
    const detail = `${failing.length} of ${replicas.length} read replicas not streaming within readReplicas.maxLagBytes at job/${job}'s check: ${failing.map(describe).join(', ')}`;
    return [
      { name: s3, ok: false, detail, code: EXIT.healthCheckFailed, next: logNext },
      { name: s4, ok: false, detail: 'not run (stage 3 failed)', code: EXIT.healthCheckFailed, next: logNext },
    ];
  }
  if (report.exitCode === EXIT.healthCheckFailed) {
    return [
      { name: s3, ok: true, detail: logLine(report, 3) ?? 'passed (the Job got to stage 4)', code: EXIT.ok, next: [] },
      { name: s4, ok: false, detail: logLine(report, 4) ?? `job/${job} failed the schema check (exit 5)`, code: EXIT.healthCheckFailed, next: logNext },
    ];
  }
  const detail = `job/${job} Failed${state.reason ? ` (${state.reason})` : ''}; ${why}`;
  return [s3, s4].map((name) => ({ name, ok: false, detail, code: EXIT.healthCheckFailed, next: logNext }));
}
