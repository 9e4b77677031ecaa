// `restore --to`: the target is checked by the rule restore.sh applies (lib/pitr/target.sh),
// word for word and value for value, before anything runs; the dry run prints the whole flow;
// the Job made from the template gets RESTORE_TARGET (and RESTORE_SOURCE) in every container,
// its fetch step included, as `kubectl set env` would.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TARGET_RULE, checkTarget, withEnvEverywhere } from '../../lib/cli/commands/pitr-restore';
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

