import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ScriptContract, renderScript } from '../script-contract';

/**
 * The backup volume's layout, the same in the bucket (lib/pitr/offsite.sh mirrors it):
 *
 *   SYSTEM_IDENTIFIER          the database system the archive belongs to
 *   wal/<segment>.gz           archived WAL segments; <tli>.history and *.backup as they are
 *   base/<UTC time>/           base.tar.gz, pg_wal.tar.gz, backup_manifest, backup.info
 *   dumps/<db>-<UTC time>.dump pg_dump custom-format dumps
 *   .<anything>                work in progress, never uploaded or read as finished
 */
export const BACKUP_LAYOUT = {
  WAL_DIR: 'wal',
  BASE_DIR: 'base',
  DUMP_DIR: 'dumps',
  SYSTEM_FILE: 'SYSTEM_IDENTIFIER',
  INFO_FILE: 'backup.info',
  SEGMENT_SUFFIX: '.gz',
  STATUS_FILE: '.offsite-status',
  DUMP_SUFFIX: '.dump',
} as const;

/** Where the backup volume is mounted, in the database pod and in every backup Job. */
export const BACKUP_MOUNT = '/backups';
/** The chart's data directory (postgresqlDataDir) on its data volume (primary.persistence.mountPath). */
export const DATA_VOLUME_MOUNT = '/bitnami/postgresql';
export const PGDATA = `${DATA_VOLUME_MOUNT}/data`;
/** Where the scripts' ConfigMap is mounted. */
export const SCRIPTS_MOUNT = '/opt/learnflow/pitr';
/** Where the object store's Secret is mounted (optional: a missing Secret is reported, never a stuck pod). */
export const OBJECT_STORE_SECRET_MOUNT = '/etc/learnflow/object-store';
/** The keys the user-managed object store Secret holds. */
export const OBJECT_STORE_SECRET_KEYS = { accessKeyId: 'access-key-id', secretAccessKey: 'secret-access-key' } as const;

const backupDir = { env: 'LEARNFLOW_BACKUP_DIR', default: BACKUP_MOUNT } as const;
const body = (file: string) => path.join(__dirname, file);

/** PostgreSQL's archive_command: `sh archive.sh %p %f`. Every code but 0 makes PostgreSQL keep the file and retry. */
export const ARCHIVE = {
  body: body('archive.sh'),
  program: 'learnflow-archive',
  exits: {
    ok: { code: 0, retried: false, meaning: 'archived, or already archived with identical content' },
    failed: { code: 1, retried: true, meaning: 'could not archive now (volume missing or full, a failed copy); PostgreSQL keeps the WAL and retries' },
    refused: { code: 2, retried: true, meaning: 'the name is archived with different content, or the archive belongs to another database system; PostgreSQL keeps the WAL and retries until a person fixes it' },
  },
  knobs: { backupDir },
  constants: BACKUP_LAYOUT,
} as const satisfies ScriptContract;

/** The base-backup CronJob's command. */
export const BASEBACKUP = {
  body: body('basebackup.sh'),
  program: 'learnflow-basebackup',
  exits: {
    ok: { code: 0, retried: false, meaning: 'a complete base backup written, older ones beyond keep and the WAL none of the kept ones needs removed' },
    failed: { code: 1, retried: false, meaning: 'no backup: a bad knob, another system\'s archive, archiving off, or pg_basebackup failed; nothing is left under a base backup\'s name' },
    connectionFailed: { code: 8, retried: true, meaning: 'the database was unreachable within the wait' },
  },
  knobs: {
    backupDir,
    keep: { env: 'BASEBACKUP_KEEP', default: '7', rule: { kind: 'whole', unit: 'base backups', min: 1, max: 1000 } },
    dbWaitSeconds: { env: 'BASEBACKUP_DB_WAIT_SECONDS', default: '300', rule: { kind: 'whole', unit: 'seconds', min: 2, max: 86400 } },
    /** pg_basebackup's --max-rate (e.g. 100M): spares the database's disk; unset: as fast as it goes. */
    maxRate: { env: 'BASEBACKUP_MAX_RATE' },
    /** The superuser's password alone, mounted from the credentials Secret; unset: libpq's own (PGPASSWORD, ~/.pgpass). */
    passwordFile: { env: 'PASSWORD_FILE' },
  },
  constants: BACKUP_LAYOUT,
  includes: [path.join(__dirname, '..', 'passfile.sh')],
} as const satisfies ScriptContract;

