// The verification Job from dist/ (health stages 3 and 4) against a real PostgreSQL, run with
// the Job's own command and environment.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadMigrations } from '../../lib/migrations/files';
import { expectedTables } from '../../lib/verification/expected-schema';
import { migration } from '../support/runner-harness';
import { byComponent, findOne, manifests, ROOT } from '../support/dist';
import { distMigrationJob, jobContainer, prepareDistJob, runJobContainer } from '../support/dist-job';
import { runRunner } from '../support/runner-harness';
import { Pg } from '../support/postgres';
import { usePostgres } from '../support/postgres-fixture';

const verifyJob = findOne('development', byComponent('Job', 'verification'), 'verification Job');
const { env: jobEnv } = jobContainer(verifyJob);
// What the Job must find, from migrations/ at run time.
const migrations = loadMigrations(path.join(ROOT, 'migrations'), { root: ROOT });
const tables = expectedTables(migrations);
const newest = String(BigInt(migrations.at(-1)!.version));
let pg: Pg;
let tmp: string;
const { freshDatabase, appConnection } = usePostgres('verify', (server, dir) => {
  pg = server;
  tmp = dir;
}, { appUser: jobEnv.PGUSER });

const connection = (db: string) => ({
  ...appConnection(db), TMPDIR: tmp,
});
const verify = (db: string, overrides: Record<string, string> = {}) =>
  runJobContainer(verifyJob, { ...connection(db), VERIFY_DB_WAIT_SECONDS: '2', VERIFY_MIGRATIONS_WAIT_SECONDS: '1', ...overrides });

async function migrate(db: string): Promise<void> {
  const prepared = prepareDistJob(distMigrationJob('development'), tmp, connection(db));
  const result = await runRunner(prepared.dir, prepared.env, prepared.args);
  expect(result.code).toBe(0);
}

describe('the verification Job from dist/', () => {
  it('checks the tables and the newest version the migrations define, after the migrations (last wave)', () => {
    expect(jobEnv.EXPECTED_TABLES).toBe(tables.join(' '));
    expect(jobEnv.EXPECTED_VERSION).toBe(newest);
    const waves = manifests('development').map((m) => Number(m.metadata.annotations?.['argocd.argoproj.io/sync-wave'] ?? 0));
    expect(Number(verifyJob.metadata.annotations?.['argocd.argoproj.io/sync-wave'])).toBe(Math.max(...waves));
  });

  it('passes stages 3 and 4 once the migrations ran, exit 0', async () => {
    const db = freshDatabase();
    await migrate(db);
    const result = await verify(db);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/stage 3 database ping: ok \(127\.0\.0\.1:\d+\/verify_\d+, PostgreSQL \d+/);
    expect(result.stdout).toContain(`stage 4 schema: all ${tables.length} tables present, migrations applied up to ${newest}`);
  });

  it('fails with exit 5 when the migrations have not run within its wait', async () => {
    const result = await verify(freshDatabase());
    expect(result.code).toBe(5);
    expect(result.stderr).toContain(`stage 4: migrations not applied within 1s: newest applied version is none, expected ${newest}`);
  });

  it('fails with exit 5 naming a table that is missing', async () => {
    const db = freshDatabase();
    await migrate(db);
    const dropped = tables.at(-1)!;
    pg.psql(db, `DROP TABLE ${dropped}`);
    const result = await verify(db);
    expect(result.code).toBe(5);
    expect(result.stderr).toContain(`stage 4: tables missing: ${dropped}`);
  });

  it('fails with exit 8 when the database cannot be reached within its wait', async () => {
    const started = Date.now();
    const result = await verify('postgres', { PGPORT: '1' });
    expect(result.code).toBe(8);
    expect(result.stderr).toMatch(/stage 3: no connection to 127\.0\.0\.1:1\/postgres within 2s/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('fails with exit 8 at once when the login is refused', async () => {
    const started = Date.now();
    const result = await verify('postgres', { PGPASSWORD: 'wrong', VERIFY_DB_WAIT_SECONDS: '30' });
    expect(result.code).toBe(8);
    expect(result.stderr).toContain('stage 3: login to');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('rejects a knob that is not a number with exit 1, naming it', async () => {
    const result = await verify('postgres', { VERIFY_DB_WAIT_SECONDS: 'soon' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("learnflow-verify: VERIFY_DB_WAIT_SECONDS: 'soon' is not a whole number of seconds");
  });
});

describe('expected tables', () => {
  it('follow creates, drops and renames, and fold unquoted names', () => {
    const set = [
      migration('001', 'a', 'CREATE TABLE IF NOT EXISTS Alpha (id int);\nCREATE UNLOGGED TABLE "Beta" (id int);\nCREATE TEMP TABLE scratch (id int);\n'),
      migration('002', 'b', 'CREATE TABLE gamma (id int);\nALTER TABLE alpha RENAME TO delta;\n'),
      migration('003', 'c', 'DROP TABLE IF EXISTS "Beta", nothing;\nCREATE TABLE other.epsilon (id int);\n'),
    ];
    expect(expectedTables(set)).toEqual(['delta', 'gamma', 'other.epsilon']);
  });
});
