// Migrations as users write them, through the Job as the synth renders it, on a real PostgreSQL:
// pg_dump's own output with its data (COPY … FROM stdin, \N, \., \restrict), a 20 MiB migration
// carried in parts, and a migration whose down file says it cannot be undone.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIGMAP_DATA_BUDGET, encodedSize } from '../../lib/migrations/layout';
import { FILE_PARTS_KEY } from '../../lib/migrations/runner-contract';
import { Migration } from '../../lib/migrations/types';
import { DistJob, MigrationTemplate, prepareDistJob, renderedMigrationJob } from '../support/dist-job';
import { Pg } from '../support/postgres';
import { usePostgres } from '../support/postgres-fixture';
import { EXIT, QUICK, RunnerResult, migrationSet, runRunner } from '../support/runner-harness';

const APP_USER = 'learnflow';
let pg: Pg;
let mounts: string;
const { freshDatabase, appConnection } = usePostgres('usersql', (server, dir) => {
  pg = server;
  mounts = dir;
}, { appUser: APP_USER });


async function runJob(db: string, job: DistJob, env: Record<string, string> = {}): Promise<RunnerResult> {
  const prepared = prepareDistJob(job, mounts, appConnection(db), { ...QUICK, ...env });
  return runRunner(prepared.dir, prepared.env, prepared.args);
}
const run = (db: string, set: readonly Migration[], template?: MigrationTemplate, env: Record<string, string> = {}) =>
  runJob(db, renderedMigrationJob(set, { template }), env);

const recorded = (db: string) => pg.psql(db, 'SELECT coalesce(string_agg(version, \',\' ORDER BY version), \'\') FROM applied_migrations');
/** Every row of `table` as text, in order: equal fingerprints, equal data. */
const rowsOf = (db: string, table: string) => pg.psql(db, `SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) || ' ' || count(*) FROM ${table} t`);

describe("pg_dump's output as a migration", () => {
  /** A database with values that trip a naive reader: quotes, backslashes, tabs, newlines, NULLs, semicolons. */
  const source = () => {
    const db = freshDatabase();
    pg.psql(db, `
      CREATE TABLE learners (id integer PRIMARY KEY, name text, note text, tags text[], joined date);
      INSERT INTO learners VALUES
        (1, 'o''brien', E'tab\\there\\nnew line \\\\ backslash', '{a,"b c"}', '2024-01-02'),
        (2, NULL, 'semi; colon -- not a comment /* nor this */', NULL, NULL),
        (3, '\\.', E'\\\\.', '{}', '2024-02-29'),
        (4, 'café ✓ 😀', '$$ $lf1$ :''DBNAME'' \\i /etc/passwd', '{"\\\\N"}', '1999-12-31');
      ALTER TABLE learners OWNER TO ${APP_USER};`);
    return db;
  };
  const dump = (db: string, ...args: string[]) =>
    execFileSync(path.join(pg.bindir, 'pg_dump'), ['--no-owner', '--no-privileges', ...args], { env: pg.env(db), encoding: 'utf8' });

  it('applies schema and data exactly, every value as dumped', async () => {
    const from = source();
    const sql = dump(from);
    expect(sql).toContain('COPY public.learners (id, name, note, tags, joined) FROM stdin;\n');
    const set = migrationSet({ '001_import.up.sql': sql, '001_import.down.sql': 'DROP TABLE public.learners;\n' });
    const to = freshDatabase();
    const result = await run(to, set);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(EXIT.ok);
    expect(rowsOf(to, 'learners')).toBe(rowsOf(from, 'learners'));
    expect(pg.psql(to, 'SELECT name FROM learners WHERE id = 3')).toBe('\\.');
  });

  it('takes a data-only dump after a migration that created the table, then the next migration', async () => {
    const from = source();
    const set = migrationSet({
      '001_schema.up.sql': dump(from, '--schema-only'), '001_schema.down.sql': 'DROP TABLE public.learners;\n',
      '002_data.up.sql': dump(from, '--data-only'), '002_data.down.sql': 'DELETE FROM public.learners;\n',
      '003_after.up.sql': 'CREATE TABLE after_data (id integer);\n', '003_after.down.sql': 'DROP TABLE after_data;\n',
    });
    const to = freshDatabase();
    const result = await run(to, set);
    expect(result.code, result.stderr).toBe(EXIT.ok);
    expect(rowsOf(to, 'learners')).toBe(rowsOf(from, 'learners'));
    expect(recorded(to)).toBe('001,002,003');
  });

  it('names the file and rolls it back when a data row is bad, with exit 7', async () => {
    const set = migrationSet({
      '001_bad_row.up.sql': 'CREATE TABLE t (id integer, d date);\nCOPY t (id, d) FROM stdin;\n1\t2024-01-01\n2\tnot a date\n\\.\n',
      '001_bad_row.down.sql': 'DROP TABLE t;\n',
    });
    const db = freshDatabase();
    const result = await run(db, set);
    expect(result.code).toBe(EXIT.migrationFailed);
    expect(result.stderr).toMatch(/learnflow-migrate: 001_bad_row\.up\.sql:\d+: ERROR: {2}invalid input syntax for type date: "not a date"/);
    expect(result.stderr).toContain('001_bad_row.up.sql failed and was rolled back: none of it is applied');
    expect(pg.psql(db, "SELECT to_regclass('t') IS NULL")).toBe('t');
  });
});

