// Deployments outside the committed profiles, rendered the way the synth renders a profile, for
// the review snapshots (test/snapshots.test.ts): each shows what its props change.
import { parseAllDocuments, stringify } from 'yaml';
import { chartFullname } from '../../lib/chart';
import { LearnflowPostgresProps, resolveConfig } from '../../lib/config';
import { parseMigrations } from '../../lib/migrations/files';
import { Migration } from '../../lib/migrations/types';
import { renderProfile } from '../../lib/synth';
import { backupScript, restoreScript } from '../../lib/backup/script-contracts';
import { bootstrapScript } from '../../lib/credentials/bootstrap-contract';
import { passfileScript } from '../../lib/credentials/passfile-contract';
import { poolerAuthScript, userlistScript } from '../../lib/pooling/contracts';
import { runnerScript } from '../../lib/migrations/runner-contract';
import { verifyScript } from '../../lib/verification/verify-contract';
import { Manifest } from './dist';

const DEFAULT_RELEASE = resolveConfig({}).releaseName;

/** One small migration: the snapshots show what props do, not LearnFlow's schema. */
export const FIXTURE_MIGRATIONS: readonly Migration[] = (() => {
  const file = (p: string, text: string) => ({ path: p, bytes: new TextEncoder().encode(text) });
  const { migrations, problems } = parseMigrations([
    file('001_create_notes.up.sql', 'CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL);\n'),
    file('001_create_notes.down.sql', 'DROP TABLE notes;\n'),
  ]);
  if (problems.length > 0) throw new Error(problems.join('\n'));
  return migrations;
})();

/** The prop combinations snapshotted besides the defaults; each name says what it shows. */
export const VARIANTS: Readonly<Record<string, LearnflowPostgresProps>> = {
  'tls-with-certificates-secret': { tls: { enabled: true, certificatesSecret: 'postgres-tls' } },
  'nodeport-with-client-networks': {
    serviceType: 'NodePort', nodePort: 30432, allowedCidrs: ['203.0.113.0/24', 'fd00::/8'],
    cluster: { podCidrs: ['10.244.0.0/16', 'fd00:10:244::/56'], serviceCidrs: ['10.96.0.0/12', 'fd00:10:96::/112'], nodeLocalDnsAddresses: ['169.254.20.10', 'fd00::a'] },
  },
  'loadbalancer-with-generated-tls': {
    serviceType: 'LoadBalancer', allowedCidrs: ['10.0.0.0/8'], tls: { enabled: true },
    cluster: { podCidrs: ['10.244.0.0/16'], serviceCidrs: ['10.96.0.0/12'] },
  },
  'tls-from-cert-manager': {
    tls: { enabled: true, issuer: { kind: 'ClusterIssuer', name: 'internal-ca' }, extraDnsNames: ['db.example.com'] }, cluster: { domain: 'corp.internal' },
  },
  'backups': { backup: { enabled: true, schedule: '0 3 * * 0', keep: 4, storageSize: '50Gi', storageClass: 'standard' } },
  'pitr-with-object-store': {
    pitr: { enabled: true, archiveTimeoutSeconds: 30, baseBackupSchedule: '0 4 * * *', baseBackupKeep: 3 },
    objectStore: { bucket: 'acme-pg', prefix: 'eu/learnflow', provider: 'Minio', endpoint: 'https://minio.example.com:9000', secretName: 'minio-keys', uploadIntervalSeconds: 30 },
  },
  'image-registry-mirror': { imageRegistry: 'mirror.example.com:5000' },
  'chart-16.7.27': { chartVersion: '16.7.27' },
  'kubernetes-1.28': { kubernetesVersion: '1.28' },
  'chart-from-a-mirror-with-argocd': {
    chartSource: 'mirror', chartMirror: 'oci://harbor.example.com/bitnamicharts',
    argocd: { repoURL: 'https://git.example.com/platform/learnflow-postgres.git' },
  },
  'managed-credentials': { credentials: { existingSecret: 'pg-credentials' } },
  'names-namespaces-and-argocd': {
    namespace: 'data', releaseName: 'learnflow', databaseName: 'app', appUser: 'app', allowedNamespaces: ['web', 'workers'],
    argocd: { repoURL: 'https://git.example.com/platform/learnflow-postgres.git', targetRevision: 'release', automated: false },
  },
  'pooler-and-read-replicas': {
    allowedNamespaces: ['learnflow'],
    pooler: { enabled: true },
    readReplicas: { count: 2, synchronousCommit: 'on', numSynchronousReplicas: 1 },
  },
  'pooler-loadbalancer-with-tls-secret': {
    allowedNamespaces: ['learnflow'], allowedCidrs: ['10.0.0.0/8'], cluster: { podCidrs: ['10.244.0.0/16'], serviceCidrs: ['10.96.0.0/12'] },
    tls: { enabled: true, certificatesSecret: 'postgres-tls' },
    pooler: { enabled: true, replicas: 3, serviceType: 'LoadBalancer', poolMode: 'session', maxClientConnections: 5000, defaultPoolSize: 25 },
  },
  'resources-storage-and-knobs': {
    storageSize: '100Gi', storageClassPreset: 'gke', resources: { requests: { cpu: '1', memory: '2Gi' }, limits: { memory: '4Gi' } },
    migrations: { waitForDatabaseSeconds: 60, lockWaitSeconds: 30, statementTimeout: '1h', lockTimeout: '5s', backoffLimit: 2 },
  },
};

