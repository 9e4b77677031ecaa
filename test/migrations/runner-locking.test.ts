// The migration runner against a real PostgreSQL: concurrent runners, the advisory lock, and
// runners that are killed or stopped part way.
import { describe, expect, it } from 'vitest';
import { migrationBundle } from '../../lib/migrations/bundle';
import { ADVISORY_LOCK_KEY } from '../../lib/migrations/runner-contract';
import { Migration } from '../../lib/migrations/types';
import { Pg } from '../support/postgres';
import { usePostgres } from '../support/postgres-fixture';
import { EXIT, eventually, materializeBundle, migration, runRunner, startRunner } from '../support/runner-harness';

let pg: Pg;
let mounts: string;
const { freshDatabase } = usePostgres('locking', (server, dir) => {
  pg = server;
  mounts = dir;
});

/** The Job's mount and environment for `migrations` against `db`. */
function job(db: string, migrations: readonly Migration[], env: Record<string, string> = {}) {
  const dir = materializeBundle(migrationBundle(migrations), mounts);
  return { dir, env: { ...pg.env(db), TMPDIR: mounts, MIGRATE_DB_WAIT_SECONDS: '2', MIGRATE_LOCK_WAIT_SECONDS: '2', ...env } };
}

const appliedVersions = (db: string) =>
  pg.psql(db, "SELECT version FROM applied_migrations ORDER BY version").split('\n').filter(Boolean);
