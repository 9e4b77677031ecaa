// `restore --to`: the target is checked by the rule restore.sh applies (lib/pitr/target.sh),
// word for word and value for value, before anything runs; the dry run prints the whole flow;
// the Job made from the template gets RESTORE_TARGET (and RESTORE_SOURCE) in every container,
// its fetch step included, as `kubectl set env` would. `status` reports the archiver and the
// backup CronJobs; a failed backup is a problem it lists, never a phase.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TARGET_RULE, checkTarget, withEnvEverywhere } from '../../lib/cli/commands/pitr-restore';
import { computeStatus, parseArchiver, statusTable } from '../../lib/cli/commands/status';
import { loadTarget } from '../../lib/cli/target';
import { ROOT, findOne } from '../support/dist';
import { fixtureProject } from '../support/fixture-project';
import { Kube, describeKube } from '../support/kube';
import { CliEnv, cli, completeJob, createChartObjects, eventually, failJob, fixtureTarget, get, jobPodExited, setPodReady, startCli, useCliCluster } from './support';

const TARGET_SH = path.join(ROOT, 'lib', 'pitr', 'target.sh');
const shellAccepts = (value: string) => {
  try {
    execFileSync('sh', ['-c', `. '${TARGET_SH}'; [ "$1" = latest ] || time_key "$1" >/dev/null`, 'sh', value]);
    return true;
  } catch {
    return false;
  }
};
const tsAccepts = (value: string) => {
  try {
    checkTarget(value);
    return true;
  } catch {
    return false;
  }
};

describe('restore --to', () => {
  it('accepts exactly the targets restore.sh accepts, and words the rule the same', () => {
    const values = ['latest', '2026-11-22T17:00:00Z', '2026-11-22T17:00:00.5Z', '2026-11-22T17:00:00.123456Z', '2026-11-22T17:00:00.1234567Z',
      '2026-13-01T00:00:00Z', '2026-00-10T00:00:00Z', '2026-11-32T00:00:00Z', '2026-11-22T24:00:00Z', '2026-11-22T17:60:00Z', '2026-11-22 17:00:00',
      '2026-11-22T17:00:00+01:00', '2026-11-22T17:00:00', 'yesterday', '', "'; rm -rf /'", '2026-11-22T17:00:00.Z', 'LATEST'];
    for (const v of values) expect(tsAccepts(v), v).toBe(shellAccepts(v));
    expect(readFileSync(TARGET_SH, 'utf8')).toContain(`TARGET_RULE="${TARGET_RULE}"`);
  });

  it('sets RESTORE_TARGET and RESTORE_SOURCE in every container of the Job, the fetch step too', () => {
    const template = findOne('production', (m) => m.kind === 'CronJob' && m.metadata.name.endsWith('-pitr-restore'), 'pitr restore template');
    const job = { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'x' }, spec: template.spec.jobTemplate.spec };
    const set = withEnvEverywhere(job, { RESTORE_TARGET: 'latest', RESTORE_SOURCE: 'offsite' }) as any;
    const spec = set.spec.template.spec;
    for (const c of [...spec.initContainers, ...spec.containers]) {
      expect(c.env.filter((e: any) => e.name === 'RESTORE_TARGET'), c.name).toEqual([{ name: 'RESTORE_TARGET', value: 'latest' }]);
      expect(c.env.filter((e: any) => e.name === 'RESTORE_SOURCE'), c.name).toEqual([{ name: 'RESTORE_SOURCE', value: 'offsite' }]);
    }
    expect(spec.initContainers.map((c: any) => c.name)).toEqual(['fetch']);
  });

  it('--dry-run prints the stop, the Job, the start; a bad target or a profile without PITR is exit 1', async () => {
    const env: CliEnv = { kubeconfig: '/nonexistent', path: [path.dirname(process.execPath), '/usr/bin', '/bin'], home: '/tmp' };
    const dry = await cli(['restore', '--profile', 'pitr', '--to', '2026-11-22T17:00:00Z', '--from-offsite', '--dry-run'], env);
    expect(dry.code, dry.stderr).toBe(0);
    const lines = dry.stdout.split('\n');
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
    expect(at(/scale statefulset pg-postgresql --replicas=0/)).toBeLessThan(at(/--from=cronjob\/pg-postgresql-pitr-restore/));
    expect(at(/--from=cronjob\/pg-postgresql-pitr-restore/)).toBeLessThan(at(/scale statefulset pg-postgresql --replicas=1/));
    expect(dry.stdout).toContain('RESTORE_TARGET=2026-11-22T17:00:00Z RESTORE_SOURCE=offsite');
    const bad = await cli(['restore', '--profile', 'pitr', '--to', '2026-11-22 17:00'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`--to: '2026-11-22 17:00' is not ${TARGET_RULE}`);
    const off = await cli(['restore', '--profile', 'status', '--to', 'latest'], env);
    expect(off.code).toBe(1);
    expect(off.stderr).toContain("point-in-time recovery is off in profile 'status'");
  });
});


