// Point-in-time recovery on real PostgreSQL servers: a primary configured with the archive
// settings the chart's values carry (archive_command running archive.sh from the scripts
// ConfigMap, archive_timeout), the backup volume as a local folder, and the scripts run the way
// their pods run them (`sh <mount>/<script>`), as the server's user.
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { PitrScript, SCRIPTS_MOUNT } from '../../lib/pitr/contracts';
import { App } from 'cdk8s';
import { LearnflowPostgresProps } from '../../lib/config';
import { LearnflowPostgresChart } from '../../lib/learnflow-postgres';
import { loadMigrations } from '../../lib/migrations/files';
import { PROFILES } from '../../lib/profiles';
import { parse } from 'yaml';
import { DIST, Manifest, ROOT, manifests } from './dist';
import { asServerUser, findPostgresBindir } from './postgres';
import { freePort } from './ports';
import { RunnerResult } from './runner-harness';

/** What the manifests hand each part: the scripts ConfigMap's data and the database's archive settings. */
export interface PitrArtifacts {
  readonly scripts: Readonly<Record<PitrScript, string>>;
  /** The lines of primary.extendedConfiguration (archive_mode, archive_command, archive_timeout). */
  readonly postgresqlConf: string;
  /** primary.pgHbaConfiguration. */
  readonly pgHba: string;
  readonly archiveTimeoutSeconds: number;
}

/** The artifacts in a deployment's manifests and chart values: the scripts ConfigMap, the primary's keys. */
function artifactsOf(manifests: readonly Manifest[], values: any): PitrArtifacts {
  const scripts = manifests.find((m) => m.kind === 'ConfigMap' && String(m.metadata.name).endsWith('-pitr-scripts'));
  const conf: string | undefined = values.primary?.extendedConfiguration;
  if (!scripts || !conf) throw new Error('no point-in-time recovery rendered (pitr.enabled is off)');
  return {
    scripts: scripts.data,
    postgresqlConf: conf,
    pgHba: values.primary.pgHbaConfiguration,
    archiveTimeoutSeconds: Number(/^archive_timeout = (\d+)$/m.exec(conf)![1]),
  };
}

/**
 * The artifacts users get: dist/production's when its archive timeout is asked for, else a
 * synthesized copy of production with this archive timeout (the tests that must wait for
 * segment switches use a short one).
 */
export function renderedArtifacts(archiveTimeoutSeconds: number): PitrArtifacts {
  const fromDist = artifactsOf(manifests('production'), parse(readFileSync(path.join(DIST, 'production', 'helm', 'postgresql-values.yaml'), 'utf8')));
  if (fromDist.archiveTimeoutSeconds === archiveTimeoutSeconds) return fromDist;
  const production = PROFILES.production as LearnflowPostgresProps;
  const chart = new LearnflowPostgresChart(new App(), 'learnflow-postgres', {
    ...production,
    pitr: { ...production.pitr, archiveTimeoutSeconds },
    migrationSet: loadMigrations(path.join(ROOT, 'migrations'), { root: ROOT }),
  });
  return artifactsOf(chart.toJson() as Manifest[], JSON.parse(JSON.stringify(chart.helmValues)));
}

const BIN = findPostgresBindir();
const SERVER_USER = asServerUser();
export const PG_PATH = `${BIN}:${process.env.PATH ?? '/usr/bin:/bin'}`;

/** Hands `p` (recursively) to the server's user when the tests run as root. */
export function ownForServer(p: string): void {
  if (!SERVER_USER) return;
  execFileSync('chown', ['-R', `${SERVER_USER.uid}:${SERVER_USER.gid}`, p]);
}

/** Runs a command as the server's user (root may not run PostgreSQL), with exactly `env` plus PATH. */
export function runAsServer(command: string, args: readonly string[], env: Record<string, string>, options: { cwd?: string; timeoutMs?: number } = {}): Promise<RunnerResult> {
  const [cmd, argv] = SERVER_USER ? SERVER_USER.wrap(command, [...args]) : [command, [...args]];
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(cmd, argv, { env: { PATH: PG_PATH, ...env }, cwd: options.cwd });
    let stdout = '';
    let stderr = '';
    const timer = options.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs) : undefined;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** Starts a command as the server's user without waiting for it (to kill it midway). */
export function spawnAsServer(command: string, args: readonly string[], env: Record<string, string>, cwd?: string): ChildProcess {
  const [cmd, argv] = SERVER_USER ? SERVER_USER.wrap(command, [...args]) : [command, [...args]];
  return spawn(cmd, argv, { env: { PATH: PG_PATH, ...env }, cwd, stdio: 'ignore', detached: true });
}

