import * as path from 'node:path';
import { ScriptContract, renderScript } from '../script-contract';

/** Where a pod's login lives: the same paths in our Jobs and in the chart's backup pods. */
export const LOGIN_PATHS = {
  /** The mount of the one Secret key a login reads. */
  keyDir: '/run/learnflow/secret',
  /** The memory-backed volume with libpq's password file (the Job's container mounts it read-only). */
  passfileDir: '/run/learnflow/login',
  /** The CA of the server's certificate (`ca.crt`), where the connection verifies it. */
  caDir: '/run/learnflow/tls',
} as const;

/** The pod's volumes of a login: the Secret's one key, and the password file's memory-backed volume. */
export const LOGIN_VOLUMES = { key: 'database-password', passfile: 'database-login', ca: 'database-ca' } as const;

/** The password, as the login's Secret mount holds it. */
export const PASSWORD_FILE = `${LOGIN_PATHS.keyDir}/password`;

/** The contract of passfile.sh, the init container that logs our Jobs in (lib/database-client.ts). */
export const PASSFILE = {
  body: path.join(__dirname, 'passfile.sh'),
  program: 'learnflow-login',
  exits: {
    ok: { code: 0, retried: false, meaning: "the password file is written for the Job's connection" },
    refused: { code: 1, retried: false, meaning: "the Secret's key is empty or holds a line break, which a password file cannot hold" },
  },
  knobs: {
    /** The mounted Secret key: the password alone. */
    passwordFile: { env: 'PASSWORD_FILE' },
    /** Where libpq reads the password file, in the volume the Job's container mounts. */
    passfile: { env: 'PGPASSFILE' },
    /** The connection the line is for: the Job's own libpq variables. */
    host: { env: 'PGHOST' },
    port: { env: 'PGPORT' },
    database: { env: 'PGDATABASE' },
    user: { env: 'PGUSER' },
    /** More hosts the same login is for, space-separated, on any port (e.g. the read replicas). */
    extraHosts: { env: 'PASSFILE_EXTRA_HOSTS' },
  },
  includes: [path.join(__dirname, '..', 'passfile.sh')],
} as const satisfies ScriptContract;

/** passfile.sh as the init container runs it. */
export function passfileScript(): string {
  return renderScript(PASSFILE);
}
