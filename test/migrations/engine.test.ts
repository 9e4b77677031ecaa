// The migration engine under hostile and unlucky input (issue 11): each case runs the Job as the
// synth renders it for a set built here, against a real PostgreSQL, and checks the one rule
// that ties them together: exit 0 exactly when every planned migration is recorded, and a
// failure names the file whose statement failed, with what the database really holds.
import { existsSync, readFileSync } from 'node:fs';
import { createServer, Server } from 'node:net';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Migration } from '../../lib/migrations/types';
import { MigrationTemplate, prepareDistJob, renderedMigrationJob } from '../support/dist-job';
import { Pg } from '../support/postgres';
import { usePostgres } from '../support/postgres-fixture';
import { EXIT, QUICK, RunnerResult, eventually, migration, migrationSet, runRunner, synthProblems } from '../support/runner-harness';
import { migrationBundle } from '../../lib/migrations/bundle';
import { ADVISORY_LOCK_KEY } from '../../lib/migrations/runner-contract';

const APP_USER = 'learnflow';
let pg: Pg;
let mounts: string;
const { freshDatabase, appConnection } = usePostgres('engine', (server, dir) => {
  pg = server;
  mounts = dir;
}, { appUser: APP_USER });


/** Runs the rendered Job for `migrations` on `db`, as the application user unless `superuser`. */
async function run(db: string, migrations: readonly Migration[], options: { superuser?: boolean; env?: Record<string, string>; template?: MigrationTemplate } = {}): Promise<RunnerResult> {
  const job = renderedMigrationJob(migrations, { template: options.template });
  const login: Record<string, string> = options.superuser ? { PGUSER: pg.user, PGPASSWORD: pg.password } : {};
  const prepared = prepareDistJob(job, mounts, { ...appConnection(db), ...login }, { ...QUICK, ...options.env });
  return runRunner(prepared.dir, prepared.env, prepared.args);
}

const recorded = (db: string): string[] => {
  if (pg.psql(db, "SELECT to_regclass('public.applied_migrations') IS NULL") === 't') return [];
  return pg.psql(db, 'SELECT version FROM applied_migrations ORDER BY version').split('\n').filter(Boolean);
};
const exists = (db: string, relation: string) => pg.psql(db, `SELECT to_regclass('${relation}') IS NOT NULL`) === 't';

/** The rule every run obeys: exit 0 exactly when every planned migration is recorded. */
function expectExitMatchesRecords(result: RunnerResult, db: string, migrations: readonly Migration[]): void {
  const all = recorded(db).length === migrations.length && migrations.every((m) => recorded(db).includes(m.version));
  expect(result.code === EXIT.ok, `exit ${result.code} with ${recorded(db).length} of ${migrations.length} recorded\n${result.stderr}`).toBe(all);
}

describe('1. success after a failure', () => {
  const marker = () => path.join(mounts, `shell-ran-${Date.now()}`);

  it('refuses, at synth, turning standard_conforming_strings off (psql and PostgreSQL would then read strings differently)', () => {
    expect(synthProblems({
      '001_a.up.sql': "SET standard_conforming_strings = off;\nSELECT 'p\\', ' \\! touch /tmp/x #';\n",
      '001_a.down.sql': 'SELECT 1;\n',
    })).toEqual([expect.stringMatching(/^migrations\/001_a\.up\.sql:1: SET standard_conforming_strings = off changes how SQL is read/)]);
  });

  it('never runs a backslash command hidden in a string after the setting changed at run time, and stops with exit 7', async () => {
    const db = freshDatabase();
    const touched = marker();
    const set = migrationSet({
      '001_sneaky.up.sql': "SELECT set_config('standard_conforming_' || 'strings', 'off', false);\n" +
        `SELECT 'p\\', ' \\! touch ${touched} #';\n`,
      '001_sneaky.down.sql': 'SELECT 1;\n',
      '002_fails.up.sql': 'SELECT 1/0;\n',
      '002_fails.down.sql': 'SELECT 1;\n',
      '003_never.up.sql': 'CREATE TABLE never (id int);\n',
      '003_never.down.sql': 'DROP TABLE never;\n',
    });
    const result = await run(db, set);
    expect(existsSync(touched)).toBe(false);
    expect(result.code).toBe(EXIT.migrationFailed);
    expect(result.stderr).toContain('001_sneaky.up.sql:2:');
    expect(result.stderr).toContain('standard_conforming_strings is off');
    expect(recorded(db)).toEqual([]);
    expectExitMatchesRecords(result, db, set);
  });
});

