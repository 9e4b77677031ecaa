import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { MIGRATION_DEFAULTS } from '../config';
import { CREDENTIAL_KEYS } from '../credentials/keys';
import { DatabaseEndpoint, connectionAs, containerEnvironment, databaseLogin, libpqVariables } from '../database-client';
import { manualJobTemplate } from '../job';
import { DATABASE_CLIENT_LABEL, resourceName } from '../names';
import { failJobOnExitCodes } from '../script-contract';
import { SYNC_WAVES } from '../sync-waves';
import { BACKUP_LAYOUT, BACKUP_MOUNT } from '../pitr/contracts';
import { RESTORE, backupScript, restoreScript } from './script-contracts';


/** Where the backup volume is mounted, and its folder of dumps (lib/pitr/contracts.ts BACKUP_LAYOUT). */
export const DUMP_DIR = `${BACKUP_MOUNT}/${BACKUP_LAYOUT.DUMP_DIR}`;

/** The dump CronJob's command: `sh -c <backup.sh> backup <database> <keep>`, PGDUMP_DIR set. */
export function dumpCommand(databaseName: string, keep: number): string[] {
  return ['/bin/sh', '-c', backupScript(), 'backup', databaseName, String(keep)];
}

/** Scheduled backups (a deployment's `backup` props). */
export interface BackupProps {
  /** Scheduled pg_dump backups (CronJob `<fullname>-dump`) onto the backup volume, and the restore template. @default false */
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

export interface RestoreTemplateProps {
  /** The database restored into, as the `postgres` superuser. */
  readonly database: DatabaseEndpoint;
  /** Secret with the superuser's password under CREDENTIAL_KEYS.adminPassword. */
  readonly credentialsSecret: kplus.ISecret;
  /** Image with `pg_restore`: the database's own. */
  readonly image: string;
  /** Seconds to wait for PostgreSQL before giving up with exit code 8. @default 300 */
  readonly waitForDatabaseSeconds?: number;
  /** The backup volume's claim, whose `dumps/` folder holds the dumps. */
  readonly backupClaim: string;
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
      kplus.PersistentVolumeClaim.fromClaimName(this, 'claim', props.backupClaim), { readOnly: true });
    // The dump holds objects owned by the application user; restoring them needs the superuser.
    const connection = connectionAs(props.database, 'postgres');
    const env: Record<string, string> = {
      ...libpqVariables(connection),
      PGDUMP_DIR: DUMP_DIR,
      RESTORE_DB_WAIT_SECONDS: String(props.waitForDatabaseSeconds ?? MIGRATION_DEFAULTS.waitForDatabaseSeconds),
    };
    const template = manualJobTemplate(this, 'template', {
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
    // The backup volume is ReadWriteOnce and the database pod mounts it: run on its node.
    template.scheduling.colocate(kplus.Pods.select(this, 'database', { labels: { ...props.database.objects.podLabels } }));
  }
}
