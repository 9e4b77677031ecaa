import { ArgoCdProps } from './argocd';
import { SUPPORTED_CHART_VERSIONS, chartFullname, chartSecretNames, isChartVersion } from './chart';
import { CHART_SOURCES, chartMirrorProblems } from './chart-source';
import { kubernetesVersionProblems } from './kubernetes';
import { CertificateIssuerProps, ClusterProps, ISSUER_KINDS, ImageProps, LearnflowPostgresProps, ResourceAmounts, SERVICE_TYPES, STORAGE_CLASS_PRESETS } from './config';
import { RUNNER, RunnerKnob, runnerKnobProblems } from './migrations/runner-contract';
import { describeRule } from './script-contract';
import { nearest } from './nearest';
import { canonicalCidr, contains, isCanonical, parseAddress, parseCidr } from './cidr';
import { OBJECT_STORE_PROVIDERS, ObjectStoreProps, PitrProps } from './pitr/props';
import { DATABASE_MAX_CONNECTIONS, DIRECT_CONNECTION_RESERVE, POOLER_DEFAULTS, POOL_MODES, PoolerProps, ReadReplicasProps, SYNCHRONOUS_COMMIT } from './pooling/props';

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

const integerIn = (field: string, value: number, min: number, max: number): string[] =>
  Number.isInteger(value) && value >= min && value <= max
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

function quantity(field: string, value: string): string[] {
  return parseQuantity(value) !== undefined && parseQuantity(value)! > 0
    ? []
    : [`${field}: '${value}' is not a Kubernetes resource quantity (e.g. 500m, 2, 512Mi, 2Gi)`];
}

