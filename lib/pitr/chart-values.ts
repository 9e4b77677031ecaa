import { DeploymentConfig } from '../config';
import { imageName } from '../images';
import { resourceName } from '../names';
import { NON_ROOT_ID, RESTRICTED_CONTAINER } from '../security';
import { DEFAULT_RCLONE_IMAGE } from './props';
import { BACKUP_MOUNT, OBJECT_STORE_SECRET_MOUNT, SCRIPTS_MOUNT } from './contracts';
import { PG_HBA_WITH_REPLICATION, archiveConfiguration } from './settings';

/** Where the object store is and how the upload sidecar treats it. */
export interface OffsiteSettings {
  /** rclone's image, `registry/repository:tag`. */
  readonly image: string;
  readonly bucket: string;
  readonly prefix: string;
  /** rclone's S3 provider: AWS, GCS, Minio, Ceph, Other, ... */
  readonly provider: string;
  readonly endpoint?: string;
  readonly region?: string;
  /** The user-managed Secret with access-key-id and secret-access-key. */
  readonly secretName: string;
  readonly namespace: string;
  readonly intervalSeconds: number;
  readonly keep: number;
  readonly dumpKeep: number;
}

export interface BackupVolumeValuesProps {
  /** The backup volume's claim (rendered by us, consumed here so it binds in wave 0). */
  readonly claim: string;
  /** The ConfigMap with archive.sh, basebackup.sh, restore.sh and offsite.sh. */
  readonly scriptsConfigMap: string;
  /** Continuous archiving with this archive_timeout; undefined: the volume holds dumps only. */
  readonly archiveTimeoutSeconds?: number;
  readonly offsite?: OffsiteSettings;
}

/** Volume names inside the database pod (the chart's own are `data`, `empty-dir`, ...). */
const VOLUMES = { backups: 'learnflow-backups', scripts: 'learnflow-pitr-scripts', objectStore: 'learnflow-object-store' } as const;

/** The environment the off-site script reads (lib/pitr/contracts.ts OFFSITE knobs). */
export function offsiteEnvironment(o: OffsiteSettings): Record<string, string> {
  return {
    OFFSITE_BUCKET: o.bucket,
    OFFSITE_PREFIX: o.prefix,
    OFFSITE_PROVIDER: o.provider,
    ...(o.endpoint ? { OFFSITE_ENDPOINT: o.endpoint } : {}),
    ...(o.region ? { OFFSITE_REGION: o.region } : {}),
    OFFSITE_SECRET_NAME: o.secretName,
    OFFSITE_NAMESPACE: o.namespace,
    OFFSITE_INTERVAL_SECONDS: String(o.intervalSeconds),
    OFFSITE_KEEP: String(o.keep),
    OFFSITE_DUMP_KEEP: String(o.dumpKeep),
    // rclone's image has no home for our user; the root file system is read-only.
    HOME: '/tmp',
    XDG_CACHE_HOME: '/tmp',
  };
}

/**
 * The chart's `primary.*` keys for backups: the backup volume and the scripts mounted into the
 * database container, the archive settings through extendedConfiguration (the image copies
 * conf.d/ into its generated postgresql.conf on every start, so nothing overwrites them), pg_hba
 * for pg_basebackup's replication connection, and the upload sidecar (rclone's image) with the
 * object store's Secret mounted optionally: a missing Secret is reported by the sidecar and
 * never keeps the database from starting.
 */
export function backupVolumeValues(props: BackupVolumeValuesProps) {
  const { offsite } = props;
  const archiving = props.archiveTimeoutSeconds !== undefined;
  // New objects each time: a shared one would be written as a YAML anchor and alias.
  const scriptsMount = () => ({ name: VOLUMES.scripts, mountPath: SCRIPTS_MOUNT, readOnly: true });
  const backupsMount = () => ({ name: VOLUMES.backups, mountPath: BACKUP_MOUNT });
  return {
    ...(archiving ? {
      extendedConfiguration: archiveConfiguration(props.archiveTimeoutSeconds!),
      pgHbaConfiguration: PG_HBA_WITH_REPLICATION,
    } : {}),
    extraVolumes: [
      { name: VOLUMES.backups, persistentVolumeClaim: { claimName: props.claim } },
      { name: VOLUMES.scripts, configMap: { name: props.scriptsConfigMap, defaultMode: 0o555 } },
      ...(offsite ? [{ name: VOLUMES.objectStore, secret: { secretName: offsite.secretName, optional: true, defaultMode: 0o440 } }] : []),
    ],
    extraVolumeMounts: [backupsMount(), scriptsMount()],
    ...(offsite ? {
      sidecars: [{
        name: 'offsite',
        image: offsite.image,
        imagePullPolicy: 'IfNotPresent',
        command: ['sh', `${SCRIPTS_MOUNT}/offsite.sh`, 'loop'],
        env: Object.entries(offsiteEnvironment(offsite)).map(([name, value]) => ({ name, value })),
        securityContext: { runAsUser: NON_ROOT_ID, runAsGroup: NON_ROOT_ID, ...structuredClone(RESTRICTED_CONTAINER) },
        resources: { requests: { cpu: '10m', memory: '64Mi', 'ephemeral-storage': '50Mi' }, limits: { cpu: '500m', memory: '256Mi', 'ephemeral-storage': '1Gi' } },
        volumeMounts: [
          backupsMount(),
          scriptsMount(),
          { name: VOLUMES.objectStore, mountPath: OBJECT_STORE_SECRET_MOUNT, readOnly: true },
          { name: 'empty-dir', mountPath: '/tmp', subPath: 'offsite-tmp-dir' },
        ],
      }],
    } : {}),
  };
}

/** Where the backups' objects are: the claim and the scripts ConfigMap. */
export interface BackupStorageNames {
  readonly claim: string;
  readonly scriptsConfigMap: string;
}

export function backupStorageNames(releaseName: string): BackupStorageNames {
  return { claim: resourceName(releaseName, 'backups'), scriptsConfigMap: resourceName(releaseName, 'pitr-scripts') };
}

/** The object store as the sidecar and the restore's fetch see it; undefined without `objectStore`. */
export function offsiteSettings(config: DeploymentConfig): OffsiteSettings | undefined {
  const o = config.objectStore;
  if (!o) return undefined;
  const image = { ...DEFAULT_RCLONE_IMAGE, ...o.image, ...(config.imageRegistry ? { registry: config.imageRegistry } : {}) };
  return {
    image: imageName(image),
    bucket: o.bucket,
    prefix: o.prefix,
    provider: o.provider,
    endpoint: o.endpoint,
    region: o.region,
    secretName: o.secretName,
    namespace: config.namespace,
    intervalSeconds: o.uploadIntervalSeconds,
    keep: o.keep,
    dumpKeep: config.backup.keep,
  };
}

/** The chart's `primary.*` additions of a deployment: none without dumps or archiving. */
export function primaryBackupValues(config: DeploymentConfig) {
  if (!config.backupVolume) return {};
  const names = backupStorageNames(config.releaseName);
  return backupVolumeValues({
    claim: names.claim,
    scriptsConfigMap: names.scriptsConfigMap,
    archiveTimeoutSeconds: config.pitr.enabled ? config.pitr.archiveTimeoutSeconds : undefined,
    offsite: offsiteSettings(config),
  });
}
