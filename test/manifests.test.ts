import { objectStorePort } from '../lib/network-policy';
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { chartObjects } from '../lib/chart';
import { contains, parseCidr } from '../lib/cidr';
import { resolveConfig } from '../lib/config';
import { PROFILES, PROFILE_NAMES } from '../lib/profiles';
import { podSpecOf } from '../lib/security';
import { LearnflowPostgresProps } from '../lib/config';
import { Manifest, ROOT, byComponent, manifests } from './support/dist';
import { VARIANTS, variantManifests } from './support/variants';

/** kubernetes-models module path of a manifest: `<group>/<version>/<Kind>`, core as `v1`. */
function modelPath(m: Manifest): string {
  const [group, version] = m.apiVersion.includes('/') ? m.apiVersion.split('/') : ['', m.apiVersion];
  return `kubernetes-models/${group ? `${group}/` : ''}${version}/${m.kind}`;
}

/** Every committed profile as dist/ holds it, and every snapshot variant as the synth renders it. */
const CASES: [string, () => Manifest[], LearnflowPostgresProps][] = [
  ...PROFILE_NAMES.map((profile): [string, () => Manifest[], LearnflowPostgresProps] => [`dist/${profile}`, () => manifests(profile), PROFILES[profile]]),
  ...Object.entries(VARIANTS).map(([name, props]): [string, () => Manifest[], LearnflowPostgresProps] => [`variant ${name}`, () => variantManifests(name, props), props]),
];

