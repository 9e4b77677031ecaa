import * as os from 'node:os';
import { ApiObject, Chart, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { describe, expect, it } from 'vitest';
import { EPHEMERAL_STORAGE, ProjectJobProps, finishManifest, projectJob, withEphemeralStorage, withoutServerDefaults } from '../lib/job';
import { contentHash } from '../lib/names';
import { PROFILE_NAMES } from '../lib/profiles';
import { manifests } from './support/dist';
import { variantManifests } from './support/variants';

const props = (cpuMillis = 500): ProjectJobProps => ({
  name: 'pg-postgresql-migrate',
  namespace: 'db',
  releaseName: 'pg',
  component: 'migrations',
  backoffLimit: 6,
  failJobOnExitCodes: [7, 1],
  syncWave: 1,
  container: { name: 'migrate', image: 'example.com/pg:1', command: ['true'], resources: { cpu: { limit: kplus.Cpu.millis(cpuMillis) } } },
});

/** The Job `props` renders in a chart of its own, finished as LearnflowPostgresChart writes it. */
function rendered(p: ProjectJobProps, id = 'job') {
  // Never synthesized to disk: an outdir spares Testing.app() a temp folder per chart.
  const chart = new Chart(Testing.app({ outdir: os.tmpdir() }), 'test');
  const job = projectJob(chart, id, p);
  const manifest = Testing.synth(chart).map(finishManifest).find((m) => m.kind === 'Job')!;
  return { job, manifest };
}

describe('Jobs of ours', () => {
  it('are named after their whole spec at construction, so a changed Job is a new Job and never an in-place edit', () => {
    const a = rendered(props());
    expect(a.job.name).toMatch(/^pg-postgresql-migrate-[0-9a-f]{10}$/);
    expect(a.manifest.metadata.name).toBe(a.job.name);
    expect(rendered(props()).job.name).toBe(a.job.name);
    expect(rendered({ ...props(), backoffLimit: 2 }).job.name).not.toBe(a.job.name);
    // No marker label is left for a later rename.
    expect(Object.keys(a.manifest.metadata.labels).filter((l) => !l.startsWith('app.kubernetes.io/'))).toEqual([]);
    expect(rendered({ ...props(), name: 'x'.repeat(70) }).job.name.length).toBeLessThanOrEqual(63);
  });

  it('hash the spec as rendered, Pod Security settings included', () => {
    const { manifest } = rendered(props());
    const [container] = manifest.spec.template.spec.containers;
    expect(container.securityContext).toMatchObject({ capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } });
    expect(manifest.metadata.name).toBe(`pg-postgresql-migrate-${contentHash([JSON.stringify(manifest.spec)])}`);
    expect(ApiObject.of(rendered(props(1000)).job).name).not.toBe(manifest.metadata.name);
  });

  it.each(PROFILE_NAMES)('in dist/%s: every Job is named `<name>-<hash of its spec>`', (profile) => {
    const jobs = manifests(profile).filter((m) => m.kind === 'Job');
    expect(jobs.length).toBeGreaterThanOrEqual(3);
    for (const job of jobs) expect(job.metadata.name.endsWith(`-${contentHash([JSON.stringify(job.spec)])}`), job.metadata.name).toBe(true);
  });

  it('bound every container\'s ephemeral storage, keeping what a container sets itself', () => {
    const m = withEphemeralStorage({ kind: 'Job', spec: { template: { spec: {
      initContainers: [{ name: 'login' }],
      containers: [{ name: 'a', resources: { requests: { cpu: '1' } } }, { name: 'b', resources: { requests: { 'ephemeral-storage': '5Gi' }, limits: { 'ephemeral-storage': '6Gi' } } }],
    } } } });
    const spec = m.spec.template.spec;
    expect(spec.initContainers[0].resources).toEqual({ requests: { 'ephemeral-storage': EPHEMERAL_STORAGE.initContainers.request }, limits: { 'ephemeral-storage': EPHEMERAL_STORAGE.initContainers.limit } });
    expect(spec.containers[0].resources).toEqual({ requests: { cpu: '1', 'ephemeral-storage': EPHEMERAL_STORAGE.containers.request }, limits: { 'ephemeral-storage': EPHEMERAL_STORAGE.containers.limit } });
    expect(spec.containers[1].resources).toEqual({ requests: { 'ephemeral-storage': '5Gi' }, limits: { 'ephemeral-storage': '6Gi' } });
  });

  it('drop the empty values the API server does not store', () => {
    const m = withoutServerDefaults({ kind: 'Job', spec: { template: { spec: { hostNetwork: false, setHostnameAsFQDN: false, containers: [] } } } });
    expect(m.spec.template.spec).toEqual({ containers: [] });
    const binding = withoutServerDefaults({ kind: 'RoleBinding', subjects: [{ apiGroup: '', kind: 'ServiceAccount', name: 'a' }, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'g' }] });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'a' }, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'g' }]);
  });
});




describe('Jobs for the target Kubernetes version (kubernetesVersion)', () => {
  const rules = (kubernetesVersion: '1.28' | '1.29' | '1.31') => variantManifests('k8s', { kubernetesVersion })
    .flatMap((m) => (m.kind === 'CronJob' ? m.spec.jobTemplate.spec : m.kind === 'Job' ? m.spec : { podFailurePolicy: { rules: [] } }).podFailurePolicy.rules);

  it('1.28: every pod failure rule names onPodConditions, as its batch/v1 schema requires', () => {
    expect(rules('1.28').length).toBeGreaterThan(5);
    expect(rules('1.28').filter((r: any) => !Array.isArray(r.onPodConditions))).toEqual([]);
  });

  it('1.29 and newer: no empty onPodConditions (the server drops it, and each client-side re-apply would rewrite the Job)', () => {
    for (const version of ['1.29', '1.31'] as const) expect(rules(version).filter((r: any) => Array.isArray(r.onPodConditions) && r.onPodConditions.length === 0)).toEqual([]);
  });
});
