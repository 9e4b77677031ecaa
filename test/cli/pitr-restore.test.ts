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
import { CliEnv, cli } from './support';

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