describe('2. the failed file is the one named', () => {
  const set = migrationSet({
    '001_drop_old.up.sql': 'DROP TABLE IF EXISTS old_widgets;\nCREATE TABLE widgets (id int);\n',
    '001_drop_old.down.sql': 'DROP TABLE widgets;\n',
    '002_index.up.sql': '-- learnflow:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS widgets_id;\nCREATE INDEX CONCURRENTLY IF NOT EXISTS widgets_id ON widgets (id);\n',
    '002_index.down.sql': 'DROP INDEX IF EXISTS widgets_id;\n',
    '003_broken.up.sql': 'CREATE TABLE gadgets (id int);\n\nSELECT scroe FROM widgets;\n',
    '003_broken.down.sql': 'DROP TABLE gadgets;\n',
  });

  it('names the file, line and error of the statement that failed, not the NOTICE of an earlier migration', async () => {
    const db = freshDatabase();
    const result = await run(db, set);
    expect(result.code).toBe(EXIT.migrationFailed);
    expect(result.stderr).toContain('001_drop_old.up.sql:1: NOTICE:  table "old_widgets" does not exist, skipping');
    expect(result.stderr).toContain('003_broken.up.sql:3: ERROR:  column "scroe" does not exist');
    expect(result.stderr).toMatch(/003_broken\.up\.sql failed and was rolled back: none of it is applied/);
    expect(result.stderr).not.toMatch(/00[12]_\w+\.up\.sql failed/);
    // What is applied comes from the database.
    expect(result.stderr).toContain('the database records 2 of the 3 planned migrations as applied (001, 002)');
    expect(recorded(db)).toEqual(['001', '002']);
    expect(exists(db, 'gadgets')).toBe(false);
  });

  it('names the down file that failed in a rollback, after a NOTICE from an earlier one', async () => {
    const db = freshDatabase();
    const good = migrationSet({
      '001_a.up.sql': 'CREATE TABLE a (id int);\n', '001_a.down.sql': 'DROP TABLE a;\n',
      '002_b.up.sql': 'CREATE TABLE b (id int);\n', '002_b.down.sql': 'SELECT 1/0;\n',
      '003_c.up.sql': 'CREATE TABLE c (id int);\n', '003_c.down.sql': 'DROP TABLE IF EXISTS nothing;\nDROP TABLE c;\n',
    });
    expect((await run(db, good)).code).toBe(EXIT.ok);
    const result = await run(db, good, { template: 'rollback', env: { MIGRATE_TARGET_VERSION: '0' } });
    expect(result.code).toBe(EXIT.migrationFailed);
    expect(result.stderr).toContain('003_c.down.sql:1: NOTICE:');
    expect(result.stderr).toContain('002_b.down.sql:1: ERROR:  division by zero');
    expect(result.stderr).toContain('002_b.down.sql failed and was rolled back');
    expect(recorded(db)).toEqual(['001', '002']);
  });
});

describe('3. a NUL byte', () => {
  it('is refused by the synth, naming the file and line', () => {
    expect(synthProblems({ '001_a.up.sql': 'SELECT 1;\nSELECT 2;\u0000 DROP TABLE x;\n', '001_a.down.sql': 'SELECT 1;\n' }))
      .toEqual([expect.stringMatching(/^migrations\/001_a\.up\.sql:2: control character U\+0000/)]);
  });
});

describe('4. RESET ALL in a migration', () => {
  it('does not break the runner: every migration applies, exit 0', async () => {
    const db = freshDatabase();
    const set = migrationSet({
      '001_reset.up.sql': 'CREATE TABLE t1 (id int);\nRESET ALL;\n', '001_reset.down.sql': 'DROP TABLE t1;\n',
      '002_after.up.sql': 'CREATE TABLE t2 (id int);\n', '002_after.down.sql': 'DROP TABLE t2;\n',
    });
    const result = await run(db, set);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(EXIT.ok);
    expect(recorded(db)).toEqual(['001', '002']);
  });
});

