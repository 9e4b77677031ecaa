// Who reaches whom, judged by a NetworkPolicy evaluator (./support/network-policy-evaluator.ts)
// over what we render plus what the real chart renders (helm template), in a model cluster whose
// pods take addresses from the profile's pod networks: some of them inside the client networks
// that a LoadBalancer or NodePort admits, as on a cluster whose CNI (Calico and others) matches
// ipBlocks against pod addresses. Every expectation holds under both readings of ipBlock.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { Network, addressIn, contains, containsAddress, formatAddress, parseCidr } from '../lib/cidr';
import { LearnflowPostgresProps, resolveConfig } from '../lib/config';
import { OBJECT_STORE_CLIENT_LABEL } from '../lib/names';
import { objectStorePort } from '../lib/network-policy';
import { POOLER_CONTAINER_PORT } from '../lib/pooling/pooler';
import { PROFILES, PROFILE_NAMES } from '../lib/profiles';
import { podSpecOf } from '../lib/security';
import { renderProfile } from '../lib/synth';
import { renderChart } from './support/chart-render';
import { DIST, Manifest } from './support/dist';
import { ClusterModel, Endpoint, EvaluatorOptions, ModelAddress, ModelPod, connection } from './support/network-policy-evaluator';
import { describeWithTools } from './support/tools';
import { FIXTURE_MIGRATIONS, VARIANTS } from './support/variants';

/** A cluster's pod network where a profile names none (no client networks). */
const DEFAULT_POD_CIDRS = ['10.244.0.0/16'];
const API_SERVER: ModelAddress = { name: 'the API server', ip: '192.0.2.10' };
const INTERNET: ModelAddress = { name: 'an internet host', ip: '93.184.216.34' };
/** The object store's endpoint: a provider's address, outside the cluster. */
const OBJECT_STORE: ModelAddress = { name: 'the object store', ip: '52.216.8.10' };

interface Case {
  readonly props: LearnflowPostgresProps;
  /** Our manifests and the chart's values, as files. */
  readonly files: () => Map<string, string>;
}

const read = (profile: string, file: string) => readFileSync(path.join(DIST, profile, file), 'utf8');
const CASES: Record<string, Case> = {
  ...Object.fromEntries(PROFILE_NAMES.map((p) => [`dist/${p}`, {
    props: PROFILES[p],
    files: () => new Map([['learnflow-postgres.yaml', read(p, 'learnflow-postgres.yaml')], ['helm/postgresql-values.yaml', read(p, 'helm/postgresql-values.yaml')]]),
  }])),
  ...Object.fromEntries(['nodeport-with-client-networks', 'loadbalancer-with-generated-tls', 'backups', 'pitr-with-object-store', 'names-namespaces-and-argocd',
    'pooler-and-read-replicas', 'pooler-loadbalancer-with-tls-secret'].map((v) => [`variant ${v}`, {
    props: VARIANTS[v],
    files: () => renderProfile(v, VARIANTS[v], FIXTURE_MIGRATIONS),
  }])),
};

const documents = (text: string): Manifest[] => parseAllDocuments(text).map((d) => d.toJS() as Manifest).filter((m) => m && m.kind);

/** Pod templates of workloads: name and labels. */
const podTemplates = (manifests: readonly Manifest[]) => manifests.filter((m) => podSpecOf(m)).map((m) => ({
  name: m.metadata.name,
  labels: (m.kind === 'CronJob' ? m.spec.jobTemplate.spec.template : m.spec.template).metadata.labels as Record<string, string>,
}));

/** Hands out addresses of a network in order, from the 10th on. */
function allocator(network: Network) {
  let next = 10n;
  return () => formatAddress(addressIn(network, next++));
}

const network = (cidr: string) => parseCidr(cidr)!;

