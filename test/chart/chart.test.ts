// The other half of every deployment: the real Bitnami chart (vendored), rendered by the real
// helm with the values we render, for every profile and every prop variant (test/support/
// chart-render.ts renders each once per run). What our manifests name in the chart must exist
// there, every value we set must show up in what the chart renders, no image comes from
// docker.io/bitnami/, and renders are stable where Argo CD compares them.
import { describe, expect, it } from 'vitest';
import { Testing } from 'cdk8s';
import * as os from 'node:os';
import { ArgoApplicationChart } from '../../lib/argocd';
import { chartObjects } from '../../lib/chart';
import { passwordKeys } from '../../lib/credentials/keys';
import { resourceName } from '../../lib/names';
import { backupStorageNames } from '../../lib/pitr/chart-values';
import { profileChartLocation, renderProfile } from '../../lib/synth';
import { resolveConfig } from '../../lib/config';
import { FIXTURE_MIGRATIONS } from '../support/variants';
import { RenderedChartCase, chartCaseSpecs, chartCases, helmTemplate } from '../support/chart-render';
import {
  SecretRef, claimsUsed, containersOf, databaseClients, find, images, podTemplates, refOf, secretRefs, selectedPods, serviceOf,
} from '../support/chart-refs';
import { Manifest, ROOT } from '../support/dist';
import { describeWithTools } from '../support/tools';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';

const SPECS = chartCaseSpecs();

/** The chart's names for the case: with read replicas the primary's are `<fullname>-primary`. */
const namesOf = (c: RenderedChartCase) => chartObjects(c.release, c.config.readReplicas?.count ?? 0);
const primaryOf = (c: RenderedChartCase) => {
  const sts = find(c.chart, 'StatefulSet', namesOf(c).statefulSet);
  if (!sts) throw new Error(`${c.name}: the chart renders no StatefulSet ${namesOf(c).statefulSet}`);
  return sts;
};
/** The chart's read StatefulSet (with read replicas). */
const readOf = (c: RenderedChartCase) => {
  const name = namesOf(c).read?.statefulSet;
  const sts = name ? find(c.chart, 'StatefulSet', name) : undefined;
  if (!sts) throw new Error(`${c.name}: the chart renders no read StatefulSet`);
  return sts;
};
/** The database pods' owners: the primary's StatefulSet and, with replicas, the read one. */
const databaseOwners = (c: RenderedChartCase) => {
  const read = namesOf(c).read;
  const replicas = read ? find(c.chart, 'StatefulSet', read.statefulSet) : undefined;
  if (read && !replicas) throw new Error(`${c.name}: the chart renders no StatefulSet ${read.statefulSet}`);
  return [primaryOf(c), ...(replicas ? [replicas] : [])].map(refOf).sort();
};
const primaryTemplate = (c: RenderedChartCase) => podTemplates([primaryOf(c)])[0];
const databaseContainer = (c: RenderedChartCase) => primaryTemplate(c).spec.containers.find((x: any) => x.name === 'postgresql');
const env = (c: RenderedChartCase, name: string) => databaseContainer(c).env.find((e: any) => e.name === name);
/** Where the database reads a password: `env NAME` from a Secret key, or (16.x) the file of `NAME_FILE` in a mounted Secret. */
const passwordRef = (c: RenderedChartCase, name: string): SecretRef | undefined =>
  secretRefs([primaryOf(c)]).find((r) => r.via === `env ${name}` || r.via === `env ${name}_FILE (file)`);
