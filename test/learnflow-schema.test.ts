// LearnFlow's schema, asserted in this one place: migrations/ applied in order to a real
// PostgreSQL, as the application user that owns the database (as the migration Job does), and the
// catalog compared with the data model table by table: every column with its type, nullability
// and default, every constraint and every index. Every other test builds its own migrations or
// derives what it expects from migrations/ at run time.
//
// LEARNFLOW_SCHEMA is the data model as of migration SCHEMA_VERSION. A newer migration passes
// here as long as it applies and its down file brings the schema back to the data model; to
// assert what it adds, update LEARNFLOW_SCHEMA and SCHEMA_VERSION below, nothing else.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadMigrations } from '../lib/migrations/files';
import { Migration } from '../lib/migrations/types';
import { ROOT } from './support/dist';
import { Pg } from './support/postgres';
import { usePostgres } from './support/postgres-fixture';

interface Table {
  /** `name type [NOT NULL] [DEFAULT expression]`, in column order, as the catalog spells them. */
  readonly columns: readonly string[];
  /** Constraint name → pg_get_constraintdef(). */
  readonly constraints: Readonly<Record<string, string>>;
  /** Index name → its definition after `ON public.<table> USING` (the indexes of constraints too). */
  readonly indexes: Readonly<Record<string, string>>;
}

const serial = (table: string) => `id integer NOT NULL DEFAULT nextval('${table}_id_seq'::regclass)`;
const oneOf = (column: string, values: string[]) =>
  `CHECK (((${column})::text = ANY ((ARRAY[${values.map((v) => `'${v}'::character varying`).join(', ')}])::text[])))`;
const cascadeTo = (column: string, table: string) => `FOREIGN KEY (${column}) REFERENCES ${table}(id) ON DELETE CASCADE`;

/** The newest migration LEARNFLOW_SCHEMA describes. */
const SCHEMA_VERSION = '006';

