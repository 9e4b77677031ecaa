// The archive command and the restore under faults and bad input, on real PostgreSQL servers:
// a copy killed midway leaves nothing under a final name and the next attempt succeeds; a full
// archive volume makes PostgreSQL keep its WAL and catch up once there is room, losing nothing;
// a name archived twice is accepted only with identical content; and every refused restore
// (malformed, future or unreachable target, a gap in the archive, a running database, another
// system's archive) exits 1 with the reason and the fix, changing nothing.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARCHIVE, PITR_RESTORE } from '../../lib/pitr/contracts';
import { exitCodes } from '../../lib/script-contract';
import { VERIFY } from '../../lib/verification/verify-contract';
import { byComponent, findOne } from '../support/dist';
import { runJobContainer } from '../support/dist-job';
import { freePort } from '../support/ports';
import { PG_PATH, PitrServer, PitrWorkspace, archiveCurrentSegment, ownForServer, pitrWorkspace, queryDataDir, renderedArtifacts, snapshotTree, spawnAsServer, startPitrServer, utc } from '../support/pitr';

const ARCHIVE_EXIT = exitCodes(ARCHIVE);
/** The verification Job of dist/production, as the superuser, with no migrations to wait for. */
const verify = (pg: PitrServer) => runJobContainer(findOne('production', byComponent('Job', 'verification'), 'verification Job'), {
  ...pg.env(), PATH: PG_PATH, EXPECTED_VERSION: '0', VERIFY_DB_WAIT_SECONDS: '2',
});
const RESTORE_EXIT = exitCodes(PITR_RESTORE);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'learnflow-pitr-faults-'));
ownForServer(tmp);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let ws: PitrWorkspace;
let primary: PitrServer;
const wal = () => path.join(ws.backupDir, 'wal');

beforeAll(async () => {
  ws = pitrWorkspace(path.join(tmp, 'ws'), renderedArtifacts(60));
  primary = await startPitrServer(ws, 'primary');
  primary.psql('CREATE TABLE events (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())');
  primary.psql('INSERT INTO events (id) SELECT generate_series(1, 10)');
  expect((await ws.run('basebackup.sh', [], primary.env())).code).toBe(0);
  // Three segments after the base backup's: a gap can sit between two of them.
  for (const from of [11, 21, 31]) {
    primary.psql(`INSERT INTO events (id) SELECT generate_series(${from}, ${from + 9})`);
    await archiveCurrentSegment(primary);
  }
}, 120_000);
afterAll(() => {
  try { primary?.crash(); } catch { /* stopped */ }
  rmSync(tmp, { recursive: true, force: true });
});

