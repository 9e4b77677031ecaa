// Base backups with the CronJob's command on a real PostgreSQL server: retention keeps the newest
// backups and exactly the archived WAL they need (a restore from the oldest kept one still
// works); a run killed midway leaves nothing under a backup's name and the next run clears it;
// and it refuses, with the contract's exit codes, a bad knob, another system's archive, a server
// without archiving and an unreachable database.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASEBACKUP, PITR_RESTORE } from '../../lib/pitr/contracts';
import { exitCodes } from '../../lib/script-contract';
import { freePort } from '../support/ports';
import { PitrServer, PitrWorkspace, archiveCurrentSegment, ownForServer, pitrWorkspace, queryDataDir, renderedArtifacts, spawnAsServer, startPitrServer, utc } from '../support/pitr';

const EXIT = exitCodes(BASEBACKUP);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'learnflow-basebackup-'));
ownForServer(tmp);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let ws: PitrWorkspace;
let primary: PitrServer;
const bases = () => readdirSync(path.join(ws.backupDir, 'base')).filter((d) => !d.startsWith('.')).sort();
const segments = () => readdirSync(path.join(ws.backupDir, 'wal')).filter((f) => /^[0-9A-F]{24}\.gz$/.test(f)).sort();
const info = (base: string) => Object.fromEntries(readFileSync(path.join(ws.backupDir, 'base', base, 'backup.info'), 'utf8').trim().split('\n').map((l) => l.split('=')));

beforeAll(async () => {
  ws = pitrWorkspace(path.join(tmp, 'ws'), renderedArtifacts(60));
  primary = await startPitrServer(ws, 'primary');
  primary.psql('CREATE TABLE events (id int PRIMARY KEY)');
}, 60_000);
afterAll(() => {
  try { primary?.crash(); } catch { /* stopped */ }
  rmSync(tmp, { recursive: true, force: true });
});

describe('base backups', () => {
  it('keeps the newest BASEBACKUP_KEEP backups and exactly the WAL they need', async () => {
    const stamps: string[] = [];
    for (let round = 0; round < 3; round++) {
      primary.psql(`INSERT INTO events SELECT generate_series(${round * 100 + 1}, ${round * 100 + 100})`);
      await archiveCurrentSegment(primary);
      // Backups are named by the second they start.
      await sleep(1100);
      const run = await ws.run('basebackup.sh', [], { ...primary.env(), BASEBACKUP_KEEP: '2' });
      expect(run.code, run.stderr).toBe(EXIT.ok);
      stamps.push(/wrote base\/(\S+)/.exec(run.stdout)![1]);
      if (round === 2) expect(run.stdout).toContain(`removed base/${stamps[0]} (keeping the newest 2)`);
      await archiveCurrentSegment(primary);
      // Nothing is written for a second after each backup: the recovery target below sits there.
      await sleep(1000);
    }
    expect(bases()).toEqual(stamps.slice(1));
    const oldestKept = info(stamps[1]);
    expect(oldestKept).toMatchObject({ name: stamps[1], timeline: '1', segment_size: String(16 * 1024 * 1024) });
    expect(oldestKept.start_wal).toMatch(/^[0-9A-F]{24}$/);
    // Nothing before the oldest kept backup's first segment, everything from it on.
    expect(segments()[0]).toBe(`${oldestKept.start_wal}.gz`);
    const numbers = segments().map((f) => parseInt(f.slice(8, 24), 16));
    expect(numbers).toEqual(numbers.map((_, i) => numbers[0] + i));

    // The oldest kept backup still recovers: to a time just after it ended.
    primary.psql('INSERT INTO events VALUES (1000)');
    await archiveCurrentSegment(primary);
    const target = utc(Date.parse(oldestKept.end_time) + 200);
    const data = path.join(ws.dir, 'from-oldest', 'data');
    const restore = await ws.run('restore.sh', [], { RESTORE_TARGET: target, RESTORE_TIMELINE: '1', PGDATA: data });
    expect(restore.code, restore.stderr).toBe(exitCodes(PITR_RESTORE).ok);
    expect(restore.stdout).toContain(`from base backup ${stamps[1]}`);
    expect(await queryDataDir(ws, data, 'SELECT count(*) FROM events')).toBe('200');
  }, 120_000);

  it('leaves nothing under a backup\'s name when killed midway; the next run removes the remains', async () => {
    const before = bases();
    primary.psql('CREATE TABLE filler AS SELECT g, md5(g::text) AS h FROM generate_series(1, 200000) g');
    const slow = spawnAsServer('sh', [path.join(ws.scriptsDir, 'basebackup.sh')], { ...primary.env(), LEARNFLOW_BACKUP_DIR: ws.backupDir, BASEBACKUP_MAX_RATE: '32k', TMPDIR: tmp });
    await sleep(2500);
    process.kill(-slow.pid!, 'SIGKILL');
    await sleep(300);
    expect(bases()).toEqual(before);
    const remains = readdirSync(path.join(ws.backupDir, 'base')).filter((d) => d.endsWith('.partial'));
    expect(remains).toHaveLength(1);
    // As the CronJob runs it: the password only as the mounted Secret key (PASSWORD_FILE), no PGPASSWORD.
    const { PGPASSWORD, ...noPassword } = primary.env();
    const passwordFile = path.join(ws.dir, 'password');
    writeFileSync(passwordFile, `${PGPASSWORD}\n`, { mode: 0o444 });
    const next = await ws.run('basebackup.sh', [], { ...noPassword, PASSWORD_FILE: passwordFile });
    expect(next.code, next.stderr).toBe(EXIT.ok);
    expect(next.stdout).toContain(`removed the unfinished ${remains[0]} of an earlier run`);
    expect(readdirSync(path.join(ws.backupDir, 'base')).filter((d) => d.startsWith('.'))).toEqual([]);
  }, 60_000);

  it('refuses a bad knob, another system\'s archive, a server without archiving, and waits for the database (exit 8)', async () => {
    const badKeep = await ws.run('basebackup.sh', [], { ...primary.env(), BASEBACKUP_KEEP: '0' });
    expect(badKeep.code).toBe(EXIT.failed);
    expect(badKeep.stderr).toContain("BASEBACKUP_KEEP: '0' is not a whole number of base backups from 1 to 1000");

    const otherDir = path.join(tmp, 'other');
    const other = pitrWorkspace(otherDir, renderedArtifacts(60));
    writeFileSync(path.join(other.backupDir, 'SYSTEM_IDENTIFIER'), '7000000000000000001\n');
    ownForServer(other.backupDir);
    const foreign = await other.run('basebackup.sh', [], primary.env());
    expect(foreign.code).toBe(EXIT.failed);
    expect(foreign.stderr).toContain('belongs to database system 7000000000000000001');
    expect(readdirSync(other.backupDir)).toEqual(['SYSTEM_IDENTIFIER']);

    const plain = await startPitrServer(other, 'no-archiving', 'archive_mode = off');
    try {
      const noArchive = await pitrWorkspace(path.join(tmp, 'plain'), renderedArtifacts(60)).run('basebackup.sh', [], plain.env());
      expect(noArchive.code).toBe(EXIT.failed);
      expect(noArchive.stderr).toContain('archive_mode is off on the server');
    } finally {
      plain.crash();
    }

    const down = await ws.run('basebackup.sh', [], { ...primary.env(), PGPORT: String(await freePort()), BASEBACKUP_DB_WAIT_SECONDS: '2' });
    expect(down.code).toBe(EXIT.connectionFailed);
    expect(down.stderr).toMatch(/no connection to 127\.0\.0\.1:\d+ within 2s/);
  }, 60_000);
});
