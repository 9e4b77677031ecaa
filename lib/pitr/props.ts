import { ImageRef } from '../chart';
import { ImageProps } from '../config';
import { BASEBACKUP, OFFSITE } from './contracts';

/** Continuous WAL archiving, base backups and point-in-time recovery (a deployment's `pitr` props). */
export interface PitrProps {
  /** Archive every WAL segment, take base backups, render the point-in-time restore. @default false */
  readonly enabled?: boolean;
  /** A segment switch at least this often while anything is written: the data at risk on losing the primary. @default 60 */
  readonly archiveTimeoutSeconds?: number;
  /** Cron schedule of the base backups (five fields or a macro). @default '@daily' */
  readonly baseBackupSchedule?: string;
  /** Base backups kept; the archived WAL the oldest one needs is kept with it. @default 7 */
  readonly baseBackupKeep?: number;
  /** Size of the backup volume (WAL, base backups and dumps). @default backup.storageSize, else the data volume's */
  readonly storageSize?: string;
  /** Storage class of the backup volume. @default backup.storageClass, else the data volume's */
  readonly storageClass?: string;
}

export const OBJECT_STORE_PROVIDERS = ['AWS', 'GCS', 'Minio', 'Ceph', 'Other'] as const;
export type ObjectStoreProvider = (typeof OBJECT_STORE_PROVIDERS)[number];

/**
 * Copies off the cluster: an S3-compatible bucket (a deployment's `objectStore` props). The
 * keys come from a Secret you manage with `access-key-id` and `secret-access-key`.
 */
export interface ObjectStoreProps {
  /** The bucket; it must exist (nothing here creates buckets). */
  readonly bucket?: string;
  /** Where in the bucket. @default '<namespace>/<releaseName>' */
  readonly prefix?: string;
  /** rclone's S3 provider: AWS, GCS (interoperability), Minio, Ceph, Other (Azure through an S3 gateway). @default 'AWS' */
  readonly provider?: ObjectStoreProvider;
  /** The S3 endpoint URL. @default the provider's (AWS: from the region) */
  readonly endpoint?: string;
  /** The bucket's region. @default none */
  readonly region?: string;
  /** The Secret with access-key-id and secret-access-key. @default '<fullname>-object-store' */
  readonly secretName?: string;
  /** Seconds between upload passes of the sidecar. @default 15 */
  readonly uploadIntervalSeconds?: number;
  /** Base backups kept in the bucket (and the WAL they need). @default pitr.baseBackupKeep */
  readonly keep?: number;
  /** rclone's image. @default docker.io/rclone/rclone:1.76.0 */
  readonly image?: ImageProps;
}

/** rclone's own image at the version the tests run (scripts/test-tools.sh RCLONE_VERSION). */
export const DEFAULT_RCLONE_IMAGE: ImageRef = { registry: 'docker.io', repository: 'rclone/rclone', tag: '1.76.0' };

export const PITR_DEFAULTS = {
  archiveTimeoutSeconds: 60,
  baseBackupSchedule: '@daily',
  baseBackupKeep: Number(BASEBACKUP.knobs.keep.default),
  uploadIntervalSeconds: Number(OFFSITE.knobs.intervalSeconds.default),
} as const;