/** The data model: LearnFlow's tables as the migrations up to SCHEMA_VERSION leave them. */
const LEARNFLOW_SCHEMA: Readonly<Record<string, Table>> = {
  users: {
    columns: [
      serial('users'),
      'username character varying(255) NOT NULL',
      'email character varying(255) NOT NULL',
      "role character varying(50) DEFAULT 'student'::character varying",
      'created_at timestamp without time zone DEFAULT now()',
      'updated_at timestamp without time zone DEFAULT now()',
    ],
    constraints: {
      users_pkey: 'PRIMARY KEY (id)',
      users_username_key: 'UNIQUE (username)',
      users_email_key: 'UNIQUE (email)',
      users_role_check: oneOf('role', ['student', 'teacher', 'admin']),
    },
    indexes: {
      users_pkey: 'UNIQUE btree (id)', users_username_key: 'UNIQUE btree (username)', users_email_key: 'UNIQUE btree (email)',
      idx_users_username: 'btree (username)', idx_users_email: 'btree (email)', idx_users_role: 'btree (role)',
    },
  },
  exercises: {
    columns: [
      serial('exercises'),
      'title character varying(255) NOT NULL',
      'description text',
      'difficulty character varying(20)',
      'test_cases jsonb',
      'solution text',
      'topic character varying(100)',
    ],
    constraints: {
      exercises_pkey: 'PRIMARY KEY (id)',
      exercises_difficulty_check: oneOf('difficulty', ['beginner', 'intermediate', 'advanced']),
    },
    indexes: { exercises_pkey: 'UNIQUE btree (id)', idx_exercises_topic: 'btree (topic)', idx_exercises_difficulty: 'btree (difficulty)' },
  },
  progress: {
    columns: [
      serial('progress'),
      'user_id integer NOT NULL',
      'topic character varying(255) NOT NULL',
      'mastery_score integer DEFAULT 0',
      'last_practiced timestamp without time zone',
      'streak_days integer DEFAULT 0',
    ],
    constraints: {
      progress_pkey: 'PRIMARY KEY (id)',
      progress_user_id_fkey: cascadeTo('user_id', 'users'),
      progress_user_id_topic_key: 'UNIQUE (user_id, topic)',
      progress_mastery_score_check: 'CHECK (((mastery_score >= 0) AND (mastery_score <= 100)))',
      progress_streak_days_check: 'CHECK ((streak_days >= 0))',
    },
    indexes: {
      progress_pkey: 'UNIQUE btree (id)', progress_user_id_topic_key: 'UNIQUE btree (user_id, topic)',
      idx_progress_user_id: 'btree (user_id)', idx_progress_topic: 'btree (topic)', idx_progress_mastery: 'btree (mastery_score)',
    },
  },
  submissions: {
    columns: [
      serial('submissions'),
      'user_id integer NOT NULL',
      'exercise_id integer NOT NULL',
      'code text NOT NULL',
      'feedback text',
      'score integer',
      'submitted_at timestamp without time zone DEFAULT now()',
    ],
    constraints: {
      submissions_pkey: 'PRIMARY KEY (id)',
      submissions_user_id_fkey: cascadeTo('user_id', 'users'),
      submissions_exercise_id_fkey: cascadeTo('exercise_id', 'exercises'),
      submissions_score_check: 'CHECK (((score >= 0) AND (score <= 100)))',
    },
    indexes: {
      submissions_pkey: 'UNIQUE btree (id)', idx_submissions_user_id: 'btree (user_id)',
      idx_submissions_exercise_id: 'btree (exercise_id)', idx_submissions_submitted_at: 'btree (submitted_at DESC)',
    },
  },
  struggle_alerts: {
    columns: [
      serial('struggle_alerts'),
      'user_id integer NOT NULL',
      'topic character varying(255) NOT NULL',
      'error_pattern text',
      'first_detected timestamp without time zone DEFAULT now()',
      'resolved_at timestamp without time zone',
      'notified boolean DEFAULT false',
    ],
    constraints: { struggle_alerts_pkey: 'PRIMARY KEY (id)', struggle_alerts_user_id_fkey: cascadeTo('user_id', 'users') },
    indexes: {
      struggle_alerts_pkey: 'UNIQUE btree (id)', idx_struggle_user_id: 'btree (user_id)', idx_struggle_topic: 'btree (topic)',
      idx_struggle_resolved: 'btree (resolved_at)', idx_struggle_notified: 'btree (notified) WHERE (notified = false)',
    },
  },
  curriculum: {
    columns: [
      serial('curriculum'),
      'module_name character varying(255) NOT NULL',
      'topic_name character varying(255) NOT NULL',
      'order_index integer',
      'dependencies jsonb',
      'estimated_minutes integer',
    ],
    constraints: { curriculum_pkey: 'PRIMARY KEY (id)', curriculum_estimated_minutes_check: 'CHECK ((estimated_minutes >= 0))' },
    indexes: { curriculum_pkey: 'UNIQUE btree (id)', idx_curriculum_module: 'btree (module_name)', idx_curriculum_order: 'btree (order_index)' },
  },
};

const APP_USER = 'learnflow';
const MIGRATIONS: readonly Migration[] = loadMigrations(path.join(ROOT, 'migrations'), { root: ROOT });
const MODELLED = MIGRATIONS.filter((m) => BigInt(m.version) <= BigInt(SCHEMA_VERSION));
const NEWER = MIGRATIONS.filter((m) => BigInt(m.version) > BigInt(SCHEMA_VERSION));

/** Rows of `sql` (psql -At), each split at `|`. */
const rows = (pg: Pg, db: string, sql: string) => pg.psql(db, sql).split('\n').filter(Boolean).map((line) => line.split('|'));

