// The runner's status and rollback commands against a real PostgreSQL.
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { migrationBundle } from '../../lib/migrations/bundle';
import { Migration } from '../../lib/migrations/types';
import { Pg } from '../support/postgres';
import { usePostgres } from '../support/postgres-fixture';
import { EXIT, materializeBundle, migration, runRunner } from '../support/runner-harness';

let pg: Pg;
let mounts: string;
const { freshDatabase } = usePostgres('modes', (server, dir) => {
  pg = server;
  mounts = dir;
});

function run(db: string, migrations: readonly Migration[], args: string[] = [], env: Record<string, string> = {}, edit?: (dir: string) => void) {
  const dir = materializeBundle(migrationBundle(migrations), mounts);
  edit?.(dir);
  return runRunner(dir, { ...pg.env(db), TMPDIR: mounts, MIGRATE_DB_WAIT_SECONDS: '2', MIGRATE_LOCK_WAIT_SECONDS: '2', ...env }, args);
}

const appliedVersions = (db: string) =>
  pg.psql(db, 'SELECT version FROM applied_migrations ORDER BY version').split('\n').filter(Boolean);
const tableExists = (db: string, table: string) => pg.psql(db, `SELECT to_regclass('${table}') IS NOT NULL`) === 't';
/** A fingerprint of every table, column and recorded migration, to prove nothing changed. */
const schemaOf = (db: string) =>
  pg.psql(
    db,
    `SELECT string_agg(table_name || '.' || column_name, ',' ORDER BY table_name, column_name) FROM information_schema.columns WHERE table_schema = 'public';
     SELECT coalesce(string_agg(version || checksum || applied_at, ',' ORDER BY version), '') FROM applied_migrations;`,
  );

/** Each migration creates table tN; each down file drops it and writes to the journal first. */
const numbered = (n: number, sql = `CREATE TABLE t${n} (id integer);\n`) =>
  migration(String(n).padStart(3, '0'), `create_t${n}`, sql, `INSERT INTO journal (entry) VALUES ('down ${n}');\nDROP TABLE t${n};\n`);

describe('status', () => {
  it('lists every migration as pending on an empty database, exits 0 and creates nothing', async () => {
    const db = freshDatabase();
    const result = await run(db, [numbered(1), numbered(2)], ['status']);
    expect(result.code).toBe(EXIT.ok);
    expect(result.stdout).toBe(
      [
        'learnflow-migrate: pending 001 create_t1',
        'learnflow-migrate: pending 002 create_t2',
        'learnflow-migrate: status: 0 applied, 2 pending, 0 drifted, 0 missing, 0 out-of-order',
        '',
      ].join('\n'),
    );
    expect(tableExists(db, 'applied_migrations')).toBe(false);
  });

  it('reports applied, drifted, out-of-order, pending and missing migrations with exit 7, changing nothing', async () => {
    const db = freshDatabase();
    await run(db, [numbered(1), numbered(2), numbered(3), numbered(5)]);
    const before = schemaOf(db);
    const plan = [numbered(1), numbered(2, 'CREATE TABLE t2 (id bigint);\n'), numbered(4), numbered(5), numbered(6)];
    const result = await run(db, plan, ['status']);
    expect(result.code).toBe(EXIT.migrationFailed);
    const lines = result.stdout.split('\n').filter(Boolean);
    expect(lines).toEqual([
      expect.stringMatching(/^learnflow-migrate: applied 001 create_t1: at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ in \d+ ms$/),
      expect.stringMatching(/^learnflow-migrate: drifted 002 create_t2: 002_create_t2.up.sql changed after it was applied/),
      'learnflow-migrate: out-of-order 004 create_t4: 004_create_t4.up.sql is older than the newest applied version and cannot be applied',
      expect.stringMatching(/^learnflow-migrate: applied 005 create_t5: /),
      'learnflow-migrate: pending 006 create_t6',
      'learnflow-migrate: missing 003 create_t3: applied but not in the plan',
      'learnflow-migrate: status: 2 applied, 1 pending, 1 drifted, 1 missing, 1 out-of-order',
    ]);
    expect(schemaOf(db)).toBe(before);
  });
});

