import { ApiObject, App, Chart, Cron, JsonPatch, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { DatabaseLogin, LOGIN_CONTAINER, containerEnvironment } from './database-client';
import { PASSFILE } from './credentials/passfile-contract';
import { Component, contentHash, standardLabels } from './names';
import { failJobOnExitCodes as contractFailures } from './script-contract';
import { hardenManifest, podSpecOf } from './security';
import { syncWave } from './sync-waves';

export interface ProjectJobProps {
  /** The name, or for a Job the start of it: projectJob() appends a hash of its spec. */
  readonly name: string;
  readonly namespace: string;
  readonly releaseName: string;
  readonly component: Component;
  readonly container: kplus.ContainerProps;
  readonly volumes?: kplus.Volume[];
  /** How the container logs in to the database: libpq's password file, written by an init container. */
  readonly login?: DatabaseLogin;
  /** ConfigMaps mounted together as one read-only directory (a projected volume). */
  readonly configMapDirectory?: { readonly mountPath: string; readonly configMaps: readonly string[] };
  readonly serviceAccount?: kplus.IServiceAccount;
  readonly backoffLimit: number;
  /** Extra pod labels, e.g. the NetworkPolicy's database-client label. */
  readonly podLabels?: Record<string, string>;
  /** Container exit codes that fail the Job at once instead of being retried. */
  readonly failJobOnExitCodes: readonly number[];
  /** Argo CD sync wave: the next wave starts only once this one is healthy (a Job: complete). */
  readonly syncWave: number;
  /**
   * Argo CD deletes and re-creates the Job at every sync (`Force=true,Replace=true`), so a sync
   * runs it again even when a Job of the same name failed before. kubectl ignores it.
   * @default false: an unchanged Job is left as it is
   */
  readonly rerunOnEverySync?: boolean;
}

/**
 * Every Job this project renders goes through here: same labels, Never restart, a pod failure
 * policy that stops retrying on permanent failures, small resources, no TTL.
 *
 * A Job's spec is immutable, so its name is `<name>-<hash of its whole rendered spec>` (security
 * settings and failure policy included): `kubectl apply` and Argo CD then either find the same
 * Job unchanged or create a new one, and never try to change a Job in place. The Job is first
 * built and rendered in a detached copy of its place in the construct tree (its path is part of
 * its pod labels) to learn the hash, then built where it belongs, under its final name.
 *
 * No ttlSecondsAfterFinished on purpose: a tracked Job that deletes itself is re-created by
 * `kubectl apply` and by Argo CD self-heal, which re-runs it forever. An unchanged Job
 * re-applies as a no-op, a changed one is a new Job, and the old one is pruned (Argo CD prune,
 * `kubectl apply --prune`). Jobs are ordinary tracked resources ordered by sync waves, the same
 * objects for kubectl and Argo CD.
 */
export function projectJob(scope: Construct, id: string, props: ProjectJobProps): kplus.Job {
  const spec = finishManifest(ApiObject.of(buildJob(detachedCopy(scope), id, props)).toJson()).spec;
  return buildJob(scope, id, { ...props, name: contentName(props.name, spec) });
}

/** A construct at the same path as `scope` (the same ids from the root) in a tree of its own. */
function detachedCopy(scope: Construct): Construct {
  return scope.node.scopes.slice(1).reduce<Construct>(
    (parent, c) => (Chart.isChart(c) ? new Chart(parent, c.node.id) : new Construct(parent, c.node.id)),
    new App(),
  );
}

/** `<base>-<hash of spec>`, within Kubernetes' 63 characters. */
export function contentName(base: string, spec: unknown): string {
  return `${base.slice(0, 52).replace(/-+$/, '')}-${contentHash([JSON.stringify(spec)])}`;
}

function buildJob(scope: Construct, id: string, props: ProjectJobProps): kplus.Job {
  const job = new kplus.Job(scope, id, { ...workloadProps(scope, id, props), backoffLimit: props.backoffLimit });
  patchJobSpec(job, '/spec', props);
  return job;
}

/**
 * What every manifest this project renders passes through before it is written (the chart's
 * toJson): Pod Security "restricted" settings, then no values the API server would not store.
 */
export function finishManifest(manifest: Record<string, any>): Record<string, any> {
  return withoutServerDefaults(withEphemeralStorage(hardenManifest(manifest)));
}

/** Every container's ephemeral storage request and limit, where it sets none ({@link EPHEMERAL_STORAGE}). */
export function withEphemeralStorage(manifest: Record<string, any>): Record<string, any> {
  const spec = podSpecOf(manifest);
  for (const kind of ['initContainers', 'containers'] as const) {
    for (const container of spec?.[kind] ?? []) {
      const { request, limit } = EPHEMERAL_STORAGE[kind];
      const resources = (container.resources ??= {});
      (resources.requests ??= {})['ephemeral-storage'] ??= request;
      (resources.limits ??= {})['ephemeral-storage'] ??= limit;
    }
  }
  return manifest;
}

/**
 * Drops the empty values cdk8s-plus-27 writes that the API server does not store (`false` pod
 * settings, a core subject's `apiGroup: ""`): client-side `kubectl apply` would otherwise report
 * those objects "configured" on every apply.
 */
export function withoutServerDefaults(manifest: Record<string, any>): Record<string, any> {
  const spec = podSpecOf(manifest);
  if (spec) for (const field of ['hostNetwork', 'setHostnameAsFQDN']) if (spec[field] === false) delete spec[field];
  for (const subject of manifest.kind === 'RoleBinding' ? manifest.subjects ?? [] : []) if (subject.apiGroup === '') delete subject.apiGroup;
  return manifest;
}

/**
 * A CronJob that never runs on its own: a Job template a person starts deliberately with
 * `kubectl create job <name> --from=cronjob/<cronjob>` (status checks, rollbacks).
 */
export function manualJobTemplate(scope: Construct, id: string, props: ProjectJobProps): kplus.CronJob {
  const cronJob = new kplus.CronJob(scope, id, {
    ...workloadProps(scope, id, props),
    schedule: Cron.schedule({ minute: '0', hour: '0', day: '31', month: '2' }),
    suspend: true,
    concurrencyPolicy: kplus.ConcurrencyPolicy.FORBID,
    backoffLimit: props.backoffLimit,
    successfulJobsRetained: 3,
    failedJobsRetained: 3,
  });
  patchJobSpec(cronJob, '/spec/jobTemplate/spec', props);
  return cronJob;
}

/** Every Job container's CPU and memory: small. */
const JOB_RESOURCES: kplus.ContainerResources = {
  cpu: { request: kplus.Cpu.millis(50), limit: kplus.Cpu.millis(500) },
  memory: { request: Size.mebibytes(64), limit: Size.mebibytes(256) },
};

/** The login init container's: it writes one line to a memory-backed volume. */
const LOGIN_RESOURCES: kplus.ContainerResources = {
  cpu: { request: kplus.Cpu.millis(10), limit: kplus.Cpu.millis(100) },
  memory: { request: Size.mebibytes(16), limit: Size.mebibytes(64) },
};

/**
 * Local disk (logs, /tmp) of every container we render that does not say, bounded so that a
 * runaway container is evicted rather than fill the node: init containers (one line to a
 * memory-backed volume) and the others. Added by finishManifest(): cdk8s-plus-27 writes
 * ephemeral storage in whole GiB only.
 */
export const EPHEMERAL_STORAGE = {
  initContainers: { request: '8Mi', limit: '64Mi' },
  containers: { request: '64Mi', limit: '1Gi' },
} as const;

/**
 * Pod settings shared by Jobs and their templates. Every container's root file system is read-only
 * (lib/security.ts), so each gets a writable emptyDir at /tmp for psql, kubectl and mktemp.
 */
function workloadProps(scope: Construct, id: string, props: ProjectJobProps) {
  const labels = standardLabels(props.releaseName, props.component);
  const tmp = kplus.Volume.fromEmptyDir(scope, `${id}-tmp`, 'tmp');
  const login = props.login;
  return {
    metadata: {
      name: props.name, namespace: props.namespace, labels,
      annotations: { ...syncWave(props.syncWave), ...(props.rerunOnEverySync ? { 'argocd.argoproj.io/sync-options': 'Force=true,Replace=true' } : {}) },
    },
    podMetadata: { labels: { ...labels, ...props.podLabels } },
    restartPolicy: kplus.RestartPolicy.NEVER,
    serviceAccount: props.serviceAccount,
    automountServiceAccountToken: props.serviceAccount !== undefined,
    volumes: [tmp, ...(login?.volumes ?? []), ...(props.volumes ?? [])],
    securityContext: { ensureNonRoot: true },
    initContainers: login ? [{ resources: LOGIN_RESOURCES, imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT, ...login.initContainer }] : [],
    containers: [{
      resources: JOB_RESOURCES,
      imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
      ...props.container,
      envVariables: { ...props.container.envVariables, ...containerEnvironment({ ...login?.env }) },
      volumeMounts: [{ path: '/tmp', volume: tmp }, ...(login?.mounts ?? []), ...(props.container.volumeMounts ?? [])],
    }],
  };
}

/** What cdk8s-plus-27 cannot express, patched at `jobSpec` (a Job's or a CronJob's job template). */
function patchJobSpec(workload: kplus.Job | kplus.CronJob, jobSpec: string, props: ProjectJobProps): void {
  const api = ApiObject.of(workload);
  const containerName = props.container.name ?? 'main';
  // podFailurePolicy: Kubernetes 1.26+ (beta, on by default), needs restartPolicy Never.
  api.addJsonPatch(JsonPatch.add(`${jobSpec}/podFailurePolicy`, {
    rules: [
      // The API server requires the values in ascending order.
      // Kubernetes 1.28's schema also wants onPodConditions here: lib/kubernetes.ts adds it for that target.
      { action: 'FailJob', onExitCodes: { containerName, operator: 'In', values: [...props.failJobOnExitCodes].sort((a, b) => a - b) } },
      // The login's refusals (a Secret key it cannot use) do not heal by retrying either.
      ...(props.login ? [{ action: 'FailJob', onExitCodes: { containerName: LOGIN_CONTAINER, operator: 'In', values: contractFailures(PASSFILE) } }] : []),
      // An evicted or preempted pod is not the Job's fault: retry without counting it.
      { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
    ],
  }));
  const dir = props.configMapDirectory;
  if (dir) {
    // Several ConfigMaps as one directory: cdk8s-plus-27 has no projected volumes.
    api.addJsonPatch(
      JsonPatch.add(`${jobSpec}/template/spec/volumes/-`, {
        name: 'configmaps',
        projected: { defaultMode: 0o444, sources: dir.configMaps.map((name) => ({ configMap: { name } })) },
      }),
      JsonPatch.add(`${jobSpec}/template/spec/containers/0/volumeMounts/-`, { name: 'configmaps', mountPath: dir.mountPath, readOnly: true }),
    );
  }
}