const service = (c: RenderedChartCase) => find(c.chart, 'Service', namesOf(c).service)!;
/** Our dump CronJob (dist/): with backups on, it dumps the database onto the backup volume. */
const dumpCronJob = (c: RenderedChartCase) => find(c.dist, 'CronJob', resourceName(c.release, 'dump'));
/** The chart's ConfigMap `<fullname>-<suffix>`, mounted into the database container at `mountPath`. */
const mountedConfigMap = (c: RenderedChartCase, suffix: string, mountPath: string) => {
  const name = `${namesOf(c).statefulSet}-${suffix}`;
  const mount = databaseContainer(c).volumeMounts.find((m: any) => m.mountPath === mountPath);
  const volume = mount && primaryTemplate(c).spec.volumes.find((v: any) => v.name === mount.name);
  return volume?.configMap?.name === name ? find(c.chart, 'ConfigMap', name) : undefined;
};
/** The items of `list` missing from `actual` (compared whole). */
const missing = (what: string, actual: readonly unknown[] | undefined, list: readonly unknown[]) => {
  const absent = list.filter((x) => !(actual ?? []).some((y) => same(x, y)));
  return absent.length === 0 ? undefined : `${what} lacks ${show(absent)}`;
};
/** JSON with every object's keys sorted: the chart's toYaml reorders keys, which means nothing. */
const canonical = (v: unknown): string => JSON.stringify(v, (_, x) =>
  x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b))) : x);
const same = (a: unknown, b: unknown) => canonical(a) === canonical(b);
const show = (v: unknown) => JSON.stringify(v);

/** A check of one values key against the render: a problem, or undefined when the chart uses the value. */
type Effect = (c: RenderedChartCase, value: any, key: string) => string | undefined;
const expectEqual = (what: string, actual: unknown, value: unknown) => (same(actual, value) ? undefined : `${what} is ${show(actual)}, not ${show(value)}`);

/**
 * Where the chart puts each values key we set: the key (a leaf of the values, lists whole), or a
 * pattern of keys, and how the render shows it. A key we render without an entry here fails the
 * test naming it, and so does an entry the render contradicts (a key the chart ignores, or one
 * that moved between chart versions).
 */
