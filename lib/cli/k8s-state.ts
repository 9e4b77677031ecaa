// Pure readings of Kubernetes objects as `kubectl get -o json` returns them: what a Job, a pod or
// a claim says about itself. No I/O here, so the rules are easy to test and to change.

/** An object as the API server returns it (only the fields read here are typed). */
export interface KubeObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
    readonly creationTimestamp?: string;
    readonly [field: string]: unknown;
  };
  readonly spec?: any;
  readonly status?: any;
  readonly [field: string]: unknown;
}

export interface Condition {
  readonly type: string;
  readonly status: string;
  readonly reason?: string;
  readonly message?: string;
  readonly lastTransitionTime?: string;
}

function conditions(object: KubeObject | undefined): Condition[] {
  return Array.isArray(object?.status?.conditions) ? object!.status.conditions : [];
}

function condition(object: KubeObject | undefined, type: string): Condition | undefined {
  return conditions(object).find((c) => c.type === type && c.status === 'True');
}

export type JobPhase = 'Missing' | 'Running' | 'Complete' | 'Failed';

export interface JobState {
  readonly phase: JobPhase;
  /** The deciding condition's reason and message, e.g. `PodFailurePolicy: Container migrate … exit code 7`. */
  readonly reason?: string;
}

/**
 * A Job's outcome from its conditions, as the Job controller sets them: Complete, or Failed
 * (FailureTarget is the controller's "will fail" mark, set before its pods are gone).
 */
export function jobState(job: KubeObject | undefined): JobState {
  if (!job) return { phase: 'Missing' };
  const complete = condition(job, 'Complete');
  if (complete) return { phase: 'Complete' };
  const failed = condition(job, 'Failed') ?? condition(job, 'FailureTarget');
  if (failed) return { phase: 'Failed', reason: [failed.reason, failed.message].filter(Boolean).join(': ') || undefined };
  return { phase: 'Running' };
}

/** A Job's progress counters, for a waiting line: `active 1, failed 2`. */
export function jobCounters(job: KubeObject): string {
  const s = job.status ?? {};
  const parts = [['active', s.active], ['succeeded', s.succeeded], ['failed', s.failed]]
    .filter(([, n]) => typeof n === 'number' && n > 0)
    .map(([what, n]) => `${what} ${n}`);
  return parts.length > 0 ? parts.join(', ') : 'no pod started yet';
}

/** True when the pod's Ready condition is True (for the chart's pod: its readiness probe, pg_isready, passes). */
export function podReady(pod: KubeObject | undefined): boolean {
  return condition(pod, 'Ready') !== undefined;
}

/** Why a pod is not ready, in a few words: phase, and each container's waiting or terminated reason. */
export function podSummary(pod: KubeObject): string {
  const status = pod.status ?? {};
  const parts = [`phase ${status.phase ?? 'Pending'}`];
  for (const c of [...(status.initContainerStatuses ?? []), ...(status.containerStatuses ?? [])]) {
    const waiting = c.state?.waiting;
    const terminated = c.state?.terminated;
    if (waiting?.reason) parts.push(`${c.name} waiting: ${waiting.reason}${waiting.message ? ` (${waiting.message})` : ''}`);
    else if (terminated) parts.push(`${c.name} terminated: exit ${terminated.exitCode}${terminated.reason ? ` (${terminated.reason})` : ''}`);
    else if (c.ready === false && c.state?.running) parts.push(`${c.name} running, not ready`);
  }
  const scheduled = conditions(pod).find((c) => c.type === 'PodScheduled' && c.status === 'False');
  if (scheduled) parts.push(`not scheduled: ${scheduled.reason ?? ''}${scheduled.message ? ` ${scheduled.message}` : ''}`.trim());
  return parts.join('; ');
}

/** The exit code of the pod's first container that terminated (current or last state); undefined when none did. */
export function terminatedExitCode(pod: KubeObject): number | undefined {
  for (const c of pod.status?.containerStatuses ?? []) {
    const code = c.state?.terminated?.exitCode ?? c.lastState?.terminated?.exitCode;
    if (typeof code === 'number') return code;
  }
  return undefined;
}

/**
 * What container `container` of the pod wrote to its termination message file (the kubelet
 * copies it into the status) and when it ended, from its current or last termination.
 */
export function terminationMessage(pod: KubeObject | undefined, container: string): { message: string; at: string | null } | undefined {
  const status = (pod?.status?.containerStatuses ?? []).find((c: any) => c.name === container);
  const terminated = status?.state?.terminated ?? status?.lastState?.terminated;
  return typeof terminated?.message === 'string' ? { message: terminated.message, at: terminated.finishedAt ?? null } : undefined;
}

/** The newest of `pods` by creation time (names break ties), or undefined. */
export function newest(pods: readonly KubeObject[]): KubeObject | undefined {
  return [...pods].sort((a, b) =>
    (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '') || a.metadata.name.localeCompare(b.metadata.name)).pop();
}

/** Whether every label of `selector` is on the object. */
export function matchesLabels(object: KubeObject, selector: Readonly<Record<string, string>>): boolean {
  const labels = object.metadata.labels ?? {};
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/**
 * The newest moment any of the objects changed in a way we report: creation, a condition's
 * transition, a Job's start or completion. ISO 8601, or undefined when there is none.
 */
export function lastChange(objects: readonly (KubeObject | undefined)[]): string | undefined {
  const times: string[] = [];
  for (const o of objects) {
    if (!o) continue;
    if (o.metadata.creationTimestamp) times.push(o.metadata.creationTimestamp);
    for (const c of conditions(o)) if (c.lastTransitionTime) times.push(c.lastTransitionTime);
    for (const t of [o.status?.startTime, o.status?.completionTime]) if (typeof t === 'string') times.push(t);
  }
  // RFC 3339 with the same precision and zone sort as strings; compare as dates to be safe.
  return times.sort((a, b) => Date.parse(a) - Date.parse(b)).pop();
}

/** The annotation Argo CD (3.x, annotation tracking) puts on every resource an Application manages: `<app>:<group>/<kind>:<ns>/<name>`. */
export const ARGOCD_TRACKING = 'argocd.argoproj.io/tracking-id';

export interface Manager {
  /** `helm`: a release installed it; `argocd`: an Application syncs it (rendered with helm template: no release). */
  readonly by: 'helm' | 'argocd';
  /** The Argo CD Application, for `argocd`. */
  readonly application?: string;
  /** `postgresql-15.5.38`, from the chart's `helm.sh/chart` label. */
  readonly chart?: string;
}

/** Who manages the chart's StatefulSet, from what it carries; undefined without one. */
export function managerOf(statefulSet: KubeObject | undefined): Manager | undefined {
  if (!statefulSet) return undefined;
  const chart = statefulSet.metadata.labels?.['helm.sh/chart'];
  const tracking = statefulSet.metadata.annotations?.[ARGOCD_TRACKING];
  return tracking !== undefined ? { by: 'argocd', application: tracking.split(':')[0], chart } : { by: 'helm', chart };
}