interface Model {
  readonly cluster: ClusterModel;
  readonly database: ModelPod;
  /** Our pods that log in to the database (label learnflow.io/database-client): the Jobs, the backup CronJobs. */
  readonly clients: readonly ModelPod[];
  /** With an object store: its port, which the database pod (upload sidecar) and the restore's fetch (label learnflow.io/object-store-client) reach at any address. */
  readonly objectStorePort?: number;
  readonly objectStoreClients: readonly ModelPod[];
  /** Our other pods (the credentials bootstrap). */
  readonly others: readonly ModelPod[];
  /** With the pooler: its pods (the Deployment's), on its port. */
  readonly pooler?: ModelPod;
  readonly poolerPort?: number;
  /** With read replicas: the chart's replica pods. */
  readonly replicas: readonly ModelPod[];
  readonly apps: readonly ModelPod[];
  readonly coreDns: ModelPod;
  readonly kubeSystemOther: ModelPod;
  readonly dnsAddresses: readonly ModelAddress[];
  /** Pods that must never reach the database: other namespaces, forged labels, our namespace unlabelled. */
  readonly strangers: readonly ModelPod[];
  /** Stranger pods whose addresses lie inside a client network. */
  readonly podsInClientNetworks: readonly ModelPod[];
  readonly intruder: ModelPod;
  readonly clientAddresses: readonly ModelAddress[];
  readonly outsider: ModelAddress;
}

function buildModel(props: LearnflowPostgresProps, ours: readonly Manifest[], chart: readonly Manifest[]): Model {
  const config = resolveConfig(props);
  const ns = config.namespace;
  const podCidrs = config.cluster.podCidrs.length > 0 ? config.cluster.podCidrs : DEFAULT_POD_CIDRS;
  const next = allocator(network(podCidrs[0]));
  const pod = (namespace: string, name: string, labels: Record<string, string>, ip = next()): ModelPod => ({ name, namespace, labels, ip });

  const chartPods = podTemplates(chart);
  const databaseTemplate = chartPods.find((p) => p.labels['app.kubernetes.io/component'] === 'primary');
  if (!databaseTemplate) throw new Error('the chart renders no primary pod');
  const database = pod(ns, `${databaseTemplate.name}-0`, databaseTemplate.labels);
  const replicaTemplate = chartPods.find((p) => p.labels['app.kubernetes.io/component'] === 'read');
  if ((replicaTemplate !== undefined) !== (config.readReplicas !== undefined)) throw new Error(`the chart renders ${replicaTemplate ? 'a' : 'no'} replica pod, readReplicas is ${config.readReplicas ? 'set' : 'not set'}`);
  const replicas = replicaTemplate ? Array.from({ length: config.readReplicas!.count }, (_, i) => pod(ns, `${replicaTemplate.name}-${i}`, replicaTemplate.labels)) : [];
  const ourPods = podTemplates(ours).map((t) => pod(ns, t.name, t.labels));
  const poolerDeployment = ours.find((m) => m.kind === 'Deployment' && m.metadata.labels?.['app.kubernetes.io/component'] === 'pooler');
  const pooler = poolerDeployment && ourPods.find((p) => p.name === poolerDeployment.metadata.name);
  const clients = ourPods.filter((p) => p.labels['learnflow.io/database-client'] === 'true');
  const objectStoreClients = ourPods.filter((p) => p.labels[OBJECT_STORE_CLIENT_LABEL] === 'true');
  const others = ourPods.filter((p) => !clients.includes(p) && !objectStoreClients.includes(p) && p !== pooler);
  const apps = config.allowedNamespaces.map((n) => pod(n, 'web', { app: 'web' }));
  const coreDns = pod('kube-system', 'coredns', { 'k8s-app': 'kube-dns' });
  const kubeSystemOther = pod('kube-system', 'metrics-server', { 'k8s-app': 'metrics-server' });
  const intruder = pod(ns, 'debug', { run: 'debug' });
  const strangers = [
    pod('stranger', 'app', { app: 'web' }),
    // Our labels do not travel: a podSelector matches in the policy's own namespace only.
    pod('stranger', 'forged', { ...clients[0].labels }),
    pod('stranger', 'forged-database', { ...databaseTemplate.labels }),
    ...(replicaTemplate ? [pod('stranger', 'forged-replica', { ...replicaTemplate.labels })] : []),
    ...(pooler ? [pod('stranger', 'forged-pooler', { ...pooler.labels })] : []),
    intruder,
    kubeSystemOther,
  ];

  // A stranger pod in each pod network that a client network covers: the pods the issue is about.
  const clientNetworks = config.allowedCidrs.map(network);
  const podsInClientNetworks = podCidrs.flatMap((cidr, i) => clientNetworks
    .filter((client) => contains(client, network(cidr)))
    .map((_client, j) => pod('stranger', `in-client-network-${i}-${j}`, { app: 'web' }, formatAddress(addressIn(network(cidr), 200n + BigInt(j))))));

  const clusterNetworks = [...podCidrs, ...config.cluster.serviceCidrs].map(network);
  const inCluster = (address: string) => clusterNetworks.some((n) => containsAddress(n, parseCidr(`${address}/${address.includes(':') ? 128 : 32}`)!));
  // An address of each client network outside the cluster's: from the top of the network down.
  const clientAddresses = clientNetworks.map((client, i) => {
    const size = 1n << BigInt((client.family === 4 ? 32 : 128) - client.prefix);
    for (let offset = size - 2n; offset > 0n; offset--) {
      const ip = formatAddress(addressIn(client, offset));
      if (!inCluster(ip)) return { name: `client of ${config.allowedCidrs[i]}`, ip };
    }
    throw new Error(`${config.allowedCidrs[i]} has no address outside the cluster's networks`);
  });
  const outsider = { name: 'a host outside the client networks', ip: '198.51.100.7' };
  if (clientNetworks.some((c) => containsAddress(c, parseCidr(`${outsider.ip}/32`)!))) throw new Error('pick another outsider address');

  const dnsAddresses = [
    ...config.cluster.nodeLocalDnsAddresses.map((ip) => ({ name: `NodeLocal DNSCache ${ip}`, ip })),
    ...config.cluster.serviceCidrs.slice(0, 1).map((cidr) => ({ name: 'the kube-dns Service (NodeLocal DNSCache, iptables mode)', ip: formatAddress(addressIn(network(cidr), 10n)) })),
  ];

  const namespaces = Object.fromEntries([ns, 'kube-system', 'stranger', ...config.allowedNamespaces].map((n) => [n, {}]));
  const policies = [...ours, ...chart].filter((m) => m.kind === 'NetworkPolicy');
  const pods = [database, ...replicas, ...ourPods, ...apps, coreDns, ...strangers.filter((s) => s !== intruder && s !== kubeSystemOther), intruder, kubeSystemOther, ...podsInClientNetworks];
  return {
    cluster: { namespaces, pods, policies }, database, clients, others, pooler, replicas,
    poolerPort: config.pooler ? POOLER_CONTAINER_PORT : undefined,
    objectStorePort: config.objectStore ? objectStorePort(config.objectStore.endpoint) : undefined, objectStoreClients, apps, coreDns, kubeSystemOther,
    dnsAddresses, strangers, podsInClientNetworks, intruder, clientAddresses, outsider,
  };
}

