// Streaming read replicas on real servers: a primary and a pg_basebackup standby set up with
// the settings our values render (test/support/replication.ts). The verification Job as
// rendered passes while the standby streams, and fails with exit 5 naming the replica when it
// stops or falls behind; in synchronous mode, killing the primary mid-write and promoting the
// standby by the README's procedure loses no committed row.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPLICATION_APPLICATION_NAME, REPLICATION_USER } from '../../lib/helm-values';
import { LearnflowPostgresProps } from '../../lib/config';
import { renderManifests, runPod } from '../support/dist-job';
import { Manifest } from '../support/dist';
import { Pg, startPostgres } from '../support/postgres';
import { Standby, primaryReplicationSettings, startStandby, waitUntil } from '../support/replication';
import { renderHelmValues } from '../../lib/helm-values';
import { parseReplicaReport } from '../../lib/verification/replica-report';
import { freePort } from '../support/ports';
import { resolveConfig } from '../../lib/config';

const ROOT = path.resolve(__dirname, '..', '..');
const APP_USER = 'learnflow';
const appPassword = randomBytes(18).toString('hex');
const replicationPassword = randomBytes(18).toString('hex');

/** The README's promotion procedure: its SQL, run as the superuser on the replica. */
function readmeSql(startsWith: string): string {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const match = new RegExp(`-Atc "(${startsWith.replace(/[()]/g, '\\$&')}[^"]*)"`).exec(readme);
  if (!match) throw new Error(`README.md has no psql -Atc "${startsWith}..." step`);
  return match[1];
}

async function startPair(props: LearnflowPostgresProps): Promise<{ primary: Pg; standby: Standby }> {
  const values = renderHelmValues(resolveConfig(props), 'unused');
  const primary = await startPostgres({ settings: primaryReplicationSettings(values as any) });
  // Before any standby exists: these commits must not wait for one.
  primary.psql('postgres', `SET synchronous_commit = local; CREATE ROLE ${REPLICATION_USER} REPLICATION LOGIN PASSWORD '${replicationPassword}';
    CREATE ROLE ${APP_USER} LOGIN PASSWORD '${appPassword}'; CREATE DATABASE learnflow OWNER ${APP_USER};`);
  const standby = await startStandby(primary, REPLICATION_USER, replicationPassword, REPLICATION_APPLICATION_NAME);
  await waitUntil('the standby to stream', () => primary.psql('postgres', `SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND application_name = '${REPLICATION_APPLICATION_NAME}'`) === '1');
  return { primary, standby };
}

