// The synthesized migration Job from dist/, run as the cluster would run it (same command, same
// files laid out like a ConfigMap mount, same environment) against a real PostgreSQL, with the
// application user of the chart owning the database, as the Bitnami chart sets it up.
import { describe, expect, it } from 'vitest';
import { PROFILES } from '../../lib/profiles';
import { resolveConfig } from '../../lib/config';
import { runnerScript } from '../../lib/migrations/runner-contract';
import { Pg } from '../support/postgres';
import { usePostgres } from '../support/postgres-fixture';
import { distMigrationJob, prepareDistJob } from '../support/dist-job';
import { runRunner } from '../support/runner-harness';

const PROFILE = 'development';
const job = distMigrationJob(PROFILE);
const appUser = job.env.PGUSER;
let pg: Pg;
let mounts: string;
const { freshDatabase, appConnection } = usePostgres('learnflow', (server, dir) => {
  pg = server;
  mounts = dir;
}, { appUser });

/** Runs the dist/ Job (or one of its CronJob templates) against `db`. */
function run(db: string, cronJob?: string, overrides: Record<string, string> = {}) {
  const prepared = prepareDistJob(cronJob ? distMigrationJob(PROFILE, cronJob) : job, mounts, appConnection(db), overrides);
  return runRunner(prepared.dir, prepared.env, prepared.args);
}

const rows = (db: string, sql: string) => pg.psql(db, sql).split('\n').filter(Boolean);

/** The data model's six tables: column, type, nullability and default, as information_schema shows them. */
const EXPECTED_COLUMNS = `
curriculum|id|integer|NO|nextval('curriculum_id_seq'::regclass)
curriculum|module_name|character varying(255)|NO|
curriculum|topic_name|character varying(255)|NO|
curriculum|order_index|integer|YES|
curriculum|dependencies|jsonb|YES|
curriculum|estimated_minutes|integer|YES|
exercises|id|integer|NO|nextval('exercises_id_seq'::regclass)
exercises|title|character varying(255)|NO|
exercises|description|text|YES|
exercises|difficulty|character varying(20)|YES|
exercises|test_cases|jsonb|YES|
exercises|solution|text|YES|
exercises|topic|character varying(100)|YES|
progress|id|integer|NO|nextval('progress_id_seq'::regclass)
progress|user_id|integer|NO|
progress|topic|character varying(255)|NO|
progress|mastery_score|integer|YES|0
progress|last_practiced|timestamp without time zone|YES|
progress|streak_days|integer|YES|0
struggle_alerts|id|integer|NO|nextval('struggle_alerts_id_seq'::regclass)
struggle_alerts|user_id|integer|NO|
struggle_alerts|topic|character varying(255)|NO|
struggle_alerts|error_pattern|text|YES|
struggle_alerts|first_detected|timestamp without time zone|YES|now()
struggle_alerts|resolved_at|timestamp without time zone|YES|
struggle_alerts|notified|boolean|YES|false
submissions|id|integer|NO|nextval('submissions_id_seq'::regclass)
submissions|user_id|integer|NO|
submissions|exercise_id|integer|NO|
submissions|code|text|NO|
submissions|feedback|text|YES|
submissions|score|integer|YES|
submissions|submitted_at|timestamp without time zone|YES|now()
users|id|integer|NO|nextval('users_id_seq'::regclass)
users|username|character varying(255)|NO|
users|email|character varying(255)|NO|
users|role|character varying(50)|YES|'student'::character varying
users|created_at|timestamp without time zone|YES|now()
users|updated_at|timestamp without time zone|YES|now()`.trim().split('\n');

const COLUMNS_SQL = `
SELECT c.table_name, c.column_name,
       format_type(a.atttypid, a.atttypmod), c.is_nullable, coalesce(c.column_default, '')
  FROM information_schema.columns c
  JOIN pg_attribute a ON a.attrelid = ('public.' || c.table_name)::regclass AND a.attname = c.column_name
 WHERE c.table_schema = 'public' AND c.table_name <> 'applied_migrations'
 ORDER BY c.table_name, c.ordinal_position`;