function requestsWithinLimits(props: LearnflowPostgresProps): string[] {
  const problems: string[] = [];
  for (const kind of ['cpu', 'memory', 'ephemeralStorage'] as const) {
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

function storageSize(field: string, value: string): string[] {
  const match = BYTES.exec(value);
  const bytes = match ? parseQuantity(value)! : undefined;
  if (bytes === undefined) return [`${field}: '${value}' is not a storage size (a whole number with Mi, Gi, Ti, M, G or T, e.g. 20Gi)`];
  return bytes >= 2 ** 30 ? [] : [`${field}: '${value}' is too small (at least 1Gi: PostgreSQL's WAL alone takes hundreds of MiB)`];
}

const CRON_FIELD = /^(\*|[0-9]+(-[0-9]+)?)(\/[0-9]+)?(,(\*|[0-9]+(-[0-9]+)?)(\/[0-9]+)?)*$/;
const CRON_MACRO = /^@(yearly|annually|monthly|weekly|daily|midnight|hourly)$/;

function cronSchedule(field: string, value: string): string[] {
  const fields = value.trim().split(/\s+/);
  const ok = CRON_MACRO.test(value) || (fields.length === 5 && fields.every((f) => CRON_FIELD.test(f)));
  return ok ? [] : [`${field}: '${value}' is not a cron schedule (five fields such as '30 2 * * *', or @daily, @hourly, ...)`];
}

function cidr(field: string, value: string): string[] {
  const network = parseCidr(value);
  if (!network) return [`${field}: '${value}' is not a CIDR block (e.g. 10.0.0.0/8 or fd00::/8)`];
  return isCanonical(network) ? [] : [`${field}: '${value}' has address bits set past its prefix (did you mean ${canonicalCidr(network)}?)`];
}

const ipAddress = (field: string, value: string): string[] =>
  parseAddress(value) ? [] : [`${field}: '${value}' is not an IP address (e.g. 169.254.20.10 or fd00::10)`];

/**
 * Client networks against the cluster's: both cluster ranges are required (the policy leaves
 * them out of the client networks), and a client network inside one of them would admit pods.
 */
function clientNetworks(p: LearnflowPostgresProps): string[] {
  const strings = (list: unknown): string[] => (Array.isArray(list) ? list.filter((v): v is string => typeof v === 'string') : []);
  const clients = strings(p.allowedCidrs);
  if (clients.length === 0) return [];
  const problems: string[] = [];
  const cluster = isPlainObject(p.cluster) ? p.cluster : {};
  const ranges = { podCidrs: strings(cluster.podCidrs), serviceCidrs: strings(cluster.serviceCidrs) };
  const examples = { podCidrs: "['10.244.0.0/16']", serviceCidrs: "['10.96.0.0/12']" };
  for (const key of ['podCidrs', 'serviceCidrs'] as const) {
    if (ranges[key].length === 0) {
      problems.push(`cluster.${key}: required while allowedCidrs is set (the policy leaves the cluster's own ${key === 'podCidrs' ? 'pod' : 'Service'} networks out of the client networks, so that no pod of the cluster counts as a client; e.g. ${examples[key]})`);
    }
  }
  for (const [i, client] of clients.entries()) {
    const clientNetwork = parseCidr(client);
    if (!clientNetwork) continue;
    for (const key of ['podCidrs', 'serviceCidrs'] as const) {
      for (const [j, range] of ranges[key].entries()) {
        const network = parseCidr(range);
        if (network && contains(network, clientNetwork)) {
          problems.push(`allowedCidrs[${i}]: '${client}' lies inside the cluster's network '${range}' (cluster.${key}[${j}]): it would admit the cluster's own ${key === 'podCidrs' ? 'pods' : 'Service addresses'}, not outside clients`);
        }
      }
    }
  }
  return problems;
}

function duplicates(field: string, values: readonly unknown[]): string[] {
  const seen = new Set<unknown>();
  return values.flatMap((v) => (seen.has(v) ? [`${field}: ${shown(v)} is listed twice (each entry once)`] : (seen.add(v), [])));
}

const registryHost = (field: string, value: string): string[] =>
  REGISTRY.test(value) ? [] : [`${field}: '${value}' is not a registry host (e.g. docker.io or mirror.example.com:5000)`];

/** The migration runner's own rule for one of its knobs (its contract): the synth and the runner agree. */
const runnerKnob = (knob: RunnerKnob) => (field: string, value: string | number): string[] =>
  runnerKnobProblems({ [knob]: value }, () => field);

/** A number of seconds by the runner's rule for `knob`. */
const runnerSeconds = (knob: 'dbWaitSeconds' | 'lockWaitSeconds'): Check => (field, value) =>
  typeof value === 'number' ? runnerKnob(knob)(field, value) : [`${field}: ${shown(value)} is not a number (${describeRule(RUNNER.knobs[knob].rule)})`];

/** A value as a message quotes it: strings in single quotes, anything else as JSON. */
const shown = (value: unknown): string => (typeof value === 'string' ? `'${value}'` : JSON.stringify(value) ?? String(value));

/** The problems with one prop's value, each starting with `field`. */
type Check = (field: string, value: unknown) => string[];

/** A string, then each of `checks`. */
const text = (...checks: ((field: string, value: string) => string[])[]): Check => (field, value) =>
  typeof value === 'string' ? checks.flatMap((check) => check(field, value)) : [`${field}: ${shown(value)} is not text (a string in quotes)`];

/** A whole number from `min` to `max`. */
const whole = (min: number, max: number): Check => (field, value) =>
  typeof value === 'number' ? integerIn(field, value, min, max) : [`${field}: ${shown(value)} is not a number (a whole number from ${min} to ${max})`];

const flag: Check = (field, value) => (typeof value === 'boolean' ? [] : [`${field}: ${shown(value)} is not true or false`]);

/** One of `allowed`, named as `what` in the message. */
const oneOf = (allowed: readonly string[]): Check => (field, value) =>
  typeof value === 'string' && allowed.includes(value) ? [] : [`${field}: ${shown(value)} is unknown (one of ${allowed.join(', ')})`];

/** A list whose entries pass `entry`; `unique`: no entry twice. */
const listOf = (entry: Check, { unique = false } = {}): Check => (field, value) =>
  Array.isArray(value)
    ? [...value.flatMap((v, i) => entry(`${field}[${i}]`, v)), ...(unique ? duplicates(field, value) : [])]
    : [`${field}: ${shown(value)} is not a list (e.g. ['a', 'b'])`];

/**
 * The rules of a props interface: exactly one per key of T (a key missing here, or one T does
 * not have, fails the type-check), props that are objects themselves as nested rules. The
 * interfaces stay the one declaration of every setting; this map is their keys at run time,
 * which is what refuses a misspelt prop when the synth runs without a type-check.
 */
export type Rules<T> = {
  readonly [K in keyof T]-?: NonNullable<T[K]> extends string | number | boolean | readonly unknown[] ? Check : Rules<NonNullable<T[K]>>;
};

const IMAGE: Rules<ImageProps> = {
  registry: text(registryHost),
  repository: text((field, value) => (IMAGE_PART.test(value) ? [] : [`${field}: '${value}' is not an image repository (lowercase path such as bitnamilegacy/postgresql)`])),
  tag: text((field, value) => (IMAGE_TAG.test(value) ? [] : [`${field}: '${value}' is not an image tag (letters, digits, '_', '.', '-'; at most 128 characters)`])),
};

const CLUSTER: Rules<ClusterProps> = {
  podCidrs: listOf(text(cidr), { unique: true }),
  serviceCidrs: listOf(text(cidr), { unique: true }),
  nodeLocalDnsAddresses: listOf(text(ipAddress), { unique: true }),
  domain: text(dnsSubdomain),
};

/** A DNS name for a certificate: a DNS-1123 subdomain, `*.` allowed in front. */
const dnsName = (field: string, value: string): string[] =>
  DNS1123_SUBDOMAIN.test(value.replace(/^\*\./, '')) && value.length <= 253
    ? []
    : [`${field}: '${value}' is not a DNS name (lowercase letters, digits, '-' and '.', optionally starting with '*.')`];

const ISSUER: Rules<CertificateIssuerProps> = {
  name: text(dnsSubdomain),
  kind: oneOf(ISSUER_KINDS),
  group: text(dnsSubdomain),
};

const AMOUNTS: Rules<ResourceAmounts> = { cpu: text(quantity), memory: text(quantity), ephemeralStorage: text(quantity) };

const ARGOCD: Rules<ArgoCdProps> = {
  repoURL: text((field, value) => (/^(https?:\/\/|ssh:\/\/|git@)[^\s]+$/.test(value) ? [] : [`${field}: '${value}' is not a Git URL (https://..., ssh://... or git@host:path)`])),
  targetRevision: text((field, value) => (/^[^\s~^:?*\[\\]+$/.test(value) ? [] : [`${field}: '${value}' is not a branch, tag or commit`])),
  project: text(dnsSubdomain),
  namespace: text(dnsLabel),
  destinationServer: text((field, value) => (/^https:\/\/[^\s]+$/.test(value) ? [] : [`${field}: '${value}' is not an API server URL (https://...)`])),
  automated: flag,
};

/** Every prop of a deployment and its rule, in the order of LearnflowPostgresProps. */
export const PROPS_RULES: Rules<LearnflowPostgresProps> = {
  namespace: text(dnsLabel),
  // Helm limits release names to 53 characters (it appends suffixes of its own).
  releaseName: text((field, value) => dnsLabel(field, value, 53)),
  databaseName: text(pgIdentifier),
  appUser: text(pgIdentifier, (field, value) => (value === 'postgres'
    ? [`${field}: 'postgres' is the superuser (choose an unprivileged owner such as 'learnflow'; the chart would otherwise hand applications the superuser password)`]
    : [])),
  chartVersion: text((field, value) => (isChartVersion(value) ? [] : [`${field}: '${value}' is not supported (one of ${SUPPORTED_CHART_VERSIONS.join(', ')})`])),
  chartSource: oneOf(CHART_SOURCES),
  chartMirror: text(chartMirrorProblems),
  kubernetesVersion: text(kubernetesVersionProblems),
  imageRegistry: text(registryHost),
  image: IMAGE,
  kubectlImage: IMAGE,
  storageSize: text(storageSize),
  storageClass: text(dnsSubdomain),
  storageClassPreset: oneOf(Object.keys(STORAGE_CLASS_PRESETS)),
  resources: { requests: AMOUNTS, limits: AMOUNTS },
  serviceType: oneOf(SERVICE_TYPES),
  port: whole(1, 65535),
  nodePort: whole(30000, 32767),
  tls: { enabled: flag, certificatesSecret: text(dnsSubdomain), issuer: ISSUER, extraDnsNames: listOf(text(dnsName), { unique: true }) },
  allowedNamespaces: listOf(text(dnsLabel), { unique: true }),
  allowedCidrs: listOf(text(cidr), { unique: true }),
  cluster: CLUSTER,
  credentials: { existingSecret: text(dnsSubdomain), generatedPasswordLength: whole(32, 128) },
  migrations: {
    waitForDatabaseSeconds: runnerSeconds('dbWaitSeconds'),
    lockWaitSeconds: runnerSeconds('lockWaitSeconds'),
    statementTimeout: text(runnerKnob('statementTimeout')),
    lockTimeout: text(runnerKnob('lockTimeout')),
    backoffLimit: whole(0, 100),
  },
  backup: {
    enabled: flag,
    schedule: text(cronSchedule),
    keep: whole(1, 1000),
    storageSize: text(storageSize),
    storageClass: text(dnsSubdomain),
  },
  argocd: ARGOCD,
  pitr: {
    enabled: flag,
    archiveTimeoutSeconds: whole(1, 3600),
    baseBackupSchedule: text(cronSchedule),
    baseBackupKeep: whole(1, 1000),
    storageSize: text(storageSize),
    storageClass: text(dnsSubdomain),
  } satisfies Rules<PitrProps>,
  objectStore: {
    // S3's bucket naming rules (GCS and MinIO follow them for S3 access).
    bucket: text((field, value) => (/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(value) && !value.includes('..')
      ? [] : [`${field}: '${value}' is not a bucket name (3-63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit)`])),
    prefix: text((field, value) => (/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/.test(value)
      ? [] : [`${field}: '${value}' is not a prefix (path segments of letters, digits, '_', '.', '-' joined by '/', no leading or trailing '/')`])),
    provider: oneOf(OBJECT_STORE_PROVIDERS),
    endpoint: text((field, value) => (/^https?:\/\/[^\s/]+(:[0-9]+)?\/?$/.test(value) ? [] : [`${field}: '${value}' is not an endpoint URL (https://host[:port])`])),
    region: text((field, value) => (/^[a-z0-9-]{2,32}$/.test(value) ? [] : [`${field}: '${value}' is not a region (e.g. eu-west-1)`])),
    secretName: text(dnsSubdomain),
    uploadIntervalSeconds: whole(5, 3600),
    keep: whole(1, 1000),
    image: IMAGE,
  } satisfies Rules<ObjectStoreProps>,
  pooler: {
    enabled: flag,
    replicas: whole(1, 10),
    poolMode: oneOf(POOL_MODES),
    maxClientConnections: whole(10, 100000),
    defaultPoolSize: whole(1, 500),
    serviceType: oneOf(SERVICE_TYPES),
    port: whole(1, 65535),
    nodePort: whole(30000, 32767),
    image: IMAGE,
  } satisfies Rules<PoolerProps>,
  readReplicas: {
    count: whole(1, 8),
    synchronousCommit: oneOf(SYNCHRONOUS_COMMIT),
    numSynchronousReplicas: whole(1, 8),
    maxLagBytes: whole(2 ** 20, 64 * 2 ** 30),
  } satisfies Rules<ReadReplicasProps>,
};

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * `value` against `rules`: every key it has that the rules do not (a misspelt prop, named with
 * the nearest real one), then each rule on the value it is given.
 */
export function checkProps<T>(rules: Rules<T>, value: unknown, prefix = ''): string[] {
  const at = (key: string) => (prefix ? `${prefix}.${key}` : key);
  if (!isPlainObject(value)) return [`${prefix || 'props'}: ${shown(value)} is not an object of settings (e.g. { ${Object.keys(rules)[0]}: ... })`];
  const keys = Object.keys(rules);
  const unknown = Object.keys(value).filter((key) => !keys.includes(key)).map((key) =>
    `${at(key)}: unknown setting (did you mean ${at(nearest(key, keys))}?)`);
  const known = Object.entries<Check | Rules<unknown>>(rules).flatMap(([key, rule]) => {
    if (value[key] === undefined) return [];
    return typeof rule === 'function' ? rule(at(key), value[key]) : checkProps(rule, value[key], at(key));
  });
  return [...unknown, ...known];
}


/**
 * The certificate props between themselves: an issuer needs TLS, extra names need an issuer, and
 * the certificate's Secret may not take the name of a Secret the chart renders or of the
 * credentials Secret (cert-manager would write the certificate into it).
 */
function certificateProblems(p: LearnflowPostgresProps): string[] {
  const tls = isPlainObject(p.tls) ? p.tls : {};
  const problems: string[] = [];
  if (tls.issuer !== undefined && tls.enabled !== true) {
    problems.push(`tls.issuer: conflicts with tls.enabled false (the server would not serve the certificate; enable TLS or drop the issuer)`);
  }
  if (tls.extraDnsNames !== undefined && tls.issuer === undefined) {
    problems.push(`tls.extraDnsNames: needs tls.issuer (they are names of the certificate cert-manager issues)`);
  }
  const release = typeof p.releaseName === 'string' ? p.releaseName : 'postgres';
  const secret = typeof tls.certificatesSecret === 'string' ? tls.certificatesSecret : tls.issuer !== undefined ? `${chartFullname(release)}-tls` : undefined;
  if (secret !== undefined) {
    const credentials = isPlainObject(p.credentials) && typeof p.credentials.existingSecret === 'string' ? p.credentials.existingSecret : `${chartFullname(release)}-credentials`;
    const taken = [...chartSecretNames(release), { name: credentials, what: 'the credentials Secret' }].find((s) => s.name === secret);
    if (taken) {
      const whose = taken.what === 'the credentials Secret' ? 'the credentials Secret' : `a Secret the chart renders (${taken.what})`;
      problems.push(`tls.certificatesSecret: '${secret}' is the name of ${whose}; the certificate needs a Secret of its own (e.g. '${chartFullname(release)}-tls')`);
    }
  }
  return problems;
}

/** Checks a deployment description; returns every problem at once (empty when valid). */
export function validateProps(props: LearnflowPostgresProps): string[] {
  const problems = checkProps(PROPS_RULES, props);
  // Rules between props, on values that passed their own.
  const p = props;
  if (p.storageClass !== undefined && p.storageClassPreset !== undefined) {
    problems.push(`storageClassPreset: conflicts with storageClass (set one of them)`);
  }
  problems.push(...requestsWithinLimits(p));
  if (p.nodePort !== undefined && (p.serviceType ?? 'ClusterIP') === 'ClusterIP') {
    problems.push(`nodePort: conflicts with serviceType ClusterIP (a node port needs serviceType NodePort or LoadBalancer)`);
  }
  const external = p.serviceType === 'LoadBalancer' || p.serviceType === 'NodePort';
  if (external && (p.allowedCidrs ?? []).length === 0) {
    problems.push(`allowedCidrs: empty while serviceType is ${p.serviceType} (the NetworkPolicy would drop every outside client; list the client networks, e.g. ['10.0.0.0/8'])`);
  }
  if (p.chartMirror !== undefined && p.chartSource !== 'mirror') {
    problems.push(`chartMirror: conflicts with chartSource ${p.chartSource ?? 'repository (the default)'} (set chartSource: 'mirror' to install from the mirror, or drop chartMirror)`);
  }
  if (p.chartSource === 'mirror' && p.chartMirror === undefined) {
    problems.push(`chartSource: mirror needs chartMirror (the OCI repository holding postgresql, e.g. oci://harbor.example.com/bitnamicharts)`);
  }
  problems.push(...clientNetworks(p));
  if (p.tls?.certificatesSecret !== undefined && p.tls.enabled !== true) {
    problems.push(`tls.certificatesSecret: conflicts with tls.enabled false (enable TLS or drop the secret)`);
  }
  problems.push(...certificateProblems(p));
  if (p.credentials?.existingSecret !== undefined && p.credentials.generatedPasswordLength !== undefined) {
    problems.push(`credentials.generatedPasswordLength: conflicts with credentials.existingSecret (nothing is generated for a secret you manage)`);
  }
  const b = p.backup;
  if (isPlainObject(b) && b.enabled !== true && Object.keys(b).some((k) => k !== 'enabled')) {
    problems.push(`backup: settings given while backup.enabled is not true (enable backups or drop the settings)`);
  }
  const r = p.pitr;
  if (isPlainObject(r) && r.enabled !== true && Object.keys(r).some((k) => k !== 'enabled')) {
    problems.push(`pitr: settings given while pitr.enabled is not true (enable point-in-time recovery or drop the settings)`);
  }
  const o = p.objectStore;
  if (isPlainObject(o)) {
    if (o.bucket === undefined) problems.push(`objectStore.bucket: missing (the bucket the copies go to, e.g. 'acme-postgres-backups')`);
    if (b?.enabled !== true && r?.enabled !== true) {
      problems.push(`objectStore: nothing to copy while backup.enabled and pitr.enabled are both off (enable one, or drop objectStore)`);
    }
    if (o.provider !== undefined && o.provider !== 'AWS' && (OBJECT_STORE_PROVIDERS as readonly unknown[]).includes(o.provider) && o.endpoint === undefined) {
      problems.push(`objectStore.endpoint: missing for provider ${o.provider} (only AWS finds its endpoint from the region)`);
    }
  }
  problems.push(...poolerAndReplicas(p));
  return problems;
}

/** The pooler's and the replicas' rules between props. */
function poolerAndReplicas(p: LearnflowPostgresProps): string[] {
  const problems: string[] = [];
  const pooler = p.pooler;
  if (isPlainObject(pooler)) {
    if (pooler.enabled !== true && Object.keys(pooler).some((k) => k !== 'enabled')) {
      problems.push(`pooler: settings given while pooler.enabled is not true (enable the pooler or drop the settings)`);
    }
    const type = pooler.serviceType ?? POOLER_DEFAULTS.serviceType;
    if ((type === 'LoadBalancer' || type === 'NodePort') && (p.allowedCidrs ?? []).length === 0) {
      problems.push(`pooler.serviceType: ${type} while allowedCidrs is empty (the NetworkPolicy would drop every outside client of the pooler; list the client networks in allowedCidrs, e.g. ['10.0.0.0/8'])`);
    }
    if (pooler.nodePort !== undefined && type === 'ClusterIP') {
      problems.push(`pooler.nodePort: conflicts with pooler.serviceType ClusterIP (a node port needs NodePort or LoadBalancer)`);
    }
    if (pooler.port !== undefined && pooler.port === (p.port ?? 5432) && type === (p.serviceType ?? 'ClusterIP') && type !== 'ClusterIP') {
      problems.push(`pooler.port: ${pooler.port} is the database Service's port too (pick another, e.g. 6432)`);
    }
    const size = typeof pooler.defaultPoolSize === 'number' ? pooler.defaultPoolSize : POOLER_DEFAULTS.defaultPoolSize;
    const replicas = typeof pooler.replicas === 'number' ? pooler.replicas : POOLER_DEFAULTS.replicas;
    const room = DATABASE_MAX_CONNECTIONS - DIRECT_CONNECTION_RESERVE;
    // On values that passed their own rules (1-500, 1-10): one problem per mistake.
    if (Number.isInteger(size) && size >= 1 && size <= 500 && Number.isInteger(replicas) && replicas >= 1 && replicas <= 10 && size * replicas > room) {
      problems.push(`pooler.defaultPoolSize: ${size} × pooler.replicas ${replicas} = ${size * replicas} server connections, more than the ${room} the database can give the poolers (max_connections ${DATABASE_MAX_CONNECTIONS}, ${DIRECT_CONNECTION_RESERVE} kept for our Jobs, replication and the superuser)`);
    }
  }
  const r = p.readReplicas;
  if (isPlainObject(r)) {
    if (r.count === undefined) problems.push(`readReplicas.count: missing (how many read replicas, 1 to 8)`);
    const sync = r.synchronousCommit ?? 'off';
    if (r.numSynchronousReplicas !== undefined && sync === 'off') {
      problems.push(`readReplicas.numSynchronousReplicas: conflicts with readReplicas.synchronousCommit off (set synchronousCommit to on, remote_write or remote_apply)`);
    }
    if (typeof r.numSynchronousReplicas === 'number' && typeof r.count === 'number' && r.numSynchronousReplicas > r.count) {
      problems.push(`readReplicas.numSynchronousReplicas: ${r.numSynchronousReplicas} is more than readReplicas.count ${r.count} (commits would wait forever)`);
    }
  }
  return problems;
}