const EFFECTS: [RegExp, Effect][] = [
  [/^global\.security\.allowInsecureImages$/, (c, v) => (v === true && c.config.chartVersion === '16.7.27' && c.chart.length > 0 ? undefined : `rendered for chart ${c.config.chartVersion}`)],
  [/^image\.(registry|repository|tag)$/, (c) => expectEqual('the database container image', databaseContainer(c).image, `${c.values.image.registry}/${c.values.image.repository}:${c.values.image.tag}`)],
  [/^auth\.enablePostgresUser$/, (c, v) => expectEqual('the superuser password is set', passwordRef(c, 'POSTGRES_POSTGRES_PASSWORD') !== undefined, v)],
  [/^auth\.usePasswordFiles$/, (c, v) => expectEqual('the passwords read from files (POSTGRES_PASSWORD_FILE)', env(c, 'POSTGRES_PASSWORD_FILE') !== undefined, v)],
  [/^auth\.username$/, (c, v) => expectEqual('POSTGRES_USER', env(c, 'POSTGRES_USER')?.value, v)],
  [/^auth\.database$/, (c, v) => expectEqual('POSTGRES_DATABASE', env(c, 'POSTGRES_DATABASE')?.value, v)],
  [/^auth\.existingSecret$/, (c, v) => expectEqual('the Secret of both passwords', ['POSTGRES_PASSWORD', 'POSTGRES_POSTGRES_PASSWORD'].map((n) => passwordRef(c, n)?.secret), [v, v])],
  [/^auth\.secretKeys\.adminPasswordKey$/, (c, v) => expectEqual('the key of the superuser password', passwordRef(c, 'POSTGRES_POSTGRES_PASSWORD')?.key, v)],
  [/^auth\.secretKeys\.userPasswordKey$/, (c, v) => expectEqual('the key of the application user\'s password', passwordRef(c, 'POSTGRES_PASSWORD')?.key, v)],
  [/^architecture$/, (c, v) => expectEqual('the StatefulSets', c.chart.filter((m) => m.kind === 'StatefulSet').map((m) => m.metadata.name).sort(),
    v === 'standalone' ? [primaryOf(c).metadata.name] : [namesOf(c).statefulSet, namesOf(c).read?.statefulSet].sort())],
  // Read replicas (test/pooling/chart.test.ts checks the replication architecture in depth).
  [/^auth\.replicationUsername$/, (c, v) => expectEqual('POSTGRES_REPLICATION_USER', env(c, 'POSTGRES_REPLICATION_USER')?.value, v)],
  [/^auth\.secretKeys\.replicationPasswordKey$/, (c, v) => expectEqual('the key of the replication password', passwordRef(c, 'POSTGRES_REPLICATION_PASSWORD')?.key, v)],
  [/^replication\.synchronousCommit$/, (c, v) => expectEqual('POSTGRES_SYNCHRONOUS_COMMIT_MODE', env(c, 'POSTGRES_SYNCHRONOUS_COMMIT_MODE')?.value, v)],
  [/^replication\.numSynchronousReplicas$/, (c, v) => expectEqual('POSTGRES_NUM_SYNCHRONOUS_REPLICAS', env(c, 'POSTGRES_NUM_SYNCHRONOUS_REPLICAS')?.value, String(v))],
  [/^replication\.applicationName$/, (c, v) => expectEqual('POSTGRES_CLUSTER_APP_NAME', env(c, 'POSTGRES_CLUSTER_APP_NAME')?.value, v)],
  [/^readReplicas\.replicaCount$/, (c, v) => expectEqual('the read StatefulSet\'s replicas', readOf(c).spec.replicas, v)],
  [/^readReplicas\.persistence\.enabled$/, (c, v) => expectEqual('the replicas\' data volumeClaimTemplate', (readOf(c).spec.volumeClaimTemplates ?? []).map((t: any) => t.metadata.name), v ? ['data'] : [])],
  [/^readReplicas\.persistence\.size$/, (c, v) => expectEqual('the replicas\' data claim size', readOf(c).spec.volumeClaimTemplates?.[0]?.spec.resources.requests.storage, v)],
  [/^readReplicas\.persistence\.storageClass$/, (c, v) => expectEqual('the replicas\' data claim class', readOf(c).spec.volumeClaimTemplates?.[0]?.spec.storageClassName, v)],
  [/^readReplicas\.resources\.(requests|limits)\.(cpu|memory|ephemeral-storage)$/, (c, v, key) => {
    const [, , kind, what] = key.split('.');
    const container = readOf(c).spec.template.spec.containers.find((x: any) => x.name === 'postgresql');
    return expectEqual(`the replica container's resources.${kind}.${what}`, container?.resources?.[kind]?.[what], v);
  }],
  [/^readReplicas\.networkPolicy\.enabled$/, (c, v) => expectEqual('NetworkPolicies of the chart for the replicas', c.chart.filter((m) => m.kind === 'NetworkPolicy').length > 0, v)],
  [/^containerPorts\.postgresql$/, (c, v) => expectEqual('the container port and POSTGRESQL_PORT_NUMBER',
    [databaseContainer(c).ports.find((p: any) => p.name === 'tcp-postgresql')?.containerPort, env(c, 'POSTGRESQL_PORT_NUMBER')?.value], [v, String(v)])],
  [/^tls\.enabled$/, (c, v) => expectEqual('POSTGRESQL_ENABLE_TLS', env(c, 'POSTGRESQL_ENABLE_TLS')?.value, v ? 'yes' : 'no')],
  [/^tls\.autoGenerated$/, (c, v) => expectEqual('a generated certificate Secret', find(c.chart, 'Secret', `${chartObjects(c.release).service}-crt`)?.type, v ? 'kubernetes.io/tls' : undefined)],
  [/^tls\.certificatesSecret$/, (c, v) => expectEqual('the certificates volume', primaryTemplate(c).spec.volumes.find((x: any) => x.name === 'raw-certificates')?.secret?.secretName, v)],
  [/^tls\.certFilename$/, (c, v) => expectEqual('POSTGRESQL_TLS_CERT_FILE', env(c, 'POSTGRESQL_TLS_CERT_FILE')?.value, `/opt/bitnami/postgresql/certs/${v}`)],
  [/^tls\.certKeyFilename$/, (c, v) => expectEqual('POSTGRESQL_TLS_KEY_FILE', env(c, 'POSTGRESQL_TLS_KEY_FILE')?.value, `/opt/bitnami/postgresql/certs/${v}`)],
  [/^tls\.certCAFilename$/, (c, v) => expectEqual('POSTGRESQL_TLS_CA_FILE', env(c, 'POSTGRESQL_TLS_CA_FILE')?.value, `/opt/bitnami/postgresql/certs/${v}`)],
  [/^primary\.persistence\.enabled$/, (c, v) => expectEqual('the data volumeClaimTemplate', (primaryOf(c).spec.volumeClaimTemplates ?? []).map((t: any) => t.metadata.name), v ? ['data'] : [])],
  [/^primary\.persistence\.size$/, (c, v) => expectEqual('the data claim size', primaryOf(c).spec.volumeClaimTemplates?.[0]?.spec.resources.requests.storage, v)],
  [/^primary\.persistence\.storageClass$/, (c, v) => expectEqual('the data claim class', primaryOf(c).spec.volumeClaimTemplates?.[0]?.spec.storageClassName, v)],
  [/^primary\.resources\.(requests|limits)\.(cpu|memory|ephemeral-storage)$/, (c, v, key) => {
    const [, , kind, what] = key.split('.');
    return expectEqual(`the database container's resources.${kind}.${what}`, databaseContainer(c).resources?.[kind]?.[what], v);
  }],
  [/^primary\.service\.type$/, (c, v) => expectEqual('the Service type', service(c).spec.type, v)],
  [/^primary\.service\.externalTrafficPolicy$/, (c, v) => expectEqual('the Service\'s externalTrafficPolicy', service(c).spec.externalTrafficPolicy, v)],
  [/^primary\.service\.ports\.postgresql$/, (c, v) => expectEqual('the Service port', service(c).spec.ports.find((p: any) => p.name === 'tcp-postgresql')?.port, v)],
  [/^primary\.service\.nodePorts\.postgresql$/, (c, v) => expectEqual('the Service node port', service(c).spec.ports.find((p: any) => p.name === 'tcp-postgresql')?.nodePort, v)],
  [/^primary\.service\.loadBalancerSourceRanges$/, (c, v) => expectEqual('loadBalancerSourceRanges', service(c).spec.loadBalancerSourceRanges, v)],
  [/^primary\.networkPolicy\.enabled$/, (c, v) => expectEqual('NetworkPolicies of the chart for the database', c.chart.filter((m) => m.kind === 'NetworkPolicy' && m.metadata.name === chartObjects(c.release).service).length, v ? 1 : 0)],
  [/^volumePermissions\.image\.(registry|repository|tag)$/, (c) => {
    const { registry, repository, tag } = c.values.volumePermissions.image;
    return expectEqual('the copy-certs container image', containersOf(primaryTemplate(c).spec).find((x) => x.name === 'copy-certs')?.image, `${registry}/${repository}:${tag}`);
  }],
  // The image copies conf.d/ into its postgresql.conf and reads pg_hba.conf from conf/ on every start.
  [/^primary\.extendedConfiguration$/, (c, v) => expectEqual('override.conf of the conf.d/ ConfigMap',
    mountedConfigMap(c, 'extended-configuration', '/bitnami/postgresql/conf/conf.d/')?.data?.['override.conf'], String(v).trimEnd())],
  [/^primary\.pgHbaConfiguration$/, (c, v) => expectEqual('pg_hba.conf of the conf/ ConfigMap',
    mountedConfigMap(c, 'configuration', '/bitnami/postgresql/conf')?.data?.['pg_hba.conf'], v)],
  [/^primary\.extraVolumes$/, (c, v) => missing('the database pod\'s volumes', primaryTemplate(c).spec.volumes, v)],
  [/^primary\.extraVolumeMounts$/, (c, v) => missing('the database container\'s mounts', databaseContainer(c).volumeMounts, v)],
  [/^primary\.sidecars$/, (c, v) => missing('the database pod\'s containers', primaryTemplate(c).spec.containers, v)],
];

