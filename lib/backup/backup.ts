import * as path from 'node:path';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { chartFullname } from '../chart';
import { MIGRATION_DEFAULTS } from '../config';
import { CREDENTIAL_KEYS } from '../credentials/keys';
import { PASSWORD_FILE } from '../credentials/passfile-contract';
import { DatabaseEndpoint, connectionAs, containerEnvironment, databaseLogin, libpqVariables } from '../database-client';
import { manualJobTemplate } from '../job';
import { DATABASE_CLIENT_LABEL, resourceName } from '../names';
import { failJobOnExitCodes } from '../script-contract';
import { SYNC_WAVES } from '../sync-waves';
import { RESTORE, backupScript, restoreScript } from './script-contracts';


/** Where the chart mounts its backup volume (backup.cronjob.storage.mountPath's default). */
export const BACKUP_MOUNT = '/backup/pgdump';

/** Labels of the chart's backup pods, for the NetworkPolicies. */
export function backupPodLabels(releaseName: string): Record<string, string> {
  return { 'app.kubernetes.io/instance': releaseName, 'app.kubernetes.io/component': 'pg_dumpall' };
}

/** The chart's backup claim: `<fullname>-pgdumpall`. */
export function backupClaim(releaseName: string): string {
  return `${chartFullname(releaseName)}-pgdumpall`;
}

/** Scheduled backups (a deployment's `backup` props). */
export interface BackupProps {
  /** Scheduled pg_dump backups through the chart's own backup CronJob. @default false */
  readonly enabled?: boolean;
  /** Cron schedule (five fields or a macro such as @daily). @default '@daily' */
  readonly schedule?: string;
  /** How many dumps to keep; older ones are removed after each backup. @default 7 */
  readonly keep?: number;
  /** Size of the backup volume. @default the data volume's size */
  readonly storageSize?: string;
  /** Storage class of the backup volume. @default the data volume's class */
  readonly storageClass?: string;
}

export interface BackupValuesProps {
  /** The database dumped. */
  readonly databaseName: string;
  /** Cron schedule. */
  readonly schedule: string;
  /** How many dumps to keep. */
  readonly keep: number;
  /** Size of the backup volume. */
  readonly storageSize: string;
  /** Storage class of the backup volume. @default the cluster's default class */
  readonly storageClass?: string;
  /** The credentials Secret: backup.sh logs in with its superuser key, through a password file. */
  readonly credentialsSecret: string;
  /**
   * libpq's sslmode for the dump: 'verify-full' against the CA the chart mounts (PGSSLROOTCERT)
   * when the certificate can be verified. @default 'prefer'
   */
  readonly sslMode?: string;
}

/** The `backup:` section of the chart's values: its own CronJob, running our dump and retention. */
export function backupValues(props: BackupValuesProps) {
  return {
    enabled: true,
    cronjob: {
      schedule: props.schedule,
      // A dump that runs long must not start a second one.
      concurrencyPolicy: 'Forbid',
      command: ['/bin/sh', '-c', backupScript(), 'backup', props.databaseName, String(props.keep), props.sslMode ?? 'prefer'],
      // The chart's policy allows egress to port 5432 only: no DNS, so PGHOST cannot resolve.
      // lib/network-policy.ts renders the backup pods' egress (DNS and the database) instead.
      networkPolicy: { enabled: false },
      // The superuser's password, alone, where backup.sh reads it (the chart's own mount differs per version).
      extraVolumes: [{
        name: 'learnflow-password',
        secret: { secretName: props.credentialsSecret, items: [{ key: CREDENTIAL_KEYS.adminPassword, path: path.basename(PASSWORD_FILE) }], defaultMode: 0o440 },
      }],
      extraVolumeMounts: [{ name: 'learnflow-password', mountPath: path.dirname(PASSWORD_FILE), readOnly: true }],
      storage: { size: props.storageSize, ...(props.storageClass ? { storageClass: props.storageClass } : {}) },
    },
  };
}

export interface RestoreTemplateProps {
  /** The database restored into, as the `postgres` superuser. */
  readonly database: DatabaseEndpoint;
  /** Secret with the superuser's password under CREDENTIAL_KEYS.adminPassword. */
  readonly credentialsSecret: kplus.ISecret;
  /** Image with `pg_restore`: the database's own. */
  readonly image: string;
  /** Seconds to wait for PostgreSQL before giving up with exit code 8. @default 300 */
  readonly waitForDatabaseSeconds?: number;
}

/**
 * A suspended CronJob: the restore a person starts deliberately, with RESTORE_FILE set to one
 * of the dumps on the chart's backup volume. Never runs on its own.
 */
export class RestoreTemplate extends Construct {
  readonly name: string;

  constructor(scope: Construct, id: string, props: RestoreTemplateProps) {
    super(scope, id);
    const { namespace, releaseName } = props.database;
    this.name = resourceName(releaseName, 'backup-restore');
    const backups = kplus.Volume.fromPersistentVolumeClaim(this, 'backups',
      kplus.PersistentVolumeClaim.fromClaimName(this, 'claim', backupClaim(releaseName)), { readOnly: true });
    // The dump holds objects owned by the application user; restoring them needs the superuser.
    const connection = connectionAs(props.database, 'postgres');
    const env: Record<string, string> = {
      ...libpqVariables(connection),
      PGDUMP_DIR: BACKUP_MOUNT,
      RESTORE_DB_WAIT_SECONDS: String(props.waitForDatabaseSeconds ?? MIGRATION_DEFAULTS.waitForDatabaseSeconds),
    };
    manualJobTemplate(this, 'template', {
      name: this.name,
      namespace,
      releaseName,
      component: 'backup',
      backoffLimit: 2,
      podLabels: { [DATABASE_CLIENT_LABEL]: 'true' },
      failJobOnExitCodes: failJobOnExitCodes(RESTORE),
      syncWave: SYNC_WAVES.migrations,
      volumes: [backups],
      container: {
        name: 'restore',
        image: props.image,
        command: ['/bin/sh', '-c', restoreScript(), 'restore'],
        envVariables: containerEnvironment(env),
        volumeMounts: [{ path: BACKUP_MOUNT, volume: backups, readOnly: true }],
      },
      login: databaseLogin(this, 'login', { connection, password: { secret: props.credentialsSecret, key: CREDENTIAL_KEYS.adminPassword }, image: props.image }),
    });
  }
}
