import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { CREDENTIAL_KEYS } from '../credentials/keys';
import { DatabaseConnection, containerEnvironment, databaseLogin, libpqVariables } from '../database-client';
import { projectJob } from '../job';
import { Migration } from '../migrations/types';
import { DATABASE_CLIENT_LABEL, resourceName } from '../names';
import { failJobOnExitCodes } from '../script-contract';
import { SYNC_WAVES } from '../sync-waves';
import { expectedTables } from './expected-schema';
import { TERMINATION_MESSAGE_PATH, VERIFY_CONTAINER } from './replica-report';
import { VERIFY, verifyScript } from './verify-contract';

export interface VerificationJobProps {
  /** Namespace of the Job. */
  readonly namespace: string;
  /** The Helm release: the Job is `<release>-postgresql-verify-<hash>`. */
  readonly releaseName: string;
  /** Image with `sh` and `psql`: the database's own. */
  readonly image: string;
  /** The database and role the checks log in as (the application's). */
  readonly connection: DatabaseConnection;
  /** Secret holding the role's password. */
  readonly credentialsSecret: kplus.ISecret;
  /** Key of the password in that Secret. @default 'password' */
  readonly passwordKey?: string;
  /** The migration set: the newest version must be applied and the tables it creates must exist. */
  readonly migrations: readonly Migration[];
  /** Seconds to wait for a connection (stage 3, exit 8 after that). @default 300 */
  readonly waitForDatabaseSeconds?: number;
  /**
   * Seconds to wait for the newest migration (stage 4, exit 5 after that): long enough for the
   * migration Job to wait for the database and then migrate.
   * @default waitForDatabaseSeconds + 600
   */
  readonly waitForMigrationsSeconds?: number;
  /** Pod retries after exit 8. @default 3 */
  readonly backoffLimit?: number;
  /** Read replicas to check: each pod's host name, and the lag each may have. @default none */
  readonly replicas?: { readonly hosts: readonly string[]; readonly maxLagBytes: number };
}

/**
 * Health stages 3 and 4 in the cluster, after the migrations (last sync wave): the database
 * answers, each read replica streams within its lag bound, the newest migration is applied and
 * every table the migrations create exists.
 */
export class VerificationJob extends Construct {
  constructor(scope: Construct, id: string, props: VerificationJobProps) {
    super(scope, id);
    const newest = props.migrations.at(-1);
    const dbWait = props.waitForDatabaseSeconds ?? Number(VERIFY.knobs.dbWaitSeconds.default);
    const k = VERIFY.knobs;
    const env: Record<string, string> = {
      ...libpqVariables(props.connection),
      [k.expectedTables.env]: expectedTables(props.migrations).join(' '),
      [k.expectedVersion.env]: newest ? String(BigInt(newest.version)) : '0',
      [k.dbWaitSeconds.env]: String(dbWait),
      [k.migrationsWaitSeconds.env]: String(props.waitForMigrationsSeconds ?? dbWait + 600),
      ...(props.replicas ? {
        [k.replicas.env]: props.replicas.hosts.join(' '),
        [k.maxLagBytes.env]: String(props.replicas.maxLagBytes),
        [k.replicaWaitSeconds.env]: String(dbWait),
        [k.reportFile.env]: TERMINATION_MESSAGE_PATH,
      } : {}),
    };
    projectJob(this, 'job', {
      name: resourceName(props.releaseName, 'verify'),
      namespace: props.namespace,
      releaseName: props.releaseName,
      component: 'verification',
      backoffLimit: props.backoffLimit ?? 3,
      podLabels: { [DATABASE_CLIENT_LABEL]: 'true' },
      // The schema is wrong or a knob is: retrying cannot fix either (the contract says which).
      failJobOnExitCodes: failJobOnExitCodes(VERIFY),
      syncWave: SYNC_WAVES.verification,
      container: {
        name: VERIFY_CONTAINER,
        image: props.image,
        command: ['/bin/sh', '-c', verifyScript(), 'verify'],
        envVariables: containerEnvironment(env),
      },
      login: databaseLogin(this, 'login', {
        connection: props.connection,
        password: { secret: props.credentialsSecret, key: props.passwordKey ?? CREDENTIAL_KEYS.password },
        image: props.image,
        extraHosts: props.replicas?.hosts,
      }),
    });
  }
}