describe('the archive command', () => {
  /** archive.sh as PostgreSQL runs it: from the data directory, `%p %f`. */
  const archive = (source: string, name: string, env: Record<string, string> = {}) => ws.run('archive.sh', [source, name], env, { cwd: primary.dataDir });

  it('leaves nothing under the final name when killed midway, and the next attempt archives it whole', async () => {
    const name = '0000000100000000000000F1';
    const fifo = path.join(ws.dir, 'slow-segment');
    execFileSync('mkfifo', [fifo]);
    ownForServer(fifo);
    // The source delivers 2 MB, then stalls: archive.sh is mid-copy when it is killed.
    const writer = spawn('sh', ['-c', `{ head -c 2000000 /dev/urandom; sleep 30; } > '${fifo}'`], { stdio: 'ignore', detached: true });
    const copy = spawnAsServer('sh', [path.join(ws.scriptsDir, 'archive.sh'), fifo, name], { LEARNFLOW_BACKUP_DIR: ws.backupDir }, primary.dataDir);
    await sleep(1500);
    process.kill(-copy.pid!, 'SIGKILL');
    process.kill(-writer.pid!, 'SIGKILL');
    await sleep(200);
    expect(existsSync(path.join(wal(), `${name}.gz`))).toBe(false);
    expect(readdirSync(wal()).filter((f) => f.includes(name))).toEqual([`.${name}.gz.partial`]);

    const segment = path.join(ws.dir, name);
    writeFileSync(segment, randomBytes(16 * 1024 * 1024));
    ownForServer(segment);
    const again = await archive(segment, name);
    expect(again.code, again.stderr).toBe(ARCHIVE_EXIT.ok);
    expect(gunzipSync(readFileSync(path.join(wal(), `${name}.gz`))).equals(readFileSync(segment))).toBe(true);
    expect(readdirSync(wal()).filter((f) => f.includes(name))).toEqual([`${name}.gz`]);
    unlinkSync(path.join(wal(), `${name}.gz`));
  });

  it('accepts a name archived again only with identical content, and never overwrites it', async () => {
    const name = '0000000100000000000000F2';
    const segment = path.join(ws.dir, name);
    writeFileSync(segment, randomBytes(1024 * 1024));
    ownForServer(segment);
    expect((await archive(segment, name)).code).toBe(ARCHIVE_EXIT.ok);
    const stored = readFileSync(path.join(wal(), `${name}.gz`));
    expect((await archive(segment, name)).code).toBe(ARCHIVE_EXIT.ok);

    writeFileSync(segment, randomBytes(1024 * 1024));
    const different = await archive(segment, name);
    expect(different.code).toBe(ARCHIVE_EXIT.refused);
    expect(different.stderr).toContain(`${name}.gz is already in the archive with different content: refusing to overwrite it`);
    expect(readFileSync(path.join(wal(), `${name}.gz`)).equals(stored)).toBe(true);

    // History files are kept as they are, under the same rule.
    const history = path.join(ws.dir, '00000009.history');
    writeFileSync(history, '8\t0/9000000\tno recovery target specified\n');
    ownForServer(history);
    expect((await archive(history, '00000009.history')).code).toBe(ARCHIVE_EXIT.ok);
    expect(readFileSync(path.join(wal(), '00000009.history'), 'utf8')).toBe(readFileSync(history, 'utf8'));
    unlinkSync(path.join(wal(), '00000009.history'));
    unlinkSync(path.join(wal(), `${name}.gz`));
  });

  it("refuses a server of another database system (a fresh initdb over a lost data volume)", async () => {
    const foreign = path.join(ws.dir, 'foreign-backups');
    mkdirSync(foreign);
    writeFileSync(path.join(foreign, 'SYSTEM_IDENTIFIER'), '7000000000000000001\n');
    ownForServer(foreign);
    const segment = path.join(ws.dir, '0000000100000000000000F2');
    const result = await archive(segment, '0000000100000000000000F2', { LEARNFLOW_BACKUP_DIR: foreign });
    expect(result.code).toBe(ARCHIVE_EXIT.refused);
    const system = primary.psql('SELECT system_identifier FROM pg_control_system()');
    expect(result.stderr).toContain(`belongs to database system 7000000000000000001, this server is ${system}`);
    expect(readdirSync(foreign)).toEqual(['SYSTEM_IDENTIFIER']);
  });
});

