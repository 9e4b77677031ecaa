import { PoolMode } from './props';
import { AUTH_QUERY, POOLER_AUTH_USER } from './contracts';

/** Where the pooler pod keeps its files. */
export const POOLER_PATHS = {
  /** The ConfigMap with pgbouncer.ini. */
  configDir: '/etc/pgbouncer',
  /** The memory-backed volume with the auth_file the init container writes. */
  authDir: '/run/pgbouncer',
  /** The credentials Secret's pooler-password key, alone, as a file. */
  keyDir: '/run/learnflow/pooler-key',
  /** The database's CA certificate (tls.certificatesSecret's ca.crt), for verify-full. */
  caDir: '/etc/pgbouncer/server-ca',
} as const;

export const PGBOUNCER_INI = 'pgbouncer.ini';
export const USERLIST_FILE = `${POOLER_PATHS.authDir}/userlist.txt`;

export interface PgbouncerSettings {
  /** The database clients name, and where it lives. */
  readonly databaseName: string;
  readonly serverHost: string;
  readonly serverPort: number;
  readonly listenPort: number;
  readonly poolMode: PoolMode;
  readonly maxClientConnections: number;
  readonly defaultPoolSize: number;
  /**
   * libpq's sslmode towards the database: verify-full with the database's CA (`serverCaFile`),
   * require with TLS and no CA to check against, prefer without TLS.
   */
  readonly serverSslMode: 'verify-full' | 'require' | 'prefer';
  readonly serverCaFile?: string;
}

/**
 * pgbouncer.ini as the pooler runs it (and the tests run it against a real PostgreSQL). Only
 * settings PgBouncer 1.18 (Debian's, in the tests) and 1.24 (the image) both read.
 */
export function renderPgbouncerIni(s: PgbouncerSettings): string {
  const lines = [
    '; PgBouncer, rendered by learnflow-postgres (lib/pooling/pgbouncer-ini.ts).',
    '[databases]',
    // Only the application's database: a client naming another one is refused.
    `${s.databaseName} = host=${s.serverHost} port=${s.serverPort} dbname=${s.databaseName}`,
    '',
    '[pgbouncer]',
    'listen_addr = *',
    `listen_port = ${s.listenPort}`,
    // No Unix socket: the root file system is read-only and nobody in the pod needs one.
    'unix_socket_dir =',
    // Clients log in as the database's own users: PgBouncer asks the database for the user's
    // SCRAM verifier (auth_query, as auth_user), so no password is copied anywhere.
    'auth_type = scram-sha-256',
    `auth_file = ${USERLIST_FILE}`,
    `auth_user = ${POOLER_AUTH_USER}`,
    `auth_query = ${AUTH_QUERY}`,
    `pool_mode = ${s.poolMode}`,
    `max_client_conn = ${s.maxClientConnections}`,
    `default_pool_size = ${s.defaultPoolSize}`,
    'min_pool_size = 0',
    'reserve_pool_size = 0',
    // Session state a client leaves behind (SET, temporary tables, prepared statements) is reset
    // before the next one gets the connection, in every pool mode: in transaction pooling
    // PgBouncer would otherwise hand it on (test/pooling/pgbouncer.test.ts shows it).
    'server_reset_query = DISCARD ALL',
    'server_reset_query_always = 1',
    'server_check_query = SELECT 1',
    // JDBC drivers send it on startup; PgBouncer would refuse the connection otherwise.
    'ignore_startup_parameters = extra_float_digits',
    // A client waiting longer than this for a server connection gets an error instead of hanging.
    'query_wait_timeout = 120',
    'server_login_retry = 5',
    `server_tls_sslmode = ${s.serverSslMode}`,
    ...(s.serverCaFile ? [`server_tls_ca_file = ${s.serverCaFile}`] : []),
    'log_connections = 0',
    'log_disconnections = 0',
    'stats_period = 60',
    '',
  ];
  return lines.join('\n');
}
