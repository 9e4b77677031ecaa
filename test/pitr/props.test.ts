// The pitr and objectStore props: every rule, the rules between props, the unknown-key check at
// their depth, and what the defaults resolve to.
import { describe, expect, it } from 'vitest';
import { LearnflowPostgresProps, resolveConfig } from '../../lib/config';
import { validateProps } from '../../lib/validation';

const withBackups = { backup: { enabled: true } } as const;
const problems = (props: LearnflowPostgresProps) => validateProps(props);

describe('pitr and objectStore props', () => {
  it.each([
    ['archive timeout out of range', { pitr: { enabled: true, archiveTimeoutSeconds: 0 } }, /^pitr\.archiveTimeoutSeconds: 0 is out of range \(a whole number from 1 to 3600\)/],
    ['schedule', { pitr: { enabled: true, baseBackupSchedule: 'nightly' } }, /^pitr\.baseBackupSchedule: 'nightly' is not a cron schedule/],
    ['keep', { pitr: { enabled: true, baseBackupKeep: 0 } }, /^pitr\.baseBackupKeep: 0 is out of range/],
    ['storage size', { pitr: { enabled: true, storageSize: '20GB' } }, /^pitr\.storageSize: '20GB' is not a storage size/],
    ['settings while off', { pitr: { archiveTimeoutSeconds: 30 } }, /^pitr: settings given while pitr\.enabled is not true/],
    ['misspelt', { pitr: { enabled: true, archiveTimout: 30 } as never }, /^pitr\.archiveTimout: unknown setting \(did you mean pitr\.archiveTimeoutSeconds\?\)/],
    ['bucket missing', { ...withBackups, objectStore: { region: 'eu-west-1' } }, /^objectStore\.bucket: missing/],
    ['bucket name', { ...withBackups, objectStore: { bucket: 'My_Bucket' } }, /^objectStore\.bucket: 'My_Bucket' is not a bucket name/],
    ['prefix', { ...withBackups, objectStore: { bucket: 'b-1', prefix: '/a//b/' } }, /^objectStore\.prefix: '\/a\/\/b\/' is not a prefix/],
    ['provider', { ...withBackups, objectStore: { bucket: 'b-1', provider: 'Azure' as never } }, /^objectStore\.provider: 'Azure' is unknown \(one of AWS, GCS, Minio, Ceph, Other\)/],
    ['endpoint', { ...withBackups, objectStore: { bucket: 'b-1', endpoint: 'minio:9000' } }, /^objectStore\.endpoint: 'minio:9000' is not an endpoint URL/],
    ['endpoint required', { ...withBackups, objectStore: { bucket: 'b-1', provider: 'Minio' } }, /^objectStore\.endpoint: missing for provider Minio/],
    ['interval', { ...withBackups, objectStore: { bucket: 'b-1', uploadIntervalSeconds: 1 } }, /^objectStore\.uploadIntervalSeconds: 1 is out of range \(a whole number from 5 to 3600\)/],
    ['nothing to copy', { objectStore: { bucket: 'b-1' } }, /^objectStore: nothing to copy while backup\.enabled and pitr\.enabled are both off/],
    ['secret name', { ...withBackups, objectStore: { bucket: 'b-1', secretName: 'Keys' } }, /^objectStore\.secretName: 'Keys' is not a valid name/],
  ])('refuses %s, naming the field and the rule', (_, props, message) => {
    const found = problems(props as LearnflowPostgresProps);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(message);
  });

  it('resolves the defaults: one backup volume, the prefix and Secret from the release, keep from the base backups', () => {
    const c = resolveConfig({ namespace: 'data', releaseName: 'app', storageSize: '30Gi', pitr: { enabled: true, baseBackupKeep: 4 }, objectStore: { bucket: 'b-1' } });
    expect(c.pitr).toEqual({ enabled: true, archiveTimeoutSeconds: 60, baseBackupSchedule: '@daily', baseBackupKeep: 4 });
    expect(c.backupVolume).toEqual({ size: '30Gi', storageClass: undefined });
    expect(c.objectStore).toMatchObject({ bucket: 'b-1', prefix: 'data/app', provider: 'AWS', secretName: 'app-postgresql-object-store', uploadIntervalSeconds: 15, keep: 4 });
    expect(resolveConfig({}).backupVolume).toBeUndefined();
    expect(resolveConfig({ backup: { enabled: true, storageSize: '5Gi' }, pitr: { enabled: true, storageSize: '9Gi' } }).backupVolume?.size).toBe('9Gi');
  });
});
