import { describe, expect, it } from 'vitest';
import { chartObjects } from '../lib/chart';
import { PROFILES, PROFILE_NAMES } from '../lib/profiles';
import { podSpecOf } from '../lib/security';
import { Manifest, byComponent, findOne, manifests } from './support/dist';

/** kubernetes-models module path of a manifest: `<group>/<version>/<Kind>`, core as `v1`. */
function modelPath(m: Manifest): string {
  const [group, version] = m.apiVersion.includes('/') ? m.apiVersion.split('/') : ['', m.apiVersion];
  return `kubernetes-models/${group ? `${group}/` : ''}${version}/${m.kind}`;
}

describe.each(PROFILE_NAMES)('dist/%s', (profile) => {
  const all = manifests(profile);

  it('validates every manifest against the Kubernetes API schemas (kubernetes-models)', async () => {
    expect(all.length).toBeGreaterThan(5);
    for (const m of all) {
      const module = await import(modelPath(m));
      const Model = module[m.kind] ?? module.default;
      expect(() => new Model(m).validate(), `${m.kind}/${m.metadata.name}`).not.toThrow();
    }
  });

  it('puts the Namespace first, labelled to enforce Pod Security "restricted"', () => {
    expect(all[0].kind).toBe('Namespace');
    expect(all[0].metadata.labels).toMatchObject({
      'pod-security.kubernetes.io/enforce': 'restricted',
      'pod-security.kubernetes.io/warn': 'restricted',
    });
    for (const m of all.slice(1)) expect(m.metadata.namespace, `${m.kind}/${m.metadata.name}`).toBe(all[0].metadata.name);
  });

  it('labels everything with the app.kubernetes.io conventions', () => {
    for (const m of all) {
      expect(m.metadata.labels, `${m.kind}/${m.metadata.name}`).toMatchObject({
        'app.kubernetes.io/name': 'learnflow-postgres',
        'app.kubernetes.io/part-of': 'learnflow-postgres',
        'app.kubernetes.io/managed-by': 'cdk8s',
      });
    }
  });

  it('gives every pod the Pod Security "restricted" settings', () => {
    const pods = all.map((m) => [m, podSpecOf(m)] as const).filter(([, spec]) => spec);
    expect(pods.length).toBeGreaterThanOrEqual(3);
    for (const [m, spec] of pods) {
      const where = `${m.kind}/${m.metadata.name}`;
      expect(spec!.securityContext, where).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      expect(spec!.hostNetwork ?? false, where).toBe(false);
      for (const c of [...(spec!.initContainers ?? []), ...spec!.containers]) {
        expect(c.securityContext, `${where} ${c.name}`).toMatchObject({
          allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: { drop: ['ALL'] },
        });
        expect(c.securityContext.capabilities.add ?? [], where).toEqual([]);
      }
      for (const v of spec!.volumes ?? []) {
        expect(Object.keys(v).filter((k) => k !== 'name'), `${where} volume ${v.name}`).toEqual(
          expect.arrayContaining([expect.stringMatching(/^(configMap|emptyDir|projected|secret|persistentVolumeClaim)$/)]),
        );
      }
    }
  });

  it('lets only the listed namespaces, our Jobs and the listed networks reach PostgreSQL, on its port only', () => {
    const props = PROFILES[profile];
    const dbLabels = chartObjects('postgres').podLabels;
    const selectingDb = all.filter((m) => m.kind === 'NetworkPolicy'
      && Object.entries(m.spec.podSelector.matchLabels ?? {}).every(([k, v]) => dbLabels[k as keyof typeof dbLabels] === v)
      && (m.spec.policyTypes ?? []).includes('Ingress'));
    // Policies are additive: exactly one may select the database pods, and it is ours.
    expect(selectingDb).toHaveLength(1);
    const [rule] = selectingDb[0].spec.ingress;
    expect(selectingDb[0].spec.ingress).toHaveLength(1);
    expect(rule.ports).toEqual([{ protocol: 'TCP', port: 5432 }]);
    expect(rule.from).toEqual([
      ...props.allowedNamespaces.map((ns) => ({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } } })),
      { podSelector: { matchLabels: { 'app.kubernetes.io/part-of': 'learnflow-postgres', 'learnflow.io/database-client': 'true' } } },
      // The chart's own backup CronJob, where backups are on.
      ...('backup' in props ? [{ podSelector: { matchLabels: { 'app.kubernetes.io/instance': 'postgres', 'app.kubernetes.io/component': 'pg_dumpall' } } }] : []),
      ...('allowedCidrs' in props ? props.allowedCidrs : []).map((cidr: string) => ({ ipBlock: { cidr } })),
    ]);
  });

  it('gives the chart\'s backup pods egress to DNS and the database only, where backups are on', () => {
    const policies = all.filter((m) => m.kind === 'NetworkPolicy' && m.spec.podSelector.matchLabels?.['app.kubernetes.io/component'] === 'pg_dumpall');
    expect(policies.map((p) => p.spec.egress.map((e: any) => e.ports.map((x: any) => x.port)))).toEqual('backup' in PROFILES[profile] ? [[[53, 53], [5432]]] : []);
  });

  it('gives the migration Job egress to DNS and the database only', () => {
    const job = findOne(profile, byComponent('Job', 'migrations'), 'migration Job');
    const podLabels = job.spec.template.metadata.labels;
    const egress = all.filter((m) => m.kind === 'NetworkPolicy' && (m.spec.policyTypes ?? []).includes('Egress')
      && Object.entries(m.spec.podSelector.matchLabels).every(([k, v]) => podLabels[k] === v));
    expect(egress).toHaveLength(1);
    expect(egress[0].spec.egress).toEqual([
      { to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } } }], ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] },
      { to: [{ podSelector: { matchLabels: chartObjects('postgres').podLabels } }], ports: [{ protocol: 'TCP', port: 5432 }] },
    ]);
  });

  it('renders no Secret: passwords are created in the cluster, never in dist/', () => {
    expect(all.filter((m) => m.kind === 'Secret')).toEqual([]);
  });
});
