// The migration runner (lib/migrations/runner.sh) against a real PostgreSQL: applying,
// refusing drift, failing safely. Locking and interruption: runner-locking.test.ts;
// status and rollback: runner-modes.test.ts.
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { migrationBundle } from '../../lib/migrations/bundle';
import { Migration } from '../../lib/migrations/types';
import { Pg } from '../support/postgres';
import { usePostgres } from '../support/postgres-fixture';
import { EXIT, QUICK, RunnerOptions, eventually, materializeBundle, migration, runRunner, startRunner } from '../support/runner-harness';

let pg: Pg;
let mounts: string;
const { freshDatabase } = usePostgres('runner', (server, dir) => {
  pg = server;
  mounts = dir;
});


/** The Job's mount and environment for `migrations` against `db`. */
function job(db: string, migrations: readonly Migration[], env: Record<string, string> = {}) {
  const dir = materializeBundle(migrationBundle(migrations), mounts);
  return { dir, env: { ...pg.env(db), TMPDIR: mounts, ...QUICK, ...env } };
}

function run(db: string, migrations: readonly Migration[], args: string[] = [], env: Record<string, string> = {}, options: RunnerOptions = {}) {
  const { dir, env: jobEnv } = job(db, migrations, env);
  return runRunner(dir, jobEnv, args, options);
}

const appliedVersions = (db: string) =>
  pg.psql(db, 'SELECT version FROM applied_migrations ORDER BY version').split('\n').filter(Boolean);
const tableExists = (db: string, table: string) => pg.psql(db, `SELECT to_regclass('${table}') IS NOT NULL`) === 't';

const createWidgets = migration('001', 'create_widgets', 'CREATE TABLE widgets (id integer PRIMARY KEY);\n', 'DROP TABLE widgets;\n');
const addName = migration('002', 'add_name', 'ALTER TABLE widgets ADD COLUMN name text;\n', 'ALTER TABLE widgets DROP COLUMN name;\n');
const createGadgets = migration('003', 'create_gadgets', 'CREATE TABLE gadgets (id integer);\n', 'DROP TABLE gadgets;\n');

