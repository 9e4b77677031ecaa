import { ApiObject } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { CREDENTIAL_KEYS } from '../credentials/keys';
import { DatabaseConnection, containerEnvironment, databaseLogin, libpqVariables } from '../database-client';
import { manualJobTemplate, projectJob, ProjectJobProps } from '../job';
import { DATABASE_CLIENT_LABEL, contentHash, resourceName, standardLabels } from '../names';
import { failJobOnExitCodes } from '../script-contract';
import { SYNC_WAVES, syncWave } from '../sync-waves';
import { bundleEntries } from './bundle';
import { splitIntoConfigMaps } from './layout';
import { RUNNER, RUNNER_KEY } from './runner-contract';
import { Migration } from './types';

/** Where the Job mounts the ConfigMaps; the runner finds the plan and the SQL beside itself. */
export const MIGRATIONS_MOUNT = '/migrations';

const knobDefault = (knob: keyof typeof RUNNER.knobs) => (RUNNER.knobs[knob] as { default: string }).default;

export interface MigrationJobProps {
  /** Namespace of the Job, its templates and its ConfigMaps. */
  readonly namespace: string;
  /** The Helm release: names are `<release>-postgresql-migrate-<hash>` and the like, labels carry it. */
  readonly releaseName: string;
  /** Image with `sh` and psql 15 or later: the database's own. */
  readonly image: string;
  /** The database and role the runner logs in as (the owner of the database). */
  readonly connection: DatabaseConnection;
  /** Secret holding the role's password. */
  readonly credentialsSecret: kplus.ISecret;
  /** Key of the password in that Secret. @default 'password' */
  readonly passwordKey?: string;
  /** The migration set, as lib/migrations/files.ts reads it. */
  readonly migrations: readonly Migration[];
  /** Seconds to wait for the database to accept connections (exit 8 after that). @default 300 */
  readonly waitForDatabaseSeconds?: number;
  /** Seconds to wait for another runner's lock (exit 4 after that). @default 120 */
  readonly lockWaitSeconds?: number;
  /** PostgreSQL `statement_timeout` of every statement. @default '15min' */
  readonly statementTimeout?: string;
  /** PostgreSQL `lock_timeout` of every statement; past it a migration exits 4 and is retried. @default '10s' */
  readonly lockTimeout?: string;
  /** Pod retries after the exits the Job retries (4, 8, 143). @default 6 */
  readonly backoffLimit?: number;
}

/**
 * The migration Job: the runner, the plan and the runner's copies of the SQL files in
 * content-named ConfigMaps, run in the database's own image. Also two Job templates (suspended
 * CronJobs) for a person to start: a read-only status report and a rollback to a target version.
 */
export class MigrationJob extends Construct {
  readonly configMapNames: readonly string[];

  constructor(scope: Construct, id: string, props: MigrationJobProps) {
    super(scope, id);
    const { namespace, releaseName } = props;
    const labels = standardLabels(releaseName, 'migrations');
    // ConfigMaps are named by their content; the Job by its whole spec (lib/job.ts).
    const { hash, groups } = configMapLayout(props.migrations);
    this.configMapNames = groups.map((data, i, all) => {
      const name = resourceName(releaseName, all.length === 1 ? `migrations-${hash}` : `migrations-${hash}-${i + 1}`);
      // A plain ApiObject, typed by the generated props: the generated KubeConfigMap (and
      // kplus.ConfigMap on top of it) copies `data` once per key, quadratic in the number of files.
      const configMap: kplus.k8s.KubeConfigMapProps = {
        metadata: { name, namespace, labels, annotations: syncWave(SYNC_WAVES.migrations) },
        data,
        // Content-named, so never edited in place: immutable spares the kubelet its watches.
        immutable: true,
      };
      new ApiObject(this, `files-${i + 1}`, { ...kplus.k8s.KubeConfigMap.GVK, ...configMap });
      return name;
    });

    const envVariables = containerEnvironment(runnerEnvironment(props));
    const login = databaseLogin(this, 'login', {
      connection: props.connection,
      password: { secret: props.credentialsSecret, key: props.passwordKey ?? CREDENTIAL_KEYS.password },
      image: props.image,
    });
    const common = (name: string, command: string): ProjectJobProps => ({
      name,
      namespace,
      releaseName,
      component: 'migrations',
      backoffLimit: props.backoffLimit ?? 6,
      podLabels: { [DATABASE_CLIENT_LABEL]: 'true' },
      // The codes retrying cannot help (a failed migration, drift, a bad knob), from the contract.
      failJobOnExitCodes: failJobOnExitCodes(RUNNER),
      syncWave: SYNC_WAVES.migrations,
      configMapDirectory: { mountPath: MIGRATIONS_MOUNT, configMaps: this.configMapNames },
      login,
      container: {
        name: 'migrate',
        image: props.image,
        command: ['sh', `${MIGRATIONS_MOUNT}/${RUNNER_KEY}`, command],
        envVariables,
      },
    });
    projectJob(this, 'job', common(resourceName(releaseName, 'migrate'), 'migrate'));
    manualJobTemplate(this, 'status', common(resourceName(releaseName, 'migrations-status'), 'status'));
    manualJobTemplate(this, 'rollback', {
      ...common(resourceName(releaseName, 'migrations-rollback'), 'rollback'),
      backoffLimit: 0,
    });
  }
}

interface ConfigMapLayout {
  /** Hash of the whole bundle: the ConfigMaps' names. */
  readonly hash: string;
  /** Each ConfigMap's data. */
  readonly groups: readonly Record<string, string>[];
}

const layouts = new WeakMap<readonly Migration[], ConfigMapLayout>();

/**
 * The bundle split into ConfigMaps, computed once per migration set: every profile of a synth
 * renders the same set, and hashing and measuring thousands of files is most of the work.
 */
function configMapLayout(migrations: readonly Migration[]): ConfigMapLayout {
  let layout = layouts.get(migrations);
  if (!layout) {
    const entries = bundleEntries(migrations);
    const sources = new Map(migrations.flatMap((m): [string, string][] => [[m.up.key, m.up.source], [m.down.key, m.down.source]]));
    const describe = (key: string) => sources.get(key) ?? key;
    layout = { hash: contentHash(entries.flat()), groups: splitIntoConfigMaps(entries, { describe }) };
    layouts.set(migrations, layout);
  }
  return layout;
}

/** The libpq variables and runner knobs of the Job's container (its password comes from the login's file). */
export function runnerEnvironment(props: MigrationJobProps): Record<string, string> {
  const k = RUNNER.knobs;
  return {
    ...libpqVariables(props.connection),
    PGAPPNAME: RUNNER.program,
    [k.migrationsDir.env]: MIGRATIONS_MOUNT,
    [k.dbWaitSeconds.env]: String(props.waitForDatabaseSeconds ?? knobDefault('dbWaitSeconds')),
    [k.lockWaitSeconds.env]: String(props.lockWaitSeconds ?? knobDefault('lockWaitSeconds')),
    [k.statementTimeout.env]: props.statementTimeout ?? knobDefault('statementTimeout'),
    [k.lockTimeout.env]: props.lockTimeout ?? knobDefault('lockTimeout'),
  };
}
