/**
 * The Kubernetes minor versions a deployment may target (a profile's `kubernetesVersion`). Each is
 * checked by the tests: dist/ and the chart's render applied to a real API server of the oldest
 * and the newest supported minor (test/chart/kube-versions.test.ts), with the API fields we use
 * unchanged between them (batch/v1 Job and CronJob with podFailurePolicy, networking/v1,
 * rbac/v1, Pod Security admission).
 */
export const SUPPORTED_KUBERNETES_VERSIONS = ['1.28', '1.29', '1.30', '1.31'] as const;
export type KubernetesVersion = (typeof SUPPORTED_KUBERNETES_VERSIONS)[number];
export const DEFAULT_KUBERNETES_VERSION: KubernetesVersion = '1.31';

/** The patch releases the API tier runs, one per end of the supported range. */
export const TESTED_KUBERNETES_RELEASES = { oldest: '1.28.15', newest: '1.31.0' } as const;

/** Why a minor outside the range is refused, by minor. */
const REFUSED: Readonly<Record<string, string>> = {
  '1.27': 'its Job API cannot be tested here (the Go module proxy lacks k8s.io staging modules v0.27.x to build an API server), and it left upstream support in 2024',
};

export function isKubernetesVersion(value: string): value is KubernetesVersion {
  return (SUPPORTED_KUBERNETES_VERSIONS as readonly string[]).includes(value);
}

/** The rule of `kubernetesVersion`, for lib/validation.ts. */
export function kubernetesVersionProblems(field: string, value: string): string[] {
  if (isKubernetesVersion(value)) return [];
  const range = `${SUPPORTED_KUBERNETES_VERSIONS[0]} to ${SUPPORTED_KUBERNETES_VERSIONS.at(-1)}`;
  const match = /^1\.(\d+)$/.exec(value);
  if (!match) return [`${field}: '${value}' is not a Kubernetes minor version (a string such as '1.31'; supported: ${range})`];
  const why = REFUSED[value] ?? (Number(match[1]) < 28
    ? 'Kubernetes before 1.29 requires onPodConditions in every Job failure rule and before 1.26 has no pod failure policy; below 1.28 nothing is tested'
    : 'it is newer than the newest API server the tests run (1.31)');
  return [`${field}: '${value}' is not supported: ${why} (supported: ${range})`];
}

/** A minor version as a number for comparisons: '1.28' → 28. */
const minorOf = (version: KubernetesVersion) => Number(version.split('.')[1]);

/**
 * A manifest as `version` needs it. Before 1.29 the batch/v1 schema requires `onPodConditions` in
 * every pod failure rule (an empty list beside `onExitCodes`); from 1.29 on it is optional, and an
 * empty list there would make every client-side re-apply rewrite the Job (the server drops it), so
 * it is added only for those targets. Jobs and CronJobs' job templates alike.
 */
export function forKubernetes(manifest: any, version: KubernetesVersion): any {
  if (minorOf(version) >= 29) return manifest;
  const spec = manifest?.kind === 'Job' ? manifest.spec : manifest?.kind === 'CronJob' ? manifest.spec?.jobTemplate?.spec : undefined;
  for (const rule of spec?.podFailurePolicy?.rules ?? []) rule.onPodConditions ??= [];
  return manifest;
}