describe('5. every migration starts from the same session', () => {
  it('undoes search_path, role, encoding, timeouts, custom settings and temporary tables after each file', async () => {
    const db = freshDatabase();
    pg.psql(db, `CREATE SCHEMA elsewhere AUTHORIZATION ${APP_USER}; CREATE ROLE limited NOLOGIN; GRANT limited TO ${APP_USER}; GRANT CREATE ON SCHEMA elsewhere TO limited`);
    const set = migrationSet({
      '001_unsettle.up.sql': [
        "SELECT set_config('search_path', 'elsewhere', false);",
        "SET lock_timeout = '1ms';",
        "SET statement_timeout = '50ms';",
      ].join('\n') + '\n',
      '001_unsettle.down.sql': 'SELECT 1;\n',
      '002_more.up.sql': [
        "SELECT set_config('app.flag', 'on', false);",
        'CREATE TEMP TABLE scratch (id int);',
        'SET ROLE limited;',
        // Last: the runner refuses any statement after it in this file (PostgreSQL would read it as LATIN1).
        "SELECT set_config('client_' || 'encoding', 'LATIN1', false);",
      ].join('\n') + '\n',
      '002_more.down.sql': 'SELECT 1;\n',
      '003_check.up.sql': [
        'CREATE TABLE landed (id int, word text);',
        "INSERT INTO landed VALUES (1, 'café');",
        'CREATE TEMP TABLE scratch (id int);',
        "INSERT INTO landed SELECT 2, current_setting('app.flag', true) WHERE current_setting('app.flag', true) IS DISTINCT FROM '';",
        'SELECT pg_sleep(0.1);',
      ].join('\n') + '\n',
      '003_check.down.sql': 'DROP TABLE landed;\n',
    });
    const result = await run(db, set);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(EXIT.ok);
    expect(exists(db, 'public.landed')).toBe(true);
    expect(pg.psql(db, 'SELECT tableowner FROM pg_tables WHERE tablename = \'landed\'')).toBe(APP_USER);
    expect(pg.psql(db, 'SELECT string_agg(id || word, \',\') FROM public.landed')).toBe('1café');
    expect(recorded(db)).toEqual(['001', '002', '003']);
  });

  it("applies Pagila's pg_dump schema and the migration after it in one run, as in two", async () => {
    const pagila = readFileSync(path.join(__dirname, '..', 'fixtures', 'sql-corpus', 'pagila', 'pagila-schema.sql'), 'utf8');
    const files = {
      '007_pagila.up.sql': pagila, '007_pagila.down.sql': 'SELECT 1;\n',
      '008_t8.up.sql': 'CREATE TABLE t8 (id int);\n', '008_t8.down.sql': 'DROP TABLE t8;\n',
    };
    const both = migrationSet(files);
    const oneRun = freshDatabase();
    const result = await run(oneRun, both, { superuser: true });
    expect(result.stderr).not.toMatch(/ERROR/);
    expect(result.code).toBe(EXIT.ok);
    const twoRuns = freshDatabase();
    expect((await run(twoRuns, both.slice(0, 1), { superuser: true })).code).toBe(EXIT.ok);
    expect((await run(twoRuns, both, { superuser: true })).code).toBe(EXIT.ok);
    for (const db of [oneRun, twoRuns]) expect(exists(db, 'public.t8'), db).toBe(true);
    const tables = (db: string) => pg.psql(db, "SELECT string_agg(schemaname || '.' || tablename, ',' ORDER BY 1) FROM pg_tables WHERE schemaname = 'public'");
    expect(tables(oneRun)).toBe(tables(twoRuns));
  });
});

describe('6. a function named begin', () => {
  it('does not hide a later COMMIT from the synth', () => {
    expect(synthProblems({
      '001_a.up.sql': 'CREATE FUNCTION begin() RETURNS int LANGUAGE sql RETURN 1;\nCOMMIT;\nCREATE TABLE t (id int);\n',
      '001_a.down.sql': 'SELECT 1;\n',
    })).toEqual([expect.stringMatching(/001_a\.up\.sql:2: transaction control statement COMMIT/)]);
  });

  it('still lets SQL-standard function bodies (BEGIN ATOMIC ... END) hold semicolons', async () => {
    const db = freshDatabase();
    const set = migrationSet({
      '001_fn.up.sql': 'CREATE FUNCTION begin() RETURNS int LANGUAGE sql RETURN 1;\n' +
        'CREATE FUNCTION twice(x int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT CASE WHEN x > 0 THEN x * 2 ELSE 0 END;\nEND;\n',
      '001_fn.down.sql': 'DROP FUNCTION twice(int);\nDROP FUNCTION begin();\n',
    });
    const result = await run(db, set);
    expect(result.code).toBe(EXIT.ok);
    expect(pg.psql(db, 'SELECT twice(21) + begin()')).toBe('43');
  });
});

