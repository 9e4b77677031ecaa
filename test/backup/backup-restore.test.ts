// Backups and restore, proven on real PostgreSQL servers: the scheduled backup runs exactly the
// command of the dump CronJob of dist/, with the environment its pod has; the restore runs the
// command of our restore template from dist/.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { BACKUP } from '../../lib/backup/script-contracts';
import { DIST, findOne, manifests } from '../support/dist';
import { distMigrationJob, jobContainer, prepareDistJob, runDumpPod, runPod } from '../support/dist-job';
import { Pg, startPostgres } from '../support/postgres';
import { RunnerResult, runRunner } from '../support/runner-harness';

const PROFILE = 'production';
const values = parse(readFileSync(path.join(DIST, PROFILE, 'helm', 'postgresql-values.yaml'), 'utf8'));
const dumpCronJob = findOne(PROFILE, (m) => m.kind === 'CronJob' && m.metadata.name === 'postgres-postgresql-dump', 'dump CronJob');
const backupCommand: string[] = jobContainer(dumpCronJob).command;
const keep = Number(backupCommand.at(-1));
const restoreTemplate = findOne(PROFILE, (m) => m.kind === 'CronJob' && m.metadata.name === 'postgres-postgresql-backup-restore', 'restore template');
const appUser = values.auth.username as string;
const credentialsSecret = values.auth.existingSecret as string;
const appPassword = randomBytes(18).toString('hex');
let source: Pg;
let target: Pg;
let dir: string;
let backups: string;

/** A server set up the way the chart sets one up: the application user owning the database. */
function chartLikeDatabase(pg: Pg): void {
  pg.psql('postgres', `CREATE ROLE ${appUser} LOGIN PASSWORD '${appPassword}'`);
  pg.psql('postgres', `CREATE DATABASE ${values.auth.database} OWNER ${appUser}`);
}

/** The dump CronJob's pod (runDumpPod): the superuser's password as a file, no PGPASSWORD. */
const runBackup = (pg: Pg): Promise<RunnerResult> => runDumpPod(dumpCronJob, pg, backups, dir);

/** The restore template's pod: its login from the credentials Secret, the backup claim, `overrides` on top. */
async function runRestore(pg: Pg, overrides: Record<string, string>): Promise<RunnerResult> {
  const pod = await runPod(manifests(PROFILE), restoreTemplate, mkdtempSync(path.join(dir, 'pod-')), {
    // The server's CA too (production verifies the server; the test server speaks no TLS: PGSSLMODE below).
    secrets: { [credentialsSecret]: { 'postgres-password': pg.password }, [values.tls.certificatesSecret]: { 'ca.crt': 'unused' } },
    claims: { 'postgres-postgresql-backups': path.dirname(backups) },
    env: { PATH: pg.env().PATH, PGHOST: pg.host, PGPORT: String(pg.port), PGSSLMODE: 'disable', RESTORE_DB_WAIT_SECONDS: '2', ...overrides },
  });
  return pod.main ?? pod.init.at(-1)!;
}

/** The most recent real dump (names sort by time; the retention test's fakes are from 2020-2021). */
const newestDump = () => readdirSync(backups).filter((f) => f.endsWith('.dump')).sort().at(-1)!;

const TABLES = ['users', 'exercises', 'progress', 'submissions', 'struggle_alerts', 'curriculum', 'applied_migrations'];
const dumpRows = (pg: Pg) => Object.fromEntries(TABLES.map((t) => [t, pg.psql('learnflow', `SELECT * FROM ${t} ORDER BY 1`)]));

