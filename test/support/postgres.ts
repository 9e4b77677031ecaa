// A throwaway PostgreSQL server for tests: initdb into a temp dir, password auth, 127.0.0.1 only.
// One server per test file (beforeAll/afterAll), a fresh database per test.
import { ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './ports';

export interface Pg {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** Directory with initdb, pg_ctl, psql, … (put first on PATH for child processes). */
  readonly bindir: string;
  /** libpq variables for `db` (default `postgres`), plus PATH with the server's binaries first. */
  env(db?: string): Record<string, string>;
  createDatabase(name: string): void;
  /** Runs `sql` with `psql -XAt -v ON_ERROR_STOP=1`; returns stdout without the final newline. */
  psql(db: string, sql: string): string;
  /** A long-lived psql session, e.g. to hold a lock while something else runs. */
  session(db: string): PsqlSession;
  /** `pg_ctl reload` (SIGHUP: the server re-reads its configuration and certificates) or a restart with the same settings. */
  ctl(action: 'reload' | 'restart'): void;
  stop(): Promise<void>;
}

export interface PostgresOptions {
  /** Server settings beside the test defaults, e.g. `{ ssl: 'on', ssl_cert_file: '/…' }` (files readable by the server's user). */
  readonly settings?: Readonly<Record<string, string>>;
}

export interface PsqlSession {
  /** Sends `sql` (`;` added if missing) and resolves with its output once it has run; rejects if its last statement failed. */
  query(sql: string, timeoutMs?: number): Promise<string>;
  close(): Promise<void>;
}

/** The directory with the PostgreSQL server binaries, newest major version first. */
export function findPostgresBindir(): string {
  const root = '/usr/lib/postgresql';
  const candidates = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
        .map((v) => path.join(root, v, 'bin'))
    : [];
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim());
  } catch {
    // no pg_config on PATH
  }
  const found = candidates.find((dir) => existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'pg_ctl')));
  if (!found) {
    throw new Error(
      'PostgreSQL server binaries not found (looked for initdb and pg_ctl in /usr/lib/postgresql/*/bin and `pg_config --bindir`). ' +
        'Install them, e.g. `apt-get install -y postgresql`, to run the migration tests.',
    );
  }
  return found;
}

/** initdb refuses to run as root: as root, run the server tools as the `postgres` user. */
export function asServerUser(): { uid: number; gid: number; wrap: (cmd: string, args: string[]) => [string, string[]] } | null {
  if (process.getuid?.() !== 0) return null;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  let uid: number;
  try {
    uid = id('-u');
  } catch {
    throw new Error('running as root and there is no `postgres` user to run initdb as (install the postgresql package, which creates it)');
  }
  const runuser = ['/usr/sbin/runuser', '/sbin/runuser'].find((p) => existsSync(p));
  const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  return {
    uid,
    gid: id('-g'),
    wrap: (cmd, args) =>
      runuser ? [runuser, ['-u', 'postgres', '--', cmd, ...args]] : ['su', ['postgres', '-s', '/bin/sh', '-c', [cmd, ...args].map(quote).join(' ')]],
  };
}

