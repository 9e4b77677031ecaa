// The synthesized migration Job from dist/, run as the cluster would run it (same command, same
// files laid out like a ConfigMap mount, same environment) against a real PostgreSQL, with the
// application user of the chart owning the database, as the Bitnami chart sets it up. What it
// expects comes from migrations/ and lib/profiles.ts at run time, except LearnFlow's schema,
// asserted in one place below (LEARNFLOW_SCHEMA): evolving the schema means updating that place.
import { mkdtempSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROFILES } from '../../lib/profiles';
import { resolveConfig } from '../../lib/config';
import { CREDENTIAL_KEYS } from '../../lib/credentials/keys';
import { loadMigrations } from '../../lib/migrations/files';
import { runnerScript } from '../../lib/migrations/runner-contract';
import { resourceName } from '../../lib/names';
import { expectedTables } from '../../lib/verification/expected-schema';
import { Pg } from '../support/postgres';
import { usePostgres } from '../support/postgres-fixture';
import { MigrationTemplate, distMigrationJob, prepareDistJob, runPod } from '../support/dist-job';
import { ROOT, manifests } from '../support/dist';
import { runRunner } from '../support/runner-harness';

const PROFILE = 'development';
const config = resolveConfig(PROFILES[PROFILE]);
const migrations = loadMigrations('migrations', { root: ROOT });
const tables = expectedTables(migrations);
const job = distMigrationJob(PROFILE);
const appUser = job.env.PGUSER;
let pg: Pg;
let mounts: string;
const { freshDatabase, appConnection } = usePostgres('learnflow', (server, dir) => {
  pg = server;
  mounts = dir;
}, { appUser });

/** Runs the dist/ Job (or one of its templates) against `db`. */
function run(db: string, template?: MigrationTemplate, overrides: Record<string, string> = {}) {
  const prepared = prepareDistJob(template ? distMigrationJob(PROFILE, template) : job, mounts, appConnection(db), overrides);
  return runRunner(prepared.dir, prepared.env, prepared.args);
}