beforeAll(async () => {
  [source, target] = await Promise.all([startPostgres(), startPostgres()]);
  dir = mkdtempSync(path.join(os.tmpdir(), 'learnflow-backup-'));
  // The backup claim's volume; the dumps in its dumps/ folder (PGDUMP_DIR).
  backups = path.join(dir, 'backup-claim', 'dumps');
  mkdirSync(backups, { recursive: true });
  chartLikeDatabase(source);
  chartLikeDatabase(target);
  const job = prepareDistJob(distMigrationJob(PROFILE), dir, {
    PATH: source.env().PATH, PGHOST: source.host, PGPORT: String(source.port), PGPASSWORD: appPassword, PGSSLMODE: 'disable',
  });
  expect((await runRunner(job.dir, job.env, job.args)).code).toBe(0);
  source.psql('learnflow', `
    INSERT INTO users (username, email, role) VALUES ('ada', 'ada@example.com', 'teacher'), ('grace', 'grace@example.com', DEFAULT), ('zoë', 'zoe@example.com', 'admin');
    INSERT INTO exercises (title, description, difficulty, test_cases, solution, topic)
      VALUES ('Loops', 'for and while', 'beginner', '[{"input": "print(1+1)", "expected_output": "2"}]', 'print(2)', 'control-flow'),
             ('Recursion', NULL, 'advanced', NULL, NULL, 'functions');
    INSERT INTO progress (user_id, topic, mastery_score, last_practiced, streak_days) VALUES (1, 'loops', 80, '2026-11-01 10:00', 3), (2, 'loops', 0, NULL, 0);
    INSERT INTO submissions (user_id, exercise_id, code, feedback, score) VALUES (1, 1, E'for i in range(3):\\n    print(i)', 'good', 95), (2, 2, 'def f(): f()', NULL, NULL);
    INSERT INTO struggle_alerts (user_id, topic, error_pattern, resolved_at, notified) VALUES (2, 'recursion', 'RecursionError', NULL, FALSE), (1, 'loops', 'off by one', '2026-11-02', TRUE);
    INSERT INTO curriculum (module_name, topic_name, order_index, dependencies, estimated_minutes) VALUES ('Python basics', 'loops', 1, '[]', 30), ('Python basics', 'recursion', 2, '[1]', 45);
  `);
});
afterAll(async () => {
  await Promise.all([source?.stop(), target?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('backups and restore', () => {
  it('runs the dump CronJob with our dump and retention, nightly in production', () => {
    // The chart's own backup CronJob stays off: its claim would wait for the first dump to bind.
    expect(values.backup).toBeUndefined();
    expect(dumpCronJob.spec).toMatchObject({ schedule: '30 2 * * *', concurrencyPolicy: 'Forbid' });
    expect(jobContainer(dumpCronJob).env).toMatchObject({ PGUSER: 'postgres', PGDUMP_DIR: '/backups/dumps' });
    expect(backupCommand.slice(0, 2)).toEqual(['/bin/sh', '-c']);
    expect(backupCommand.slice(3)).toEqual(['backup', 'learnflow', '14']);
    // The superuser's password alone, mounted where backup.sh reads it by default; none in the environment.
    const passwordFile = BACKUP.knobs.passwordFile.default;
    const pod = dumpCronJob.spec.jobTemplate.spec.template.spec;
    expect(pod.volumes).toContainEqual({
      name: 'database-password',
      secret: { secretName: credentialsSecret, items: [{ key: 'postgres-password', path: path.basename(passwordFile) }], defaultMode: 0o440 },
    });
    expect(pod.containers[0].volumeMounts).toContainEqual({ name: 'database-password', mountPath: path.dirname(passwordFile), readOnly: true });
    expect(JSON.stringify(pod.containers[0].env)).not.toMatch(/PGPASSWORD|secretKeyRef/);
    expect(values.auth.usePasswordFiles).toBe(true);
  });

  it('takes a backup, restores it into an empty database and every row comes back', async () => {
    const backup = await runBackup(source);
    expect(backup.stderr).toBe('');
    expect(backup.code).toBe(0);
    const [file] = readdirSync(backups).filter((f) => f.endsWith('.dump'));
    expect(file).toMatch(/^learnflow-\d{8}T\d{6}Z\.dump$/);
    expect(backup.stdout).toContain(`wrote ${file}`);

    expect(target.psql('learnflow', `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`)).toBe('0');
    const restore = await runRestore(target, { RESTORE_FILE: file });
    expect(restore.stderr).toBe('');
    expect(restore.code).toBe(0);
    expect(restore.stdout).toContain(`restored ${file} into learnflow`);

    const before = dumpRows(source);
    expect(before.users.split('\n')).toHaveLength(3);
    expect(dumpRows(target)).toEqual(before);
    // Sequences continue where they were, and the tables still belong to the application user.
    expect(target.psql('learnflow', `SELECT nextval('users_id_seq')`)).toBe('4');
    expect(target.psql('learnflow', `SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'`)).toBe(appUser);
  });

  it('keeps only the newest dumps', async () => {
    const older = Array.from({ length: keep + 2 }, (_, i) => `learnflow-2020${String(i + 1).padStart(2, '0')}01T000000Z.dump`.replace(/2020(1[3-9])/, '2021$1'));
    for (const name of older) writeFileSync(path.join(backups, name), 'old');
    writeFileSync(path.join(backups, 'notes.txt'), 'not a dump');
    const backup = await runBackup(source);
    expect(backup.code).toBe(0);
    const dumps = readdirSync(backups).filter((f) => f.endsWith('.dump')).sort();
    expect(dumps).toHaveLength(keep);
    // The newest (the one just written and the one before) survive; the oldest go.
    expect(dumps.at(-1)).toMatch(/^learnflow-2\d{7}T\d{6}Z\.dump$/);
    expect(dumps).not.toContain(older[0]);
    expect(existsSync(path.join(backups, 'notes.txt'))).toBe(true);
    expect(backup.stdout).toContain(`removed ${older[0]} (keeping the newest ${keep})`);
  });

  it('refuses a missing or unsafe RESTORE_FILE with exit 1, listing the backups', async () => {
    const none = await runRestore(target, {});
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/RESTORE_FILE is not set: name one of the backups in .*\nlearnflow-/);
    const traversal = await runRestore(target, { RESTORE_FILE: '../etc/passwd' });
    expect(traversal.code).toBe(1);
    expect(traversal.stderr).toContain("must be a file name in");
    const missing = await runRestore(target, { RESTORE_FILE: 'learnflow-19990101T000000Z.dump' });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('does not exist');
  });

  it('leaves the database as it was when a restore fails', async () => {
    const fresh = await startPostgres();
    try {
      // A database whose owner role is missing: the restore's ALTER ... OWNER TO fails midway.
      fresh.psql('postgres', 'CREATE DATABASE learnflow');
      fresh.psql('learnflow', 'CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (42)');
      const restore = await runRestore(fresh, { RESTORE_FILE: newestDump() });
      expect(restore.code).toBe(1);
      expect(restore.stderr).toContain('failed and was rolled back');
      expect(fresh.psql('learnflow', `SELECT string_agg(tablename, ',') FROM pg_tables WHERE schemaname = 'public'`)).toBe('keep_me');
      expect(fresh.psql('learnflow', 'SELECT id FROM keep_me')).toBe('42');
    } finally {
      await fresh.stop();
    }
  });

  it('refuses a password it cannot put in a password file, before dumping anything', async () => {
    const before = readdirSync(backups).sort();
    const backup = await runDumpPod(dumpCronJob, source, backups, dir, 'two\nlines');
    expect(backup.code).toBe(1);
    expect(backup.stderr).toContain('holds a line break, which a libpq password file cannot hold');
    expect(readdirSync(backups).sort()).toEqual(before);
  });

  it('fails with exit 8 when the database cannot be reached', async () => {
    const restore = await runRestore(target, { RESTORE_FILE: newestDump(), PGPORT: '1' });
    expect(restore.code).toBe(8);
  });

  it('mounts the backup volume read-only in the restore template, beside the database pod', () => {
    const { env } = jobContainer(restoreTemplate);
    expect(env).toMatchObject({ PGUSER: 'postgres', PGDATABASE: 'learnflow', PGDUMP_DIR: '/backups/dumps' });
    const spec = restoreTemplate.spec.jobTemplate.spec.template.spec;
    expect(spec.volumes).toContainEqual({ name: expect.any(String), persistentVolumeClaim: { claimName: 'postgres-postgresql-backups', readOnly: true } });
    // The backup volume is ReadWriteOnce, mounted by the database pod: the restore runs on its node.
    expect(spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey).toBe('kubernetes.io/hostname');
    expect(restoreTemplate.spec.suspend).toBe(true);
  });
});