type Expectation = [from: Endpoint, to: Endpoint, port: number, protocol: 'TCP' | 'UDP', allowed: boolean];

/** Every connection the deployment must allow, and a set it must refuse. */
function expectations(m: Model): Expectation[] {
  const dns = (from: ModelPod, allowed: boolean): Expectation[] => [m.coreDns, ...m.dnsAddresses].flatMap((to) => [
    [from, to, 53, 'UDP', allowed] as Expectation,
    [from, to, 53, 'TCP', allowed] as Expectation,
  ]);
  // The object store's port is open at any address to the pods that reach the store.
  const reachesStore = (from: ModelPod) => m.objectStorePort !== undefined && (from === m.database || m.objectStoreClients.includes(from));
  const cannotLeave = (from: ModelPod): Expectation[] => [
    [from, INTERNET, 443, 'TCP', false],
    [from, INTERNET, 80, 'TCP', false],
    [from, m.kubeSystemOther, 443, 'TCP', false],
    [from, m.strangers[0], 5432, 'TCP', false],
  ];
  const toStore = (from: ModelPod): Expectation[] => m.objectStorePort === undefined ? [] : [
    [from, OBJECT_STORE, m.objectStorePort, 'TCP', reachesStore(from)],
    [from, OBJECT_STORE, m.objectStorePort === 22 ? 23 : 22, 'TCP', false],
  ];
  const all: Expectation[] = [
    // The allowed namespaces and our Jobs reach the database, on its port only.
    ...m.apps.flatMap((app): Expectation[] => [[app, m.database, 5432, 'TCP', true], [app, m.database, 22, 'TCP', false]]),
    ...m.clients.flatMap((job): Expectation[] => [
      [job, m.database, 5432, 'TCP', true],
      [job, m.database, 5433, 'TCP', false],
      [job, API_SERVER, 443, 'TCP', false],
      ...dns(job, true),
      ...cannotLeave(job),
    ]),
    // The bootstrap reaches the API server only (its address differs per cluster: ports only).
    ...m.others.flatMap((pod): Expectation[] => [
      [pod, API_SERVER, 443, 'TCP', true],
      [pod, API_SERVER, 6443, 'TCP', true],
      [pod, m.database, 5432, 'TCP', false],
      [pod, INTERNET, 80, 'TCP', false],
      ...dns(pod, false),
    ]),
    // With an object store: the database pod (its upload sidecar) and the restore's fetch reach
    // its port; the Jobs that only log in do not.
    ...[m.database, ...m.clients, ...m.objectStoreClients].flatMap(toStore),
    ...m.objectStoreClients.flatMap((pod) => [...dns(pod, true), ...cannotLeave(pod)]),
    // The database resolves names, and sends nothing else.
    ...dns(m.database, true),
    ...cannotLeave(m.database),
    ...m.clients.map((job): Expectation => [m.database, job, 8080, 'TCP', false]),
    // Strangers do not reach it: other namespaces (with our labels or not), unlabelled pods of our
    // namespace, kube-system, and pods whose addresses lie inside the client networks.
    ...[...m.strangers, ...m.podsInClientNetworks].map((s): Expectation => [s, m.database, 5432, 'TCP', false]),
    // Outside clients of the client networks do, on PostgreSQL's port; nobody else outside.
    ...m.clientAddresses.flatMap((c): Expectation[] => [[c, m.database, 5432, 'TCP', true], [c, m.database, 22, 'TCP', false]]),
    [m.outsider, m.database, 5432, 'TCP', false],
    [API_SERVER, m.database, 5432, 'TCP', false],
    // The default deny: a pod of the namespace with no rule of its own sends and receives nothing.
    [m.intruder, m.coreDns, 53, 'UDP', false],
    [m.intruder, INTERNET, 443, 'TCP', false],
    ...m.apps.map((app): Expectation => [app, m.intruder, 8080, 'TCP', false]),
    ...m.clients.map((job): Expectation => [m.strangers[0], job, 8080, 'TCP', false]),
  ];
  all.push(...poolerExpectations(m, dns, cannotLeave), ...replicaExpectations(m, dns, cannotLeave));
  // Where the object store's port is open at any address, no refusal on that port holds.
  return all.filter(([from, , port, , allowed]) => allowed || !('namespace' in from && reachesStore(from) && port === m.objectStorePort));
}