/**
 * The scripts the manifests embed, as rendered with their contracts, each reviewed in its own
 * file: shown as `<path>` in snapshots.
 */
const SCRIPTS = [
  [bootstrapScript(), '<lib/credentials/bootstrap.sh>'],
  [runnerScript(), '<lib/migrations/runner.sh>'],
  [verifyScript(), '<lib/verification/verify.sh>'],
  [backupScript(), '<lib/backup/backup.sh>'],
  [restoreScript(), '<lib/backup/restore.sh>'],
  [passfileScript(), '<lib/credentials/passfile.sh>'],
  [poolerAuthScript(), '<lib/pooling/pooler-auth.sh>'],
  [userlistScript(), '<lib/pooling/userlist.sh>'],
] as const;
const SCRIPT_BY_TEXT = new Map(SCRIPTS);

/** Content hashes in names (`-<10 hex>`, a ConfigMap's `-<n>` after it), which change with any script or SQL. */
const NAME_HASH = /-[0-9a-f]{10}(?=(-\d+)?$)/;

/** `value` with every embedded script replaced by its path and every name's content hash by `<hash>`. */
function readable(value: unknown): unknown {
  if (typeof value === 'string') return SCRIPT_BY_TEXT.get(value) ?? value.replace(NAME_HASH, '-<hash>');
  if (Array.isArray(value)) return value.map(readable);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, readable(v)]));
  return value;
}

type Json = Record<string, unknown>;

/** The YAML documents of `text`, made {@link readable}. */
export function readableDocuments(text: string): Json[] {
  return parseAllDocuments(text).map((d) => readable(d.toJS()) as Json);
}

/** The manifests `props` render as a profile named `name`, as the synth writes them. */
export function variantManifests(name: string, props: LearnflowPostgresProps): Manifest[] {
  return parseAllDocuments(renderProfile(name, props, FIXTURE_MIGRATIONS).get('learnflow-postgres.yaml')!).map((d) => d.toJS() as Manifest);
}

/** Every file `props` renders as a profile named `name`, path → its documents, made readable. */
export function renderVariant(name: string, props: LearnflowPostgresProps): Map<string, Json[]> {
  return new Map([...renderProfile(name, props, FIXTURE_MIGRATIONS)].map(([file, text]) => [file, readableDocuments(text)]));
}

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
/**
 * An object's identity across deployments: kind and name, the release's part of the name as
 * `<fullname>` (a Namespace by its kind alone), so that a renamed release compares object by object.
 */
const identity = (fullname: string) => (m: Json) =>
  m.kind === 'Namespace' ? 'Namespace' : `${m.kind}/${String((m.metadata as Json).name).replace(fullname, '<fullname>')}`;
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** A list whose entries are objects with distinct names (containers, env, volumes): compared by name. */
const byName = (list: unknown[]) => {
  const names = list.map((e) => (isObject(e) && typeof e.name === 'string' ? e.name : undefined));
  return names.every((n) => n !== undefined) && new Set(names).size === names.length ? new Map(list.map((e, i) => [names[i]!, e])) : undefined;
};

/** Every field where `to` differs from `from`, as `path` → `{ defaults, variant }` (absent: undefined). */
function fieldChanges(from: unknown, to: unknown, at = ''): Record<string, { defaults?: unknown; variant?: unknown }> {
  if (same(from, to)) return {};
  const join = (key: string) => (at ? `${at}.${key}` : key);
  if (isObject(from) && isObject(to)) {
    const keys = [...new Set([...Object.keys(to), ...Object.keys(from)])];
    return Object.assign({}, ...keys.map((k) => fieldChanges(from[k], to[k], join(k))));
  }
  if (Array.isArray(from) && Array.isArray(to)) {
    const [a, b] = [byName(from), byName(to)];
    if (a && b) return Object.assign({}, ...[...new Set([...b.keys(), ...a.keys()])].map((n) => fieldChanges(a.get(n), b.get(n), `${at}[${n}]`)));
    if (from.length === to.length) return Object.assign({}, ...to.map((v, i) => fieldChanges(from[i], v, `${at}[${i}]`)));
  }
  return { [at]: { ...(from === undefined ? {} : { defaults: from }), ...(to === undefined ? {} : { variant: to }) } };
}

/**
 * What `variant`'s manifests change against `defaults`'s, as YAML: the objects only the variant
 * renders in full, those only the defaults render by name, and the changed fields of the others.
 */
export function manifestChanges(defaults: readonly Json[], variant: readonly Json[], props: LearnflowPostgresProps): string {
  const before = new Map(defaults.map((m) => [identity(chartFullname(DEFAULT_RELEASE))(m), m]));
  const after = new Map(variant.map((m) => [identity(chartFullname(props.releaseName ?? DEFAULT_RELEASE))(m), m]));
  const changed = Object.fromEntries([...after].filter(([k]) => before.has(k))
    .map(([k, m]) => [k, fieldChanges(before.get(k), m)]).filter(([, c]) => Object.keys(c).length > 0));
  return stringify({
    unchanged: [...after.keys()].filter((k) => before.has(k) && !(k in changed)).length,
    changed,
    added: [...after].filter(([k]) => !before.has(k)).map(([, m]) => m),
    removed: [...before.keys()].filter((k) => !after.has(k)),
  });
}

/** Documents as the YAML of a multi-document file. */
export const yamlDocuments = (documents: readonly Json[]) => documents.map((d) => stringify(d)).join('---\n');