describe('rollback', () => {
  it('runs the down files above the target newest first and removes their records', async () => {
    const db = freshDatabase();
    pg.psql(db, 'CREATE TABLE journal (id serial, entry text)');
    const all = [numbered(1), numbered(2), numbered(3)];
    await run(db, all);
    const result = await run(db, all, ['rollback'], { MIGRATE_TARGET_VERSION: '001' });
    expect(result.code).toBe(EXIT.ok);
    expect(result.stdout.split('\n').filter(Boolean)).toEqual([
      expect.stringMatching(/^learnflow-migrate: rolled back 003 create_t3 \(\d+ ms\)$/),
      expect.stringMatching(/^learnflow-migrate: rolled back 002 create_t2 \(\d+ ms\)$/),
      'learnflow-migrate: 2 rolled back, 1 still applied',
    ]);
    expect(pg.psql(db, 'SELECT string_agg(entry, \',\' ORDER BY id) FROM journal')).toBe('down 3,down 2');
    expect(appliedVersions(db)).toEqual(['001']);
    expect([tableExists(db, 't1'), tableExists(db, 't2'), tableExists(db, 't3')]).toEqual([true, false, false]);
  });

  it('is undone by a migrate run that applies the rolled back migrations again', async () => {
    const db = freshDatabase();
    pg.psql(db, 'CREATE TABLE journal (id serial, entry text)');
    const all = [numbered(1), numbered(2), numbered(3)];
    await run(db, all);
    await run(db, all, ['rollback'], { MIGRATE_TARGET_VERSION: '1' });
    const result = await run(db, all);
    expect(result.code).toBe(EXIT.ok);
    expect(result.stdout).toContain('2 applied, 1 already up to date');
    expect(appliedVersions(db)).toEqual(['001', '002', '003']);
  });

  it('undoes every migration with target 0', async () => {
    const db = freshDatabase();
    pg.psql(db, 'CREATE TABLE journal (id serial, entry text)');
    const all = [numbered(1), numbered(2)];
    await run(db, all);
    const result = await run(db, all, ['rollback'], { MIGRATE_TARGET_VERSION: '000' });
    expect(result.code).toBe(EXIT.ok);
    expect(result.stdout).toContain('2 rolled back, 0 still applied');
    expect(appliedVersions(db)).toEqual([]);
    expect(tableExists(db, 't1')).toBe(false);
  });

  it('refuses a down file it would run that differs from the plan, with exit 7, changing nothing', async () => {
    const db = freshDatabase();
    pg.psql(db, 'CREATE TABLE journal (id serial, entry text)');
    const all = [numbered(1), numbered(2)];
    await run(db, all);
    const result = await run(db, all, ['rollback'], { MIGRATE_TARGET_VERSION: '001' }, (dir) =>
      writeFileSync(path.join(dir, '..data', '002_create_t2.down.sql'), 'DROP TABLE t1;\n'),
    );
    expect(result.code).toBe(EXIT.migrationFailed);
    expect(result.stderr).toContain('002_create_t2.down.sql: content differs from the sha256 in plan.tsv');
    expect(appliedVersions(db)).toEqual(['001', '002']);
    expect([tableExists(db, 't1'), tableExists(db, 't2')]).toEqual([true, true]);
  });

  it('refuses to run without MIGRATE_TARGET_VERSION, with exit 1', async () => {
    const db = freshDatabase();
    const result = await run(db, [numbered(1)], ['rollback']);
    expect(result.code).toBe(EXIT.usage);
    expect(result.stderr).toContain('MIGRATE_TARGET_VERSION: required for rollback');
  });

  it('refuses a target that is not a version in the plan, with exit 1', async () => {
    const db = freshDatabase();
    await run(db, [numbered(1), numbered(2)]);
    const result = await run(db, [numbered(1), numbered(2)], ['rollback'], { MIGRATE_TARGET_VERSION: '007' });
    expect(result.code).toBe(EXIT.usage);
    expect(result.stderr).toContain("MIGRATE_TARGET_VERSION: '007' is not a version in plan.tsv");
    expect(appliedVersions(db)).toEqual(['001', '002']);
  });

  it('refuses to roll back when the database drifted from the plan, with exit 7', async () => {
    const db = freshDatabase();
    pg.psql(db, 'CREATE TABLE journal (id serial, entry text)');
    await run(db, [numbered(1), numbered(2)]);
    const result = await run(db, [numbered(1), numbered(2, 'CREATE TABLE t2 (id bigint);\n')], ['rollback'], { MIGRATE_TARGET_VERSION: '0' });
    expect(result.code).toBe(EXIT.migrationFailed);
    expect(result.stderr).toContain('002_create_t2.up.sql was changed after it was applied');
    expect(appliedVersions(db)).toEqual(['001', '002']);
  });
});