/** A workspace: the scripts laid out as their ConfigMap mount, the backup volume as a folder. */
export interface PitrWorkspace {
  readonly dir: string;
  readonly scriptsDir: string;
  readonly backupDir: string;
  readonly artifacts: PitrArtifacts;
  /** `sh <scripts>/<script> args...` as the pods run it, with `env` (plus LEARNFLOW_BACKUP_DIR). */
  run(script: PitrScript, args: readonly string[], env?: Record<string, string>, options?: { cwd?: string; timeoutMs?: number }): Promise<RunnerResult>;
}

export function pitrWorkspace(dir: string, artifacts: PitrArtifacts): PitrWorkspace {
  const scriptsDir = path.join(dir, 'scripts');
  const backupDir = path.join(dir, 'backups');
  mkdirSync(scriptsDir, { recursive: true });
  mkdirSync(backupDir, { recursive: true });
  for (const [file, text] of Object.entries(artifacts.scripts)) writeFileSync(path.join(scriptsDir, file), text, { mode: 0o444 });
  ownForServer(dir);
  return {
    dir,
    scriptsDir,
    backupDir,
    artifacts,
    run: (script, args, env = {}, options = {}) =>
      runAsServer('sh', [path.join(scriptsDir, script), ...args], { LEARNFLOW_BACKUP_DIR: backupDir, TMPDIR: dir, ...env }, options),
  };
}

/** A PostgreSQL server on a data directory of the workspace, configured as the chart configures the primary. */
export interface PitrServer {
  readonly port: number;
  readonly dataDir: string;
  readonly superuserPassword: string;
  /** libpq variables as the superuser over TCP (what the base-backup CronJob gets). */
  env(): Record<string, string>;
  psql(sql: string, db?: string): string;
  /** Starts (or starts again) the server on its data directory. */
  start(): void;
  /** pg_ctl -m immediate: the power is cut. */
  crash(): void;
  stop(): void;
}

export const SUPERUSER_PASSWORD = 'pitr-test-only-password';

/** initdb into `<workspace>/<name>/data`, the chart's archive settings and pg_hba, then start. */
export async function startPitrServer(ws: PitrWorkspace, name: string, extraConf = ''): Promise<PitrServer> {
  const root = path.join(ws.dir, name);
  const dataDir = path.join(root, 'data');
  mkdirSync(root, { recursive: true });
  const pwfile = path.join(root, 'pwfile');
  writeFileSync(pwfile, `${SUPERUSER_PASSWORD}\n`);
  ownForServer(root);
  const tool = (t: string, args: string[]) => {
    const [cmd, argv] = SERVER_USER ? SERVER_USER.wrap(path.join(BIN, t), args) : [path.join(BIN, t), args];
    return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: PG_PATH, LEARNFLOW_BACKUP_DIR: ws.backupDir } });
  };
  tool('initdb', ['-D', dataDir, '-U', 'postgres', `--pwfile=${pwfile}`, '--auth=scram-sha-256', '--no-sync', '--no-locale', '-E', 'UTF8']);
  const port = await freePort();
  const mounted = ws.artifacts.postgresqlConf.split(SCRIPTS_MOUNT).join(ws.scriptsDir);
  writeFileSync(path.join(dataDir, 'postgresql.conf'), [
    `listen_addresses = '127.0.0.1'`, `port = ${port}`, `unix_socket_directories = '${root}'`,
    // The test machine's disk, not the database's: durability is not what these tests measure.
    'fsync = off', 'full_page_writes = on', mounted, extraConf, '',
  ].join('\n'));
  writeFileSync(path.join(dataDir, 'pg_hba.conf'), ws.artifacts.pgHba);
  ownForServer(root);
  const env = () => ({ PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: 'postgres', PGPASSWORD: SUPERUSER_PASSWORD, PGDATABASE: 'postgres', PGSSLMODE: 'disable' });
  const server: PitrServer = {
    port,
    dataDir,
    superuserPassword: SUPERUSER_PASSWORD,
    env,
    psql: (sql, db = 'postgres') =>
      execFileSync(path.join(BIN, 'psql'), ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-d', db, '-f', '-'], { input: sql, encoding: 'utf8', env: { PATH: PG_PATH, ...env() } }).replace(/\n$/, ''),
    start: () => void tool('pg_ctl', ['-D', dataDir, '-l', path.join(root, 'server.log'), '-w', '-t', '60', 'start']),
    crash: () => void tool('pg_ctl', ['-D', dataDir, '-m', 'immediate', 'stop']),
    stop: () => void tool('pg_ctl', ['-D', dataDir, '-m', 'fast', 'stop']),
  };
  server.start();
  return server;
}