// A full archive volume needs a volume of fixed size: a tmpfs, which only root may mount.
describe.skipIf(process.getuid?.() !== 0)('a full archive volume (tmpfs, as root)', () => {
  it('makes PostgreSQL keep the WAL and retry; once there is room every segment is archived and nothing is lost', async () => {
    const small = pitrWorkspace(path.join(tmp, 'full'), renderedArtifacts(60));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m,mode=0755', 'learnflow-full', small.backupDir]);
    ownForServer(small.backupDir);
    let pg: PitrServer | undefined;
    try {
      pg = await startPitrServer(small, 'primary');
      pg.psql('CREATE TABLE blobs (id int PRIMARY KEY, payload bytea NOT NULL); ALTER TABLE blobs ALTER payload SET STORAGE EXTERNAL');
      expect((await small.run('basebackup.sh', [], pg.env())).code).toBe(0);
      // About 48 MB of incompressible WAL: more than the volume holds.
      pg.psql(`INSERT INTO blobs SELECT g, (SELECT string_agg(decode(md5(random()::text || g || s), 'hex'), ''::bytea) FROM generate_series(1, 65536) s) FROM generate_series(1, 48) g`);
      const last = pg.psql('SELECT pg_walfile_name(pg_switch_wal())');
      const stats = async () => pg!.psql('SELECT failed_count, coalesce(last_archived_wal, \'\') FROM pg_stat_archiver').split('|');
      for (let i = 0; i < 100 && Number((await stats())[0]) === 0; i++) await sleep(100);
      const [failed, archived] = await stats();
      expect(Number(failed)).toBeGreaterThan(0);
      expect(archived < last).toBe(true);
      // PostgreSQL kept every segment it could not archive, marked ready; whatever is under a
      // final name in the archive is whole (a failed copy stays under its temporary name).
      expect(readdirSync(path.join(pg.dataDir, 'pg_wal', 'archive_status')).filter((f) => f.endsWith('.ready')).length).toBeGreaterThan(0);
      for (const f of readdirSync(path.join(small.backupDir, 'wal')).filter((n) => n.endsWith('.gz') && !n.startsWith('.'))) {
        expect(gunzipSync(readFileSync(path.join(small.backupDir, 'wal', f))).length).toBe(16 * 1024 * 1024);
      }

      // The verification Job of dist/ reports it and fails its health check (exit 5).
      const verifying = await verify(pg);
      expect(verifying.stderr).toMatch(/stage 3 archiving: failing since \S+: [0-9A-F]{24} could not be archived and nothing was archived after it/);
      expect(verifying.code).toBe(exitCodes(VERIFY).healthCheckFailed);

      execFileSync('mount', ['-o', 'remount,size=400m', small.backupDir]);
      await archiveCurrentSegment(pg!);
      expect(readdirSync(path.join(pg.dataDir, 'pg_wal', 'archive_status')).filter((f) => f.endsWith('.ready'))).toEqual([]);
      const healthy = await verify(pg);
      expect(healthy.stdout).toMatch(/stage 3 archiving: \d+ segment\(s\) archived, the last [0-9A-F]{24} at \S+; [1-9]\d* failure\(s\), the last/);
      expect(healthy.code, healthy.stderr).toBe(0);
      const rows = pg.psql('SELECT count(*), md5(string_agg(payload, \'\' ORDER BY id)) FROM blobs');
      pg.crash();
      const restored = path.join(small.dir, 'restored', 'data');
      const restore = await small.run('restore.sh', [], { RESTORE_TARGET: 'latest', PGDATA: restored });
      expect(restore.code, restore.stderr).toBe(0);
      expect(await queryDataDir(small, restored, 'SELECT count(*), md5(string_agg(payload, \'\' ORDER BY id)) FROM blobs')).toBe(rows);
    } finally {
      try { pg?.crash(); } catch { /* stopped */ }
      execFileSync('umount', [small.backupDir]);
    }
  }, 180_000);
});

