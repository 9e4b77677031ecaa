// The scanners' findings on dist/ and the chart's render that we accept, each for a reason the
// README's "Security scanners" section gives. test/scanners.test.ts fails on any other finding,
// and on an accepted one that no longer occurs.

/** One finding: the scanner, its check, and the object as `Kind/name` (content hashes as `<hash>`). */
export interface Finding {
  readonly tool: 'kube-score' | 'checkov';
  readonly check: string;
  readonly object: string;
}

/** An accepted finding: for the objects `objects` matches (a regular expression over `Kind/name`). */
export interface AcceptedFinding {
  readonly tool: Finding['tool'];
  readonly check: string;
  readonly objects: RegExp;
  /** Why, in short (the README says it in full). */
  readonly why: string;
}

/** Every workload: our Jobs and CronJobs, and the chart's StatefulSet. */
const WORKLOADS = /^(Job|CronJob|StatefulSet)\//;

export const ACCEPTED_FINDINGS: readonly AcceptedFinding[] = [
  { tool: 'kube-score', check: 'container-image-pull-policy', objects: WORKLOADS, why: 'IfNotPresent with pinned image tags: Always would make every Job and restore depend on the registry being up' },
  { tool: 'checkov', check: 'CKV_K8S_15', objects: WORKLOADS, why: 'the same finding as kube-score container-image-pull-policy' },
  { tool: 'checkov', check: 'CKV_K8S_43', objects: WORKLOADS, why: 'images by pinned tag, as the chart names them; a digest is one image prop away (tag: name@sha256:...)' },
  { tool: 'kube-score', check: 'container-security-context-user-group-id', objects: WORKLOADS, why: 'UID/GID 1001, the images\' own user that owns their files; non-root is enforced (runAsNonRoot, restricted namespace)' },
  { tool: 'checkov', check: 'CKV_K8S_40', objects: WORKLOADS, why: 'the same finding as kube-score container-security-context-user-group-id' },
  { tool: 'checkov', check: 'CKV_K8S_38', objects: /^Job\/postgres-postgresql-credentials-<hash>$/, why: 'the credentials bootstrap creates the Secret through the API: the one pod with a token, its Role limited to that Secret' },
  { tool: 'checkov', check: 'CKV_K8S_8', objects: /^StatefulSet\//, why: 'the off-site upload sidecar has no liveness probe: it reports failures in its status file and log; the database container has the chart\'s probes' },
  { tool: 'checkov', check: 'CKV_K8S_9', objects: /^StatefulSet\//, why: 'the off-site upload sidecar serves nothing, so it has no readiness probe' },
];

export const findingKey = (f: Finding) => `${f.tool} ${f.check} ${f.object}`;

export function isAccepted(f: Finding, accepted: readonly AcceptedFinding[] = ACCEPTED_FINDINGS): boolean {
  return accepted.some((a) => a.tool === f.tool && a.check === f.check && a.objects.test(f.object));
}