/** Every index the data model lists, with its definition's distinctive part. */
const EXPECTED_INDEXES: Record<string, string> = {
  idx_users_username: 'ON public.users USING btree (username)',
  idx_users_email: 'ON public.users USING btree (email)',
  idx_users_role: 'ON public.users USING btree (role)',
  idx_progress_user_id: 'ON public.progress USING btree (user_id)',
  idx_progress_topic: 'ON public.progress USING btree (topic)',
  idx_progress_mastery: 'ON public.progress USING btree (mastery_score)',
  idx_submissions_user_id: 'ON public.submissions USING btree (user_id)',
  idx_submissions_exercise_id: 'ON public.submissions USING btree (exercise_id)',
  idx_submissions_submitted_at: 'ON public.submissions USING btree (submitted_at DESC)',
  idx_exercises_topic: 'ON public.exercises USING btree (topic)',
  idx_exercises_difficulty: 'ON public.exercises USING btree (difficulty)',
  idx_struggle_user_id: 'ON public.struggle_alerts USING btree (user_id)',
  idx_struggle_topic: 'ON public.struggle_alerts USING btree (topic)',
  idx_struggle_resolved: 'ON public.struggle_alerts USING btree (resolved_at)',
  idx_struggle_notified: 'ON public.struggle_alerts USING btree (notified) WHERE (notified = false)',
  idx_curriculum_module: 'ON public.curriculum USING btree (module_name)',
  idx_curriculum_order: 'ON public.curriculum USING btree (order_index)',
};

