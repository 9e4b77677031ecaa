import * as path from 'node:path';
import { Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { k8s } from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { LOGIN_PATHS, LOGIN_VOLUMES, PASSWORD_FILE } from '../credentials/passfile-contract';
import { manualJobTemplate } from '../job';
import { Component, DATABASE_CLIENT_LABEL, OBJECT_STORE_CLIENT_LABEL, resourceName, standardLabels } from '../names';
import { failJobOnExitCodes } from '../script-contract';
import { SYNC_WAVES, syncWave } from '../sync-waves';
import { BackupStorageNames, OffsiteSettings, backupStorageNames, offsiteEnvironment } from './chart-values';
import { BACKUP_MOUNT, BASEBACKUP, DATA_VOLUME_MOUNT, OBJECT_STORE_SECRET_MOUNT, OFFSITE, PGDATA, PITR_RESTORE, SCRIPTS_MOUNT, renderPitrScripts } from './contracts';

/**
 * Argo CD never prunes these, nor deletes them with the Application: they hold data. Retiring a
 * profile deliberately is a person's job (README: Retiring a profile).
 */
export const KEEP_DATA_ANNOTATIONS = { 'argocd.argoproj.io/sync-options': 'Prune=false,Delete=false' } as const;

/**
 * A CronJob whose failed run shows on the Job and its pod, in `status` and in verification, but
 * does not turn the whole Application Degraded (Argo CD 3.2+ judges a CronJob by its last run):
 * one failed nightly backup must not break `argocd app wait --health` for the database.
 */
export const BACKUP_CRONJOB_ANNOTATIONS = { 'argocd.argoproj.io/ignore-healthcheck': 'true' } as const;

export interface BackupStorageProps {
  readonly namespace: string;
  readonly releaseName: string;
  /** Size of the backup volume. */
  readonly size: string;
  /** @default the cluster's default class */
  readonly storageClass?: string;
}

/**
 * The backup volume and the scripts. The claim is in wave 0 with the database, whose pod mounts
 * it (lib/pitr/chart-values.ts): under a WaitForFirstConsumer class it binds when that pod is
 * scheduled, so no claim is left Pending (Progressing to Argo CD) once wave 0 is healthy. The
 * scripts' ConfigMap keeps its name (the database pod mounts it; kubelet refreshes the files).
 */
export class BackupStorage extends Construct {
  readonly names: BackupStorageNames;

  constructor(scope: Construct, id: string, props: BackupStorageProps) {
    super(scope, id);
    this.names = backupStorageNames(props.releaseName);
    const labels = standardLabels(props.releaseName, 'backup');
    new k8s.KubePersistentVolumeClaim(this, 'claim', {
      metadata: {
        name: this.names.claim,
        namespace: props.namespace,
        labels,
        annotations: { ...syncWave(SYNC_WAVES.database), ...KEEP_DATA_ANNOTATIONS },
      },
      spec: {
        accessModes: ['ReadWriteOnce'],
        resources: { requests: { storage: k8s.Quantity.fromString(props.size) } },
        ...(props.storageClass ? { storageClassName: props.storageClass } : {}),
      },
    });
    new k8s.KubeConfigMap(this, 'scripts', {
      metadata: { name: this.names.scriptsConfigMap, namespace: props.namespace, labels, annotations: syncWave(SYNC_WAVES.credentials) },
      data: renderPitrScripts(),
    });
  }
}

/** What a backup pod needs to reach the database as the superuser. */
export interface SuperuserConnection {
  /** PGHOST, PGPORT, PGDATABASE, PGUSER (postgres), PGSSLMODE. */
  readonly libpq: Readonly<Record<string, string>>;
  readonly secretName: string;
  readonly passwordKey: string;
  /** With sslmode=verify-full: the Secret whose `ca.crt` the server's certificate is verified against. */
  readonly caSecret?: string;
}

export interface BackupCronJobProps {
  readonly namespace: string;
  readonly releaseName: string;
  /** `basebackup` or `dump`: the CronJob is `<fullname>-<kind>`. */
  readonly kind: 'basebackup' | 'dump';
  /** The database image (pg_basebackup, pg_dump). */
  readonly image: string;
  readonly schedule: string;
  readonly command: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly connection: SuperuserConnection;
  readonly storage: BackupStorageNames;
  /** Labels of the database pod: the backup pod runs on its node (the volume is ReadWriteOnce). */
  readonly databasePodLabels: Readonly<Record<string, string>>;
  readonly failJobOnExitCodes: readonly number[];
}

/**
 * A scheduled backup Job beside the database pod (required pod affinity on the node: the backup
 * volume is ReadWriteOnce), one at a time, its failures visible on the Job and its pod. The
 * image's own command: nothing but the scripts ConfigMap is added to the pod.
 */
export class BackupCronJob extends Construct {
  readonly name: string;

  constructor(scope: Construct, id: string, props: BackupCronJobProps) {
    super(scope, id);
    this.name = resourceName(props.releaseName, props.kind);
    const labels = standardLabels(props.releaseName, 'backup' satisfies Component);
    // The password as a file, never an environment variable: the script writes libpq's password
    // file from the Secret's one key (the dump's and the base backup's PASSWORD_FILE knob).
    const { caSecret } = props.connection;
    const env = Object.entries({
      ...props.connection.libpq,
      PASSWORD_FILE,
      ...(caSecret ? { PGSSLROOTCERT: `${LOGIN_PATHS.caDir}/ca.crt` } : {}),
      ...props.env,
    }).map(([name, value]) => ({ name, value }));
    new k8s.KubeCronJob(this, 'cronjob', {
      metadata: {
        name: this.name,
        namespace: props.namespace,
        labels,
        annotations: { ...syncWave(SYNC_WAVES.migrations), ...BACKUP_CRONJOB_ANNOTATIONS },
      },
      spec: {
        schedule: props.schedule,
        concurrencyPolicy: 'Forbid',
        // A run missed by more than an hour (the database was down) waits for the next one.
        startingDeadlineSeconds: 3600,
        successfulJobsHistoryLimit: 3,
        failedJobsHistoryLimit: 3,
        jobTemplate: {
          spec: {
            backoffLimit: 2,
            podFailurePolicy: {
              rules: [
                { action: 'FailJob', onExitCodes: { containerName: props.kind, operator: 'In', values: [...props.failJobOnExitCodes] }, } as any,
                { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
              ],
            },
            template: {
              metadata: { labels: { ...labels, [DATABASE_CLIENT_LABEL]: 'true' } },
              spec: {
                restartPolicy: 'Never',
                automountServiceAccountToken: false,
                affinity: {
                  podAffinity: {
                    requiredDuringSchedulingIgnoredDuringExecution: [{
                      labelSelector: { matchLabels: { ...props.databasePodLabels } },
                      topologyKey: 'kubernetes.io/hostname',
                    }],
                  },
                },
                containers: [{
                  name: props.kind,
                  image: props.image,
                  imagePullPolicy: 'IfNotPresent',
                  command: [...props.command],
                  env,
                  resources: {
                    requests: { cpu: k8s.Quantity.fromString('100m'), memory: k8s.Quantity.fromString('128Mi') },
                    limits: { cpu: k8s.Quantity.fromString('1'), memory: k8s.Quantity.fromString('512Mi') },
                  },
                  volumeMounts: [
                    { name: 'tmp', mountPath: '/tmp' },
                    { name: 'backups', mountPath: BACKUP_MOUNT },
                    { name: 'scripts', mountPath: SCRIPTS_MOUNT, readOnly: true },
                    { name: LOGIN_VOLUMES.key, mountPath: LOGIN_PATHS.keyDir, readOnly: true },
                    ...(caSecret ? [{ name: LOGIN_VOLUMES.ca, mountPath: LOGIN_PATHS.caDir, readOnly: true }] : []),
                  ],
                }],
                volumes: [
                  { name: 'tmp', emptyDir: {} },
                  { name: 'backups', persistentVolumeClaim: { claimName: props.storage.claim } },
                  { name: 'scripts', configMap: { name: props.storage.scriptsConfigMap, defaultMode: 0o555 } },
                  { name: LOGIN_VOLUMES.key, secret: { secretName: props.connection.secretName, items: [{ key: props.connection.passwordKey, path: path.basename(PASSWORD_FILE) }], defaultMode: 0o440 } },
                  // ca.crt alone: never the server's key.
                  ...(caSecret ? [{ name: LOGIN_VOLUMES.ca, secret: { secretName: caSecret, items: [{ key: 'ca.crt', path: 'ca.crt' }], defaultMode: 0o444 } }] : []),
                ],
              },
            },
          },
        },
      },
    });
  }
}

/** The base-backup CronJob's knobs. */
export function baseBackupEnvironment(keep: number, dbWaitSeconds: number): Record<string, string> {
  return { [BASEBACKUP.knobs.keep.env]: String(keep), [BASEBACKUP.knobs.dbWaitSeconds.env]: String(dbWaitSeconds) };
}
export const BASEBACKUP_COMMAND = ['sh', `${SCRIPTS_MOUNT}/basebackup.sh`] as const;
export const BASEBACKUP_FAIL_JOB_ON = failJobOnExitCodes(BASEBACKUP);

export interface PitrRestoreTemplateProps {
  readonly namespace: string;
  readonly releaseName: string;
  /** The database image: restore.sh runs pg_ctl, pg_waldump, tar and gzip from it. */
  readonly image: string;
  /** The chart's data claim, `data-<fullname>-0`. */
  readonly dataClaim: string;
  readonly storage: BackupStorageNames;
  /** PGHOST/PGPORT of the database Service: the restore refuses while it answers. */
  readonly libpq: Readonly<Record<string, string>>;
  /** The database container's resources: recovery replays WAL the way the database does. */
  readonly resources?: kplus.ContainerResources;
  /** With an object store: a first step that fetches from it when RESTORE_SOURCE=offsite. */
  readonly offsite?: OffsiteSettings;
}

/**
 * The point-in-time restore a person starts (README: Point-in-time recovery; the CLI's
 * `restore --to`), never on its own: a suspended CronJob whose Job, with RESTORE_TARGET set,
 * rebuilds the data directory from the backup volume (after fetching from the object store
 * with RESTORE_SOURCE=offsite). It runs while the database is stopped: no affinity, it mounts
 * the data claim itself.
 */
export class PitrRestoreTemplate extends Construct {
  readonly name: string;

  constructor(scope: Construct, id: string, props: PitrRestoreTemplateProps) {
    super(scope, id);
    this.name = resourceName(props.releaseName, 'pitr-restore');
    const claim = (cid: string, name: string) => kplus.Volume.fromPersistentVolumeClaim(this, cid, kplus.PersistentVolumeClaim.fromClaimName(this, `${cid}-claim`, name));
    const data = claim('data', props.dataClaim);
    const backups = claim('backups', props.storage.claim);
    const scripts = kplus.Volume.fromConfigMap(this, 'scripts', kplus.ConfigMap.fromConfigMapName(this, 'scripts-cm', props.storage.scriptsConfigMap), { defaultMode: 0o555 });
    const objectStore = props.offsite
      ? kplus.Volume.fromSecret(this, 'object-store', kplus.Secret.fromSecretName(this, 'object-store-secret', props.offsite.secretName), { optional: true, defaultMode: 0o440 })
      : undefined;
    const plain = (env: Record<string, string>) => Object.fromEntries(Object.entries(env).map(([k, v]) => [k, kplus.EnvValue.fromValue(v)]));
    const template = manualJobTemplate(this, 'template', {
      name: this.name,
      namespace: props.namespace,
      releaseName: props.releaseName,
      component: 'backup',
      backoffLimit: 0,
      failJobOnExitCodes: failJobOnExitCodes(PITR_RESTORE),
      syncWave: SYNC_WAVES.migrations,
      podLabels: { [DATABASE_CLIENT_LABEL]: 'true', ...(props.offsite ? { [OBJECT_STORE_CLIENT_LABEL]: 'true' } : {}) },
      volumes: [data, backups, scripts, ...(objectStore ? [objectStore] : [])],
      container: {
        name: 'restore',
        image: props.image,
        command: ['sh', `${SCRIPTS_MOUNT}/restore.sh`],
        envVariables: plain({
          PGHOST: props.libpq.PGHOST,
          PGPORT: props.libpq.PGPORT,
          [PITR_RESTORE.knobs.pgdata.env]: PGDATA,
          [PITR_RESTORE.knobs.backupDir.env]: BACKUP_MOUNT,
        }),
        // Recovery replays WAL as the database does: room for its shared buffers and gzip.
        resources: props.resources ?? {
          cpu: { request: kplus.Cpu.millis(100), limit: kplus.Cpu.millis(2000) },
          memory: { request: Size.mebibytes(256), limit: Size.gibibytes(1) },
        },
        volumeMounts: [
          { path: DATA_VOLUME_MOUNT, volume: data },
          { path: BACKUP_MOUNT, volume: backups },
          { path: SCRIPTS_MOUNT, volume: scripts, readOnly: true },
        ],
      },
    });
    if (props.offsite && objectStore) {
      template.addInitContainer({
        name: 'fetch',
        image: props.offsite.image,
        imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
        command: ['sh', `${SCRIPTS_MOUNT}/offsite.sh`, 'fetch'],
        envVariables: plain({ ...offsiteEnvironment(props.offsite), [OFFSITE.knobs.backupDir.env]: BACKUP_MOUNT, [OFFSITE.knobs.source.env]: OFFSITE.knobs.source.default }),
        resources: { cpu: { request: kplus.Cpu.millis(50), limit: kplus.Cpu.millis(1000) }, memory: { request: Size.mebibytes(64), limit: Size.mebibytes(256) } },
        volumeMounts: [
          { path: BACKUP_MOUNT, volume: backups },
          { path: SCRIPTS_MOUNT, volume: scripts, readOnly: true },
          { path: OBJECT_STORE_SECRET_MOUNT, volume: objectStore, readOnly: true },
          { path: '/tmp', volume: kplus.Volume.fromEmptyDir(this, 'fetch-tmp', 'fetch-tmp') },
        ],
      });
    }
  }
}

