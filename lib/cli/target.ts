// What a command acts on, derived from lib/ (the profile's resolved config, the chart's names) and
// from dist/<profile>/ (the manifests as rendered: Job names, the migration plan, the connection
// settings). Nothing here is a second source of truth: a stale dist/ is refused, not corrected.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ChartObjects, chartObjects } from '../chart';
import { CHART_LINE_PREFIX, ChartLocation, resolveChartLocation } from '../chart-source';
import { resourceName } from '../names';
import { DeploymentConfig, LearnflowPostgresProps, resolveConfig } from '../config';
import { LOGIN_VOLUMES } from '../credentials/passfile-contract';
import { PLAN_KEY, PLAN_PARTS_KEY } from '../migrations/bundle';
import { PROFILES } from '../profiles';
import { CliError, EXIT } from './exit-codes';
import { KubeObject } from './k8s-state';

/**
 * The project root (dist/ and lib/ live here), wherever the command is run from:
 * bin/learnflow-postgres names it, as it runs a compiled copy of lib/ from a cache folder.
 */
export const PROJECT_ROOT = path.resolve(process.env.LEARNFLOW_ROOT ?? path.join(__dirname, '..', '..'));

export interface MigrationRef {
  readonly version: string;
  readonly name: string;
}

export interface Target {
  readonly profile: string;
  readonly config: DeploymentConfig;
  readonly namespace: string;
  readonly release: string;
  readonly chartVersion: string;
  /** Where the chart comes from (the profile's chartSource), checked like the synth checks it. */
  readonly chart: ChartLocation;
  /** What helm installs: the vendored archive (shown like distDir) or the chart's oci:// URL. */
  readonly chartRef: string;
  /** The chart's object names and pod labels for this release. */
  readonly database: ChartObjects;
  /** dist/<profile>/ as passed to kubectl: relative to the working directory when inside it. */
  readonly distDir: string;
  /** dist/<profile>/helm/postgresql-values.yaml, shown the same way. */
  readonly valuesFile: string;
  /** Every manifest `kubectl apply -f dist/<profile>/` applies, in file order. */
  readonly manifests: readonly KubeObject[];
  readonly namespaceManifest: KubeObject;
  /** Names of the Jobs dist/ renders, by component. */
  readonly jobs: { readonly credentials: string; readonly migrations: string; readonly verification: string };
  /** The suspended restore template (only with backup.enabled). */
  readonly restoreTemplate?: string;
  /** The dump CronJob (only with backup.enabled): `<fullname>-dump`. */
  readonly backupCronJob?: string;
  /** The point-in-time restore template (only with pitr.enabled): `<fullname>-pitr-restore`. */
  readonly pitrRestoreTemplate?: string;
  /** The base-backup CronJob (only with pitr.enabled): `<fullname>-basebackup`. */
  readonly baseBackupCronJob?: string;
  /** The migrations the migration Job applies, from its plan.tsv, ascending. */
  readonly migrationPlan: readonly MigrationRef[];
  /** `postgresql://<user>@<host>:<port>/<database>[?sslmode=<mode>]`: the migration Job's libpq settings, no password. */
  readonly connectionString: string;
  /** The Secret whose `password` key the migration Job (and applications) log in with. */
  readonly credentialsSecret: string;
}

/** A path as a person would type it from the working directory. */
export function displayPath(file: string, cwd = process.cwd()): string {
  const relative = path.relative(cwd, file);
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : file;
}

const SYNTH = 'npm run synth   (renders dist/ from lib/profiles.ts and migrations/)';

function readManifests(dir: string): KubeObject[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .flatMap((f) => parseAllDocuments(readFileSync(path.join(dir, f), 'utf8')).map((d) => d.toJS() as KubeObject))
    .filter((m) => m !== null && typeof m === 'object');
}

const component = (m: KubeObject) => m.metadata.labels?.['app.kubernetes.io/component'];

/**
 * The Target of `profile` of `profiles` (lib/profiles.ts) rendered below `root`; CliError
 * (exit 1) for an unknown profile, a missing or a stale dist/.
 */
