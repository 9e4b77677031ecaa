// The property that ties the engine's rules together, over seeded random migration sets that
// mix successes, failures, NOTICEs and WARNINGs, session changes (search_path, role, encoding,
// timeouts, custom settings, temporary tables, RESET ALL), text that looks like psql syntax
// and no-transaction files, each run through the Job as the synth renders it:
//   - the exit code is 0 exactly when every planned migration is recorded;
//   - a failure names the file and line of the statement that failed, and the database holds
//     exactly the migrations before it;
//   - the outcome does not depend on how many migrations one run applies (one run for the whole
//     set ends as one run per migration does).
import { describe, expect, it } from 'vitest';
import { prepareDistJob, renderedMigrationJob } from '../support/dist-job';
import { Pg } from '../support/postgres';
import { usePostgres } from '../support/postgres-fixture';
import { seeded } from '../support/generated-migrations';
import { EXIT, RunnerResult, migrationSet, runRunner } from '../support/runner-harness';
import { Migration } from '../../lib/migrations/types';

const APP_USER = 'learnflow';
let pg: Pg;
let mounts: string;
const { freshDatabase, appConnection } = usePostgres('property', (server, dir) => {
  pg = server;
  mounts = dir;
  // A role the runner's user may switch to, which may create nothing in public.
  server.psql('postgres', `CREATE ROLE limited NOLOGIN; GRANT limited TO ${APP_USER}`);
}, { appUser: APP_USER });

const SETS = 8;

interface GeneratedSet {
  readonly files: Record<string, string>;
  /** The planted failure: the file's key and the line of the statement, or none. */
  readonly failure?: { readonly version: string; readonly key: string; readonly line: number; readonly transactional: boolean };
}

/** Changes to the session a migration may leave behind; any of them, leaked, breaks a later one. */
const SESSION_CHANGES = [
  "SET search_path = '';",
  "SELECT set_config('search_path', 'pg_catalog', false);",
  "SET statement_timeout = '100ms';",
  "SET lock_timeout = '1ms';",
  'RESET ALL;',
  'SET ROLE limited;',
  "SELECT set_config('app.leaked', 'yes', false);",
  'CREATE TEMP TABLE IF NOT EXISTS scratch (id int);',
];

