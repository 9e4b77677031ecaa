import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { ChartObjects } from '../chart';
import { DeploymentConfig } from '../config';
import { CREDENTIAL_KEYS } from '../credentials/keys';
import { containerEnvironment, libpqEnvironment } from '../database-client';
import { deploymentImages, imageName } from '../images';
import { projectJob } from '../job';
import { Migration } from '../migrations/types';
import { DATABASE_CLIENT_LABEL, resourceName } from '../names';
import { SYNC_WAVES } from '../sync-waves';
import { expectedTables } from './expected-schema';

export const VERIFY_SCRIPT_PATH = path.join(__dirname, 'verify.sh');
const VERIFY_SCRIPT = readFileSync(VERIFY_SCRIPT_PATH, 'utf8');

/** The verification script's exit codes (the seed's table). */
export const VERIFY_EXIT = { ok: 0, usage: 1, healthCheckFailed: 5, connectionFailed: 8 } as const;

export interface VerificationJobProps {
  readonly config: DeploymentConfig;
  readonly database: ChartObjects;
  readonly credentialsSecret: kplus.ISecret;
  readonly migrations: readonly Migration[];
}

/**
 * Health stages 3 and 4 in the cluster, after the migrations (last sync wave): the database
 * answers, the newest migration is applied and every table the migrations create exists.
 */
export class VerificationJob extends Construct {
  constructor(scope: Construct, id: string, props: VerificationJobProps) {
    super(scope, id);
    const { config, database } = props;
    const newest = props.migrations.at(-1);
    const env: Record<string, string> = {
      ...libpqEnvironment(config, database),
      EXPECTED_TABLES: expectedTables(props.migrations).join(' '),
      EXPECTED_VERSION: newest ? String(BigInt(newest.version)) : '0',
      VERIFY_DB_WAIT_SECONDS: String(config.migrations.waitForDatabaseSeconds),
      // Long enough for the migration Job to wait for the database and then migrate.
      VERIFY_MIGRATIONS_WAIT_SECONDS: String(config.migrations.waitForDatabaseSeconds + 600),
    };
    const image = imageName(deploymentImages(config).postgresql);
    projectJob(this, 'job', {
      name: resourceName(config.releaseName, 'verify'),
      namespace: config.namespace,
      releaseName: config.releaseName,
      component: 'verification',
      backoffLimit: 3,
      podLabels: { [DATABASE_CLIENT_LABEL]: 'true' },
      // 5: the schema is wrong, 1: bad configuration. Retrying cannot fix either.
      failJobOnExitCodes: [VERIFY_EXIT.healthCheckFailed, VERIFY_EXIT.usage],
      syncWave: SYNC_WAVES.verification,
      container: {
        name: 'verify',
        image,
        command: ['/bin/sh', '-c', VERIFY_SCRIPT, 'verify'],
        envVariables: containerEnvironment(env, { secret: props.credentialsSecret, key: CREDENTIAL_KEYS.password }),
      },
    });
  }
}
