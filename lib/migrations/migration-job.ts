import { ApiObject } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { ChartObjects } from '../chart';
import { DeploymentConfig } from '../config';
import { CREDENTIAL_KEYS } from '../credentials/keys';
import { containerEnvironment, libpqEnvironment } from '../database-client';
import { deploymentImages, imageName } from '../images';
import { manualJobTemplate, projectJob, ProjectJobProps } from '../job';
import { DATABASE_CLIENT_LABEL, contentHash, resourceName, standardLabels } from '../names';
import { EXIT, bundleEntries } from './bundle';
import { splitIntoConfigMaps } from './layout';
import { SYNC_WAVES, syncWave } from '../sync-waves';
import { Migration } from './types';

/** Where the Job mounts the ConfigMaps; the runner finds the plan and the SQL beside itself. */
export const MIGRATIONS_MOUNT = '/migrations';

export interface MigrationJobProps {
  readonly config: DeploymentConfig;
  readonly database: ChartObjects;
  /** Secret with the application user's password under CREDENTIAL_KEYS.password. */
  readonly credentialsSecret: kplus.ISecret;
  readonly migrations: readonly Migration[];
}

/**
 * The migration Job: the runner, the plan and the SQL in content-named ConfigMaps, run in the
 * database's own image. Also two Job templates (suspended CronJobs) for a person to start:
 * a read-only status report and a rollback to a target version.
 */
export class MigrationJob extends Construct {
  readonly configMapNames: readonly string[];

  constructor(scope: Construct, id: string, props: MigrationJobProps) {
    super(scope, id);
    const { config, database } = props;
    const image = imageName(deploymentImages(config).postgresql);
    const env = runnerEnvironment(config, database);
    const labels = standardLabels(config.releaseName, 'migrations');
    // ConfigMaps are named by their content; the Job by its whole spec (lib/job.ts).
    const { hash, groups } = configMapLayout(props.migrations);
    this.configMapNames = groups.map((data, i, all) => {
      const name = resourceName(config.releaseName, all.length === 1 ? `migrations-${hash}` : `migrations-${hash}-${i + 1}`);
      // A plain ApiObject, typed by the generated props: the generated KubeConfigMap (and
      // kplus.ConfigMap on top of it) copies `data` once per key, quadratic in the number of files.
      const props: kplus.k8s.KubeConfigMapProps = {
        metadata: { name, namespace: config.namespace, labels, annotations: syncWave(SYNC_WAVES.migrations) },
        data,
        // Content-named, so never edited in place: immutable spares the kubelet its watches.
        immutable: true,
      };
      new ApiObject(this, `files-${i + 1}`, { ...kplus.k8s.KubeConfigMap.GVK, ...props });
      return name;
    });

    const envVariables = containerEnvironment(env, { secret: props.credentialsSecret, key: CREDENTIAL_KEYS.password });
    const common = (name: string, command: string): ProjectJobProps => ({
      name,
      namespace: config.namespace,
      releaseName: config.releaseName,
      component: 'migrations',
      backoffLimit: config.migrations.backoffLimit,
      podLabels: { [DATABASE_CLIENT_LABEL]: 'true' },
      // 7: migration failed or drift, 1: bad configuration. Retrying cannot fix either.
      failJobOnExitCodes: [EXIT.migrationFailed, EXIT.usage],
      syncWave: SYNC_WAVES.migrations,
      configMapDirectory: { mountPath: MIGRATIONS_MOUNT, configMaps: this.configMapNames },
      container: {
        name: 'migrate',
        image,
        command: ['sh', `${MIGRATIONS_MOUNT}/runner.sh`, command],
        envVariables,
      },
    });
    projectJob(this, 'job', common(resourceName(config.releaseName, 'migrate'), 'migrate'));
    manualJobTemplate(this, 'status', common(resourceName(config.releaseName, 'migrations-status'), 'status'));
    manualJobTemplate(this, 'rollback', {
      ...common(resourceName(config.releaseName, 'migrations-rollback'), 'rollback'),
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

/** The libpq variables and runner knobs of the Job's container, PGPASSWORD aside. */
export function runnerEnvironment(config: DeploymentConfig, database: ChartObjects): Record<string, string> {
  const m = config.migrations;
  return {
    ...libpqEnvironment(config, database),
    PGAPPNAME: 'learnflow-migrate',
    MIGRATIONS_DIR: MIGRATIONS_MOUNT,
    MIGRATE_DB_WAIT_SECONDS: String(m.waitForDatabaseSeconds),
    MIGRATE_LOCK_WAIT_SECONDS: String(m.lockWaitSeconds),
    MIGRATE_STATEMENT_TIMEOUT: m.statementTimeout,
    MIGRATE_LOCK_TIMEOUT: m.lockTimeout,
  };
}