const rows = (db: string, sql: string) => pg.psql(db, sql).split('\n').filter(Boolean);
const publicTables = (db: string) => rows(db, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`);

/**
 * LearnFlow's schema, as the data model states it: the one place that names LearnFlow's tables,
 * columns (type, nullability, default) and indexes. New columns or tables may come; these stay.
 */
const LEARNFLOW_SCHEMA = {
  columns: `
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
users|updated_at|timestamp without time zone|YES|now()`.trim().split('\n'),
  /** Every index the data model lists, with its definition's distinctive part. */
  indexes: {
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
  } as Record<string, string>,
};

const COLUMNS_SQL = `
SELECT c.table_name, c.column_name,
       format_type(a.atttypid, a.atttypmod), c.is_nullable, coalesce(c.column_default, '')
  FROM information_schema.columns c
  JOIN pg_attribute a ON a.attrelid = ('public.' || c.table_name)::regclass AND a.attname = c.column_name
 WHERE c.table_schema = 'public' AND c.table_name <> 'applied_migrations'
 ORDER BY c.table_name, c.ordinal_position`;

describe("LearnFlow's schema, from the migration Job of dist/", () => {
  it('has every column, type, default and index of the data model', async () => {
    const db = freshDatabase();
    expect((await run(db)).code).toBe(0);
    expect(rows(db, COLUMNS_SQL)).toEqual(expect.arrayContaining(LEARNFLOW_SCHEMA.columns));
    const indexes = Object.fromEntries(rows(db, `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND indexname LIKE 'idx_%'`)
      .map((r) => r.split('|')).map(([name, def]) => [name, def.replace(/^CREATE (UNIQUE )?INDEX \S+ /, '')]));
    expect(indexes).toMatchObject(LEARNFLOW_SCHEMA.indexes);
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
});

describe('the migration Job from dist/ on a real PostgreSQL', () => {
  it('runs the runner its contract renders, with the knobs the typed props set', () => {
    expect(job.files['runner.sh']).toBe(runnerScript());
    const m = config.migrations;
    expect(job.env).toMatchObject({
      MIGRATE_DB_WAIT_SECONDS: String(m.waitForDatabaseSeconds),
      MIGRATE_LOCK_WAIT_SECONDS: String(m.lockWaitSeconds),
      MIGRATE_STATEMENT_TIMEOUT: m.statementTimeout,
      MIGRATE_LOCK_TIMEOUT: m.lockTimeout,
    });
  });

  it('logs in through the password file its init container writes from the credentials Secret, no password in any variable', async () => {
    const secretName = config.credentials.existingSecret ?? resourceName(config.releaseName, 'credentials');
    const spec = job.job.spec.template.spec;
    expect(job.secretEnv).toEqual({});
    expect(spec.volumes).toContainEqual({ name: 'database-password', secret: { secretName, items: [{ key: CREDENTIAL_KEYS.password, path: 'password' }], defaultMode: 0o440 } });
    // Only the init container mounts the Secret; the Job's container reads the password file, read-only.
    expect(spec.containers[0].volumeMounts.map((m: any) => m.name)).not.toContain('database-password');
    expect(spec.containers[0].volumeMounts).toContainEqual({ name: 'database-login', mountPath: job.env.PGPASSFILE.replace(/\/[^/]+$/, ''), readOnly: true });
    expect(spec.volumes).toContainEqual({ name: 'database-login', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } });

    const db = freshDatabase();
    const { PGPASSWORD: password, ...connection } = appConnection(db);
    const pod = (secret: string) => runPod(manifests(PROFILE), job.job, mkdtempSync(path.join(mounts, 'pod-')), {
      secrets: { [secretName]: { [CREDENTIAL_KEYS.password]: secret } },
      env: { ...connection, PGSSLMODE: 'disable' },
    });
    const ok = await pod(password);
    expect(ok.init.map((r) => [r.code, r.stderr])).toEqual([[0, '']]);
    expect(ok.main?.stderr).toBe('');
    expect(ok.main?.code).toBe(0);
    expect(rows(db, 'SELECT count(*) FROM applied_migrations')).toEqual([String(migrations.length)]);
    // A wrong password: refused at once, not waited on (exit 8).
    const wrong = await pod('not-the-password');
    expect(wrong.main?.code).toBe(8);
    expect(wrong.main?.stderr).toMatch(/cannot log in to .* as learnflow, not retrying: .*password authentication failed/);
  });

  it('applies every migration of migrations/ in order, creating the tables they define, as the application user', async () => {
    const db = freshDatabase();
    const result = await run(db);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split('\n')).toEqual([
      ...migrations.map((m) => expect.stringMatching(new RegExp(`^learnflow-migrate: applied ${m.version} ${m.name} \\(\\d+ ms(, no transaction)?\\)$`))),
      `learnflow-migrate: ${migrations.length} applied, 0 already up to date`,
    ]);
    expect(publicTables(db)).toEqual([...tables, 'applied_migrations'].sort());
    // Tables belong to the application user, who ran the migrations.
    expect(rows(db, `SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'`)).toEqual([appUser]);
  });

  it('is a no-op when run again, and the status template reports everything applied', async () => {
    const db = freshDatabase();
    expect((await run(db)).code).toBe(0);
    const again = await run(db);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(`learnflow-migrate: 0 applied, ${migrations.length} already up to date\n`);
    expect(rows(db, 'SELECT count(*) FROM applied_migrations')).toEqual([String(migrations.length)]);
    const status = await run(db, 'status');
    expect(status.code).toBe(0);
    expect(status.stdout.split('\n').filter((l) => l.startsWith('learnflow-migrate: applied '))).toHaveLength(migrations.length);
  });

  it('rolls back to a target through the rollback template, then migrates up again', async () => {
    const db = freshDatabase();
    expect((await run(db)).code).toBe(0);
    const target = migrations[Math.floor(migrations.length / 2) - 1];
    const undone = migrations.slice(migrations.indexOf(target) + 1).reverse();
    const back = await run(db, 'rollback', { MIGRATE_TARGET_VERSION: target.version });
    expect(back.stderr).toBe('');
    expect(back.code).toBe(0);
    expect(back.stdout.split('\n').filter(Boolean)).toEqual([
      ...undone.map((m) => expect.stringMatching(new RegExp(`^learnflow-migrate: rolled back ${m.version} ${m.name} `))),
      `learnflow-migrate: ${undone.length} rolled back, ${migrations.length - undone.length} still applied`,
    ]);
    expect(publicTables(db)).toEqual([...expectedTables(migrations.slice(0, migrations.indexOf(target) + 1)), 'applied_migrations'].sort());
    const none = await run(db, 'rollback', { MIGRATE_TARGET_VERSION: '0' });
    expect(none.code).toBe(0);
    expect(publicTables(db)).toEqual(['applied_migrations']);
    const up = await run(db);
    expect(up.code).toBe(0);
    expect(up.stdout).toContain(`${migrations.length} applied, 0 already up to date`);
  });

  it('renders the same migration set for every profile', () => {
    for (const profile of Object.keys(PROFILES)) expect(distMigrationJob(profile).files, profile).toEqual(job.files);
  });
});
