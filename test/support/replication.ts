// Streaming replication on real servers, set up the way the chart's images set it up from our
// values (Bitnami's postgresql image, libpostgresql.sh): the primary with the replication user
// and, when `replication.synchronousCommit` is not off, synchronous_commit and
// synchronous_standby_names = '<numSynchronousReplicas> ("<applicationName>")'; each replica a
// pg_basebackup of the primary streaming with primary_conninfo's application_name.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './ports';
import { Pg, asServerUser, findPostgresBindir } from './postgres';

/** The primary's settings the image derives from the chart's `replication` values. */
export function primaryReplicationSettings(values: { replication?: { synchronousCommit: string; numSynchronousReplicas: number; applicationName: string } }): Record<string, string> {
  const r = values.replication;
  if (!r) throw new Error('the values render no replication');
  return {
    wal_level: 'replica',
    max_wal_senders: '16',
    wal_keep_size: '128MB',
    ...(r.synchronousCommit !== 'off' && r.numSynchronousReplicas > 0
      ? { synchronous_commit: r.synchronousCommit, synchronous_standby_names: `'${r.numSynchronousReplicas} ("${r.applicationName}")'` }
      : {}),
  };
}

export interface Standby {
  readonly host: string;
  readonly port: number;
  /** psql as the superuser (the primary's, copied by pg_basebackup). */
  psql(db: string, sql: string): string;
  /** Stops it (immediate); it can be started again. */
  stop(): void;
  start(): void;
  remove(): void;
}

/**
 * A standby of `primary`: pg_basebackup as `replicationUser` (its password given), then started
 * streaming with `applicationName`, hot standby on.
 */
export async function startStandby(primary: Pg, replicationUser: string, replicationPassword: string, applicationName: string): Promise<Standby> {
  const bindir = findPostgresBindir();
  const server = asServerUser();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'learnflow-standby-'));
  const data = path.join(dir, 'data');
  const sockets = path.join(dir, 'sockets');
  const log = path.join(dir, 'server.log');
  mkdirSync(sockets);
  if (server) for (const p of [dir, sockets]) chownSync(p, server.uid, server.gid);
  const run = (tool: string, args: string[]) => {
    const [cmd, argv] = server ? server.wrap(path.join(bindir, tool), args) : [path.join(bindir, tool), args];
    try {
      return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e: any) {
      throw new Error(`${tool} ${args.join(' ')} failed: ${e.stderr || e.message}${existsSync(log) ? `\nserver log:\n${readFileSync(log, 'utf8')}` : ''}`);
    }
  };
  const conninfo = `host=${primary.host} port=${primary.port} user=${replicationUser} password=${replicationPassword} application_name=${applicationName}`;
  // -R writes primary_conninfo (with the application_name) and standby.signal, as the image does.
  run('pg_basebackup', ['-D', data, '-d', conninfo, '-X', 'stream', '-R', '--no-sync', '--checkpoint=fast']);
  const port = await freePort();
  const options = `-c listen_addresses=127.0.0.1 -p ${port} -k ${sockets} -c hot_standby=on -c fsync=off -c max_wal_senders=16 -c wal_keep_size=128MB`;
  const start = () => void run('pg_ctl', ['-D', data, '-l', log, '-w', '-t', '60', '-o', options, 'start']);
  start();
  const psql = (db: string, sql: string) => execFileSync(path.join(bindir, 'psql'), ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-f', '-'], {
    input: sql, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...primary.env(db), PGPORT: String(port) },
  }).replace(/\n$/, '');
  return {
    host: '127.0.0.1',
    port,
    psql,
    stop: () => void run('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']),
    start,
    remove: () => {
      try { run('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']); } catch { /* already stopped */ }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Waits until `check` holds, polling; throws with `what` after `timeoutMs`. */
export async function waitUntil(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