type Dns = (from: ModelPod, allowed: boolean) => Expectation[];
type CannotLeave = (from: ModelPod) => Expectation[];

/**
 * With the pooler: the allowed namespaces and client networks reach it on its port (nothing
 * else there), strangers do not; it reaches DNS and the database, nothing else. Our Jobs still
 * reach the database directly, and none of them is reached on the pooler's port.
 */
function poolerExpectations(m: Model, dns: Dns, cannotLeave: CannotLeave): Expectation[] {
  const { pooler, poolerPort: port } = m;
  if (!pooler || port === undefined) return [];
  return [
    ...m.apps.flatMap((app): Expectation[] => [[app, pooler, port, 'TCP', true], [app, pooler, 5432, 'TCP', false], [app, pooler, 22, 'TCP', false]]),
    ...m.clientAddresses.flatMap((c): Expectation[] => [[c, pooler, port, 'TCP', true], [c, pooler, 22, 'TCP', false]]),
    ...[...m.strangers, ...m.podsInClientNetworks].map((s): Expectation => [s, pooler, port, 'TCP', false]),
    [m.outsider, pooler, port, 'TCP', false],
    [pooler, m.database, 5432, 'TCP', true],
    [pooler, m.database, 5433, 'TCP', false],
    [pooler, API_SERVER, 443, 'TCP', false],
    ...dns(pooler, true),
    ...cannotLeave(pooler),
    ...m.clients.flatMap((job): Expectation[] => [[job, m.database, 5432, 'TCP', true], ...m.apps.map((app): Expectation => [app, job, port, 'TCP', false])]),
  ];
}

