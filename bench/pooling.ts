// The pooling and replication part of `npm run bench`, with pgbench from the PostgreSQL binaries:
// select-only throughput at 8 clients through the pooler as rendered (test/support/pooler.ts)
// against direct connections, runs interleaved; 4× max_connections clients through each; and a
// standby's replay lag under a write load.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { renderManifests } from '../test/support/dist-job';
import { Pg, startPostgres } from '../test/support/postgres';
import { runPoolerAuthJob, startPooler } from '../test/support/pooler';
import { primaryReplicationSettings, startStandby } from '../test/support/replication';
import { REPLICATION_APPLICATION_NAME, REPLICATION_USER, renderHelmValues } from '../lib/helm-values';
import { resolveConfig } from '../lib/config';

export interface PgbenchRun {
  readonly tps: number;
  readonly transactions: number;
  readonly ok: boolean;
  readonly error?: string;
}

export interface PoolingResults {
  readonly clients: number;
  readonly selectOnly: { readonly direct: number[]; readonly pooled: number[] };
  readonly maxConnections: number;
  readonly overload: { readonly clients: number; readonly expected: number; readonly direct: PgbenchRun; readonly pooled: PgbenchRun };
  readonly lag: { readonly samples: number; readonly medianBytes: number; readonly maxBytes: number; readonly writeTps: number };
}

const MAX_CONNECTIONS = 20;

/** Debian's PgBouncer, where scripts/test-tools.sh and test/support/tools.ts find it. */
function pgbouncerPath(): string {
  if (process.env.LEARNFLOW_PGBOUNCER) return process.env.LEARNFLOW_PGBOUNCER;
  const which = spawnSync('sh', ['-c', 'command -v pgbouncer'], { encoding: 'utf8' }).stdout.trim();
  return which || '/usr/sbin/pgbouncer';
}
const APP_USER = 'learnflow';

function pgbench(pg: Pg, port: number, password: string, args: string[]): PgbenchRun {
  const r = spawnSync(path.join(pg.bindir, 'pgbench'), args, {
    encoding: 'utf8',
    env: { PATH: pg.env().PATH, PGHOST: pg.host, PGPORT: String(port), PGUSER: APP_USER, PGPASSWORD: password, PGDATABASE: 'learnflow', PGSSLMODE: 'disable' },
    maxBuffer: 64 * 2 ** 20,
  });
  const tps = Number(/tps = ([0-9.]+)/.exec(r.stdout)?.[1] ?? 0);
  const transactions = Number(/number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1] ?? 0);
  const error = r.status === 0 ? undefined : (r.stderr.split('\n').find((l) => /too many clients|connection|error/i.test(l)) ?? r.stderr.trim().split('\n').at(-1));
  return { tps, transactions, ok: r.status === 0 && !/aborted/.test(r.stdout), error };
}