const tableExists = (db: string, table: string) => pg.psql(db, `SELECT to_regclass('${table}') IS NOT NULL`) === 't';
/** Sessions of runners connected to `db` (they identify as application_name learnflow-migrate). */
const runnerSessions = (db: string, where = 'true') =>
  Number(pg.psql(db, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'learnflow-migrate' AND datname = current_database() AND ${where}`));

describe('the migration lock', () => {
  it('lets four runners started at once apply each migration exactly once', async () => {
    const db = freshDatabase();
    // Both would fail if run twice: no IF NOT EXISTS, and a primary key on the counted row.
    const migrations = [
      migration('001', 'create_once', 'CREATE TABLE once (id integer PRIMARY KEY);\n'),
      migration('002', 'count_runs', 'INSERT INTO once VALUES (1);\n'),
    ];
    const { dir, env } = job(db, migrations, { MIGRATE_LOCK_WAIT_SECONDS: '30' });
    const results = await Promise.all([1, 2, 3, 4].map(() => runRunner(dir, env)));
    expect(results.map((r) => r.code)).toEqual([EXIT.ok, EXIT.ok, EXIT.ok, EXIT.ok]);
    expect(results.filter((r) => r.stdout.includes('2 applied, 0 already up to date'))).toHaveLength(1);
    expect(results.filter((r) => r.stdout.includes('0 applied, 2 already up to date'))).toHaveLength(3);
    expect(pg.psql(db, 'SELECT count(*) FROM once')).toBe('1');
    expect(appliedVersions(db)).toEqual(['001', '002']);
  });

  it('gives up with exit 4 after MIGRATE_LOCK_WAIT_SECONDS while another session holds the lock, changing nothing', async () => {
    const db = freshDatabase();
    const holder = pg.session(db);
    try {
      await holder.query(`SELECT pg_advisory_lock(${ADVISORY_LOCK_KEY})`);
      const { dir, env } = job(db, [migration('001', 'create_t', 'CREATE TABLE t (id integer);\n')], { MIGRATE_LOCK_WAIT_SECONDS: '1' });
      const result = await runRunner(dir, env);
      expect(result.code).toBe(EXIT.lockTimeout);
      expect(result.stdout).toContain('another runner holds the migration lock; waiting up to 1s');
      expect(result.stderr).toMatch(/gave up after 1s waiting for the migration lock, held by pid \d+/);
      expect(result.ms).toBeLessThan(5000);
      expect(tableExists(db, 'applied_migrations')).toBe(false);
      expect(tableExists(db, 't')).toBe(false);
    } finally {
      await holder.close();
    }
  });

  it("does not block the lock holder's CREATE INDEX CONCURRENTLY while it waits", async () => {
    const db = freshDatabase();
    pg.psql(db, 'CREATE TABLE big (id integer); INSERT INTO big SELECT generate_series(1, 10000);');
    const holder = pg.session(db);
    try {
      await holder.query(`SELECT pg_advisory_lock(${ADVISORY_LOCK_KEY})`);
      const { dir, env } = job(db, [migration('001', 'create_t', 'CREATE TABLE t (id integer);\n')], { MIGRATE_LOCK_WAIT_SECONDS: '30' });
      const runner = startRunner(dir, env);
      let finished = false;
      void runner.done.then(() => (finished = true));
      await eventually(() => runner.stdout().includes('waiting up to 30s'), 'the runner to wait for the lock');
      // A waiter blocked inside pg_advisory_lock holds a snapshot that CIC must wait for: here
      // PostgreSQL reports a deadlock and kills one of them; with the lock held on another
      // connection (as Flyway does) CIC just hangs. Short polls hold no snapshot in between.
      await holder.query("SET statement_timeout = '10s'; CREATE INDEX CONCURRENTLY big_id ON big (id);", 15_000);
      expect(finished).toBe(false);
      expect(pg.psql(db, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'big_id'::regclass")).toBe('t');
      await holder.query(`SELECT pg_advisory_unlock(${ADVISORY_LOCK_KEY})`);
      const result = await runner.done;
      expect(result.code).toBe(EXIT.ok);
      expect(appliedVersions(db)).toEqual(['001']);
    } finally {
      await holder.close();
    }
  });
});

describe('a runner stopped part way', () => {
  // Sleeps while the table slow_mode exists, so the test decides when the migration is slow.
  const slow = migration(
    '002',
    'slow_change',
    'CREATE TABLE half_done (id integer);\n' +
      "SELECT pg_sleep(CASE WHEN to_regclass('slow_mode') IS NULL THEN 0 ELSE 60 END);\n",
  );
  const first = migration('001', 'create_first', 'CREATE TABLE first (id integer);\n');

  it('leaves no partial change and no record when killed, and a re-run completes', async () => {
    const db = freshDatabase();
    pg.psql(db, 'CREATE TABLE slow_mode ()');
    const { dir, env } = job(db, [first, slow]);
    const runner = startRunner(dir, env);
    await eventually(() => runnerSessions(db, "query LIKE '%pg_sleep%' AND state = 'active'") === 1, 'the slow migration to run');
    runner.kill('SIGKILL');
    const killed = await runner.done;
    expect(killed.signal).toBe('SIGKILL');
    // PostgreSQL notices the vanished client (client_connection_check_interval) and rolls back.
    await eventually(() => runnerSessions(db) === 0, 'the killed session to end');
    expect(tableExists(db, 'half_done')).toBe(false);
    expect(appliedVersions(db)).toEqual(['001']);

    pg.psql(db, 'DROP TABLE slow_mode');
    const rerun = await runRunner(dir, env);
    expect(rerun.code).toBe(EXIT.ok);
    expect(rerun.stdout).toContain('1 applied, 1 already up to date');
    expect(appliedVersions(db)).toEqual(['001', '002']);
  });

  it('cancels the running migration at once on SIGTERM to the shell, as on pod deletion', async () => {
    const db = freshDatabase();
    pg.psql(db, 'CREATE TABLE slow_mode ()');
    const { dir, env } = job(db, [first, slow]);
    const runner = startRunner(dir, env);
    await eventually(() => runnerSessions(db, "query LIKE '%pg_sleep%' AND state = 'active'") === 1, 'the slow migration to run');
    const started = Date.now();
    process.kill(runner.pid, 'SIGTERM'); // the shell only, as the kubelet signals PID 1
    const result = await runner.done;
    expect(result.code).toBe(143);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(result.stderr).toContain('stopped by a signal');
    expect(tableExists(db, 'half_done')).toBe(false);
    expect(appliedVersions(db)).toEqual(['001']);
  });
});