/** Starts a recovered data directory on a free port, runs `sql`, stops it again. */
export async function queryDataDir(ws: PitrWorkspace, dataDir: string, sql: string): Promise<string> {
  const port = await freePort();
  const socketDir = path.dirname(dataDir);
  const pg = (t: string, args: string[]) => {
    const [cmd, argv] = SERVER_USER ? SERVER_USER.wrap(path.join(BIN, t), args) : [path.join(BIN, t), args];
    return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: PG_PATH, LEARNFLOW_BACKUP_DIR: ws.backupDir } });
  };
  // The restored directory has no postgresql.conf of its own (the image keeps it outside): a minimal one, no archiving.
  const conf = path.join(socketDir, `query-${port}.conf`);
  writeFileSync(conf, `listen_addresses = ''\nport = ${port}\nunix_socket_directories = '${socketDir}'\narchive_mode = off\n`);
  const hba = path.join(socketDir, `query-${port}.hba`);
  writeFileSync(hba, 'local all all trust\n');
  ownForServer(conf);
  ownForServer(hba);
  pg('pg_ctl', ['-D', dataDir, '-l', path.join(socketDir, `query-${port}.log`), '-w', '-t', '60', '-o', `-c config_file=${conf} -c hba_file=${hba}`, 'start']);
  try {
    return pg('psql', ['-X', '-A', '-t', '-q', '-h', socketDir, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-c', sql]).replace(/\n$/, '');
  } finally {
    pg('pg_ctl', ['-D', dataDir, '-m', 'fast', 'stop']);
  }
}

/** Names and modification times under `dir`, to prove a refused restore changed nothing. */
export function snapshotTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, entry.name);
      const s = statSync(p);
      out.push(`${path.relative(dir, p)} ${entry.isDirectory() ? 'd' : s.size} ${s.mtimeMs}`);
      if (entry.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

export function removeTree(p: string): void {
  rmSync(p, { recursive: true, force: true });
}

/** `YYYY-MM-DDTHH:MM:SS.ffffffZ` for a JavaScript time in ms (microseconds from the fraction). */
export function utc(ms: number): string {
  const whole = Math.floor(ms);
  const micros = String(Math.round((ms - whole) * 1000) + (whole % 1000) * 1000).padStart(6, '0');
  return `${new Date(whole).toISOString().slice(0, 19)}.${micros}Z`;
}

/**
 * rclone's image, emulated: a folder holding only BusyBox's applets and rclone, to be the whole
 * PATH of the off-site scripts (Alpine's busybox sh, awk, sed, ... and nothing from Debian).
 */
export function rcloneImagePath(dir: string, busybox: string, rclone: string): string {
  const bin = path.join(dir, 'rclone-image-bin');
  mkdirSync(bin, { recursive: true });
  execFileSync(busybox, ['--install', '-s', bin]);
  // A copy: the tool cache may sit in a home directory the server's user cannot enter.
  copyFileSync(rclone, path.join(bin, 'rclone'));
  chmodSync(path.join(bin, 'rclone'), 0o755);
  ownForServer(bin);
  return bin;
}

/** Forces the current segment out (what archive_timeout does on its own) and waits until it is archived. */
export async function archiveCurrentSegment(pg: PitrServer, timeoutMs = 60_000): Promise<void> {
  const segment = pg.psql('SELECT pg_walfile_name(pg_switch_wal())');
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
    if (pg.psql(`SELECT coalesce(last_archived_wal >= '${segment}', false) FROM pg_stat_archiver`) === 't') return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`segment ${segment} was not archived within ${timeoutMs} ms: ${pg.psql('SELECT * FROM pg_stat_archiver')}`);
}

/**
 * The objects of dist/production that hold or make backups, for the Argo CD tests: the
 * Namespace, the backup claim, the scripts ConfigMap and the scheduled backup CronJobs, moved
 * into namespace `ns`.
 */
export function backupObjectsForArgoCd(ns: string): Manifest[] {
  const keep = (m: Manifest) => m.kind === 'Namespace' || m.kind === 'PersistentVolumeClaim' ||
    (m.kind === 'ConfigMap' && m.metadata.name.endsWith('-pitr-scripts')) || (m.kind === 'CronJob' && m.spec.suspend !== true);
  return manifests('production').filter(keep).map((m) => {
    const copy = structuredClone(m);
    if (m.kind === 'Namespace') copy.metadata.name = ns;
    else copy.metadata.namespace = ns;
    return copy;
  });
}
