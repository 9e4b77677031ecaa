import { ApiObject, Cron, JsonPatch, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { Component, standardLabels } from './names';

export interface ProjectJobProps {
  readonly name: string;
  readonly namespace: string;
  readonly releaseName: string;
  readonly component: Component;
  readonly container: kplus.ContainerProps;
  readonly volumes?: kplus.Volume[];
  /** ConfigMaps mounted together as one read-only directory (a projected volume). */
  readonly configMapDirectory?: { readonly mountPath: string; readonly configMaps: readonly string[] };
  readonly serviceAccount?: kplus.IServiceAccount;
  readonly backoffLimit: number;
  /** Extra pod labels, e.g. the NetworkPolicy's database-client label. */
  readonly podLabels?: Record<string, string>;
  /** Container exit codes that fail the Job at once instead of being retried. */
  readonly failJobOnExitCodes: readonly number[];
  /** Argo CD hook phase; the Job is then not a tracked resource. */
  readonly argoHook: 'PreSync' | 'Sync' | 'PostSync';
  readonly argoSyncWave?: number;
}

/**
 * Every Job this project renders goes through here: same labels, Never restart, a pod failure
 * policy that stops retrying on permanent failures, small resources, no TTL.
 *
 * No ttlSecondsAfterFinished on purpose: a tracked Job that deletes itself is re-created by
 * `kubectl apply` and by Argo CD self-heal, which re-runs it forever. Names carry a content
 * hash instead, so an unchanged Job re-applies as a no-op and a changed one is a new Job.
 * For Argo CD the Job is a hook with BeforeHookCreation: never tracked, never OutOfSync.
 */
export function projectJob(scope: Construct, id: string, props: ProjectJobProps): kplus.Job {
  const job = new kplus.Job(scope, id, {
    ...workloadProps(props),
    metadata: {
      ...workloadProps(props).metadata,
      annotations: {
        'argocd.argoproj.io/hook': props.argoHook,
        'argocd.argoproj.io/hook-delete-policy': 'BeforeHookCreation',
        ...(props.argoSyncWave !== undefined ? { 'argocd.argoproj.io/sync-wave': String(props.argoSyncWave) } : {}),
      },
    },
    backoffLimit: props.backoffLimit,
  });
  patchJobSpec(job, '/spec', props);
  return job;
}

/**
 * A CronJob that never runs on its own: a Job template a person starts deliberately with
 * `kubectl create job <name> --from=cronjob/<cronjob>` (status checks, rollbacks).
 */
export function manualJobTemplate(scope: Construct, id: string, props: ProjectJobProps): kplus.CronJob {
  const cronJob = new kplus.CronJob(scope, id, {
    ...workloadProps(props),
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

function workloadProps(props: ProjectJobProps) {
  const labels = standardLabels(props.releaseName, props.component);
  return {
    metadata: { name: props.name, namespace: props.namespace, labels },
    podMetadata: { labels: { ...labels, ...props.podLabels } },
    restartPolicy: kplus.RestartPolicy.NEVER,
    serviceAccount: props.serviceAccount,
    automountServiceAccountToken: props.serviceAccount !== undefined,
    volumes: props.volumes,
    securityContext: { ensureNonRoot: true },
    containers: [{
      resources: {
        cpu: { request: kplus.Cpu.millis(50), limit: kplus.Cpu.millis(500) },
        memory: { request: Size.mebibytes(64), limit: Size.mebibytes(256) },
      },
      imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
      ...props.container,
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
      { action: 'FailJob', onExitCodes: { containerName, operator: 'In', values: [...props.failJobOnExitCodes] } },
      // An evicted or preempted pod is not the Job's fault: retry without counting it.
      { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget' }] },
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
