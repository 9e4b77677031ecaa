import { Lazy } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { Network, contains, parseCidr } from './cidr';
import { NODE_LOCAL_DNS_ADDRESS } from './config';
import { DatabaseEndpoint } from './database-client';
import { CONTAINER_PORT } from './helm-values';
import { Component, DATABASE_CLIENT_LABEL, OBJECT_STORE_CLIENT_LABEL, PART_OF, resourceName, standardLabels } from './names';
import { SYNC_WAVES, syncWave } from './sync-waves';

/** A port a rule lets through: TCP unless said, one port or the range `port`-`endPort`. */
export interface NetworkPort {
  readonly port: number;
  readonly endPort?: number;
  /** @default 'TCP' */
  readonly protocol?: 'TCP' | 'UDP';
}

/**
 * The other end of a connection: a network (`except` the ranges it must not cover), or pods:
 * those of this namespace with `pods` labels, or of the namespace named `namespace` (all of
 * them, or those with `pods` labels).
 */
export type NetworkPeer =
  | { readonly cidr: string; readonly except?: readonly string[] }
  | { readonly namespace?: string; readonly pods?: Readonly<Record<string, string>> };

/** Traffic a group of pods may send (egress) or receive (ingress). */
export interface NetworkRule {
  /**
   * Who is at the other end. @default any address: for a destination whose address differs per
   * cluster, such as the API server, where only the ports can be named
   */
  readonly peers?: readonly NetworkPeer[];
  readonly ports: readonly NetworkPort[];
}

/**
 * Pods the policies select: the chart's `database` pods, our `database-clients` (label
 * {@link DATABASE_CLIENT_LABEL}: the Jobs, the backup CronJobs), our `object-store-clients`
 * (label {@link OBJECT_STORE_CLIENT_LABEL}: the restore's fetch from the bucket), or the pods of
 * one component of ours (e.g. `credentials`).
 */
export type PodGroup = 'database' | 'database-clients' | 'object-store-clients' | Component;

export interface DatabaseNetworkPolicyProps {
  /** The database whose pods the policies protect. */
  readonly database: DatabaseEndpoint;
  /** Namespaces whose pods may connect. @default [] */
  readonly allowedNamespaces?: readonly string[];
  /**
   * Client networks outside the cluster that may connect (LoadBalancer, NodePort); each is
   * rendered with the cluster's own networks inside it as `except`. @default []
   */
  readonly allowedCidrs?: readonly string[];
  /** The cluster's pod networks: never admitted as clients. @default [] */
  readonly podCidrs?: readonly string[];
  /** The cluster's Service networks: never admitted as clients; DNS may reach them. @default [] */
  readonly serviceCidrs?: readonly string[];
  /** Node-local DNS caches pods may query. @default ['169.254.20.10'] (NodeLocal DNSCache) */
  readonly nodeLocalDnsAddresses?: readonly string[];
}

/** The API server's ports: 443 behind the `kubernetes` Service, 6443 where clusters expose it directly. */
export const API_SERVER_PORTS: readonly NetworkPort[] = [{ port: 443 }, { port: 6443 }];

/** DNS, over UDP and TCP (large answers). */
export const DNS_PORTS: readonly NetworkPort[] = [{ port: 53, protocol: 'UDP' }, { port: 53, protocol: 'TCP' }];

/** Groups that resolve names (the Service's) and so get DNS with their first egress rule. */
const RESOLVING_GROUPS: readonly PodGroup[] = ['database', 'database-clients', 'object-store-clients', 'pooler'];

type Direction = 'ingress' | 'egress';

/**
 * Every NetworkPolicy of a deployment, one per group of pods and direction, written from
 * {@link NetworkRule}s, and under them a policy that denies everything else to every pod of the
 * namespace. Who may reach PostgreSQL: pods of the listed namespaces, this project's own Jobs and
 * backup CronJobs, and the listed client networks (less the cluster's own networks), on
 * PostgreSQL's port only. The database pods and our Jobs may resolve names, the Jobs reach the
 * database; the credentials bootstrap only the API server. A feature
 * that needs more declares it with {@link allowEgress} or {@link allowIngress} (e.g. the WAL
 * archive's object store, replication peers). The chart's own NetworkPolicy is turned off in the
 * values (it allows every source).
 *
 * Written with the generated `KubeNetworkPolicy` API: cdk8s-plus's NetworkPolicy holds one peer
 * per rule and cannot write a rule without one, which the API server's rule needs.
 */