export function loadTarget(profile: string, root = PROJECT_ROOT, profiles: Readonly<Record<string, LearnflowPostgresProps>> = PROFILES): Target {
  if (!Object.prototype.hasOwnProperty.call(profiles, profile)) {
    throw new CliError(EXIT.general, `unknown profile '${profile}'`, [`use one of: ${Object.keys(profiles).join(', ')} (profiles live in lib/profiles.ts)`]);
  }
  const config = resolveConfig(profiles[profile]);
  const dir = path.join(root, 'dist', profile);
  const distDir = displayPath(dir);
  const manifestFile = path.join(dir, 'learnflow-postgres.yaml');
  const valuesPath = path.join(dir, 'helm', 'postgresql-values.yaml');
  for (const file of [manifestFile, valuesPath]) {
    if (!existsSync(file)) throw new CliError(EXIT.general, `${displayPath(file)} not found: profile '${profile}' has not been rendered`, [SYNTH]);
  }
  const manifests = readManifests(dir);
  const stale = (what: string) => new CliError(EXIT.general, `${distDir}/ is stale: ${what} (lib/profiles.ts says namespace ${config.namespace}, release ${config.releaseName}, chart ${config.chartVersion})`, [SYNTH]);

  const namespaces = manifests.filter((m) => m.kind === 'Namespace');
  if (namespaces.length !== 1 || namespaces[0].metadata.name !== config.namespace) {
    throw stale(`it renders namespace ${namespaces.map((m) => m.metadata.name).join(', ') || '(none)'}`);
  }
  for (const m of manifests) {
    if (m.kind !== 'Namespace' && m.metadata.namespace !== config.namespace) throw stale(`${m.kind} ${m.metadata.name} is in namespace ${m.metadata.namespace}`);
    const instance = m.metadata.labels?.['app.kubernetes.io/instance'];
    if (instance !== undefined && instance !== config.releaseName) throw stale(`${m.kind} ${m.metadata.name} belongs to release ${instance}`);
  }
  const values = readFileSync(valuesPath, 'utf8');
  const pinned = new RegExp(`^# ${CHART_LINE_PREFIX}(\\S+) .*\\(chartSource (\\S+)\\)`, 'm').exec(values);
  if (pinned?.[1] !== config.chartVersion || pinned?.[2] !== config.chartSource) {
    throw stale(`its values file is for chart ${pinned ? `${pinned[1]} from ${pinned[2]}` : '(unknown)'}, not ${config.chartVersion} from ${config.chartSource}`);
  }
  // The same check as the synth's: the vendored archive must still be the one vendored.json records.
  const { location: chart, problems } = resolveChartLocation({ ...config, argocd: false }, root);
  if (!chart) throw new CliError(EXIT.general, `profile '${profile}': ${problems.join('; ')}`, [SYNTH]);

  const oneJob = (name: string) => {
    const found = manifests.filter((m) => m.kind === 'Job' && component(m) === name);
    if (found.length !== 1) throw stale(`expected one ${name} Job, found ${found.length}`);
    return found[0];
  };
  const credentials = oneJob('credentials');
  const migrations = oneJob('migrations');
  const verification = oneJob('verification');
  const cronJob = (suffix: string) => manifests.find((m) => m.kind === 'CronJob' && m.metadata.name === resourceName(config.releaseName, suffix))?.metadata.name;
  const restore = cronJob('backup-restore');
  if (config.backup.enabled !== (restore !== undefined)) throw stale(`backup.enabled is ${config.backup.enabled} but the restore template is ${restore ? 'rendered' : 'missing'}`);
  const pitrTemplate = cronJob('pitr-restore');
  if (config.pitr.enabled !== (pitrTemplate !== undefined)) throw stale(`pitr.enabled is ${config.pitr.enabled} but the point-in-time restore template is ${pitrTemplate ? 'rendered' : 'missing'}`);

  return {
    profile,
    config,
    namespace: config.namespace,
    release: config.releaseName,
    chartVersion: config.chartVersion,
    chart,
    chartRef: chart.vendored ? displayPath(path.join(root, chart.vendored.archive)) : chart.helmChart,
    database: chartObjects(config.releaseName, config.readReplicas?.count ?? 0),
    distDir,
    valuesFile: displayPath(valuesPath),
    manifests,
    namespaceManifest: namespaces[0],
    jobs: { credentials: credentials.metadata.name, migrations: migrations.metadata.name, verification: verification.metadata.name },
    restoreTemplate: restore,
    backupCronJob: cronJob('dump'),
    pitrRestoreTemplate: pitrTemplate,
    baseBackupCronJob: cronJob('basebackup'),
    migrationPlan: migrationPlan(migrations, manifests, distDir),
    connectionString: connectionString(migrations),
    // The Secret the migration Job's login reads its password from.
    credentialsSecret: (migrations.spec.template.spec.volumes ?? [])
      .find((v: any) => v.name === LOGIN_VOLUMES.key)?.secret?.secretName ?? '(see the migration Job)',
  };
}

/**
 * The plan of the ConfigMaps the migration Job mounts: version and name of each migration, from
 * plan.tsv, or from every part plan.parts lists, in order, when the plan is split.
 */
function migrationPlan(job: KubeObject, manifests: readonly KubeObject[], distDir: string): MigrationRef[] {
  const mounted = new Set<string>((job.spec.template.spec.volumes ?? [])
    .flatMap((v: any) => (v.projected?.sources ?? []).map((s: any) => s.configMap?.name).concat(v.configMap?.name ?? []))
    .filter(Boolean));
  const files: Record<string, string> = Object.assign({}, ...manifests
    .filter((m) => m.kind === 'ConfigMap' && mounted.has(m.metadata.name))
    .map((m) => (m as any).data ?? {}));
  if (typeof files[PLAN_KEY] !== 'string') throw new CliError(EXIT.general, `${distDir}/: the migration Job ${job.metadata.name} mounts no ConfigMap with ${PLAN_KEY}`, [SYNTH]);
  const parts = typeof files[PLAN_PARTS_KEY] === 'string' ? files[PLAN_PARTS_KEY].split('\n').filter((l) => l.trim() !== '') : [PLAN_KEY];
  return parts.flatMap((part) => String(files[part] ?? '').split('\n')).filter((l) => l.trim() !== '').map((line) => {
    const [version, name] = line.split('\t');
    return { version, name };
  });
}

/** The database the migration Job connects to, as a URI without the password. */
function connectionString(job: KubeObject): string {
  const env: Record<string, string> = {};
  for (const e of job.spec.template.spec.containers[0].env ?? []) if (typeof e.value === 'string') env[e.name] = e.value;
  const query = env.PGSSLMODE && env.PGSSLMODE !== 'prefer' ? `?sslmode=${env.PGSSLMODE}` : '';
  return `postgresql://${env.PGUSER}@${env.PGHOST}:${env.PGPORT}/${env.PGDATABASE}${query}`;
}
