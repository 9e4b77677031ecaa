import { SUPPORTED_CHART_VERSIONS, isChartVersion } from './chart';
import { LearnflowPostgresProps, ResourceAmounts, STORAGE_CLASS_PRESETS } from './config';
import { runnerKnobProblems } from './migrations/runner-contract';

/** Raised with every problem found, each as `field: what is wrong (what is allowed)`. */
export class ValidationError extends Error {
  constructor(readonly subject: string, readonly problems: readonly string[]) {
    super(`${subject}: ${problems.length} problem(s)\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ValidationError';
  }
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const PG_IDENTIFIER = /^[a-z_][a-z0-9_]*$/;
const QUANTITY = /^([0-9]+(\.[0-9]+)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][0-9]+)?$/;
const BYTES = /^([0-9]+)(Mi|Gi|Ti|M|G|T)$/;
const IMAGE_PART = /^[a-z0-9]+([._\/-][a-z0-9]+)*$/;
const IMAGE_TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const REGISTRY = /^[a-zA-Z0-9.-]+(:[0-9]+)?(\/[a-z0-9._-]+)*$/;

const dnsLabel = (field: string, value: string, max = 63): string[] =>
  DNS1123_LABEL.test(value) && value.length <= max
    ? []
    : [`${field}: '${value}' is not a valid name (DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit, at most ${max} characters)`];

const dnsSubdomain = (field: string, value: string): string[] =>
  DNS1123_SUBDOMAIN.test(value) && value.length <= 253
    ? []
    : [`${field}: '${value}' is not a valid name (DNS-1123 subdomain: lowercase letters, digits, '-' and '.', at most 253 characters)`];

const pgIdentifier = (field: string, value: string): string[] =>
  PG_IDENTIFIER.test(value) && value.length <= 63
    ? []
    : [`${field}: '${value}' is not a valid PostgreSQL name (lowercase letters, digits and '_', starting with a letter or '_', at most 63 characters)`];

const integerIn = (field: string, value: number | undefined, min: number, max: number): string[] =>
  value === undefined || (Number.isInteger(value) && value >= min && value <= max)
    ? []
    : [`${field}: ${value} is out of range (a whole number from ${min} to ${max})`];

/** Parses a Kubernetes quantity into base units, or undefined when it is not one. */
export function parseQuantity(value: string): number | undefined {
  const match = QUANTITY.exec(value);
  if (!match) return undefined;
  const suffix = match[3] ?? '';
  const factors: Record<string, number> = {
    '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
    Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
  };
  const factor = suffix.startsWith('e') || suffix.startsWith('E') ? 10 ** Number(suffix.slice(1)) : factors[suffix];
  return Number(match[1]) * factor;
}

function quantity(field: string, value: string | undefined): string[] {
  if (value === undefined) return [];
  return parseQuantity(value) !== undefined && parseQuantity(value)! > 0
    ? []
    : [`${field}: '${value}' is not a Kubernetes resource quantity (e.g. 500m, 2, 512Mi, 2Gi)`];
}

function resources(field: string, amounts: ResourceAmounts | undefined): string[] {
  return [...quantity(`${field}.cpu`, amounts?.cpu), ...quantity(`${field}.memory`, amounts?.memory)];
}

function requestsWithinLimits(props: LearnflowPostgresProps): string[] {
  const problems: string[] = [];
  for (const kind of ['cpu', 'memory'] as const) {
    const request = props.resources?.requests?.[kind];
    const limit = props.resources?.limits?.[kind];
    if (request === undefined || limit === undefined) continue;
    const r = parseQuantity(request);
    const l = parseQuantity(limit);
    if (r !== undefined && l !== undefined && r > l) {
      problems.push(`resources.requests.${kind}: ${request} exceeds resources.limits.${kind} ${limit} (a request must not be larger than its limit)`);
    }
  }
  return problems;
}

function storageSize(field: string, value: string | undefined): string[] {
  if (value === undefined) return [];
  const match = BYTES.exec(value);
  const bytes = match ? parseQuantity(value)! : undefined;
  if (bytes === undefined) return [`${field}: '${value}' is not a storage size (a whole number with Mi, Gi, Ti, M, G or T, e.g. 20Gi)`];
  return bytes >= 2 ** 30 ? [] : [`${field}: '${value}' is too small (at least 1Gi: PostgreSQL's WAL alone takes hundreds of MiB)`];
}

const CRON_FIELD = /^(\*|[0-9]+(-[0-9]+)?)(\/[0-9]+)?(,(\*|[0-9]+(-[0-9]+)?)(\/[0-9]+)?)*$/;
const CRON_MACRO = /^@(yearly|annually|monthly|weekly|daily|midnight|hourly)$/;

function cronSchedule(field: string, value: string | undefined): string[] {
  if (value === undefined) return [];
  const fields = value.trim().split(/\s+/);
  const ok = CRON_MACRO.test(value) || (fields.length === 5 && fields.every((f) => CRON_FIELD.test(f)));
  return ok ? [] : [`${field}: '${value}' is not a cron schedule (five fields such as '30 2 * * *', or @daily, @hourly, ...)`];
}

function image(field: string, img: { registry?: string; repository?: string; tag?: string } | undefined): string[] {
  const problems: string[] = [];
  if (img?.registry !== undefined && !REGISTRY.test(img.registry)) problems.push(`${field}.registry: '${img.registry}' is not a registry host (e.g. docker.io or mirror.example.com:5000)`);
  if (img?.repository !== undefined && !IMAGE_PART.test(img.repository)) problems.push(`${field}.repository: '${img.repository}' is not an image repository (lowercase path such as bitnamilegacy/postgresql)`);
  if (img?.tag !== undefined && !IMAGE_TAG.test(img.tag)) problems.push(`${field}.tag: '${img.tag}' is not an image tag (letters, digits, '_', '.', '-'; at most 128 characters)`);
  return problems;
}

function cidr(field: string, value: string): string[] {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(value);
  const v4ok = v4 !== null && v4.slice(1, 5).every((o) => Number(o) <= 255) && Number(v4[5]) <= 32;
  const v6ok = /^[0-9a-fA-F:]+\/\d{1,3}$/.test(value) && value.includes(':') && Number(value.split('/')[1]) <= 128;
  return v4ok || v6ok ? [] : [`${field}: '${value}' is not a CIDR block (e.g. 10.0.0.0/8)`];
}

function duplicates(field: string, values: readonly string[]): string[] {
  const seen = new Set<string>();
  return values.flatMap((v) => (seen.has(v) ? [`${field}: '${v}' is listed twice (each entry once)`] : (seen.add(v), [])));
}

/** Checks a deployment description; returns every problem at once (empty when valid). */
export function validateProps(props: LearnflowPostgresProps): string[] {
  const p = props;
  const problems: string[] = [];
  if (p.namespace !== undefined) problems.push(...dnsLabel('namespace', p.namespace));
  // Helm limits release names to 53 characters (it appends suffixes of its own).
  if (p.releaseName !== undefined) problems.push(...dnsLabel('releaseName', p.releaseName, 53));
  if (p.databaseName !== undefined) problems.push(...pgIdentifier('databaseName', p.databaseName));
  if (p.appUser !== undefined) {
    problems.push(...pgIdentifier('appUser', p.appUser));
    if (p.appUser === 'postgres') problems.push(`appUser: 'postgres' is the superuser (choose an unprivileged owner such as 'learnflow'; the chart would otherwise hand applications the superuser password)`);
  }
  if (p.chartVersion !== undefined && !isChartVersion(p.chartVersion)) {
    problems.push(`chartVersion: '${p.chartVersion}' is not supported (one of ${SUPPORTED_CHART_VERSIONS.join(', ')})`);
  }
  if (p.imageRegistry !== undefined && !REGISTRY.test(p.imageRegistry)) problems.push(`imageRegistry: '${p.imageRegistry}' is not a registry host (e.g. mirror.example.com:5000)`);
  problems.push(...image('image', p.image), ...image('kubectlImage', p.kubectlImage));
  problems.push(...storageSize('storageSize', p.storageSize));
  if (p.storageClass !== undefined) problems.push(...dnsSubdomain('storageClass', p.storageClass));
  if (p.storageClassPreset !== undefined && !(p.storageClassPreset in STORAGE_CLASS_PRESETS)) {
    problems.push(`storageClassPreset: '${p.storageClassPreset}' is unknown (one of ${Object.keys(STORAGE_CLASS_PRESETS).join(', ')})`);
  }
  if (p.storageClass !== undefined && p.storageClassPreset !== undefined) {
    problems.push(`storageClassPreset: conflicts with storageClass (set one of them)`);
  }
  problems.push(...resources('resources.requests', p.resources?.requests), ...resources('resources.limits', p.resources?.limits));
  problems.push(...requestsWithinLimits(p));
  if (p.serviceType !== undefined && !['ClusterIP', 'NodePort', 'LoadBalancer'].includes(p.serviceType)) {
    problems.push(`serviceType: '${p.serviceType}' is unknown (ClusterIP, NodePort or LoadBalancer)`);
  }
  problems.push(...integerIn('port', p.port, 1, 65535), ...integerIn('nodePort', p.nodePort, 30000, 32767));
  if (p.nodePort !== undefined && (p.serviceType ?? 'ClusterIP') === 'ClusterIP') {
    problems.push(`nodePort: conflicts with serviceType ClusterIP (a node port needs serviceType NodePort or LoadBalancer)`);
  }
  const external = p.serviceType === 'LoadBalancer' || p.serviceType === 'NodePort';
  if (external && (p.allowedCidrs ?? []).length === 0) {
    problems.push(`allowedCidrs: empty while serviceType is ${p.serviceType} (the NetworkPolicy would drop every outside client; list the client networks, e.g. ['10.0.0.0/8'])`);
  }
  if (p.tls?.certificatesSecret !== undefined) {
    problems.push(...dnsSubdomain('tls.certificatesSecret', p.tls.certificatesSecret));
    if (p.tls.enabled !== true) problems.push(`tls.certificatesSecret: conflicts with tls.enabled false (enable TLS or drop the secret)`);
  }
  (p.allowedNamespaces ?? []).forEach((ns, i) => problems.push(...dnsLabel(`allowedNamespaces[${i}]`, ns)));
  problems.push(...duplicates('allowedNamespaces', p.allowedNamespaces ?? []));
  (p.allowedCidrs ?? []).forEach((c, i) => problems.push(...cidr(`allowedCidrs[${i}]`, c)));
  if (p.credentials?.existingSecret !== undefined) {
    problems.push(...dnsSubdomain('credentials.existingSecret', p.credentials.existingSecret));
    if (p.credentials.generatedPasswordLength !== undefined) {
      problems.push(`credentials.generatedPasswordLength: conflicts with credentials.existingSecret (nothing is generated for a secret you manage)`);
    }
  }
  problems.push(...integerIn('credentials.generatedPasswordLength', p.credentials?.generatedPasswordLength, 32, 128));
  const m = p.migrations;
  problems.push(...integerIn('migrations.backoffLimit', m?.backoffLimit, 0, 100));
  // The runner's own rules (its contract), applied to the values the Job will hand it.
  problems.push(...runnerKnobProblems({
    dbWaitSeconds: m?.waitForDatabaseSeconds,
    lockWaitSeconds: m?.lockWaitSeconds,
    statementTimeout: m?.statementTimeout,
    lockTimeout: m?.lockTimeout,
  }, (knob) => `migrations.${knob === 'dbWaitSeconds' ? 'waitForDatabaseSeconds' : knob}`));
  if (p.argocd !== undefined) {
    if (!/^(https?:\/\/|ssh:\/\/|git@)[^\s]+$/.test(p.argocd.repoURL ?? '')) {
      problems.push(`argocd.repoURL: '${p.argocd.repoURL}' is not a Git URL (https://..., ssh://... or git@host:path)`);
    }
    if (p.argocd.project !== undefined) problems.push(...dnsSubdomain('argocd.project', p.argocd.project));
    if (p.argocd.namespace !== undefined) problems.push(...dnsLabel('argocd.namespace', p.argocd.namespace));
    if (p.argocd.targetRevision !== undefined && !/^[^\s~^:?*\[\\]+$/.test(p.argocd.targetRevision)) {
      problems.push(`argocd.targetRevision: '${p.argocd.targetRevision}' is not a branch, tag or commit`);
    }
  }
  const b = p.backup;
  problems.push(
    ...cronSchedule('backup.schedule', b?.schedule),
    ...integerIn('backup.keep', b?.keep, 1, 1000),
    ...storageSize('backup.storageSize', b?.storageSize),
  );
  if (b?.storageClass !== undefined) problems.push(...dnsSubdomain('backup.storageClass', b.storageClass));
  if (b?.enabled !== true && b !== undefined && Object.keys(b).some((k) => k !== 'enabled')) {
    problems.push(`backup: settings given while backup.enabled is not true (enable backups or drop the settings)`);
  }
  return problems;
}