export async function startPostgres(startOptions: PostgresOptions = {}): Promise<Pg> {
  const bindir = findPostgresBindir();
  const server = asServerUser();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'learnflow-pg-'));
  const data = path.join(dir, 'data');
  const sockets = path.join(dir, 'sockets');
  const pwfile = path.join(dir, 'pwfile');
  const log = path.join(dir, 'server.log');
  const user = 'postgres';
  const password = randomBytes(12).toString('hex');
  mkdirSync(sockets);
  writeFileSync(pwfile, password + '\n', { mode: 0o600 });
  if (server) for (const p of [dir, sockets, pwfile]) chownSync(p, server.uid, server.gid);

  const run = (tool: string, args: string[]) => {
    const [cmd, argv] = server ? server.wrap(path.join(bindir, tool), args) : [path.join(bindir, tool), args];
    try {
      return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e: any) {
      throw new Error(`${tool} ${args.join(' ')} failed: ${e.stderr || e.message}`);
    }
  };

  let port = 0;
  let options = '';
  try {
    run('initdb', ['-D', data, '-U', user, '--auth=scram-sha-256', `--pwfile=${pwfile}`, '--no-sync', '--no-locale', '-E', 'UTF8']);
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      options = [
        `-c listen_addresses=127.0.0.1 -p ${port} -k ${sockets}`,
        '-c fsync=off -c full_page_writes=off -c synchronous_commit=off',
        ...Object.entries(startOptions.settings ?? {}).map(([name, value]) => `-c ${name}=${value}`),
      ].join(' ');
      try {
        run('pg_ctl', ['-D', data, '-l', log, '-w', '-t', '60', '-o', options, 'start']);
        break;
      } catch (e) {
        // Most likely the port was taken between freePort() and the start: try another.
        if (attempt >= 3) throw new Error(`${(e as Error).message}\nserver log:\n${existsSync(log) ? readFileSync(log, 'utf8') : '(none)'}`);
      }
    }
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }

  const host = '127.0.0.1';
  const env = (db = 'postgres'): Record<string, string> => ({
    PATH: `${bindir}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    PGHOST: host,
    PGPORT: String(port),
    PGUSER: user,
    PGPASSWORD: password,
    PGDATABASE: db,
  });
  const psql = (db: string, sql: string): string =>
    execFileSync(path.join(bindir, 'psql'), ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-f', '-'], {
      input: sql,
      encoding: 'utf8',
      env: env(db),
      stdio: ['pipe', 'pipe', 'pipe'],
    }).replace(/\n$/, '');
  const serverVersion = Number(psql('postgres', 'SHOW server_version_num'));

  return {
    host,
    port,
    user,
    password,
    bindir,
    env,
    psql,
    // FILE_COPY (PostgreSQL 15+) copies the small template at about twice the speed of WAL_LOG.
    createDatabase: (name) => void psql('postgres', `CREATE DATABASE "${name}"${serverVersion >= 150000 ? ' STRATEGY FILE_COPY' : ''}`),
    session: (db) => openSession(path.join(bindir, 'psql'), env(db)),
    ctl: (action) => void run('pg_ctl', ['-D', data, '-l', log, '-w', '-t', '60', ...(action === 'restart' ? ['-o', options] : []), action]),
    stop: async () => {
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

function openSession(psqlPath: string, env: Record<string, string>): PsqlSession {
  const child: ChildProcessWithoutNullStreams = spawn(psqlPath, ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=0'], { env });
  let stdout = '';
  let stderr = '';
  let waiter: (() => void) | null = null;
  child.stdout.on('data', (d) => {
    stdout += d;
    waiter?.();
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  let n = 0;
  return {
    query: (sql, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const marker = `__learnflow_done_${++n}__`;
        const errorsBefore = stderr.length;
        const timer = setTimeout(() => reject(new Error(`session query timed out after ${timeoutMs} ms: ${sql}`)), timeoutMs);
        waiter = () => {
          const at = stdout.indexOf(marker);
          const end = stdout.indexOf('\n', at);
          if (at < 0 || end < 0) return;
          const failed = stdout.slice(at + marker.length, end).trim() === 'true';
          const out = stdout.slice(0, at).replace(/\n$/, '');
          stdout = stdout.slice(end + 1);
          waiter = null;
          clearTimeout(timer);
          // psql sets :ERROR after each statement; stderr may lag stdout by a moment.
          if (failed) setTimeout(() => reject(new Error(stderr.slice(errorsBefore).trim() || `session query failed: ${sql}`)), 50);
          else resolve(out);
        };
        const statements = sql.trim().endsWith(';') ? sql.trim() : `${sql.trim()};`;
        child.stdin.write(`${statements}\n\\echo ${marker} :ERROR\n`);
      }),
    close: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.on('exit', () => resolve());
        child.stdin.end();
      }),
  };
}


/** The libpq variables that point a Job's command at `db` on `pg`, as the user whose password is given. */
export function connectionEnv(pg: Pg, db: string, password: string): Record<string, string> {
  return { PATH: pg.env().PATH, PGHOST: pg.host, PGPORT: String(pg.port), PGDATABASE: db, PGPASSWORD: password };
}