describe('migrate', () => {
  it('applies every pending migration in version order, one log line each, under dash', async () => {
    const db = freshDatabase();
    const result = await run(db, [addName, createWidgets, createGadgets], [], {}, { shell: 'dash' });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(EXIT.ok);
    expect(result.stdout.split('\n').filter(Boolean)).toEqual([
      expect.stringMatching(/^learnflow-migrate: applied 001 create_widgets \(\d+ ms\)$/),
      expect.stringMatching(/^learnflow-migrate: applied 002 add_name \(\d+ ms\)$/),
      expect.stringMatching(/^learnflow-migrate: applied 003 create_gadgets \(\d+ ms\)$/),
      'learnflow-migrate: 3 applied, 0 already up to date',
    ]);
    expect(pg.psql(db, "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'widgets'")).toBe('id,name');
  });

  it('records version, name, up file checksum, time and duration of each applied migration', async () => {
    const db = freshDatabase();
    const before = pg.psql(db, 'SELECT now()');
    await run(db, [createWidgets, addName]);
    const rows = pg.psql(
      db,
      `SELECT version, name, checksum, applied_at >= '${before}'::timestamptz AND applied_at <= now(), execution_ms >= 0
         FROM applied_migrations ORDER BY version`,
    );
    expect(rows).toBe([`001|create_widgets|${createWidgets.up.sha256}|t|t`, `002|add_name|${addName.up.sha256}|t|t`].join('\n'));
  });

  it('does nothing on a re-run and says everything is up to date', async () => {
    const db = freshDatabase();
    await run(db, [createWidgets, addName]);
    const recorded = pg.psql(db, 'SELECT version, applied_at FROM applied_migrations ORDER BY version');
    const again = await run(db, [createWidgets, addName]);
    expect(again.code).toBe(EXIT.ok);
    expect(again.stdout).toBe('learnflow-migrate: 0 applied, 2 already up to date\n');
    expect(pg.psql(db, 'SELECT version, applied_at FROM applied_migrations ORDER BY version')).toBe(recorded);
  });

  it('applies only the new migrations when some are already applied', async () => {
    const db = freshDatabase();
    await run(db, [createWidgets]);
    const result = await run(db, [createWidgets, addName, createGadgets]);
    expect(result.code).toBe(EXIT.ok);
    expect(result.stdout).toMatch(/applied 002 add_name .*\n.*applied 003 create_gadgets .*\n.*2 applied, 1 already up to date\n$/);
    expect(appliedVersions(db)).toEqual(['001', '002', '003']);
  });

  it('re-runs 1,000 applied migrations as a quick no-op', async () => {
    const db = freshDatabase();
    const many = Array.from({ length: 1000 }, (_, i) => {
      const v = String(i + 1).padStart(4, '0');
      return migration(v, `step_${v}`, `SELECT ${i + 1} AS step;\n`);
    });
    const { dir, env } = job(db, many);
    const first = await runRunner(dir, env);
    expect(first.code).toBe(EXIT.ok);
    const noop = await runRunner(dir, env);
    console.info(`no-op re-run of 1,000 applied migrations: ${noop.ms} ms (first apply ${first.ms} ms)`);
    expect(noop.code).toBe(EXIT.ok);
    expect(noop.stdout).toBe('learnflow-migrate: 0 applied, 1000 already up to date\n');
    expect(noop.ms).toBeLessThan(1500);
  });

  it('applies a plan that comes in parts, in the order plan.parts lists them', async () => {
    const db = freshDatabase();
    const migrations = [createWidgets, addName, createGadgets];
    const bundle = migrationBundle(migrations, { planPartBudget: 200 });
    expect(bundle['plan.parts'].trim().split('\n')).toEqual(['plan.tsv', 'plan-002.tsv', 'plan-003.tsv']);
    const dir = materializeBundle(bundle, mounts);
    const result = await runRunner(dir, { ...pg.env(db), TMPDIR: mounts, ...QUICK });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(EXIT.ok);
    expect(result.stdout).toMatch(/applied 001 create_widgets .*\n.*applied 002 add_name .*\n.*applied 003 create_gadgets .*\n.*3 applied, 0 already up to date\n$/);
  });

  it('refuses a plan part that plan.parts lists but the mount lacks, with exit 1', async () => {
    const db = freshDatabase();
    const dir = materializeBundle(migrationBundle([createWidgets, addName], { planPartBudget: 200 }), mounts);
    rmSync(path.join(dir, 'plan-002.tsv'));
    const result = await runRunner(dir, { ...pg.env(db), TMPDIR: mounts, ...QUICK });
    expect(result.code).toBe(EXIT.usage);
    expect(result.stderr).toContain('plan-002.tsv: listed in plan.parts but missing from');
    expect(tableExists(db, 'applied_migrations')).toBe(false);
  });

  it('ignores the hidden ..data and timestamped entries of a ConfigMap mount', async () => {
    // materializeBundle lays out ..data, ..2024_… and a stale ..2023_… with a broken plan and a failing file.
    const db = freshDatabase();
    const result = await run(db, [createWidgets]);
    expect(result.code).toBe(EXIT.ok);
    expect(appliedVersions(db)).toEqual(['001']);
  });
});