/** Every leaf of the values as `path` → value (lists are leaves). */
function leaves(value: unknown, at = ''): [string, unknown][] {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    return Object.entries(value).flatMap(([k, v]) => leaves(v, at ? `${at}.${k}` : k));
  }
  return [[at, value]];
}

/** The problems of one case's values against its render, each naming the key. */
function valueProblems(c: RenderedChartCase): string[] {
  return leaves(c.values).flatMap(([key, value]) => {
    const effect = EFFECTS.find(([pattern]) => pattern.test(key));
    if (!effect) return [`${key}: no expectation says where the chart renders it (add one to EFFECTS, or stop setting it)`];
    const problem = effect[1](c, value, key);
    return problem ? [`${key}: ${problem}`] : [];
  });
}

describeWithTools('the vendored chart, rendered by helm with our values', ['helm'], () => {
  it('covers every profile and every prop variant, each in a namespace of its own', async () => {
    const cases = await chartCases();
    expect(cases.map((c) => c.name)).toEqual(SPECS.map((s) => s.name));
    expect(new Set(cases.map((c) => c.namespace)).size).toBe(cases.length);
    // What the variants must cover (the list): TLS both ways, backups, both credential
    // modes, every service type, both chart versions, a registry mirror.
    const has = (p: (c: RenderedChartCase) => boolean) => cases.some(p);
    expect(has((c) => c.config.tls.enabled && c.config.tls.certificatesSecret !== undefined)).toBe(true);
    expect(has((c) => c.config.tls.enabled && c.config.tls.certificatesSecret === undefined)).toBe(true);
    expect(has((c) => c.config.backup.enabled) && has((c) => !c.config.backup.enabled)).toBe(true);
    expect(has((c) => c.config.pitr.enabled && c.config.objectStore !== undefined) && has((c) => !c.config.pitr.enabled)).toBe(true);
    expect(has((c) => c.config.credentials.existingSecret !== undefined) && has((c) => c.config.credentials.existingSecret === undefined)).toBe(true);
    expect(new Set(cases.map((c) => c.config.serviceType))).toEqual(new Set(['ClusterIP', 'NodePort', 'LoadBalancer']));
    expect(new Set(cases.map((c) => c.config.chartVersion))).toEqual(new Set(['15.5.38', '16.7.27']));
    expect(has((c) => c.config.imageRegistry !== undefined)).toBe(true);
  });

  describe.each(SPECS.map((s) => s.name))('%s', (name) => {
    const get = async () => (await chartCases()).find((c) => c.name === name)!;

    it('renders the database: one StatefulSet with its Service and headless Service, in the case\'s namespace', async () => {
      const c = await get();
      const names = namesOf(c);
      expect(primaryOf(c).spec.serviceName).toBe(names.headlessService);
      expect(find(c.chart, 'Service', names.service)).toBeDefined();
      expect(find(c.chart, 'Service', names.headlessService)).toBeDefined();
      expect(c.chart.filter((m) => m.metadata.namespace !== c.namespace).map(refOf)).toEqual([]);
    });

    it('reads only Secrets that exist, with keys they hold: ours (bootstrap or user-managed), or the chart\'s own', async () => {
      const c = await get();
      const credentials = c.config.credentials.existingSecret ?? `${chartObjects(c.release).service}-credentials`;
      // What the bootstrap writes, and what a user-managed Secret must hold (README "Credentials").
      const credentialKeys = new Set<string>(passwordKeys(c.config));
      const chartSecrets = new Map(c.chart.filter((m) => m.kind === 'Secret').map((s) => [s.metadata.name, new Set(Object.keys({ ...s.data, ...s.stringData }))]));
      const tlsSecret = c.config.tls.certificatesSecret;
      const problems = secretRefs(c.all).flatMap((r) => {
        const keys = r.secret === credentials ? credentialKeys
          : r.secret === tlsSecret ? new Set(['tls.crt', 'tls.key', 'ca.crt'])
            // The object store's Secret is the user's (README: Point-in-time recovery), mounted whole and optional.
            : r.secret === c.config.objectStore?.secretName && r.optional ? new Set<string>()
              : chartSecrets.get(r.secret);
        if (!keys) return [`${r.owner} (${r.via}) reads Secret ${r.secret}, which nothing renders or creates`];
        return r.key !== undefined && !keys.has(r.key) ? [`${r.owner} (${r.via}) reads key ${r.key} of ${r.secret}, which holds ${[...keys].join(', ')}`] : [];
      });
      expect(problems).toEqual([]);
      // The database and (with backups) the dump CronJob read the credentials Secret.
      const readers = new Set(secretRefs(c.all).filter((r) => r.secret === credentials).map((r) => r.owner));
      expect(readers).toContain(refOf(primaryOf(c)));
      if (c.config.backup.enabled) expect(readers).toContain(refOf(dumpCronJob(c)!));
    });

    it('points every database client (our Jobs and CronJobs) at a Service of the chart, on a port it serves', async () => {
      const c = await get();
      const clients = databaseClients(c.all);
      expect(clients.length).toBeGreaterThanOrEqual(2);
      const problems = clients.flatMap((client) => {
        const target = serviceOf(client.host, c.namespace);
        const svc = target && target.namespace === c.namespace ? find(c.chart, 'Service', target.name) : undefined;
        if (!svc) return [`${client.owner} ${client.container}: PGHOST ${client.host} is no Service of the chart`];
        if (!svc.spec.ports.some((p: any) => String(p.port) === client.port)) return [`${client.owner}: PGPORT ${client.port} is not a port of Service ${svc.metadata.name}`];
        // The Service reaches the database pods.
        return selectedPods({ matchLabels: svc.spec.selector }, c.chart).some((t) => t.owner === refOf(primaryOf(c))) ? [] : [`Service ${svc.metadata.name} selects no database pod`];
      });
      expect(problems).toEqual([]);
    });

    it('selects the chart\'s real pods in our NetworkPolicies: the database, our clients, the backup and object store pods', async () => {
      const c = await get();
      const policies = c.dist.filter((m) => m.kind === 'NetworkPolicy');
      const selectedBy = (policy: Manifest) => selectedPods(policy.spec.podSelector, c.all).map((t) => t.owner);
      const policy = (suffix: string) => policies.find((p) => p.metadata.name === resourceName(c.release, suffix));
      expect(selectedBy(policy('database-ingress')!).sort()).toEqual(databaseOwners(c));
      // Every pod the ingress admits by label is a pod of this deployment that exists.
      const admitted = policy('database-ingress')!.spec.ingress.flatMap((r: any) => r.from ?? []).filter((f: any) => f.podSelector && !f.namespaceSelector);
      for (const peer of admitted) expect(selectedPods(peer.podSelector, c.all).length, JSON.stringify(peer)).toBeGreaterThan(0);
      // Every policy selects pods that exist (default deny: all of them); the database's egress selects only it.
      for (const p of policies) expect(selectedBy(p).length, p.metadata.name).toBeGreaterThan(0);
      if (c.config.backup.enabled) expect(selectedBy(policy('database-clients-egress')!)).toContain(refOf(dumpCronJob(c)!));
      expect(selectedBy(policy('database-egress')!).sort()).toEqual(databaseOwners(c));
      expect(selectedBy(policy('default-deny')!)).toEqual(expect.arrayContaining([refOf(primaryOf(c))]));
    });

    it('names the claims that exist: the data claim the chart makes (the bootstrap and the CLI look for it), the backup claim we render', async () => {
      const c = await get();
      const names = namesOf(c);
      const chartClaims = new Set([...claimsUsed(c.chart).map((u) => u.claim), ...c.all.filter((m) => m.kind === 'PersistentVolumeClaim').map((m) => m.metadata.name)]);
      expect(chartClaims).toContain(names.dataClaim);
      const bootstrap = podTemplates(c.dist).find((t) => t.labels['app.kubernetes.io/component'] === 'credentials')!;
      const env = Object.fromEntries(containersOf(bootstrap.spec)[0].env.map((e: any) => [e.name, e.value]));
      expect(env.DATA_CLAIM).toBe(names.dataClaim);
      // The volume guard's claim is the primary's under the other architecture: this render's
      // chart never makes it; the same chart with readReplicas switched would.
      const otherArchitecture = chartObjects(c.release, c.config.readReplicas ? 0 : 1).dataClaim;
      expect(env.OTHER_DATA_CLAIM).toBe(otherArchitecture);
      expect(chartClaims).not.toContain(otherArchitecture);
      for (const use of claimsUsed(c.all)) expect(chartClaims, `${use.owner} mounts ${use.claim}`).toContain(use.claim);
      // The database pod mounts the backup volume (archives, dumps), so it binds with the database.
      const backupClaim = backupStorageNames(c.release).claim;
      expect(claimsUsed([primaryOf(c)]).some((u) => u.claim === backupClaim)).toBe(c.config.backupVolume !== undefined);
      if (c.config.backup.enabled) expect(claimsUsed([dumpCronJob(c)!]).map((u) => u.claim)).toEqual([backupClaim]);
    });

    it('pulls no image from docker.io/bitnami/ (its tags are gone), in dist/ or the chart', async () => {
      const c = await get();
      expect(images(c.all).filter((i) => /^(docker\.io\/)?bitnami\//.test(i.image))).toEqual([]);
      if (c.config.imageRegistry) {
        expect(images(c.all).filter((i) => !i.image.startsWith(`${c.config.imageRegistry}/`))).toEqual([]);
      }
    });

    it('sets only values the chart renders: each one shows up where the chart puts it', async () => {
      expect(valueProblems(await get())).toEqual([]);
    });
  });

  it('"shows up" means something: a key the chart ignores, or one that moved, fails naming it', async () => {
    const c = (await chartCases())[0];
    const wrong = { ...c, values: { ...c.values, primary: { ...c.values.primary, tls: { enabled: true } }, auth: { ...c.values.auth, username: 'moved' } } };
    expect(valueProblems(wrong)).toEqual([
      `auth.username: POSTGRES_USER is ${show(c.values.auth.username)}, not "moved"`,
      'primary.tls.enabled: no expectation says where the chart renders it (add one to EFFECTS, or stop setting it)',
    ]);
  });

  it('needs global.security.allowInsecureImages where the chart checks image origins (16.x with a mirror): without it the render fails', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'learnflow-insecure-'));
    try {
      const props = { chartVersion: '16.7.27', imageRegistry: 'mirror.example.com:5000' } as const;
      const values = path.join(dir, 'values.yaml');
      writeFileSync(values, renderProfile('mirror', props, FIXTURE_MIGRATIONS).get('helm/postgresql-values.yaml')!);
      const config = resolveConfig(props);
      expect(await helmTemplate(config, values, path.join(dir, 'helm'))).toContain('mirror.example.com:5000/bitnamilegacy/postgresql:');
      await expect(helmTemplate(config, values, path.join(dir, 'helm'), ['--set', 'global.security.allowInsecureImages=false'])).rejects.toThrow(/substituted for unrecognized ones/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('renders the same objects twice except where the Argo CD Application\'s ignoreDifferences allows', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'learnflow-rerender-'));
    try {
      for (const c of await chartCases()) {
        const values = path.join(dir, `${c.namespace}.yaml`);
        writeFileSync(values, c.valuesYaml);
        const again = parseAllDocuments(await helmTemplate(c.config, values, path.join(dir, 'helm'))).map((d) => d.toJS() as Manifest).filter(Boolean);
        const application = Testing.synth(new ArgoApplicationChart(Testing.app({ outdir: os.tmpdir() }), 'application', {
          repoURL: 'https://git.example.com/x.git', profile: 'p', destinationNamespace: c.namespace, releaseName: c.release,
          chart: profileChartLocation(c.name, c.props, ROOT),
          chartGeneratedCertificate: c.config.tls.enabled && c.config.tls.certificatesSecret === undefined,
        }))[0];
        const ignored = (application.spec.ignoreDifferences ?? []) as { kind: string; name: string; jsonPointers: string[] }[];
        const differences = c.chart.flatMap((m, i) => diffPointers(m, again[i]).map((p) => `${refOf(m)}${p}`));
        const allowed = (d: string) => ignored.some((r) => r.jsonPointers.some((p) => d === `${r.kind}/${r.name}${p}` || d.startsWith(`${r.kind}/${r.name}${p}/`)));
        expect(differences.filter((d) => !allowed(d)), c.name).toEqual([]);
        if (c.config.tls.enabled && !c.config.tls.certificatesSecret) expect(differences.length, `${c.name}: the generated certificate changes`).toBeGreaterThan(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

/** JSON pointers (`/data/tls.crt`) where `b` differs from `a`. */
function diffPointers(a: unknown, b: unknown, at = ''): string[] {
  if (same(a, b)) return [];
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    return keys.flatMap((k) => diffPointers((a as any)[k], (b as any)[k], `${at}/${k}`));
  }
  return [at || '/'];
}