describe('a refused restore changes nothing', () => {
  let data: string;
  let closedPort: string;
  beforeAll(async () => {
    closedPort = String(await freePort());
    primary.crash();
    data = primary.dataDir;
  });

  async function refused(env: Record<string, string>, message: string | RegExp): Promise<void> {
    const before = [snapshotTree(data), snapshotTree(ws.backupDir)];
    const result = await ws.run('restore.sh', [], { PGDATA: data, PGHOST: '127.0.0.1', PGPORT: closedPort, ...env });
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toContain('Nothing was changed.');
    expect(result.code).toBe(RESTORE_EXIT.refused);
    expect([snapshotTree(data), snapshotTree(ws.backupDir)]).toEqual(before);
    expect(existsSync(`${data}.restoring`)).toBe(false);
  }

  it('refuses a missing or malformed target, naming the form it takes', async () => {
    await refused({}, /RESTORE_TARGET is not set: 'latest' or a UTC time YYYY-MM-DDTHH:MM:SS\[\.ffffff\]Z/);
    for (const bad of ['yesterday', '2026-11-22 17:00:00', '2026-13-01T00:00:00Z', '2026-11-22T17:00:00+01:00', '2026-11-22T17:00:00.1234567Z', "'; rm -rf /'"]) {
      await refused({ RESTORE_TARGET: bad }, `RESTORE_TARGET: '${bad}' is not 'latest' or a UTC time`);
    }
    await refused({ RESTORE_TARGET: 'latest', RESTORE_TIMELINE: 'newest' }, "RESTORE_TIMELINE: 'newest' is not 'latest' or a timeline number");
  });

  it('refuses a time in the future, before the oldest base backup, or past the newest archived commit', async () => {
    await refused({ RESTORE_TARGET: utc(Date.now() + 3_600_000) }, /is in the future \(now .*\): nothing after now can be recovered/);
    await refused({ RESTORE_TARGET: '2020-01-01T00:00:00Z' }, /is before the end of the oldest base backup \(\d{8}T\d{6}Z, ended .*\): the archive cannot reach it/);
    // Commits 1-20 are archived; a minute later nothing more was: a time now is past the archive.
    await refused({ RESTORE_TARGET: utc(Date.now() - 1000) }, /is after the newest commit in the archive on timeline 1 \(.*\): nothing later was archived. Use RESTORE_TARGET=latest/);
  });

  it('refuses while the database is running', async () => {
    primary.start();
    try {
      const before = snapshotTree(ws.backupDir);
      const result = await ws.run('restore.sh', [], { PGDATA: path.join(ws.dir, 'elsewhere'), RESTORE_TARGET: 'latest', ...primary.env() });
      expect(result.code).toBe(RESTORE_EXIT.refused);
      expect(result.stderr).toContain(`the database at 127.0.0.1:${primary.port} is running: stop it first`);
      expect(snapshotTree(ws.backupDir)).toEqual(before);
    } finally {
      primary.crash();
    }
  });

  it('refuses an archive with a gap in the WAL the recovery needs, naming the missing segment', async () => {
    const segments = readdirSync(wal()).filter((f) => /^[0-9A-F]{24}\.gz$/.test(f)).sort();
    const missing = segments[2];
    expect(segments.length).toBeGreaterThan(3);
    const aside = path.join(ws.dir, missing);
    copyFileSync(path.join(wal(), missing), aside);
    unlinkSync(path.join(wal(), missing));
    try {
      await refused({ RESTORE_TARGET: 'latest' }, `lacks 1 WAL segment(s) the recovery needs, first ${missing.replace('.gz', '')}`);
    } finally {
      copyFileSync(aside, path.join(wal(), missing));
    }
  });

  it("fails (exit 7) when PostgreSQL's recovery stops early at a damaged segment, leaving the data directory and the archive as they were", async () => {
    // A segment in the middle replaced by garbage (still valid gzip): present, so no gap, but
    // PostgreSQL ends its recovery at the first unreadable record there.
    const segments = readdirSync(wal()).filter((f) => /^[0-9A-F]{24}\.gz$/.test(f)).sort();
    const victim = path.join(wal(), segments[2]);
    const original = readFileSync(victim);
    writeFileSync(victim, gzipSync(randomBytes(16 * 1024 * 1024)));
    try {
      const before = [snapshotTree(data), snapshotTree(ws.backupDir)];
      const result = await ws.run('restore.sh', [], { PGDATA: data, PGHOST: '127.0.0.1', PGPORT: closedPort, RESTORE_TARGET: 'latest' });
      expect(result.stderr).toMatch(/PostgreSQL's recovery stopped at [0-9A-F]+\/[0-9A-F]+, before the end of the archive \([0-9A-F]{24}\): a segment after it is damaged/);
      expect(result.stderr).toContain(`the data directory ${data} is unchanged`);
      expect(result.code).toBe(RESTORE_EXIT.recoveryFailed);
      // No timeline from the failed attempt reached the archive: a later "latest" cannot follow it.
      expect([snapshotTree(data), snapshotTree(ws.backupDir)]).toEqual(before);
      expect(existsSync(`${data}.restoring`)).toBe(false);
    } finally {
      writeFileSync(victim, original);
    }
  });
});

// The database image runs as 1001, a user without a passwd entry: the restore names its roles
// (-U postgres) instead of asking the system who it is, and PostgreSQL's server starts anyway.
// Played here with a user id unknown to this machine (setpriv, as root).
describe.skipIf(process.getuid?.() !== 0)('a restore as a user without a passwd entry (the image\'s 1001)', () => {
  it('recovers as that user', async () => {
    const uid = '4321';
    expect(() => execFileSync('getent', ['passwd', uid])).toThrow();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'learnflow-nobody-'));
    try {
      chmodSync(dir, 0o755);
      execFileSync('cp', ['-a', ws.backupDir, path.join(dir, 'backups')]);
      execFileSync('cp', ['-a', ws.scriptsDir, path.join(dir, 'scripts')]);
      execFileSync('chown', ['-R', `${uid}:${uid}`, dir]);
      const result = execFileSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'sh', path.join(dir, 'scripts', 'restore.sh')], {
        encoding: 'utf8',
        env: { PATH: PG_PATH, TMPDIR: dir, LEARNFLOW_BACKUP_DIR: path.join(dir, 'backups'), RESTORE_TARGET: 'latest', PGDATA: path.join(dir, 'restored', 'data') },
      });
      expect(result).toContain(`restored ${path.join(dir, 'restored', 'data')} to latest`);
      ownForServer(path.join(dir, 'restored'));
      expect(await queryDataDir(ws, path.join(dir, 'restored', 'data'), 'SELECT count(*) FROM events')).toBe('40');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
