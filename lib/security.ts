/**
 * Pod Security Standards "restricted" for every pod this project renders, applied in one place:
 * LearnflowChart passes each manifest through hardenManifest() before it is written.
 * cdk8s-plus-27 renders runAsNonRoot and allowPrivilegeEscalation but not
 * capabilities.drop [ALL] nor seccompProfile RuntimeDefault, which "restricted" requires.
 */

/** Bitnami images run as this non-root user and group. */
export const NON_ROOT_ID = 1001;

type Json = Record<string, any>;

/** Where each workload kind keeps its pod spec. */
const POD_SPEC_PATHS: Record<string, readonly string[]> = {
  Pod: ['spec'],
  Job: ['spec', 'template', 'spec'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template', 'spec'],
  Deployment: ['spec', 'template', 'spec'],
  StatefulSet: ['spec', 'template', 'spec'],
  DaemonSet: ['spec', 'template', 'spec'],
};

export function podSpecOf(manifest: Json): Json | undefined {
  const path = POD_SPEC_PATHS[manifest.kind];
  return path?.reduce<Json | undefined>((node, key) => node?.[key], manifest);
}

/** A container's settings under "restricted", also for containers the chart renders from our values. */
export const RESTRICTED_CONTAINER = {
  runAsNonRoot: true,
  allowPrivilegeEscalation: false,
  privileged: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
} as const;

/** Returns the manifest with its pod spec (if any) made "restricted"; other manifests unchanged. */
export function hardenManifest(manifest: Json): Json {
  const spec = podSpecOf(manifest);
  if (spec) restrictPodSpec(spec);
  return manifest;
}

function restrictPodSpec(spec: Json): void {
  spec.securityContext = {
    ...spec.securityContext,
    runAsNonRoot: true,
    runAsUser: NON_ROOT_ID,
    runAsGroup: NON_ROOT_ID,
    fsGroup: NON_ROOT_ID,
    seccompProfile: { type: 'RuntimeDefault' },
  };
  for (const container of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
    // A copy per container: shared objects would be written as YAML anchors and aliases.
    container.securityContext = { ...container.securityContext, ...structuredClone(RESTRICTED_CONTAINER) };
  }
}