describe('read replicas, on a real primary and a real standby', () => {
  describe('verification', () => {
    const props: LearnflowPostgresProps = { readReplicas: { count: 1, maxLagBytes: 2 ** 20 } };
    let primary: Pg;
    let standby: Standby;
    let all: Manifest[];
    let dir: string;
    beforeAll(async () => {
      ({ primary, standby } = await startPair(props));
      all = renderManifests([], props);
      dir = mkdtempSync(path.join(os.tmpdir(), 'learnflow-verify-replicas-'));
    });
    afterAll(async () => {
      standby?.remove();
      await primary?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    /** The verification Job as rendered, at the primary, checking the standby (its address here) or `replicas`; with its termination message. */
    const verifyPod = async (replicas = `${standby.host}:${standby.port}`) => {
      const job = all.find((m) => m.kind === 'Job' && m.metadata.name.includes('-verify-'))!;
      const secret = job.spec.template.spec.volumes.find((v: any) => v.secret).secret.secretName;
      const pod = await runPod(all, job, mkdtempSync(path.join(dir, 'pod-')), {
        secrets: { [secret]: { password: appPassword } },
        env: {
          PATH: primary.env().PATH, PGHOST: primary.host, PGPORT: String(primary.port), PGSSLMODE: 'disable',
          VERIFY_REPLICAS: replicas, PASSFILE_EXTRA_HOSTS: standby.host, VERIFY_REPLICA_WAIT_SECONDS: '2', VERIFY_DB_WAIT_SECONDS: '2',
        },
      });
      return { result: pod.main ?? pod.init.at(-1)!, findings: parseReplicaReport(pod.message ?? '') };
    };

    it('renders the replica checks: each replica pod by name, the lag bound, its login', () => {
      const job = all.find((m) => m.kind === 'Job' && m.metadata.name.includes('-verify-'))!;
      const env = Object.fromEntries(job.spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value]));
      expect(env.VERIFY_REPLICAS).toBe('postgres-postgresql-read-0.postgres-postgresql-read-hl.postgres.svc');
      expect(env.VERIFY_MAX_LAG_BYTES).toBe(String(2 ** 20));
      // Its findings go to the termination message, which the kubelet copies into the pod's status.
      expect(env.VERIFY_REPORT_FILE).toBe('/dev/termination-log');
      expect(env.PGHOST).toBe('postgres-postgresql-primary.postgres.svc');
      const login = Object.fromEntries(job.spec.template.spec.initContainers[0].env.map((e: any) => [e.name, e.value]));
      expect(login.PASSFILE_EXTRA_HOSTS).toBe(env.VERIFY_REPLICAS);
    });

    it('passes while the standby streams, and reports it in its termination message (what status reads)', async () => {
      const { result, findings } = await verifyPod();
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(new RegExp(`stage 3 replica ${standby.host}:${standby.port}: streaming, \\d+ bytes behind`));
      expect(findings).toEqual([{ host: standby.host, port: standby.port, state: 'streaming', lagBytes: expect.any(Number) }]);
      expect(findings[0].lagBytes).toBeLessThanOrEqual(2 ** 20);
    });

    it('checks every replica before failing: one streams, one does not answer; exit 5 naming that one, both reported', async () => {
      const closed = await freePort();
      const { result, findings } = await verifyPod(`${standby.host}:${standby.port} ${standby.host}:${closed}`);
      expect(result.code).toBe(5);
      expect(result.stdout).toMatch(new RegExp(`stage 3 replica ${standby.host}:${standby.port}: streaming`));
      expect(result.stderr).toContain(`stage 3 replica ${standby.host}:${closed} does not answer`);
      expect(result.stderr).toContain(`stage 3 replicas: 1 of 2 not streaming within the bound: ${standby.host}:${closed}`);
      expect(findings).toEqual([
        { host: standby.host, port: standby.port, state: 'streaming', lagBytes: expect.any(Number) },
        { host: standby.host, port: closed, state: 'unreachable', lagBytes: null },
      ]);
    });

    it('fails with exit 5 naming the replica when it falls behind more than the bound', async () => {
      standby.psql('postgres', 'SELECT pg_wal_replay_pause()');
      try {
        primary.psql('learnflow', 'CREATE TABLE filler AS SELECT g, repeat(md5(g::text), 20) AS pad FROM generate_series(1, 20000) g');
        const { result, findings } = await verifyPod();
        expect(result.code).toBe(5);
        expect(result.stderr).toMatch(new RegExp(`replica ${standby.host}:${standby.port} is \\d+ bytes of WAL behind the primary \\(at most ${2 ** 20} allowed`));
        expect(findings).toEqual([{ host: standby.host, port: standby.port, state: 'lagging', lagBytes: expect.any(Number) }]);
        expect(findings[0].lagBytes).toBeGreaterThan(2 ** 20);
      } finally {
        standby.psql('postgres', 'SELECT pg_wal_replay_resume()');
      }
    });

    it('fails with exit 5 naming the replica when it stops', async () => {
      standby.stop();
      try {
        const { result, findings } = await verifyPod();
        expect(result.code).toBe(5);
        expect(result.stderr).toContain(`stage 3 replica ${standby.host}:${standby.port} does not answer`);
        expect(findings).toEqual([{ host: standby.host, port: standby.port, state: 'unreachable', lagBytes: null }]);
      } finally {
        standby.start();
      }
    });
  });

  describe('synchronous replication and the README\'s promotion', () => {
    const props: LearnflowPostgresProps = { readReplicas: { count: 1, synchronousCommit: 'on', numSynchronousReplicas: 1 } };
    let primary: Pg | undefined;
    let standby: Standby;
    beforeAll(async () => {
      ({ primary, standby } = await startPair(props));
      primary.psql('learnflow', `CREATE TABLE orders (id int PRIMARY KEY); ALTER TABLE orders OWNER TO ${APP_USER}`);
    });
    afterAll(async () => {
      standby?.remove();
      await primary?.stop();
    });

    it('makes a commit wait for the standby', () => {
      expect(primary!.psql('postgres', 'SHOW synchronous_standby_names')).toBe(`1 ("${REPLICATION_APPLICATION_NAME}")`);
      expect(primary!.psql('postgres', `SELECT sync_state FROM pg_stat_replication WHERE application_name = '${REPLICATION_APPLICATION_NAME}'`)).toBe('sync');
    });

    it('loses no committed row when the primary is killed mid-write and the standby promoted', async () => {
      // A writer commits one row per transaction and reports each commit as it is acknowledged.
      const writer = spawn(path.join(primary!.bindir, 'psql'), ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1'], {
        env: { ...primary!.env('learnflow'), PGUSER: APP_USER, PGPASSWORD: appPassword },
      });
      let acknowledged = '';
      writer.stdout.on('data', (d) => (acknowledged += d));
      writer.stderr.on('data', () => undefined);
      writer.stdin.on('error', () => undefined);
      for (let i = 1; i <= 20000; i++) writer.stdin.write(`INSERT INTO orders VALUES (${i}); \\echo ${i}\n`);
      await waitUntil('a few hundred commits', () => acknowledged.split('\n').length > 300);
      // The primary dies: no shutdown checkpoint, no goodbye to the standby.
      await primary!.stop();
      primary = undefined;
      await new Promise((r) => writer.on('close', r));
      const committed = acknowledged.split('\n').filter(Boolean).map(Number);
      expect(committed.length).toBeGreaterThan(300);

      // The README's procedure: the replica with the most WAL received, promoted.
      expect(standby.psql('postgres', readmeSql('SELECT pg_last_wal_receive_lsn('))).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
      expect(standby.psql('postgres', readmeSql('SELECT pg_promote('))).toBe('t');
      expect(standby.psql('postgres', 'SELECT pg_is_in_recovery()')).toBe('f');
      const rows = new Set(standby.psql('learnflow', 'SELECT id FROM orders').split('\n').map(Number));
      const lost = committed.filter((id) => !rows.has(id));
      expect(lost).toEqual([]);
      // And it takes writes.
      standby.psql('learnflow', 'INSERT INTO orders VALUES (100000)');
    });
  });
});