describe('status with backups', () => {
  const target = loadTarget('production');
  const cronJob = (name: string, status: Record<string, unknown>) => ({ apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name, namespace: 'postgres' }, status });

  it('reports the archiver and the backup CronJobs, and a failed backup is a problem, not a phase', () => {
    const archiver = parseArchiver('1204 000000010000000000000A3C 2026-12-03T09:58:01Z 3 000000010000000000000A3D 2026-12-03T09:59:00Z t')!;
    expect(archiver).toEqual({ archived_count: 1204, last_archived_wal: '000000010000000000000A3C', last_archived_time: '2026-12-03T09:58:01Z',
      failed_count: 3, last_failed_wal: '000000010000000000000A3D', last_failed_time: '2026-12-03T09:59:00Z', failing: true });
    const s = computeStatus(target, {
      namespaceExists: true,
      archiver,
      objects: [
        cronJob(target.baseBackupCronJob!, { lastScheduleTime: '2026-12-03T03:30:00Z', lastSuccessfulTime: '2026-12-02T03:41:00Z' }),
        cronJob(target.backupCronJob!, { lastScheduleTime: '2026-12-03T02:30:00Z', lastSuccessfulTime: '2026-12-03T02:31:00Z' }),
      ],
    });
    expect(s.backups!.base_backups).toEqual({ cronjob: 'postgres-postgresql-basebackup', last_success: '2026-12-02T03:41:00Z', last_schedule: '2026-12-03T03:30:00Z', last_run_failed: true });
    expect(s.backups!.dumps).toMatchObject({ cronjob: 'postgres-postgresql-dump', last_run_failed: false });
    expect(s.backups!.problems).toEqual([
      expect.stringContaining('cronjob/postgres-postgresql-basebackup: its last run (2026-12-03T03:30:00Z) failed'),
      expect.stringContaining('archiving failing since 2026-12-03T09:59:00Z: 000000010000000000000A3D could not be archived'),
    ]);
    expect(statusTable(s, target)).toMatch(/Archiving +FAILING; 1204 archived/);
    expect(statusTable(s, target)).toMatch(/Base backups +LAST RUN FAILED/);
    expect(s.conditions.join('\n')).not.toContain('backup');
  });

  it('says the archiver is unknown when it could not be read, and leaves it out without pitr', () => {
    expect(parseArchiver('psql: error: connection refused')).toBeNull();
    expect(computeStatus(target, { namespaceExists: true, objects: [], archiver: null }).backups!.archiver).toBeNull();
    expect(computeStatus(loadTarget('development'), { namespaceExists: true, objects: [] }).backups).toBeUndefined();
  });
});

// The whole flow on the real API server, the test playing the StatefulSet and Job controllers
// and the kubelet: the database stopped, the Job made from the template with the target in every
// container, the database started again, after a restore and after a failed one alike.
describeKube('restore --to on a real API server', () => {
  const T = fixtureTarget('pitr');
  const ns = T.namespace;
  let kube: Kube;
  let env: CliEnv;
  useCliCluster((cluster) => {
    kube = cluster.kube;
    env = cluster.env;
  });
  const replicas = async () => (await get(kube, ns, `statefulset/${T.chart.statefulSet}`))?.spec?.replicas;
  /** The StatefulSet controller and the kubelet: the pod goes at 0 replicas, comes back Ready at 1. */
  async function playDatabase(): Promise<void> {
    await eventually('the StatefulSet scaled to 0', async () => ((await replicas()) === 0 ? true : undefined));
    await kube.kubectlOk(['delete', 'pod', T.chart.pod, '-n', ns, '--wait=false']);
  }
  async function databaseBack(): Promise<void> {
    await eventually('the StatefulSet scaled to 1', async () => ((await replicas()) === 1 ? true : undefined), 60_000);
    await createChartObjects(kube, ns, T.chart);
    await setPodReady(kube, ns, T.chart.pod, true);
  }
  const pitrJob = () => eventually('the point-in-time restore Job', async () => {
    const list = JSON.parse(await kube.kubectlOk(['get', 'jobs', '-n', ns, '-o', 'json'])).items as any[];
    return list.find((j) => j.metadata.name.startsWith(`${T.chart.service}-pitr-`) && !j.status?.conditions);
  }, 60_000);

  it('stops the database, runs the template\'s Job with the target everywhere, starts the database again (exit 0)', async () => {
    await kube.kubectlOk(['apply', '-f', path.join(fixtureProject(), 'dist', T.profile)]);
    await createChartObjects(kube, ns, T.chart);
    await setPodReady(kube, ns, T.chart.pod, true);
    const run = startCli(['restore', '--profile', T.profile, '--to', '2026-11-22T17:00:00Z', '--from-offsite', '--timeout', '60'], env, 120_000);
    await playDatabase();
    const job = await pitrJob();
    const spec = job.spec.template.spec;
    for (const c of [...spec.initContainers, ...spec.containers]) {
      expect(c.env, c.name).toEqual(expect.arrayContaining([{ name: 'RESTORE_TARGET', value: '2026-11-22T17:00:00Z' }, { name: 'RESTORE_SOURCE', value: 'offsite' }]));
    }
    expect(job.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'CronJob', name: `${T.chart.service}-pitr-restore` })]);
    expect(await replicas()).toBe(0);
    await completeJob(kube, ns, job.metadata.name);
    await databaseBack();
    const r = await run.done;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\[4\/4\] start statefulset\/pg-postgresql.*ready/);
  }, 180_000);

  it('starts the database again as it was when the restore fails (exit 1)', async () => {
    const run = startCli(['restore', '--profile', T.profile, '--to', 'latest', '--timeout', '60'], env, 120_000);
    await playDatabase();
    const job = await pitrJob();
    await jobPodExited(kube, ns, job.metadata.name, 'restore', 1);
    await failJob(kube, ns, job.metadata.name, 'restore', 1);
    await databaseBack();
    const r = await run.done;
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toContain(`point-in-time restore Job ${job.metadata.name} failed`);
    expect(r.stderr).toContain('the data directory is unchanged');
    expect(await replicas()).toBe(1);
  }, 180_000);
});