export class DatabaseNetworkPolicy extends Construct {
  private readonly database: DatabaseEndpoint;
  /** The cluster's pod and Service networks: no rule to "any address" admits them. */
  private readonly clusterCidrs: readonly string[];
  private readonly allowedNamespaces: readonly string[];
  private readonly allowedCidrs: readonly string[];
  private readonly dns: NetworkRule;
  /** The allow policies' scope: rendered before the default deny, whenever they are added. */
  private readonly allow: Construct;
  private readonly policies = new Map<string, NetworkRule[]>();

  constructor(scope: Construct, id: string, props: DatabaseNetworkPolicyProps) {
    super(scope, id);
    this.database = props.database;
    this.clusterCidrs = [...(props.podCidrs ?? []), ...(props.serviceCidrs ?? [])];
    this.allowedNamespaces = props.allowedNamespaces ?? [];
    this.allowedCidrs = props.allowedCidrs ?? [];
    this.allow = new Construct(this, 'allow');
    this.dns = {
      peers: [
        { namespace: 'kube-system' },
        ...(props.nodeLocalDnsAddresses ?? [NODE_LOCAL_DNS_ADDRESS]).map((address) => ({ cidr: `${address}/${address.includes(':') ? 128 : 32}` })),
        ...(props.serviceCidrs ?? []).map((cidr) => ({ cidr })),
      ],
      ports: DNS_PORTS,
    };
    const postgres = [{ port: CONTAINER_PORT }];
    this.allowClients('database', postgres);
    this.allowIngress('database', { peers: [{ pods: this.selector('database-clients') }], ports: postgres });

    this.rules('database', 'egress');
    this.allowEgress('database-clients', { peers: [{ pods: this.selector('database') }], ports: postgres });

    const { namespace, releaseName } = this.database;
    // Every pod of the namespace, ours, the chart's and any other, is isolated both ways.
    new kplus.k8s.KubeNetworkPolicy(this, 'default-deny', {
      metadata: { name: resourceName(releaseName, 'default-deny'), namespace, labels: standardLabels(releaseName, 'network-policy'), annotations: syncWave(SYNC_WAVES.access) },
      spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
    });
  }

  /**
   * Lets the pods of `group` send `rule`'s traffic, in the policy `<fullname>-<group>-egress`.
   * Groups that resolve names have DNS already.
   */
  allowEgress(group: PodGroup, rule: NetworkRule): void {
    this.rules(group, 'egress').push(rule);
  }

  /** Lets the pods of `group` receive `rule`'s traffic, in the policy `<fullname>-<group>-ingress`. */
  allowIngress(group: PodGroup, rule: NetworkRule): void {
    this.rules(group, 'ingress').push(rule);
  }

  /**
   * Lets the applications reach `group` on `ports`: pods of the allowed namespaces (matched by
   * kubernetes.io/metadata.name, which Kubernetes sets and users cannot forge) and the client
   * networks, less the cluster's own networks.
   */
  allowClients(group: PodGroup, ports: readonly NetworkPort[]): void {
    for (const namespace of this.allowedNamespaces) this.allowIngress(group, { peers: [{ namespace }], ports });
    for (const cidr of this.allowedCidrs) this.allowIngress(group, { peers: [clientNetwork(cidr, this.clusterCidrs)], ports });
  }

  /**
   * Streaming replication between the database pods (the replicas' WAL receivers connect to the
   * primary), on PostgreSQL's port.
   */
  allowReplication(): void {
    const peers = [{ pods: this.selector('database') }];
    this.allowIngress('database', { peers, ports: [{ port: CONTAINER_PORT }] });
    this.allowEgress('database', { peers, ports: [{ port: CONTAINER_PORT }] });
  }

  /** Lets the pods of `group` (e.g. the pooler) reach the database pods, and the database admit them. */
  allowDatabaseClient(group: PodGroup): void {
    const ports = [{ port: CONTAINER_PORT }];
    this.allowIngress('database', { peers: [{ pods: this.selector(group) }], ports });
    this.allowEgress(group, { peers: [{ pods: this.selector('database') }], ports });
  }

  /**
   * Lets the pods of our `component` (e.g. the credentials bootstrap) reach the Kubernetes API
   * server and nothing else. The API server's address differs per cluster: the rule names its
   * ports and no peer (an ipBlock of 0.0.0.0/0 would leave out IPv6 clusters).
   */
  allowKubernetesApi(component: Component): void {
    this.allowEgress(component, { ports: API_SERVER_PORTS });
  }

