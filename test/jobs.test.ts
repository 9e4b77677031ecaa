import { describe, expect, it } from 'vitest';
import { contentNamedJob, withoutServerDefaults } from '../lib/job';

const job = (spec: object) => ({
  kind: 'Job',
  metadata: { name: 'postgres-postgresql-migrate', labels: { 'app.kubernetes.io/name': 'learnflow-postgres', 'learnflow.io/content-named': 'true' } },
  spec,
});

describe('Jobs of ours', () => {
  it('are named after their whole spec, so a changed Job is a new Job and never an in-place edit', () => {
    const a = contentNamedJob(job({ backoffLimit: 6, template: { spec: { containers: [{ name: 'm', resources: { limits: { cpu: '500m' } } }] } } }));
    const same = contentNamedJob(job({ backoffLimit: 6, template: { spec: { containers: [{ name: 'm', resources: { limits: { cpu: '500m' } } }] } } }));
    const resources = contentNamedJob(job({ backoffLimit: 6, template: { spec: { containers: [{ name: 'm', resources: { limits: { cpu: '1' } } }] } } }));
    expect(a.metadata.name).toMatch(/^postgres-postgresql-migrate-[0-9a-f]{10}$/);
    expect(same.metadata.name).toBe(a.metadata.name);
    expect(resources.metadata.name).not.toBe(a.metadata.name);
    // The marker label is consumed; the name stays within Kubernetes' 63 characters.
    expect(a.metadata.labels).toEqual({ 'app.kubernetes.io/name': 'learnflow-postgres' });
    const long = contentNamedJob({ ...job({}), metadata: { name: 'x'.repeat(70), labels: { 'learnflow.io/content-named': 'true' } } });
    expect(long.metadata.name.length).toBeLessThanOrEqual(63);
  });

  it('leave other objects and unmarked Jobs alone', () => {
    const cm = { kind: 'ConfigMap', metadata: { name: 'c', labels: { 'learnflow.io/content-named': 'true' } } };
    expect(contentNamedJob(structuredClone(cm))).toEqual(cm);
    expect(contentNamedJob({ kind: 'Job', metadata: { name: 'j', labels: {} }, spec: {} }).metadata.name).toBe('j');
  });

  it('drop the false defaults the API server does not store', () => {
    const m = withoutServerDefaults({ kind: 'Job', spec: { template: { spec: { hostNetwork: false, setHostnameAsFQDN: false, containers: [] } } } });
    expect(m.spec.template.spec).toEqual({ containers: [] });
  });
});