describe('drift is refused before anything changes', () => {
  it('refuses an applied migration whose file changed, naming the file, and applies nothing', async () => {
    const db = freshDatabase();
    await run(db, [createWidgets, addName]);
    const edited = migration('001', 'create_widgets', 'CREATE TABLE widgets (id bigint PRIMARY KEY);\n', 'DROP TABLE widgets;\n');
    const result = await run(db, [edited, addName, createGadgets]);
    expect(result.code).toBe(EXIT.migrationFailed);
    expect(result.stderr).toContain('001_create_widgets.up.sql was changed after it was applied');
    expect(appliedVersions(db)).toEqual(['001', '002']);
    expect(tableExists(db, 'gadgets')).toBe(false);
  });

  it('refuses an applied version missing from the plan, naming its version and name', async () => {
    const db = freshDatabase();
    await run(db, [createWidgets, addName]);
    const result = await run(db, [createWidgets, createGadgets]);
    expect(result.code).toBe(EXIT.migrationFailed);
    expect(result.stderr).toContain('version 002 (add_name) is applied but not in the plan');
    expect(appliedVersions(db)).toEqual(['001', '002']);
    expect(tableExists(db, 'gadgets')).toBe(false);
  });

  it('refuses a pending migration older than the newest applied one, naming its file', async () => {
    const db = freshDatabase();
    await run(db, [createWidgets, createGadgets]);
    const result = await run(db, [createWidgets, addName, createGadgets]);
    expect(result.code).toBe(EXIT.migrationFailed);
    expect(result.stderr).toContain('002_add_name.up.sql is pending but older than the newest applied version 003');
    expect(appliedVersions(db)).toEqual(['001', '003']);
    expect(pg.psql(db, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'widgets' AND column_name = 'name'")).toBe('0');
  });

  it('refuses a mounted file that differs from the plan, naming it, without touching the database', async () => {
    const db = freshDatabase();
    const { dir, env } = job(db, [createWidgets, addName]);
    writeFileSync(path.join(dir, '..data', '002_add_name.up.sql'), 'DROP TABLE widgets;\n');
    const result = await runRunner(dir, env);
    expect(result.code).toBe(EXIT.migrationFailed);
    expect(result.stderr).toContain('002_add_name.up.sql: content differs from the sha256 in plan.tsv');
    expect(tableExists(db, 'applied_migrations')).toBe(false);
  });

  it('checks only the files it will run: a re-run reads no SQL file', async () => {
    const db = freshDatabase();
    const { dir, env } = job(db, [createWidgets, addName]);
    expect((await runRunner(dir, env)).code).toBe(EXIT.ok);
    // Unreadable now: a re-run with nothing to apply must not need them.
    for (const file of ['001_create_widgets.up.sql', '002_add_name.down.sql']) rmSync(path.join(dir, '..data', file));
    const again = await runRunner(dir, env);
    expect(again.stderr).toBe('');
    expect(again.stdout).toBe('learnflow-migrate: 0 applied, 2 already up to date\n');
  });

  it('refuses a plan whose file is missing from the mount, naming it', async () => {
    const db = freshDatabase();
    const { dir, env } = job(db, [createWidgets, addName]);
    rmSync(path.join(dir, '002_add_name.down.sql'));
    const result = await runRunner(dir, env);
    expect(result.code).toBe(EXIT.migrationFailed);
    expect(result.stderr).toContain('002_add_name.down.sql: listed in plan.tsv but missing from');
    expect(tableExists(db, 'applied_migrations')).toBe(false);
  });
});

describe('a failing migration', () => {
  const failing = migration('002', 'half_done', 'CREATE TABLE half_done (id integer);\nSELECT 1 / 0;\n');
  const later = migration('003', 'later', 'CREATE TABLE later (id integer);\n');

  it('keeps earlier migrations, rolls itself back entirely, skips later ones and exits 7', async () => {
    const db = freshDatabase();
    const result = await run(db, [createWidgets, failing, later]);
    expect(result.code).toBe(EXIT.migrationFailed);
    expect(result.stderr).toContain('002_half_done.up.sql:2: ERROR:  division by zero');
    expect(result.stderr).toContain('002_half_done.up.sql failed and was rolled back');
    expect(appliedVersions(db)).toEqual(['001']);
    expect(tableExists(db, 'half_done')).toBe(false);
    expect(tableExists(db, 'later')).toBe(false);
  });

  it('completes on a re-run once the file is fixed', async () => {
    const db = freshDatabase();
    await run(db, [createWidgets, failing, later]);
    const fixed = migration('002', 'half_done', 'CREATE TABLE half_done (id integer);\n');
    const result = await run(db, [createWidgets, fixed, later]);
    expect(result.code).toBe(EXIT.ok);
    expect(result.stdout).toContain('2 applied, 1 already up to date');
    expect(appliedVersions(db)).toEqual(['001', '002', '003']);
  });

  it('is stopped by MIGRATE_STATEMENT_TIMEOUT and exits 7', async () => {
    const db = freshDatabase();
    const slow = migration('001', 'slow', 'CREATE TABLE slow (id integer);\nSELECT pg_sleep(5);\n');
    const result = await run(db, [slow], [], { MIGRATE_STATEMENT_TIMEOUT: '1s' });
    expect(result.code).toBe(EXIT.migrationFailed);
    expect(result.stderr).toContain('canceling statement due to statement timeout');
    expect(result.ms).toBeLessThan(4000);
    expect(tableExists(db, 'slow')).toBe(false);
  });
});

describe('migrations outside a transaction', () => {
  it('applies and records a no-transaction migration that creates an index concurrently', async () => {
    const db = freshDatabase();
    const index = migration(
      '003',
      'index_widget_names',
      '-- learnflow:no-transaction\n' +
        '-- A failed run can leave an INVALID index behind: drop it so the re-run builds it again.\n' +
        "DO $$ BEGIN IF EXISTS (SELECT FROM pg_index WHERE indexrelid = to_regclass('widgets_name') AND NOT indisvalid) THEN\n" +
        '  DROP INDEX widgets_name; END IF; END $$;\n' +
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS widgets_name ON widgets (name);\n',
      'DROP INDEX widgets_name;\n',
    );
    expect(index.transactional).toBe(false);
    const applied = await run(db, [createWidgets, addName, index]);
    expect(applied.code).toBe(EXIT.ok);
    expect(applied.stdout).toMatch(/applied 003 index_widget_names \(\d+ ms, no transaction\)/);
    expect(appliedVersions(db)).toEqual(['001', '002', '003']);
    expect(pg.psql(db, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'widgets_name'::regclass")).toBe('t');
  });
});

describe('isolation from the runner', () => {
  it("applies migration text that looks like the runner's psql variables literally", async () => {
    const db = freshDatabase();
    // psql would substitute :lf_run in the slice if the runner left that variable set.
    const literal = migration(
      '001',
      'literal_colons',
      '-- :lf_run :lf_locked :lf_applied\n' +
        "CREATE TABLE literals AS SELECT ':lf_locked' AS quoted, (ARRAY[10, 20, 30])[1:lf_run] AS sliced, 1 AS x /* :lf_after_0 */\n" +
        '  FROM (SELECT 2 AS lf_run) AS s;\n',
    );
    const result = await run(db, [literal]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(EXIT.ok);
    expect(pg.psql(db, 'SELECT quoted, sliced, x FROM literals')).toBe(':lf_locked|{10,20}|1');
  });
});

describe('configuration and connection errors', () => {
  it('rejects a malformed MIGRATE_STATEMENT_TIMEOUT with exit 1, naming the variable', async () => {
    const db = freshDatabase();
    const result = await run(db, [createWidgets], [], { MIGRATE_STATEMENT_TIMEOUT: '15 minutes' });
    expect(result.code).toBe(EXIT.usage);
    expect(result.stderr).toContain("MIGRATE_STATEMENT_TIMEOUT: '15 minutes' is not a PostgreSQL duration");
    expect(tableExists(db, 'applied_migrations')).toBe(false);
  });

  it('rejects an unknown command with exit 1', async () => {
    const result = await run(freshDatabase(), [createWidgets], ['upgrade']);
    expect(result.code).toBe(EXIT.usage);
    expect(result.stderr).toContain("unknown command 'upgrade'");
  });

  it('refuses a psql older than 15 with exit 1, changing nothing', async () => {
    const db = freshDatabase();
    // The real psql, telling the script it is psql 14 (the variable the runner checks).
    const bin = path.join(mounts, 'old-psql');
    mkdirSync(bin, { recursive: true });
    writeFileSync(path.join(bin, 'psql'), `#!/bin/sh\nexec '${path.join(pg.bindir, 'psql')}' -v VERSION_NUM=140011 "$@"\n`);
    chmodSync(path.join(bin, 'psql'), 0o755);
    const result = await run(db, [createWidgets], [], { PATH: `${bin}:${pg.env(db).PATH}` });
    expect(result.code).toBe(EXIT.usage);
    expect(result.stderr).toContain('the runner needs psql 15 or later');
    expect(result.stderr).not.toContain('LEARNFLOW_');
    expect(tableExists(db, 'applied_migrations')).toBe(false);
    expect(tableExists(db, 'widgets')).toBe(false);
  });

  it('gives up on an unreachable database after MIGRATE_DB_WAIT_SECONDS with exit 8', async () => {
    const port = await unusedPort();
    const result = await run('postgres', [createWidgets], [], { PGPORT: String(port), MIGRATE_DB_WAIT_SECONDS: '2' });
    expect(result.code).toBe(EXIT.connectionFailed);
    expect(result.stderr).toContain(`gave up after 2s waiting for the database at 127.0.0.1:${port}`);
    expect(result.ms).toBeGreaterThanOrEqual(2000); // never less than the setting
    expect(result.ms).toBeLessThan(10_000);
  });

  it('fails a wrong password with exit 8 at once instead of waiting', async () => {
    const result = await run(freshDatabase(), [createWidgets], [], { PGPASSWORD: 'wrong', MIGRATE_DB_WAIT_SECONDS: '30' });
    expect(result.code).toBe(EXIT.connectionFailed);
    expect(result.stderr).toContain('password authentication failed');
    expect(result.ms).toBeLessThan(5000);
  });

  it('exits 8 when the connection drops mid-migration, leaving that migration unapplied', async () => {
    const db = freshDatabase();
    const slow = migration('001', 'slow', 'CREATE TABLE slow (id integer);\nSELECT pg_sleep(30);\n');
    const { dir, env } = job(db, [slow]);
    const runner = startRunner(dir, env);
    await eventually(() => runnerBackends(db, "query LIKE '%pg_sleep(30)%'") === 1, 'the runner to run the slow migration');
    pg.psql(db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'learnflow-migrate' AND datname = current_database()");
    const result = await runner.done;
    expect(result.code).toBe(EXIT.connectionFailed);
    expect(result.stderr).toContain('lost the connection to the database');
    expect(tableExists(db, 'slow')).toBe(false);
    expect(appliedVersions(db)).toEqual([]);
  });
});

function runnerBackends(db: string, where = 'true'): number {
  return Number(
    pg.psql(db, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'learnflow-migrate' AND datname = current_database() AND ${where}`),
  );
}

function unusedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
