// The pooling and replication part of `npm run bench`, with pgbench from the PostgreSQL binaries:
// select-only throughput at 8 clients through the pooler as rendered (test/support/pooler.ts)
// against direct connections, runs interleaved; 4× max_connections clients through each; and a
// standby's replay lag under a write load.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import * as path from 'node:path';
import { formatRatio } from './measure';
import { table } from './report';
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
  /** CPU seconds pgbench itself used (its client threads): on this machine they share the cores with the servers. */
  readonly clientCpuS: number;
}

/** A select-only run with where the machine's CPU went during it. */
export interface SelectOnlyRun extends PgbenchRun {
  /** CPU seconds of the whole machine (every core, /proc/stat) during the run. */
  readonly machineCpuS: number;
  /** CPU seconds of the PgBouncer process (0 for direct connections). */
  readonly poolerCpuS: number;
}

export type SelectOnlyCase = 'direct' | 'pooled' | 'pooledNoReset';

export interface PoolingResults {
  readonly clients: number;
  readonly seconds: number;
  /** Interleaved runs: direct, through the pooler as rendered, and (a diagnostic, not what ships) without the reset query. */
  readonly selectOnly: Readonly<Record<SelectOnlyCase, readonly SelectOnlyRun[]>>;
  readonly maxConnections: number;
  readonly overload: { readonly clients: number; readonly expected: number; readonly direct: PgbenchRun; readonly pooled: PgbenchRun };
  readonly lag: { readonly samples: number; readonly medianBytes: number; readonly maxBytes: number; readonly writeTps: number };
}

/** Room for both poolers' server connections (8 each, kept open between runs) and 8 direct clients at once. */
const MAX_CONNECTIONS = 40;
const SELECT_ONLY_SECONDS = 8;
const CLOCK_TICKS = 100; // USER_HZ: /proc's CPU times are in 1/100 s on Linux

/** Debian's PgBouncer, where scripts/test-tools.sh and test/support/tools.ts find it. */
function pgbouncerPath(): string {
  if (process.env.LEARNFLOW_PGBOUNCER) return process.env.LEARNFLOW_PGBOUNCER;
  const which = spawnSync('sh', ['-c', 'command -v pgbouncer'], { encoding: 'utf8' }).stdout.trim();
  return which || '/usr/sbin/pgbouncer';
}
const APP_USER = 'learnflow';

/** Busy CPU seconds of the whole machine so far (every core: all but idle and iowait). */
function machineCpuS(): number {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const ticks = fields.slice(0, 8).map(Number);
  return (ticks.reduce((a, b) => a + b, 0) - ticks[3] - ticks[4]) / CLOCK_TICKS;
}

/** CPU seconds (user + system) of the PgBouncer process running `iniFile`; 0 when not found. */
function poolerCpuS(iniFile: string): number {
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (!cmdline[0].endsWith('pgbouncer') || !cmdline.includes(iniFile)) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS; // utime, stime
    } catch {
      // gone meanwhile
    }
  }
  return 0;
}