describe('a 20 MiB migration', () => {
  it('is carried in parts the runner joins and checks whole, and applies through the Job', async () => {
    const lines: string[] = [];
    let bytes = 0;
    for (let id = 1; bytes < 20 * 1024 * 1024; id++) {
      const line = `${id}\tlesson ${id} <o'brien & co>\t${'x'.repeat(id % 97)}\n`;
      lines.push(line);
      bytes += Buffer.byteLength(line);
    }
    const inserts = Array.from({ length: 200 }, (_, i) => `INSERT INTO seed VALUES (${lines.length + i + 1}, 'insert ${i}', '${'y'.repeat(500)}');`);
    const up = `CREATE TABLE seed (id integer PRIMARY KEY, title text, pad text);\nCOPY seed (id, title, pad) FROM stdin;\n${lines.join('')}\\.\n${inserts.join('\n')}\n`;
    expect(Buffer.byteLength(up)).toBeGreaterThan(20 * 1024 * 1024);
    const set = migrationSet({ '001_seed.up.sql': up, '001_seed.down.sql': 'DROP TABLE seed;\n' });
    const job = renderedMigrationJob(set);

    expect(job.files[FILE_PARTS_KEY]).toMatch(/^001_seed\.up\.sql \d+\n$/);
    expect(job.configMaps.length).toBeGreaterThan(100);
    for (const configMap of job.configMaps) {
      const size = Object.entries(configMap.data as Record<string, string>).reduce((sum, [key, value]) => sum + encodedSize(key, value), 0);
      expect(size, configMap.metadata.name).toBeLessThanOrEqual(CONFIGMAP_DATA_BUDGET);
    }

    const db = freshDatabase();
    const result = await run(db, set);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(EXIT.ok);
    expect(pg.psql(db, 'SELECT count(*), max(id) FROM seed')).toBe(`${lines.length + 200}|${lines.length + 200}`);
    expect(pg.psql(db, "SELECT title FROM seed WHERE id = 3")).toBe("lesson 3 <o'brien & co>");

    // A part that differs from what the plan says stops the runner before anything runs.
    const again = freshDatabase();
    const edited = { ...job, files: { ...job.files, '001_seed.up.sql.part-002': job.files['001_seed.up.sql.part-002'].replace('lesson', 'lessen') } };
    const refused = await runJob(again, edited);
    expect(refused.code).toBe(EXIT.migrationFailed);
    expect(refused.stderr).toContain('001_seed.up.sql: content differs from the sha256 in plan.tsv');
    expect(pg.psql(again, "SELECT to_regclass('seed') IS NULL")).toBe('t');
  }, 120_000);
});

describe('a migration that cannot be undone', () => {
  const set = migrationSet({
    '001_users.up.sql': 'CREATE TABLE users (id integer, legacy text);\n', '001_users.down.sql': 'DROP TABLE users;\n',
    '002_drop_legacy.up.sql': 'ALTER TABLE users DROP COLUMN legacy;\n',
    '002_drop_legacy.down.sql': "-- learnflow:irreversible the legacy column's data is gone\n",
    '003_scores.up.sql': 'CREATE TABLE scores (id integer);\n', '003_scores.down.sql': 'DROP TABLE scores;\n',
  });

  it('makes a rollback past it fail with exit 1, naming it, before anything changes', async () => {
    const db = freshDatabase();
    expect((await run(db, set)).code).toBe(EXIT.ok);
    const result = await run(db, set, 'rollback', { MIGRATE_TARGET_VERSION: '001' });
    expect(result.code).toBe(EXIT.usage);
    expect(result.stderr).toContain('rolling back to 001 would pass migrations that cannot be undone, nothing was changed:');
    expect(result.stderr).toContain('002_drop_legacy.down.sql says it cannot be undone (see its first line)');
    expect(result.stderr).toMatch(/rollback refused: set MIGRATE_TARGET_VERSION at or above the newest migration that cannot be undone.*\(exit 1\)/);
    expect(recorded(db)).toBe('001,002,003');
    expect(pg.psql(db, "SELECT to_regclass('scores') IS NOT NULL")).toBe('t');
  });

  it('lets a rollback down to it pass', async () => {
    const db = freshDatabase();
    expect((await run(db, set)).code).toBe(EXIT.ok);
    const result = await run(db, set, 'rollback', { MIGRATE_TARGET_VERSION: '002' });
    expect(result.code, result.stderr).toBe(EXIT.ok);
    expect(recorded(db)).toBe('001,002');
  });
});