describe.each(CASES)('%s', (_name, render, props) => {
  const all = render();
  const one = (predicate: (m: Manifest) => boolean) => {
    const found = all.filter(predicate);
    expect(found).toHaveLength(1);
    return found[0];
  };

  it('validates every manifest against the Kubernetes API schemas (kubernetes-models)', async () => {
    expect(all.length).toBeGreaterThan(5);
    for (const m of all) {
      // cert-manager's kinds: validated against its real CRDs on the API server (test/kube/certificates.test.ts).
      if (m.apiVersion.startsWith('cert-manager.io/')) continue;
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

  it('bounds every container: CPU, memory and ephemeral storage requested and limited, init containers too', () => {
    const containers = all.flatMap((m) => {
      const spec = podSpecOf(m);
      return spec ? [...(spec.initContainers ?? []), ...spec.containers].map((c: any) => [`${m.kind}/${m.metadata.name} ${c.name}`, c] as const) : [];
    });
    expect(containers.length).toBeGreaterThanOrEqual(6);
    for (const [where, c] of containers) {
      for (const kind of ['requests', 'limits']) expect(Object.keys(c.resources[kind]).sort(), `${where} ${kind}`).toEqual(['cpu', 'ephemeral-storage', 'memory']);
    }
  });

  it('hands no container a Secret through its environment: passwords are files', () => {
    const env = all.flatMap((m) => {
      const spec = podSpecOf(m);
      return spec ? [...(spec.initContainers ?? []), ...spec.containers].flatMap((c: any) => c.env ?? []) : [];
    });
    expect(env.filter((e: any) => e.valueFrom?.secretKeyRef || e.name === 'PGPASSWORD')).toEqual([]);
  });

  const config = resolveConfig(props);
  const dbLabels = chartObjects(config.releaseName).podLabels;
  const poolerPods = { 'app.kubernetes.io/part-of': 'learnflow-postgres', 'app.kubernetes.io/component': 'pooler' };
  /** The allow policies selecting pods with `labels` (the default deny, selecting every pod, has its own test). */
  const selects = (labels: Record<string, string>) => (m: Manifest) =>
    m.spec.podSelector.matchLabels !== undefined && Object.entries(m.spec.podSelector.matchLabels).every(([k, v]) => labels[k] === v);
  /** A peer as it selects: a namespace peer's `podSelector: {}` (every pod there) said the short way. */
  const peer = (p: any) => (p.namespaceSelector && Object.keys(p.podSelector ?? {}).length === 0 ? { namespaceSelector: p.namespaceSelector } : p);

  it('lets only the listed namespaces, our Jobs (the backup CronJobs\' too) and the listed networks reach PostgreSQL, on its port only', () => {
    const selectingDb = all.filter((m) => m.kind === 'NetworkPolicy' && selects(dbLabels)(m) && (m.spec.policyTypes ?? []).includes('Ingress'));
    // Policies are additive: exactly one may admit anything to the database pods, and it is ours.
    expect(selectingDb).toHaveLength(1);
    const rules = selectingDb[0].spec.ingress;
    for (const rule of rules) expect(rule.ports).toEqual([{ protocol: 'TCP', port: 5432 }]);
    expect(rules.flatMap((r: any) => r.from).map(peer)).toEqual([
      ...config.allowedNamespaces.map((ns) => ({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } } })),
      // Each client network without the cluster's own networks inside it.
      ...config.allowedCidrs.map((cidr) => {
        const except = [...config.cluster.podCidrs, ...config.cluster.serviceCidrs].filter((c) => contains(parseCidr(cidr)!, parseCidr(c)!));
        return { ipBlock: { cidr, ...(except.length > 0 ? { except } : {}) } };
      }),
      { podSelector: { matchLabels: { 'app.kubernetes.io/part-of': 'learnflow-postgres', 'learnflow.io/database-client': 'true' } } },
      // With replicas: the database pods among themselves (streaming replication).
      ...(config.readReplicas ? [{ podSelector: { matchLabels: chartObjects(config.releaseName).databasePodLabels } }] : []),
      // With the pooler: its pods.
      ...(config.pooler ? [{ podSelector: { matchLabels: poolerPods } }] : []),
    ]);
  });

  it('lets the listed namespaces and networks reach the pooler on its port, and the pooler reach DNS and the database only, with the pooler', () => {
    const ingress = all.filter((m) => m.kind === 'NetworkPolicy' && selects(poolerPods)(m) && (m.spec.policyTypes ?? []).includes('Ingress'));
    if (!config.pooler) {
      expect(ingress).toEqual([]);
      return;
    }
    expect(ingress).toHaveLength(1);
    const rules = ingress[0].spec.ingress;
    for (const rule of rules) expect(rule.ports).toEqual([{ protocol: 'TCP', port: 6432 }]);
    expect(rules.flatMap((r: any) => r.from).map(peer)).toEqual([
      ...config.allowedNamespaces.map((ns) => ({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } } })),
      ...config.allowedCidrs.map((cidr) => {
        const except = [...config.cluster.podCidrs, ...config.cluster.serviceCidrs].filter((c) => contains(parseCidr(cidr)!, parseCidr(c)!));
        return { ipBlock: { cidr, ...(except.length > 0 ? { except } : {}) } };
      }),
    ]);
    expect(egressOf(poolerPods)).toEqual([dnsAndDatabase]);
  });

  it('points the pooler\'s Service at the pooler\'s pods alone: no Job pod (its setup Job\'s included) can become an endpoint', () => {
    const service = all.find((m) => m.kind === 'Service' && m.metadata.labels?.['app.kubernetes.io/component'] === 'pooler');
    if (!config.pooler) {
      expect(service).toBeUndefined();
      return;
    }
    const selector = service!.spec.selector as Record<string, string>;
    const templates = all.filter((m) => podSpecOf(m)).map((m) => ({ kind: m.kind, labels: (m.kind === 'CronJob' ? m.spec.jobTemplate.spec.template : m.spec.template).metadata.labels as Record<string, string> }));
    const selected = templates.filter((t) => Object.entries(selector).every(([k, v]) => t.labels[k] === v));
    expect(selected.map((t) => t.kind)).toEqual(['Deployment']);
  });

  it('denies all ingress and egress to every pod of the namespace, besides what the rules allow', () => {
    const deny = all.filter((m) => m.kind === 'NetworkPolicy' && Object.keys(m.spec.podSelector).length === 0);
    expect(deny.map((m) => m.spec)).toEqual([{ podSelector: {}, policyTypes: ['Ingress', 'Egress'] }]);
    // Written after the allow rules: kubectl applies it last, Argo CD with them (same wave).
    expect(all.filter((m) => m.kind === 'NetworkPolicy').at(-1)).toBe(deny[0]);
  });

  /** Each egress rule of the policies selecting `pods`, as `[peers, ports]`. */
  const egressOf = (pods: Record<string, string>) => all
    .filter((m) => m.kind === 'NetworkPolicy' && (m.spec.policyTypes ?? []).includes('Egress') && selects(pods)(m))
    .map((m) => m.spec.egress.map((e: any) => [(e.to ?? []).map(peer), e.ports]));
  const dns = [
    [
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } } },
      ...config.cluster.nodeLocalDnsAddresses.map((a) => ({ ipBlock: { cidr: `${a}/${a.includes(':') ? 128 : 32}` } })),
      ...config.cluster.serviceCidrs.map((cidr) => ({ ipBlock: { cidr } })),
    ],
    [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }],
  ];
  // Every database pod of the release (the primary's and the replicas'): the primary's labels less its component.
  const databasePods = chartObjects(config.releaseName).databasePodLabels;
  const dnsAndDatabase = [dns, [[{ podSelector: { matchLabels: databasePods } }], [{ protocol: 'TCP', port: 5432 }]]];

  it('gives the backup CronJobs\' pods (dump, base backup) egress to DNS and the database only', () => {
    const cronJobs = all.filter((m) => m.kind === 'CronJob' && !m.spec.suspend);
    expect(cronJobs.length).toBe((config.backup.enabled ? 1 : 0) + (config.pitr.enabled ? 1 : 0));
    for (const c of cronJobs) expect(egressOf(c.spec.jobTemplate.spec.template.metadata.labels), c.metadata.name).toEqual([dnsAndDatabase]);
  });

  it('gives the database pods egress to DNS only, and with an object store to its port (the upload sidecar), as the restore\'s fetch', () => {
    const toObjectStore = [[], [{ protocol: 'TCP', port: objectStorePort(config.objectStore?.endpoint) }]];
    // With replicas, the database pods also reach each other (streaming replication).
    const replication = config.readReplicas ? [[[{ podSelector: { matchLabels: databasePods } }], [{ protocol: 'TCP', port: 5432 }]]] : [];
    expect(egressOf(dbLabels)).toEqual([[...(config.objectStore ? [dns, toObjectStore] : [dns]), ...replication]]);
    const restore = all.find((m) => m.kind === 'CronJob' && m.metadata.name.endsWith('-pitr-restore'));
    if (restore && config.objectStore) {
      expect(egressOf(restore.spec.jobTemplate.spec.template.metadata.labels)).toEqual(expect.arrayContaining([dnsAndDatabase, [dns, toObjectStore]]));
    }
  });

  it('gives the migration Job egress to DNS and the database only', () => {
    const job = one(byComponent('Job', 'migrations'));
    expect(egressOf(job.spec.template.metadata.labels)).toEqual([dnsAndDatabase]);
  });

  it('gives the credentials bootstrap egress to the API server\'s ports only', () => {
    const job = one(byComponent('Job', 'credentials'));
    expect(egressOf(job.spec.template.metadata.labels)).toEqual([[[[], [{ protocol: 'TCP', port: 443 }, { protocol: 'TCP', port: 6443 }]]]]);
  });

  it('keeps every NetworkPolicy in the access wave, none left to the chart', () => {
    const policies = all.filter((m) => m.kind === 'NetworkPolicy');
    expect(policies.map((m) => m.metadata.name).sort()).toEqual([
      'credentials-egress', 'default-deny', 'database-ingress', 'database-egress', 'database-clients-egress', ...(config.objectStore ? ['object-store-clients-egress'] : []),
      ...(config.pooler ? ['pooler-ingress', 'pooler-egress'] : []),
    ].map((suffix) => `${chartObjects(config.releaseName).service}-${suffix}`).sort());
  });

  it('renders no Secret: passwords are created in the cluster, never in dist/', () => {
    expect(all.filter((m) => m.kind === 'Secret')).toEqual([]);
  });
});

describe('where the manifests are written', () => {
  it('every NetworkPolicy in lib/network-policy.ts, the one module for them', () => {
    const lib = path.join(ROOT, 'lib');
    const writers = readdirSync(lib, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts') && /new (kplus\.(k8s\.)?|k8s\.)(Kube)?NetworkPolicy\(/.test(readFileSync(path.join(lib, f), 'utf8')))
      .map((f) => `lib/${f}`);
    expect(writers).toEqual(['lib/network-policy.ts']);
  });
});