/** The point-in-time restore template's command. */
export const PITR_RESTORE = {
  body: body('restore.sh'),
  program: 'learnflow-pitr',
  exits: {
    ok: { code: 0, retried: false, meaning: 'the data directory was recovered to the target and swapped in' },
    refused: { code: 1, retried: false, meaning: 'refused, nothing changed: a malformed target, a time in the future, before the oldest base backup or past the newest archived commit, a gap in the archive, a database still running' },
    recoveryFailed: { code: 7, retried: false, meaning: "PostgreSQL's recovery failed; the data directory is unchanged (its log is printed)" },
  },
  knobs: {
    backupDir,
    pgdata: { env: 'PGDATA', default: PGDATA },
    target: { env: 'RESTORE_TARGET' },
    timeline: { env: 'RESTORE_TIMELINE', default: 'latest' },
    recoveryTimeoutSeconds: { env: 'RESTORE_RECOVERY_TIMEOUT_SECONDS', default: '86400', rule: { kind: 'whole', unit: 'seconds', min: 60, max: 604800 } },
  },
  constants: BACKUP_LAYOUT,
} as const satisfies ScriptContract;

/** The off-site copies: the database pod's upload sidecar (`loop`) and the restore's `fetch`. */
export const OFFSITE = {
  body: body('offsite.sh'),
  program: 'learnflow-offsite',
  exits: {
    ok: { code: 0, retried: false, meaning: 'uploaded (a pass), or fetched what the restore needs' },
    refused: { code: 1, retried: false, meaning: 'the object store Secret is missing or malformed, its keys are refused, the bucket is missing or holds another system\'s archive, or the target is bad or out of reach; nothing changed' },
    unreachable: { code: 8, retried: true, meaning: 'the object store could not be reached' },
  },
  knobs: {
    backupDir,
    secretDir: { env: 'OFFSITE_SECRET_DIR', default: OBJECT_STORE_SECRET_MOUNT },
    intervalSeconds: { env: 'OFFSITE_INTERVAL_SECONDS', default: '15', rule: { kind: 'whole', unit: 'seconds', min: 5, max: 3600 } },
    keep: { env: 'OFFSITE_KEEP', default: '7', rule: { kind: 'whole', unit: 'base backups', min: 1, max: 1000 } },
    dumpKeep: { env: 'OFFSITE_DUMP_KEEP', default: '7', rule: { kind: 'whole', unit: 'dumps', min: 1, max: 1000 } },
    bucket: { env: 'OFFSITE_BUCKET' },
    prefix: { env: 'OFFSITE_PREFIX' },
    provider: { env: 'OFFSITE_PROVIDER' },
    endpoint: { env: 'OFFSITE_ENDPOINT' },
    region: { env: 'OFFSITE_REGION' },
    secretName: { env: 'OFFSITE_SECRET_NAME' },
    namespace: { env: 'OFFSITE_NAMESPACE' },
    target: { env: 'RESTORE_TARGET' },
    source: { env: 'RESTORE_SOURCE', default: 'volume' },
  },
  constants: {
    ...BACKUP_LAYOUT,
    ACCESS_KEY_ID_KEY: OBJECT_STORE_SECRET_KEYS.accessKeyId,
    SECRET_ACCESS_KEY_KEY: OBJECT_STORE_SECRET_KEYS.secretAccessKey,
  },
} as const satisfies ScriptContract;

export const PITR_CONTRACTS = { 'archive.sh': ARCHIVE, 'basebackup.sh': BASEBACKUP, 'restore.sh': PITR_RESTORE, 'offsite.sh': OFFSITE } as const;
export type PitrScript = keyof typeof PITR_CONTRACTS;

const INCLUDE = /^# learnflow:include ([a-z0-9.-]+)$/;

/**
 * The scripts as the pods run them (the data of the scripts ConfigMap): each rendered from its
 * contract, with the shared helpers (target.sh) in place of its include line.
 */
export function renderPitrScripts(): Record<PitrScript, string> {
  return Object.fromEntries(Object.entries(PITR_CONTRACTS).map(([file, contract]) => [file,
    renderScript(contract).split('\n').flatMap((line) => {
      const include = INCLUDE.exec(line);
      return include ? readFileSync(body(include[1]), 'utf8').trimEnd().split('\n') : [line];
    }).join('\n'),
  ])) as Record<PitrScript, string>;
}
