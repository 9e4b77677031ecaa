import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { ChartObjects, chartFullname } from '../chart';
import { DeploymentConfig } from '../config';
import { CREDENTIAL_KEYS } from '../credentials/keys';
import { containerEnvironment, libpqEnvironment } from '../database-client';
import { deploymentImages, imageName } from '../images';
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

/** The `backup:` section of the chart's values: its own CronJob, running our dump and retention. */
export function backupValues(config: DeploymentConfig) {
  const b = config.backup;
  return {
    enabled: true,
    cronjob: {
      schedule: b.schedule,
      // A dump that runs long must not start a second one.
      concurrencyPolicy: 'Forbid',
      command: ['/bin/sh', '-c', backupScript(), 'backup', config.databaseName, String(b.keep)],
      // The chart's policy allows egress to port 5432 only: no DNS, so PGHOST cannot resolve.
      // lib/network-policy.ts renders the backup pods' egress (DNS and the database) instead.
      networkPolicy: { enabled: false },
      storage: { size: b.storageSize, ...(b.storageClass ? { storageClass: b.storageClass } : {}) },
    },
  };
}

export interface RestoreTemplateProps {
  readonly config: DeploymentConfig;
  readonly database: ChartObjects;
  readonly credentialsSecret: kplus.ISecret;
}

/**
 * A suspended CronJob: the restore a person starts deliberately, with RESTORE_FILE set to one
 * of the dumps on the chart's backup volume. Never runs on its own.
 */
export class RestoreTemplate extends Construct {
  readonly name: string;

  constructor(scope: Construct, id: string, props: RestoreTemplateProps) {
    super(scope, id);
    const { config, database } = props;
    this.name = resourceName(config.releaseName, 'backup-restore');
    const backups = kplus.Volume.fromPersistentVolumeClaim(this, 'backups',
      kplus.PersistentVolumeClaim.fromClaimName(this, 'claim', backupClaim(config.releaseName)), { readOnly: true });
    const env: Record<string, string> = {
      // The dump holds objects owned by the application user; restoring them needs the superuser.
      ...libpqEnvironment(config, database, 'postgres'),
      PGDUMP_DIR: BACKUP_MOUNT,
      RESTORE_DB_WAIT_SECONDS: String(config.migrations.waitForDatabaseSeconds),
    };
    manualJobTemplate(this, 'template', {
      name: this.name,
      namespace: config.namespace,
      releaseName: config.releaseName,
      component: 'backup',
      backoffLimit: 2,
      podLabels: { [DATABASE_CLIENT_LABEL]: 'true' },
      failJobOnExitCodes: failJobOnExitCodes(RESTORE),
      syncWave: SYNC_WAVES.migrations,
      volumes: [backups],
      container: {
        name: 'restore',
        image: imageName(deploymentImages(config).postgresql),
        command: ['/bin/sh', '-c', restoreScript(), 'restore'],
        envVariables: containerEnvironment(env, { secret: props.credentialsSecret, key: CREDENTIAL_KEYS.adminPassword }),
        volumeMounts: [{ path: BACKUP_MOUNT, volume: backups, readOnly: true }],
      },
    });
  }
}