/** The catalog of schema `public`, in the shape of LEARNFLOW_SCHEMA. */
function catalog(pg: Pg, db: string): Record<string, Table> {
  const tables: Record<string, { columns: string[]; constraints: Record<string, string>; indexes: Record<string, string> }> = {};
  const table = (name: string) => (tables[name] ??= { columns: [], constraints: {}, indexes: {} });
  for (const [t] of rows(pg, db, `SELECT tablename FROM pg_tables WHERE schemaname = 'public'`)) table(t);
  for (const [t, column, type, notNull, def] of rows(pg, db, `
      SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, coalesce(pg_get_expr(d.adbin, d.adrelid), '')
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid LEFT JOIN pg_attrdef d ON (d.adrelid, d.adnum) = (a.attrelid, a.attnum)
      WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY c.relname, a.attnum`)) {
    table(t).columns.push([column, type, notNull === 't' ? 'NOT NULL' : '', def ? `DEFAULT ${def}` : ''].filter(Boolean).join(' '));
  }
  for (const [t, name, def] of rows(pg, db, `
      SELECT conrelid::regclass, conname, pg_get_constraintdef(oid) FROM pg_constraint
      WHERE connamespace = 'public'::regnamespace`)) {
    table(t).constraints[name] = def;
  }
  for (const [t, name, def] of rows(pg, db, `SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'`)) {
    table(t).indexes[name] = def.replace(/^CREATE (UNIQUE )?INDEX \S+ ON public\.\S+ USING /, (_, unique) => (unique ? 'UNIQUE ' : ''));
  }
  return tables;
}

describe('LearnFlow\'s schema', () => {
  let pg: Pg;
  const postgres = usePostgres('schema', (server) => (pg = server), { appUser: APP_USER });

  /** Runs `file` with psql as the application user, in one transaction unless it opts out. */
  const apply = (db: string, sql: string, transactional: boolean) => execFileSync(path.join(pg.bindir, 'psql'),
    ['-X', '-q', '-v', 'ON_ERROR_STOP=1', ...(transactional ? ['--single-transaction'] : []), '-f', '-'],
    { input: sql, env: { ...postgres.appConnection(db), PGUSER: APP_USER }, stdio: ['pipe', 'pipe', 'pipe'] });

  /** A fresh database with `migrations` applied, in order. */
  const migrated = (migrations: readonly Migration[] = MODELLED) => {
    const db = postgres.freshDatabase();
    for (const m of migrations) apply(db, m.up.sql, m.transactional);
    return db;
  };

  it(`is what migrations/ up to ${SCHEMA_VERSION} creates, applied in order by the database's owner: every column, constraint and index`, () => {
    expect(MODELLED.at(-1)?.version).toBe(SCHEMA_VERSION);
    expect(catalog(pg, migrated())).toEqual(LEARNFLOW_SCHEMA);
  });

  it(`takes every newer migration and gets back to it through their down files (${NEWER.map((m) => m.version).join(', ') || 'none yet'})`, () => {
    const db = migrated(MIGRATIONS);
    for (const m of [...NEWER].reverse()) apply(db, m.down.sql, m.transactional);
    expect(catalog(pg, db)).toEqual(LEARNFLOW_SCHEMA);
  });

  it('enforces the data model\'s rules: roles, difficulty levels, 0-100 scores, cascades from users', () => {
    const db = migrated();
    const fails = (sql: string) => expect(() => apply(db, sql, true), sql).toThrow(/violates check constraint/);
    apply(db, `INSERT INTO users (username, email) VALUES ('ada', 'ada@example.com');
      INSERT INTO exercises (title, difficulty) VALUES ('Loops', 'beginner');
      INSERT INTO progress (user_id, topic) VALUES (1, 'loops');
      INSERT INTO submissions (user_id, exercise_id, code, score) VALUES (1, 1, 'print(1)', 100);`, true);
    expect(rows(pg, db, `SELECT role, (SELECT mastery_score FROM progress), (SELECT streak_days FROM progress) FROM users`)).toEqual([['student', '0', '0']]);
    fails(`INSERT INTO users (username, email, role) VALUES ('eve', 'eve@example.com', 'root')`);
    fails(`INSERT INTO exercises (title, difficulty) VALUES ('x', 'expert')`);
    fails(`INSERT INTO progress (user_id, topic, mastery_score) VALUES (1, 'x', 101)`);
    fails(`INSERT INTO submissions (user_id, exercise_id, code, score) VALUES (1, 1, 'x', -1)`);
    apply(db, `DELETE FROM users`, true);
    expect(rows(pg, db, `SELECT (SELECT count(*) FROM progress) + (SELECT count(*) FROM submissions)`)).toEqual([['0']]);
  });

  it('is removed entirely by the down files, newest first', () => {
    const db = migrated(MIGRATIONS);
    for (const m of [...MIGRATIONS].reverse()) apply(db, m.down.sql, m.transactional);
    expect(catalog(pg, db)).toEqual({});
  });
});
