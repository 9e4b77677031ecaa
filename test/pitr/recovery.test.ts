// Point-in-time recovery, end to end on real PostgreSQL servers configured with the archive
// settings the chart's values carry: rows written over time, a base backup with the CronJob's
// command, more rows, then the restore template's command recovering to ten different times
// (each recovered database holds exactly the rows committed before its target) and to "latest"
// after the primary's data directory is gone (at most archive_timeout of commits missing).
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/ports';
import { PitrServer, PitrWorkspace, archiveCurrentSegment, ownForServer, pitrWorkspace, queryDataDir, removeTree, renderedArtifacts, startPitrServer, utc } from '../support/pitr';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'learnflow-pitr-'));
ownForServer(tmp);
const servers: PitrServer[] = [];
afterAll(() => {
  for (const s of servers) try { s.crash(); } catch { /* already stopped */ }
  rmSync(tmp, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Written { readonly id: number; readonly before: number; readonly after: number }

/** Inserts one row per transaction, noting the wall clock just before and just after each commit. */
async function writeRows(pg: PitrServer, from: number, count: number, pauseMs: number, into: Written[]): Promise<void> {
  for (let id = from; id < from + count; id++) {
    const before = Date.now();
    pg.psql(`INSERT INTO events (id, note) VALUES (${id}, 'row ${id}')`);
    into.push({ id, before, after: Date.now() });
    await sleep(pauseMs);
  }
}

const ids = (list: readonly Written[]) => list.map((r) => r.id).join(',');

describe('recovery to ten points in time', () => {
  let ws: PitrWorkspace;
  let primary: PitrServer;
  const rows: Written[] = [];
  let afterBackup = 0;

  beforeAll(async () => {
    ws = pitrWorkspace(path.join(tmp, 'ten'), renderedArtifacts(60));
    primary = await startPitrServer(ws, 'primary');
    servers.push(primary);
    primary.psql('CREATE TABLE events (id int PRIMARY KEY, note text NOT NULL)');
    await writeRows(primary, 1, 5, 0, rows);
    const backup = await ws.run('basebackup.sh', [], primary.env());
    expect(backup.code, backup.stderr).toBe(0);
    afterBackup = rows.length;
    await writeRows(primary, 6, 40, 120, rows);
    await archiveCurrentSegment(primary);
  }, 120_000);

  it('recovers each target to exactly the rows committed before it', async () => {
    const closedPort = String(await freePort());
    // Ten gaps between commits after the base backup, spread over the run.
    const picks = Array.from({ length: 10 }, (_, i) => afterBackup + 1 + Math.floor((i * (rows.length - afterBackup - 3)) / 9));
    const results: string[] = [];
    for (const [n, k] of picks.entries()) {
      const target = utc((rows[k].after + rows[k + 1].before) / 2);
      const data = path.join(ws.dir, `restore-${n}`, 'data');
      // Each recovery promotes a new timeline: follow the original one, where the rows are.
      const restore = await ws.run('restore.sh', [], { RESTORE_TARGET: target, RESTORE_TIMELINE: '1', PGDATA: data, PGHOST: '127.0.0.1', PGPORT: closedPort });
      expect(restore.code, restore.stderr).toBe(0);
      expect(restore.stdout).toContain(`restored ${data} to ${target}`);
      const recovered = await queryDataDir(ws, data, `SELECT string_agg(id::text, ',' ORDER BY id) FROM events`);
      results.push(recovered);
      expect(recovered, `target ${target}`).toBe(ids(rows.slice(0, k + 1)));
      removeTree(path.dirname(data));
    }
    expect(new Set(results).size).toBe(10);
    // Every recovery archived its new timeline's history: a later restore can follow it.
    expect(readdirSync(path.join(ws.backupDir, 'wal')).filter((f) => f.endsWith('.history'))).toHaveLength(10);
  }, 180_000);
});

describe('recovery to the latest state after the primary is lost', () => {
  const ARCHIVE_TIMEOUT = 5;
  it(`loses at most archive_timeout (${ARCHIVE_TIMEOUT} s) of commits when the data directory is deleted`, async () => {
    const ws = pitrWorkspace(path.join(tmp, 'latest'), renderedArtifacts(ARCHIVE_TIMEOUT));
    const primary = await startPitrServer(ws, 'primary');
    servers.push(primary);
    primary.psql('CREATE TABLE events (id int PRIMARY KEY, note text NOT NULL)');
    const rows: Written[] = [];
    await writeRows(primary, 1, 3, 0, rows);
    expect((await ws.run('basebackup.sh', [], primary.env())).code).toBe(0);
    // Commits every 100 ms for three archive timeouts, then the power is cut and the disk lost.
    await writeRows(primary, 4, Math.round((3 * ARCHIVE_TIMEOUT * 1000) / 110), 100, rows);
    const lostAt = Date.now();
    primary.crash();
    removeTree(primary.dataDir);
    expect(existsSync(primary.dataDir)).toBe(false);

    const restore = await ws.run('restore.sh', [], { RESTORE_TARGET: 'latest', PGDATA: primary.dataDir, PGHOST: '127.0.0.1', PGPORT: String(primary.port) });
    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.stdout).not.toContain('before-restore');
    const recovered = (await queryDataDir(ws, primary.dataDir, 'SELECT string_agg(id::text, \',\' ORDER BY id) FROM events')).split(',').map(Number);
    // A prefix of what was committed, nothing invented, nothing out of order.
    expect(recovered).toEqual(rows.slice(0, recovered.length).map((r) => r.id));
    const lastKept = rows[recovered.length - 1];
    const atRisk = (lostAt - lastKept.before) / 1000;
    console.info(`data at risk: ${atRisk.toFixed(2)} s of commits lost (archive_timeout ${ARCHIVE_TIMEOUT} s, ${rows.length - recovered.length} of ${rows.length} rows)`);
    expect(recovered.length).toBeGreaterThan(3);
    expect(atRisk).toBeLessThanOrEqual(ARCHIVE_TIMEOUT);
  }, 120_000);
});