function generate(seed: number): GeneratedSet {
  const random = seeded(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const count = 3 + Math.floor(random() * 5);
  const failing = random() < 0.6 ? 1 + Math.floor(random() * count) : 0;
  const files: Record<string, string> = {};
  let failure: GeneratedSet['failure'];
  for (let n = 1; n <= count; n++) {
    const version = String(n).padStart(3, '0');
    const transactional = random() < 0.8;
    const lines: string[] = transactional ? [] : ['-- learnflow:no-transaction'];
    const table = `t${n}`;
    lines.push(transactional ? `CREATE TABLE ${table} (\n  id int PRIMARY KEY,\n  note text\n);` : `CREATE TABLE IF NOT EXISTS ${table} (id int PRIMARY KEY, note text);`);
    const body = [
      `INSERT INTO ${table} VALUES (1, 'it''s fine; -- not a comment \\! not a command :not_a_var');`,
      `DROP TABLE IF EXISTS never_${n};`,
      `DO $body$ BEGIN RAISE NOTICE 'step %', ${n}; END $body$;`,
      "DO $$ BEGIN RAISE WARNING 'careful'; END $$;",
      "SELECT ':DBNAME', $q$\\set ON_ERROR_STOP off$q$, E'tab\\there';",
      'SELECT pg_sleep(0.15);',
      ...(transactional ? ['CREATE TEMP TABLE scratch (id int);', `SELECT 1; SELECT ${n};`] : [`CREATE INDEX CONCURRENTLY IF NOT EXISTS ${table}_note ON ${table} (note);`]),
    ];
    for (let i = 0, k = 1 + Math.floor(random() * 4); i < k; i++) {
      const statement = pick(body);
      if (!lines.includes(statement)) lines.push(statement);
    }
    if (n === failing) {
      lines.push(pick(['SELECT 1/0;', 'SELECT no_such_column;', `INSERT INTO ${table} VALUES (7, 'a'), (7, 'b');`]));
      const key = `${version}_m${n}.up.sql`;
      failure = { version, key, line: lines.join('\n').split('\n').length, transactional };
    }
    const changes = lines.includes('CREATE TEMP TABLE scratch (id int);') ? SESSION_CHANGES.filter((c) => !c.includes('scratch')) : SESSION_CHANGES;
    for (let i = 0, k = Math.floor(random() * 3); i < k; i++) lines.push(pick(changes));
    // Last, when at all: no statement of the file may follow it (PostgreSQL would read it as LATIN1).
    if (random() < 0.2) lines.push("SELECT set_config('client_' || 'encoding', 'LATIN1', false);");
    files[`${version}_m${n}.up.sql`] = `${lines.join('\n')}\n`;
    files[`${version}_m${n}.down.sql`] = `DROP TABLE IF EXISTS ${table};\n`;
  }
  return { files, failure };
}

async function run(db: string, migrations: readonly Migration[]): Promise<RunnerResult> {
  const prepared = prepareDistJob(renderedMigrationJob(migrations), mounts, appConnection(db), { MIGRATE_DB_WAIT_SECONDS: '2', MIGRATE_LOCK_WAIT_SECONDS: '2' });
  return runRunner(prepared.dir, prepared.env, prepared.args);
}

const recorded = (db: string): string[] =>
  pg.psql(db, "SELECT string_agg(version, ' ' ORDER BY version) FROM applied_migrations WHERE to_regclass('public.applied_migrations') IS NOT NULL").split(' ').filter(Boolean);
const tables = (db: string) => pg.psql(db, "SELECT coalesce(string_agg(tablename, ' ' ORDER BY tablename), '') FROM pg_tables WHERE schemaname = 'public'");

describe('any migration set', () => {
  it.each(Array.from({ length: SETS }, (_, i) => i + 1))('set %i: exit 0 exactly when all is recorded, the failed file named, the same in one run as in many', async (seed) => {
    const { files, failure } = generate(seed);
    const set = migrationSet(files);
    const planned = set.map((m) => m.version);
    const before = failure ? planned.slice(0, planned.indexOf(failure.version)) : planned;

    const whole = freshDatabase();
    const result = await run(whole, set);
    const context = `seed ${seed}\n${Object.entries(files).filter(([k]) => k.endsWith('.up.sql')).map(([k, v]) => `--- ${k}\n${v}`).join('')}\n${result.stderr}`;
    expect(result.code === EXIT.ok, context).toBe(recorded(whole).length === planned.length);
    expect(recorded(whole), context).toEqual(before);
    if (failure) {
      expect(result.code, context).toBe(EXIT.migrationFailed);
      expect(result.stderr, context).toContain(`${failure.key}:${failure.line}: ERROR:  `);
      const blamed = result.stderr.split('\n').filter((line) => /^learnflow-migrate: \S+ failed\b/.test(line) && !line.includes('migrate failed'));
      expect(blamed, context).toEqual([expect.stringContaining(`${failure.key} failed${failure.transactional ? ' and was rolled back' : ' outside a transaction'}`)]);
    } else {
      expect(result.code, context).toBe(EXIT.ok);
    }

    // One run per migration, each with the plan up to it, as a team that ships one at a time.
    const oneByOne = freshDatabase();
    for (let n = 1; n <= set.length; n++) {
      const step = await run(oneByOne, set.slice(0, n));
      if (step.code !== EXIT.ok) {
        expect(set[n - 1].version, `${context}\n--- one at a time stopped at ${set[n - 1].version}:\n${step.stderr}`).toBe(failure?.version);
        break;
      }
    }
    expect(recorded(oneByOne), context).toEqual(recorded(whole));
    expect(tables(oneByOne), context).toBe(tables(whole));
  });
});