describe('the migration Job from dist/ on a real PostgreSQL', () => {
  it('runs the runner that lib/ holds, with the knobs the typed props set', () => {
    expect(job.files['runner.sh']).toBe(runnerScript());
    const m = resolveConfig(PROFILES[PROFILE]).migrations;
    expect(job.env).toMatchObject({
      MIGRATE_DB_WAIT_SECONDS: String(m.waitForDatabaseSeconds),
      MIGRATE_LOCK_WAIT_SECONDS: String(m.lockWaitSeconds),
      MIGRATE_STATEMENT_TIMEOUT: m.statementTimeout,
      MIGRATE_LOCK_TIMEOUT: m.lockTimeout,
    });
    expect(job.secretEnv.PGPASSWORD).toEqual({ name: 'postgres-postgresql-credentials', key: 'password' });
  });

  it('creates the six tables with every column, type, default and index of the data model', async () => {
    const db = freshDatabase();
    const result = await run(db);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split('\n')).toEqual([
      expect.stringMatching(/^learnflow-migrate: applied 001 create_users \(\d+ ms\)$/),
      expect.stringMatching(/^learnflow-migrate: applied 002 create_exercises \(\d+ ms\)$/),
      expect.stringMatching(/^learnflow-migrate: applied 003 create_progress \(\d+ ms\)$/),
      expect.stringMatching(/^learnflow-migrate: applied 004 create_submissions \(\d+ ms\)$/),
      expect.stringMatching(/^learnflow-migrate: applied 005 create_struggle_alerts \(\d+ ms\)$/),
      expect.stringMatching(/^learnflow-migrate: applied 006 create_curriculum \(\d+ ms\)$/),
      expect.stringMatching(/6 applied, 0 already up to date/),
    ]);
    expect(rows(db, COLUMNS_SQL).map((r) => r)).toEqual(EXPECTED_COLUMNS);
    const indexes = Object.fromEntries(rows(db, `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND indexname LIKE 'idx_%'`)
      .map((r) => r.split('|')).map(([name, def]) => [name, def.replace(/^CREATE (UNIQUE )?INDEX \S+ /, '')]));
    expect(indexes).toEqual(EXPECTED_INDEXES);
    // Tables belong to the application user, who ran the migrations.
    expect(rows(db, `SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'`)).toEqual([appUser]);
  });

  it('enforces the foreign keys, unique constraints and the checks the data model states in words', async () => {
    const db = freshDatabase();
    expect((await run(db)).code).toBe(0);
    const fails = (sql: string, constraint: string) => expect(() => pg.psql(db, sql)).toThrow(constraint);
    pg.psql(db, `INSERT INTO users (username, email) VALUES ('ada', 'ada@example.com');
                 INSERT INTO exercises (title, difficulty) VALUES ('loops', 'beginner')`);
    expect(rows(db, 'SELECT role FROM users')).toEqual(['student']);
    fails(`INSERT INTO users (username, email, role) VALUES ('bob', 'bob@example.com', 'owner')`, 'users_role_check');
    fails(`INSERT INTO users (username, email) VALUES ('ada', 'other@example.com')`, 'users_username_key');
    fails(`INSERT INTO users (username, email) VALUES ('eve', 'ada@example.com')`, 'users_email_key');
    fails(`INSERT INTO exercises (title, difficulty) VALUES ('x', 'expert')`, 'exercises_difficulty_check');
    fails(`INSERT INTO progress (user_id, topic, mastery_score) VALUES (1, 'loops', 101)`, 'progress_mastery_score_check');
    fails(`INSERT INTO submissions (user_id, exercise_id, code, score) VALUES (1, 1, 'print()', -1)`, 'submissions_score_check');
    fails(`INSERT INTO progress (user_id, topic) VALUES (42, 'loops')`, 'progress_user_id_fkey');
    pg.psql(db, `INSERT INTO progress (user_id, topic) VALUES (1, 'loops')`);
    fails(`INSERT INTO progress (user_id, topic) VALUES (1, 'loops')`, 'progress_user_id_topic_key');
    pg.psql(db, `INSERT INTO submissions (user_id, exercise_id, code) VALUES (1, 1, 'print(1)');
                 INSERT INTO struggle_alerts (user_id, topic) VALUES (1, 'loops')`);
    // ON DELETE CASCADE from users and exercises.
    pg.psql(db, `DELETE FROM users WHERE username = 'ada'`);
    expect(rows(db, `SELECT (SELECT count(*) FROM progress) + (SELECT count(*) FROM submissions) + (SELECT count(*) FROM struggle_alerts)`)).toEqual(['0']);
  });

  it('is a no-op when run again, and the status template reports everything applied', async () => {
    const db = freshDatabase();
    expect((await run(db)).code).toBe(0);
    const again = await run(db);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/0 applied, 6 already up to date/);
    expect(rows(db, 'SELECT count(*) FROM applied_migrations')).toEqual(['6']);
    const status = await run(db, 'postgres-postgresql-migrations-status');
    expect(status.code).toBe(0);
    expect(status.stdout.split('\n').filter((l) => / applied \d{3} /.test(l) || /^applied \d{3}/.test(l.replace(/^learnflow-migrate: /, '')))).toHaveLength(6);
  });

  it('rolls back to a target through the rollback template, then migrates up again', async () => {
    const db = freshDatabase();
    expect((await run(db)).code).toBe(0);
    const back = await run(db, 'postgres-postgresql-migrations-rollback', { MIGRATE_TARGET_VERSION: '003' });
    expect(back.stderr).toBe('');
    expect(back.code).toBe(0);
    expect(back.stdout).toMatch(/rolled back 006 create_curriculum[\s\S]*rolled back 005 create_struggle_alerts[\s\S]*rolled back 004 create_submissions/);
    expect(rows(db, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`))
      .toEqual(['applied_migrations', 'exercises', 'progress', 'users']);
    const none = await run(db, 'postgres-postgresql-migrations-rollback', { MIGRATE_TARGET_VERSION: '0' });
    expect(none.code).toBe(0);
    expect(rows(db, `SELECT tablename FROM pg_tables WHERE schemaname = 'public'`)).toEqual(['applied_migrations']);
    const up = await run(db);
    expect(up.code).toBe(0);
    expect(up.stdout).toMatch(/6 applied, 0 already up to date/);
  });

  it('renders the same migration set for every profile', () => {
    expect(distMigrationJob('production').files).toEqual(job.files);
  });
});
