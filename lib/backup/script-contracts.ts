import * as path from 'node:path';
import { PASSWORD_FILE } from '../credentials/passfile-contract';
import { ScriptContract, renderScript } from '../script-contract';

/** Dumps are `<database>-<UTC time>` plus this, e.g. `learnflow-20261122T023000Z.dump`. */
export const DUMP_SUFFIX = '.dump';

/** The contract of backup.sh, the chart's backup CronJob's command (`sh -c <script> backup <database> <keep>`). */
export const BACKUP = {
  body: path.join(__dirname, 'backup.sh'),
  program: 'learnflow-backup',
  exits: {
    ok: { code: 0, retried: false, meaning: 'a complete dump written, older ones beyond keep removed' },
    failed: { code: 1, retried: false, meaning: 'the dump failed; no partial file is left under a dump name' },
  },
  knobs: {
    /** The chart's backup volume, mounted by its CronJob. */
    dumpDir: { env: 'PGDUMP_DIR' },
    /** The superuser's password alone, as the CronJob mounts it from the credentials Secret. */
    passwordFile: { env: 'PASSWORD_FILE', default: PASSWORD_FILE },
  },
  constants: { DUMP_SUFFIX },
  includes: [path.join(__dirname, '..', 'passfile.sh')],
} as const satisfies ScriptContract;

/** The contract of restore.sh, the restore template's command. */
export const RESTORE = {
  body: path.join(__dirname, 'restore.sh'),
  program: 'learnflow-restore',
  exits: {
    ok: { code: 0, retried: false, meaning: 'restored' },
    failed: { code: 1, retried: false, meaning: 'no such backup, a bad knob, or the restore failed and was rolled back' },
    connectionFailed: { code: 8, retried: true, meaning: 'the database was unreachable within the wait' },
  },
  knobs: {
    dumpDir: { env: 'PGDUMP_DIR' },
    /** The dump to restore: a file name in the backup volume. */
    file: { env: 'RESTORE_FILE' },
    dbWaitSeconds: { env: 'RESTORE_DB_WAIT_SECONDS', default: '300', rule: { kind: 'whole', unit: 'seconds', min: 2, max: 86400 } },
  },
  constants: { DUMP_SUFFIX },
  includes: [path.join(__dirname, '..', 'tls-failures.sh')],
} as const satisfies ScriptContract;

export const backupScript = (): string => renderScript(BACKUP);
export const restoreScript = (): string => renderScript(RESTORE);
