import * as path from 'node:path';
import { ScriptContract, renderScript } from '../script-contract';

/** The role PgBouncer logs in as to look users up (auth_user), and the schema of its function. */
export const POOLER_AUTH_USER = 'pgbouncer_auth';
export const POOLER_AUTH_SCHEMA = 'pgbouncer';

/** The contract of pooler-auth.sh, the pooler's setup Job (as the superuser). */
export const POOLER_AUTH = {
  body: path.join(__dirname, 'pooler-auth.sh'),
  program: 'learnflow-pooler-auth',
  exits: {
    ok: { code: 0, retried: false, meaning: "the pooler's lookup role and function are in place" },
    failed: { code: 1, retried: false, meaning: 'the password file is missing, or the SQL failed' },
    connectionFailed: { code: 8, retried: true, meaning: 'the database was unreachable within the wait' },
  },
  knobs: {
    passwordFile: { env: 'POOLER_PASSWORD_FILE' },
    authUser: { env: 'POOLER_AUTH_USER', default: POOLER_AUTH_USER },
    dbWaitSeconds: { env: 'POOLER_AUTH_DB_WAIT_SECONDS', default: '300', rule: { kind: 'whole', unit: 'seconds', min: 2, max: 86400 } },
  },
  constants: { POOLER_AUTH_SCHEMA },
} as const satisfies ScriptContract;

/** The contract of userlist.sh, the pooler pod's init container. */
export const USERLIST = {
  body: path.join(__dirname, 'userlist.sh'),
  program: 'learnflow-pooler-login',
  exits: {
    ok: { code: 0, retried: false, meaning: 'the auth_file is written' },
    refused: { code: 1, retried: false, meaning: "the Secret's key is missing, empty or holds a line break" },
  },
  knobs: {
    passwordFile: { env: 'POOLER_PASSWORD_FILE' },
    userlistFile: { env: 'USERLIST_FILE' },
    authUser: { env: 'POOLER_AUTH_USER', default: POOLER_AUTH_USER },
  },
} as const satisfies ScriptContract;

/** PgBouncer's query for a client's verifier: the function pooler-auth.sh creates. */
export const AUTH_QUERY = `SELECT uname, phash FROM ${POOLER_AUTH_SCHEMA}.user_lookup($1)`;

export const poolerAuthScript = (): string => renderScript(POOLER_AUTH);
export const userlistScript = (): string => renderScript(USERLIST);