function pgbench(pg: Pg, port: number, password: string, args: string[]): PgbenchRun {
  // `times` prints the shell's and then its children's CPU times: pgbench's own.
  const r = spawnSync('sh', ['-c', '"$0" "$@"; s=$?; times >&2; exit $s', path.join(pg.bindir, 'pgbench'), ...args], {
    encoding: 'utf8',
    env: { PATH: pg.env().PATH, PGHOST: pg.host, PGPORT: String(port), PGUSER: APP_USER, PGPASSWORD: password, PGDATABASE: 'learnflow', PGSSLMODE: 'disable' },
    maxBuffer: 64 * 2 ** 20,
  });
  const tps = Number(/tps = ([0-9.]+)/.exec(r.stdout)?.[1] ?? 0);
  const transactions = Number(/number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1] ?? 0);
  const times = [...r.stderr.matchAll(/^(\d+)m([0-9.]+)s (\d+)m([0-9.]+)s$/gm)].at(-1);
  const clientCpuS = times ? 60 * Number(times[1]) + Number(times[2]) + 60 * Number(times[3]) + Number(times[4]) : 0;
  const stderr = r.stderr.replace(/^\d+m[0-9.]+s \d+m[0-9.]+s\n?/gm, '');
  const error = r.status === 0 ? undefined : (stderr.split('\n').find((l) => /too many clients|connection|error/i.test(l)) ?? stderr.trim().split('\n').at(-1));
  return { tps, transactions, ok: r.status === 0 && !/aborted/.test(r.stdout), error, clientCpuS };
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
    // Diagnostic only: the same configuration without the reset after each transaction, which
    // the rendered one keeps (test/pooling/pgbouncer.test.ts fails without it).
    const noReset = await startPooler(all, pg, poolerPassword, pgbouncerPath(), {
      adjustIni: (ini) => ini.replace(/^server_reset_query_always = 1$/m, 'server_reset_query_always = 0'),
    });
    try {
      log('pooling: pgbench -i');
      const init = spawnSync(path.join(pg.bindir, 'pgbench'), ['-i', '-s', '5', '-q'], {
        encoding: 'utf8', env: { PATH: pg.env().PATH, PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: APP_USER, PGPASSWORD: appPassword, PGDATABASE: 'learnflow' },
      });
      if (init.status !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
      const clients = 8;
      const selectOnly: Record<SelectOnlyCase, SelectOnlyRun[]> = { direct: [], pooled: [], pooledNoReset: [] };
      const ports: Record<SelectOnlyCase, { port: number; ini?: string }> = {
        direct: { port: pg.port }, pooled: { port: pooler.port, ini: pooler.iniFile }, pooledNoReset: { port: noReset.port, ini: noReset.iniFile },
      };
      const args = ['-S', '-n', '-c', String(clients), '-j', '2', '-T', String(SELECT_ONLY_SECONDS)];
      for (let i = 0; i < rounds; i++) {
        log(`pooling: select-only, ${clients} clients, round ${i + 1}/${rounds}`);
        for (const which of Object.keys(ports) as SelectOnlyCase[]) {
          const { port, ini } = ports[which];
          const [machine0, pooler0] = [machineCpuS(), ini ? poolerCpuS(ini) : 0];
          const run = pgbench(pg, port, appPassword, args);
          selectOnly[which].push({ ...run, machineCpuS: machineCpuS() - machine0, poolerCpuS: ini ? poolerCpuS(ini) - pooler0 : 0 });
        }
      }
      log(`pooling: ${4 * MAX_CONNECTIONS} clients`);
      const overloadClients = 4 * MAX_CONNECTIONS;
      const perClient = 50;
      const overloadArgs = ['-S', '-n', '-c', String(overloadClients), '-j', '2', '-t', String(perClient)];
      const direct = pgbench(pg, pg.port, appPassword, overloadArgs);
      const pooled = pgbench(pg, pooler.port, appPassword, overloadArgs);
      const lag = await benchLag(log);
      return { clients, seconds: SELECT_ONLY_SECONDS, selectOnly, maxConnections: MAX_CONNECTIONS, overload: { clients: overloadClients, expected: overloadClients * perClient, direct, pooled }, lag };
    } finally {
      await noReset.stop();
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

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const LABELS: Record<SelectOnlyCase, string> = {
  direct: 'direct connections',
  pooled: 'through the pooler, as rendered',
  pooledNoReset: 'through the pooler without the reset (diagnostic)',
};

/** Median select-only throughput of `which` over direct connections'. */
export function poolingRatio(p: PoolingResults, which: SelectOnlyCase): number {
  return median(p.selectOnly[which].map((r) => r.tps)) / median(p.selectOnly.direct.map((r) => r.tps));
}

/** CPU milliseconds per 1,000 transactions over the runs of a case. */
function cpuPerThousand(runs: readonly SelectOnlyRun[], cpu: (r: SelectOnlyRun) => number): string {
  const transactions = runs.reduce((a, r) => a + r.transactions, 0);
  return transactions ? ((1000 * 1000 * runs.reduce((a, r) => a + cpu(r), 0)) / transactions).toFixed(0) : '-';
}

export function poolingSection(p: PoolingResults | undefined): string {
  if (!p) return 'Not measured (`--skip-pooling`).';
  const cases = Object.keys(LABELS) as SelectOnlyCase[];
  const rows = cases.map((which) => {
    const runs = p.selectOnly[which];
    return [
      LABELS[which],
      runs.map((r) => r.tps.toFixed(0)).join(', '),
      median(runs.map((r) => r.tps)).toFixed(0),
      which === 'direct' ? '1.00×' : formatRatio(poolingRatio(p, which)),
      cpuPerThousand(runs, (r) => r.clientCpuS),
      which === 'direct' ? '-' : cpuPerThousand(runs, (r) => r.poolerCpuS),
      cpuPerThousand(runs, (r) => r.machineCpuS - r.clientCpuS - r.poolerCpuS),
      `${(100 * median(runs.map((r) => r.machineCpuS / (cpus().length * p.seconds)))).toFixed(0)} %`,
    ];
  });
  return `PgBouncer (Debian's) with the pgbouncer.ini the synth renders (\`pooler.defaultPoolSize: 8\`), PostgreSQL with
max_connections ${p.maxConnections}, \`pgbench -S -n -c ${p.clients} -j 2 -T ${p.seconds}\` (select-only, scale 5), the three cases
interleaved in each round. CPU in milliseconds per 1,000 transactions: pgbench's own (its \`times\`), PgBouncer's
(\`/proc/<pid>/stat\`), and the rest of the machine's (\`/proc/stat\`: PostgreSQL, and anything else running).

${table(['', 'tps, each run', 'median', 'of direct', 'pgbench CPU', 'PgBouncer CPU', 'PostgreSQL and rest', 'machine busy'], rows)}

Everything shares ${cpus().length} cores here, and a select-only transaction is so cheap that the cores are the limit: the
pooler's CPU per transaction (the protocol, and with \`server_reset_query_always = 1\` a \`DISCARD ALL\` on the
server after every transaction, so that no client's session state reaches the next) is taken from PostgreSQL and
pgbench, and the extra network hop adds latency to every transaction. Without the reset (a diagnostic: in transaction
pooling it would hand one client's \`SET\`s, temporary tables and prepared statements to the next, which
test/pooling/pgbouncer.test.ts shows) the pooler reaches the ratio of the third row. The rendered configuration
keeps the reset.

${p.overload.clients} clients, 50 select-only transactions each: through the pooler ${p.overload.pooled.transactions} of
${p.overload.expected} completed (${p.overload.pooled.tps.toFixed(0)} tps); direct: ${p.overload.direct.ok ? 'completed' : `failed (${p.overload.direct.error})`}.

A standby from \`pg_basebackup\` streaming (asynchronous, the settings the values render) while \`pgbench\` writes
(TPC-B, 4 clients, 15 s, ${p.lag.writeTps.toFixed(0)} tps): replay lag sampled ${p.lag.samples} times on the primary,
median ${p.lag.medianBytes} bytes, at most ${p.lag.maxBytes} bytes of WAL (verification allows 16 MiB by default).`;
}
