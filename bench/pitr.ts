// Point-in-time recovery in the bench: the restore template's command against the floor (the
// same base backup extracted and the same archived WAL replayed by hand with PostgreSQL's own
// tools: tar, a restore_command, recovery.signal, pg_ctl), on a database of at least 1 GB; and
// the data at risk (seconds of commits lost when the primary and its disk are lost at a random
// moment) with production's archive_timeout.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { PG_PATH, PitrServer, PitrWorkspace, archiveCurrentSegment, ownForServer, pitrWorkspace, renderedArtifacts, runAsServer, startPitrServer } from '../test/support/pitr';
import { PROFILES } from '../lib/profiles';
import { Sample, median } from './measure';

export interface PitrResults {
  readonly databaseBytes: number;
  readonly baseBackupBytes: number;
  readonly walBytes: number;
  readonly walSegments: number;
  readonly ours: Sample;
  readonly floor: Sample;
  readonly archiveTimeoutSeconds: number;
  /** Seconds of acknowledged commits lost, one per sample. */
  readonly atRisk: readonly number[];
}

const log = (message: string) => process.stderr.write(`bench: pitr: ${message}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The archive timeout production renders (lib/profiles.ts), 60 s when it sets none. */
function productionArchiveTimeout(): number {
  const pitr = (PROFILES.production as { pitr?: { archiveTimeoutSeconds?: number } }).pitr;
  return pitr?.archiveTimeoutSeconds ?? 60;
}

export async function benchPitr(work: string, runs: number, scale: number): Promise<PitrResults> {
  const dir = path.join(work, 'pitr');
  mkdirSync(dir, { recursive: true });
  ownForServer(work);
  const archiveTimeoutSeconds = productionArchiveTimeout();
  log(`data at risk: two primaries with archive_timeout ${archiveTimeoutSeconds} s, lost at random moments`);
  const atRisk = await Promise.all([0, 1].map((i) => measureDataAtRisk(path.join(dir, `risk-${i}`), archiveTimeoutSeconds)));

  const ws = pitrWorkspace(path.join(dir, 'size'), renderedArtifacts(archiveTimeoutSeconds));
  const primary = await startPitrServer(ws, 'primary', 'max_wal_size = 4GB\ncheckpoint_timeout = 30min');
  let databaseBytes: number;
  try {
    log(`pgbench -i -s ${scale} (about ${(scale * 15).toLocaleString('en')} MB)`);
    pgbench(primary, ['-i', '-q', '-s', String(scale), 'postgres']);
    databaseBytes = Number(primary.psql(`SELECT pg_database_size('postgres')`));
    log(`base backup of ${(databaseBytes / 2 ** 30).toFixed(2)} GiB with the CronJob's command`);
    const backup = await ws.run('basebackup.sh', [], primary.env());
    if (backup.code !== 0) throw new Error(`basebackup.sh exited ${backup.code}: ${backup.stderr}`);
    log('pgbench -T 60 after the base backup: the WAL to replay');
    pgbench(primary, ['-T', '60', '-c', '2', '-j', '2', 'postgres']);
    await archiveCurrentSegment(primary, 600_000);
  } finally {
    primary.crash();
  }
  const base = readdirSync(path.join(ws.backupDir, 'base'))[0];
  const baseDir = path.join(ws.backupDir, 'base', base);
  const baseBackupBytes = readdirSync(baseDir).reduce((sum, f) => sum + statSync(path.join(baseDir, f)).size, 0);
  const wal = readdirSync(path.join(ws.backupDir, 'wal')).filter((f) => /^[0-9A-F]{24}\.gz$/.test(f));
  const walBytes = wal.reduce((sum, f) => sum + statSync(path.join(ws.backupDir, 'wal', f)).size, 0);

  log(`restore of ${base} plus ${wal.length} archived segments: the template's command against the floor, ${runs} runs each, interleaved`);
  const times = { ours: [] as number[], floor: [] as number[] };
  for (let round = 0; round < runs; round++) {
    for (const variant of ['floor', 'ours'] as const) {
      const data = path.join(ws.dir, `restore-${variant}-${round}`, 'data');
      mkdirSync(path.dirname(data), { recursive: true });
      ownForServer(path.dirname(data));
      const started = process.hrtime.bigint();
      if (variant === 'ours') {
        const result = await ws.run('restore.sh', [], { RESTORE_TARGET: 'latest', PGDATA: data });
        if (result.code !== 0) throw new Error(`restore.sh exited ${result.code}: ${result.stderr}`);
      } else {
        await floorRestore(ws, baseDir, data);
      }
      times[variant].push(Number(process.hrtime.bigint() - started) / 1e6);
      log(`${variant} run ${round + 1}: ${(times[variant].at(-1)! / 1000).toFixed(1)} s`);
      rmSync(path.dirname(data), { recursive: true, force: true });
    }
  }
  const sample = (id: string, list: number[]): Sample => ({ id, runs: list, median: median(list) });
  return { databaseBytes, baseBackupBytes, walBytes, walSegments: wal.length, ours: sample('ours', times.ours), floor: sample('floor', times.floor), archiveTimeoutSeconds, atRisk };
}