/**
 * With read replicas: the allowed namespaces, client networks and our Jobs (the verification
 * checks each replica) reach them on PostgreSQL's port, as they reach the primary; the database
 * pods reach each other there (streaming replication); strangers, our other pods and the
 * outside reach nothing new, and the replicas send nothing else.
 */
function replicaExpectations(m: Model, dns: Dns, cannotLeave: CannotLeave): Expectation[] {
  return m.replicas.flatMap((replica): Expectation[] => [
    ...m.apps.flatMap((app): Expectation[] => [[app, replica, 5432, 'TCP', true], [app, replica, 22, 'TCP', false]]),
    ...m.clients.map((job): Expectation => [job, replica, 5432, 'TCP', true]),
    ...m.clientAddresses.map((c): Expectation => [c, replica, 5432, 'TCP', true]),
    // Replication: the replica's WAL receiver connects to the primary, on 5432 only.
    [replica, m.database, 5432, 'TCP', true],
    [replica, m.database, 22, 'TCP', false],
    [m.database, replica, 5432, 'TCP', true],
    ...[...m.strangers, ...m.podsInClientNetworks, ...m.others].map((s): Expectation => [s, replica, 5432, 'TCP', false]),
    [m.outsider, replica, 5432, 'TCP', false],
    ...m.clients.map((job): Expectation => [replica, job, 8080, 'TCP', false]),
    ...dns(replica, true),
    ...cannotLeave(replica),
  ]);
}

const MODES: Record<string, EvaluatorOptions> = {
  'a CNI that matches ipBlocks against pod addresses (Calico)': { ipBlockMatchesPods: true },
  'a CNI that matches ipBlocks against outside addresses only': { ipBlockMatchesPods: false },
};

const label = (e: Endpoint) => ('namespace' in e ? `${e.namespace}/${e.name} (${e.ip})` : `${e.name} (${e.ip})`);

describeWithTools('who reaches whom, by the rendered NetworkPolicies and the chart\'s render', ['helm'], () => {
  describe.each(Object.entries(CASES))('%s', (_name, { props, files }) => {
    let model: Model;
    const load = async () => {
      if (model) return model;
      const rendered = files();
      const ours = documents(rendered.get('learnflow-postgres.yaml')!);
      const chart = await renderChart(props, rendered.get('helm/postgresql-values.yaml')!);
      model = buildModel(props, ours, chart);
      return model;
    };

    it('models the pods that matter: ours, the chart\'s, and strangers inside the client networks where they exist', async () => {
      const m = await load();
      expect(m.clients.length).toBeGreaterThanOrEqual(3);
      expect(m.others.map((p) => p.labels['app.kubernetes.io/component'])).toEqual(['credentials']);
      const config = resolveConfig(props);
      // Every client network covering one of the cluster's pod networks has a stranger pod inside it.
      if (config.allowedCidrs.some((c) => (config.cluster.podCidrs.length ? config.cluster.podCidrs : DEFAULT_POD_CIDRS).some((p) => contains(network(c), network(p))))) {
        expect(m.podsInClientNetworks.length).toBeGreaterThan(0);
      }
      // The backup CronJobs are clients like the Jobs; the restore's fetch reaches the object store.
      expect(m.clients.filter((p) => ['dump', 'basebackup'].some((k) => p.name.endsWith(`-${k}`))).length).toBe((config.backup.enabled ? 1 : 0) + (config.pitr.enabled ? 1 : 0));
      expect(m.objectStoreClients.length > 0).toBe(config.objectStore !== undefined);
      // The pooler's pods and the chart's replica pods, where the variant has them.
      expect(m.pooler !== undefined).toBe(config.pooler !== undefined);
      expect(m.replicas.length).toBe(config.readReplicas?.count ?? 0);
    });

    it.each(Object.entries(MODES))('allows exactly what the deployment needs, under %s', async (_mode, options) => {
      const m = await load();
      const wrong = expectations(m).flatMap(([from, to, port, protocol, allowed]) => {
        const verdict = connection(m.cluster, from, to, port, protocol, options);
        return verdict.allowed === allowed ? [] : [`${label(from)} -> ${label(to)} ${protocol}/${port}: expected ${allowed ? 'allowed' : 'denied'}, ${verdict.why}`];
      });
      expect(wrong).toEqual([]);
    });
  });
});