export async function benchPooling(rounds: number, log: (m: string) => void): Promise<PoolingResults> {
  const appPassword = randomBytes(18).toString('hex');
  const poolerPassword = randomBytes(18).toString('hex');
  const pg = await startPostgres({ settings: { max_connections: String(MAX_CONNECTIONS) } });
  try {
    pg.psql('postgres', `CREATE ROLE ${APP_USER} LOGIN PASSWORD '${appPassword}'; CREATE DATABASE learnflow OWNER ${APP_USER};`);
    const all = renderManifests([], { pooler: { enabled: true, defaultPoolSize: 8 } });
    const job = await runPoolerAuthJob(all, pg, { 'postgres-password': pg.password, 'pooler-password': poolerPassword });
    if (job.code !== 0) throw new Error(`pooler-auth failed: ${job.stderr}`);
    const pooler = await startPooler(all, pg, poolerPassword, pgbouncerPath());
    try {
      log('pooling: pgbench -i');
      const init = spawnSync(path.join(pg.bindir, 'pgbench'), ['-i', '-s', '5', '-q'], {
        encoding: 'utf8', env: { PATH: pg.env().PATH, PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: APP_USER, PGPASSWORD: appPassword, PGDATABASE: 'learnflow' },
      });
      if (init.status !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
      const clients = 8;
      const selectOnly = { direct: [] as number[], pooled: [] as number[] };
      for (let i = 0; i < rounds; i++) {
        log(`pooling: select-only, 8 clients, round ${i + 1}/${rounds}`);
        const args = ['-S', '-n', '-c', String(clients), '-j', '2', '-T', '8'];
        selectOnly.direct.push(pgbench(pg, pg.port, appPassword, args).tps);
        selectOnly.pooled.push(pgbench(pg, pooler.port, appPassword, args).tps);
      }
      log(`pooling: ${4 * MAX_CONNECTIONS} clients`);
      const overloadClients = 4 * MAX_CONNECTIONS;
      const perClient = 50;
      const overloadArgs = ['-S', '-n', '-c', String(overloadClients), '-j', '2', '-t', String(perClient)];
      const direct = pgbench(pg, pg.port, appPassword, overloadArgs);
      const pooled = pgbench(pg, pooler.port, appPassword, overloadArgs);
      const lag = await benchLag(log);
      return { clients, selectOnly, maxConnections: MAX_CONNECTIONS, overload: { clients: overloadClients, expected: overloadClients * perClient, direct, pooled }, lag };
    } finally {
      await pooler.stop();
    }
  } finally {
    await pg.stop();
  }
}

/** A standby's replay lag, sampled on the primary every 100 ms while pgbench writes (TPC-B, 4 clients, 15 s). */
async function benchLag(log: (m: string) => void): Promise<PoolingResults['lag']> {
  const props = { readReplicas: { count: 1 } };
  const values = renderHelmValues(resolveConfig(props), 'unused');
  const appPassword = randomBytes(18).toString('hex');
  const replicationPassword = randomBytes(18).toString('hex');
  const primary = await startPostgres({ settings: primaryReplicationSettings(values as any) });
  try {
    primary.psql('postgres', `CREATE ROLE ${REPLICATION_USER} REPLICATION LOGIN PASSWORD '${replicationPassword}'; CREATE ROLE ${APP_USER} LOGIN PASSWORD '${appPassword}'; CREATE DATABASE learnflow OWNER ${APP_USER};`);
    const standby = await startStandby(primary, REPLICATION_USER, replicationPassword, REPLICATION_APPLICATION_NAME);
    try {
      const env = { PATH: primary.env().PATH, PGHOST: primary.host, PGPORT: String(primary.port), PGUSER: APP_USER, PGPASSWORD: appPassword, PGDATABASE: 'learnflow' };
      spawnSync(path.join(primary.bindir, 'pgbench'), ['-i', '-s', '5', '-q'], { env });
      log('replication: lag under pgbench writes, 15 s');
      const { spawn } = await import('node:child_process');
      const writer = spawn(path.join(primary.bindir, 'pgbench'), ['-c', '4', '-j', '2', '-T', '15', '-n'], { env });
      let out = '';
      writer.stdout.on('data', (d) => (out += d));
      const samples: number[] = [];
      let done = false;
      writer.on('close', () => (done = true));
      while (!done) {
        const lag = primary.psql('postgres', `SELECT coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), -1) FROM pg_stat_replication WHERE application_name = '${REPLICATION_APPLICATION_NAME}'`);
        if (lag !== '' && Number(lag) >= 0) samples.push(Number(lag));
        await new Promise((r) => setTimeout(r, 100));
      }
      const sorted = [...samples].sort((a, b) => a - b);
      return { samples: samples.length, medianBytes: sorted[Math.floor(sorted.length / 2)] ?? 0, maxBytes: sorted.at(-1) ?? 0, writeTps: Number(/tps = ([0-9.]+)/.exec(out)?.[1] ?? 0) };
    } finally {
      standby.remove();
    }
  } finally {
    await primary.stop();
  }
}