/** By hand: extract the base backup, point restore_command at the archive, recover, stop. */
async function floorRestore(ws: PitrWorkspace, baseDir: string, data: string): Promise<void> {
  const walDir = path.join(ws.backupDir, 'wal');
  const conf = `${data}.conf`;
  writeFileSync(conf, [
    `listen_addresses = ''`, `unix_socket_directories = '${path.dirname(data)}'`, 'hot_standby = off', 'archive_mode = off',
    `restore_command = 'gzip -dc ${walDir}/%f.gz > %p'`, `recovery_target_action = 'promote'`, '',
  ].join('\n'));
  writeFileSync(`${data}.hba`, 'local all all trust\n');
  ownForServer(path.dirname(data));
  const script = [
    'set -e',
    `mkdir -m 700 '${data}' && mkdir '${data}/pg_wal'`,
    `tar -xzf '${baseDir}/base.tar.gz' -C '${data}'`,
    `tar -xzf '${baseDir}/pg_wal.tar.gz' -C '${data}/pg_wal'`,
    `touch '${data}/recovery.signal'`,
    `pg_ctl -D '${data}' -l '${data}.log' -w -t 3600 -o '-c config_file=${conf} -c hba_file=${data}.hba' start >/dev/null`,
    `until pg_isready -q -h '${path.dirname(data)}' -d postgres; do sleep 0.2; done`,
    `pg_ctl -D '${data}' -m fast -w stop >/dev/null`,
  ].join('\n');
  const result = await runAsServer('sh', ['-c', script], {});
  if (result.code !== 0) throw new Error(`floor restore failed: ${result.stderr}`);
}

function pgbench(pg: PitrServer, args: string[]): void {
  execFileSync('pgbench', args, { env: { ...process.env, PATH: PG_PATH, ...pg.env() }, stdio: 'ignore' });
}

/**
 * A primary committing one row every 200 ms; at a random moment between 1.25 and 2.25 archive
 * timeouts the server is killed and its data directory deleted; the restore template recovers
 * the latest state from the archive. Returns the seconds between the last recovered commit and
 * the loss.
 */
async function measureDataAtRisk(dir: string, archiveTimeoutSeconds: number): Promise<number> {
  const ws = pitrWorkspace(dir, renderedArtifacts(archiveTimeoutSeconds));
  const pg = await startPitrServer(ws, 'primary');
  pg.psql('CREATE TABLE commits (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())');
  pg.psql('INSERT INTO commits (id) VALUES (0)');
  const backup = await ws.run('basebackup.sh', [], pg.env());
  if (backup.code !== 0) throw new Error(`basebackup.sh exited ${backup.code}: ${backup.stderr}`);
  const lossAfter = (1.25 + Math.random()) * archiveTimeoutSeconds * 1000;
  const started = Date.now();
  const committed: { id: number; before: number }[] = [];
  for (let id = 1; Date.now() - started < lossAfter; id++) {
    const before = Date.now();
    pg.psql(`INSERT INTO commits (id) VALUES (${id})`);
    committed.push({ id, before });
    await sleep(200);
  }
  const lostAt = Date.now();
  pg.crash();
  rmSync(pg.dataDir, { recursive: true, force: true });
  const restore = await ws.run('restore.sh', [], { RESTORE_TARGET: 'latest', PGDATA: pg.dataDir });
  if (restore.code !== 0) throw new Error(`restore.sh exited ${restore.code}: ${restore.stderr}`);
  pg.start();
  try {
    const last = Number(pg.psql('SELECT max(id) FROM commits'));
    const kept = committed.find((c) => c.id === last);
    return (lostAt - (kept?.before ?? started)) / 1000;
  } finally {
    pg.crash();
  }
}