describe('6. what is applied comes from the database', () => {
  it('stops without recording a file that ended its own transaction, saying that part of it may be committed', async () => {
    // Only a bundle built past the synth can carry a COMMIT; the runner must still not trust it.
    const db = freshDatabase();
    const set = [
      migration('001', 'first', 'CREATE TABLE first (id int);\n'),
      migration('002', 'sneaky', 'CREATE TABLE committed (id int);\nCOMMIT;\nCREATE TABLE after (id int);\n'),
    ];
    const prepared = prepareDistJob({ ...renderedMigrationJob([]), files: migrationBundle(set) }, mounts, appConnection(db), QUICK);
    const result = await runRunner(prepared.dir, prepared.env, prepared.args);
    expect(result.code).toBe(EXIT.migrationFailed);
    expect(result.stderr).toContain('ERROR:  the file ended the runner\'s transaction');
    expect(result.stderr).toContain('the database records 1 of the 2 planned migrations as applied (001)');
    expect(result.stderr).toContain('002_sneaky.up.sql ended the runner\'s transaction part way: what it did before that may be committed; it is not recorded as applied');
    expect(recorded(db)).toEqual(['001']);
    expect(exists(db, 'committed')).toBe(true);
  });

  it('stops without recording a file that released the migration lock once another runner holds it', async () => {
    const db = freshDatabase();
    const set = migrationSet({
      '001_unlock.up.sql': 'CREATE TABLE unlocked (id int);\nSELECT pg_advisory_unlock_all();\nSELECT pg_sleep(1);\n',
      '001_unlock.down.sql': 'DROP TABLE unlocked;\n',
    });
    const other = pg.session(db);
    try {
      const running = run(db, set);
      await eventually(() => pg.psql(db, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(1)%' AND state = 'active'") === '1', 'the file to run', 5000);
      // Another runner takes the lock the file let go of.
      await eventually(async () => (await other.query(`SELECT pg_try_advisory_lock(${ADVISORY_LOCK_KEY})`)) === 't', 'the lock to be free', 5000);
      const result = await running;
      expect(result.code).toBe(EXIT.migrationFailed);
      expect(result.stderr).toContain('ERROR:  the file released the migration lock');
      expect(result.stderr).toContain('001_unlock.up.sql failed and was rolled back');
      expect(recorded(db)).toEqual([]);
      expect(exists(db, 'unlocked')).toBe(false);
    } finally {
      await other.close();
    }
  });
});

describe('7. psql variables', () => {
  it('reach PostgreSQL as written, so :\'DBNAME\' fails as plain SQL would', async () => {
    const db = freshDatabase();
    const set = migrationSet({
      '001_vars.up.sql': "CREATE TABLE vars AS SELECT :'DBNAME' AS db;\n", '001_vars.down.sql': 'DROP TABLE vars;\n',
    });
    const result = await run(db, set);
    expect(result.code).toBe(EXIT.migrationFailed);
    expect(result.stderr).toContain('001_vars.up.sql:1: ERROR:  syntax error at or near ":"');
    expect(exists(db, 'vars')).toBe(false);
  });
});

describe('9. a table lock held past lockTimeout', () => {
  it('is transient: exit 4, rolled back, and the Job retries it', async () => {
    const db = freshDatabase();
    pg.psql(db, `CREATE TABLE busy (id int); ALTER TABLE busy OWNER TO ${APP_USER}`);
    const holder = pg.session(db);
    try {
      await holder.query('BEGIN; LOCK TABLE busy IN ACCESS SHARE MODE;');
      const set = migrationSet({ '001_alter_busy.up.sql': 'ALTER TABLE busy ADD COLUMN note text;\n', '001_alter_busy.down.sql': 'SELECT 1;\n' });
      const result = await run(db, set, { env: { MIGRATE_LOCK_TIMEOUT: '200ms' } });
      expect(result.code).toBe(EXIT.lockTimeout);
      expect(result.stderr).toContain('001_alter_busy.up.sql:1: ERROR:  canceling statement due to lock timeout');
      expect(result.stderr).toContain('retry');
      expect(recorded(db)).toEqual([]);
    } finally {
      await holder.close();
    }
    const job = renderedMigrationJob([]).job;
    const failJob = job.spec.podFailurePolicy.rules.find((r: any) => r.action === 'FailJob').onExitCodes.values;
    expect(failJob).not.toContain(EXIT.lockTimeout);
    expect(failJob).toContain(EXIT.migrationFailed);
  });
});

describe('10. the database wait', () => {
  let silent: Server;
  afterAll(() => silent?.close());

  it('never overshoots MIGRATE_DB_WAIT_SECONDS, even against a server that accepts and never answers', async () => {
    silent = createServer(() => { /* accepts, never answers */ });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    const set = migrationSet({ '001_a.up.sql': 'SELECT 1;\n', '001_a.down.sql': 'SELECT 1;\n' });
    const result = await run('postgres', set, { env: { PGPORT: String(port), MIGRATE_DB_WAIT_SECONDS: '3' } });
    expect(result.code).toBe(EXIT.connectionFailed);
    expect(result.ms).toBeLessThan(3000 + 1500);
  });
});