  /**
   * Lets the database pods (whose upload sidecar copies the backup volume off the cluster) and the
   * `object-store-clients` (the restore's fetch step) reach the object store: the endpoint's port
   * at any address, for a bucket's addresses are the provider's and change.
   */
  allowObjectStore(store: { readonly endpoint?: string }): void {
    const rule: NetworkRule = { ports: [{ port: objectStorePort(store.endpoint) }] };
    this.allowEgress('database', rule);
    this.allowEgress('object-store-clients', rule);
  }

  /**
   * The rules of the policy selecting `group` in `direction`, created on first use; an egress
   * policy of a group that resolves names starts with DNS: kube-system's DNS pods (CoreDNS behind
   * the kube-dns Service), the node-local DNS cache's addresses and the Service networks.
   */
  private rules(group: PodGroup, direction: Direction): NetworkRule[] {
    const id = `${group}-${direction}`;
    const existing = this.policies.get(id);
    if (existing) return existing;
    const rules: NetworkRule[] = direction === 'egress' && RESOLVING_GROUPS.includes(group) ? [this.dns] : [];
    this.policies.set(id, rules);
    const { namespace, releaseName } = this.database;
    const component: Component = group === 'database' || group === 'database-clients' || group === 'object-store-clients' ? 'network-policy' : group;
    new kplus.k8s.KubeNetworkPolicy(this.allow, id, {
      metadata: { name: resourceName(releaseName, id), namespace, labels: standardLabels(releaseName, component), annotations: syncWave(SYNC_WAVES.access) },
      spec: Lazy.any({
        produce: () => ({
          podSelector: { matchLabels: this.selector(group) },
          policyTypes: [direction === 'ingress' ? 'Ingress' : 'Egress'],
          [direction]: rules.map((r) => kubeRule(r, direction)),
        }),
      }),
    });
    return rules;
  }

  /** The labels that select `group`'s pods. */
  private selector(group: PodGroup): Record<string, string> {
    switch (group) {
      case 'database':
        // Every database pod of the release: the primary and, with replicas, the replicas.
        return { ...this.database.objects.databasePodLabels };
      case 'database-clients':
        return { 'app.kubernetes.io/part-of': PART_OF, [DATABASE_CLIENT_LABEL]: 'true' };
      case 'object-store-clients':
        return { 'app.kubernetes.io/part-of': PART_OF, [OBJECT_STORE_CLIENT_LABEL]: 'true' };
      default:
        return { 'app.kubernetes.io/part-of': PART_OF, 'app.kubernetes.io/component': group };
    }
  }
}

/**
 * A client network as a peer: the cluster's networks inside it left out (`except`). A client
 * network inside a cluster network would admit pods, not outside clients: validation refuses it
 * (lib/validation.ts), and so does this.
 */
function clientNetwork(cidr: string, clusterCidrs: readonly string[]): NetworkPeer {
  const client = network(cidr);
  const covering = clusterCidrs.find((c) => contains(network(c), client));
  if (covering) throw new Error(`client network ${cidr} lies inside the cluster's network ${covering}`);
  return { cidr, except: clusterCidrs.filter((c) => contains(client, network(c))) };
}

function network(cidr: string): Network {
  const parsed = parseCidr(cidr);
  if (!parsed) throw new Error(`${cidr} is not a CIDR block`);
  return parsed;
}

/** A rule as the API takes it: `to` (egress) or `from` (ingress) peers, absent for any address. */
function kubeRule(rule: NetworkRule, direction: Direction) {
  const ports = rule.ports.map((p) => ({
    protocol: p.protocol ?? 'TCP',
    port: kplus.k8s.IntOrString.fromNumber(p.port),
    ...(p.endPort !== undefined ? { endPort: p.endPort } : {}),
  }));
  const peers = rule.peers?.map(kubePeer);
  return {
    ...(peers ? { [direction === 'ingress' ? 'from' : 'to']: peers } : {}),
    ...(ports.length > 0 ? { ports } : {}),
  };
}

function kubePeer(peer: NetworkPeer): kplus.k8s.NetworkPolicyPeer {
  if ('cidr' in peer) return { ipBlock: { cidr: peer.cidr, ...(peer.except?.length ? { except: [...peer.except] } : {}) } };
  return {
    ...(peer.namespace !== undefined ? { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': peer.namespace } } } : {}),
    ...(peer.pods !== undefined ? { podSelector: { matchLabels: { ...peer.pods } } } : {}),
  };
}

/** The object store's TCP port: the endpoint's, else HTTPS. */
export function objectStorePort(endpoint: string | undefined): number {
  const match = endpoint ? /^(https?):\/\/[^/:]+(?::([0-9]+))?/.exec(endpoint) : null;
  if (match?.[2]) return Number(match[2]);
  return match?.[1] === 'http' ? 80 : 443;
}
