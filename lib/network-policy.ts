import { Lazy } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { DatabaseEndpoint } from './database-client';
import { CONTAINER_PORT } from './helm-values';
import { Component, DATABASE_CLIENT_LABEL, PART_OF, resourceName, standardLabels } from './names';
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
 * Pods the policies select: the chart's `database` pods, the chart's backup pods
 * (`chart-backup`), our `database-clients` (label {@link DATABASE_CLIENT_LABEL}), or the pods of
 * one component of ours (e.g. `credentials`).
 */
export type PodGroup = 'database' | 'database-clients' | 'chart-backup' | Component;

export interface DatabaseNetworkPolicyProps {
  /** The database whose pods the policies protect. */
  readonly database: DatabaseEndpoint;
  /** Namespaces whose pods may connect. @default [] */
  readonly allowedNamespaces?: readonly string[];
  /** Client networks outside the cluster that may connect (LoadBalancer, NodePort). @default [] */
  readonly allowedCidrs?: readonly string[];
  /** Labels of the chart's backup pods, which dump the database. @default none: backups are off */
  readonly backupPods?: Readonly<Record<string, string>>;
}

/** The API server's ports: 443 behind the `kubernetes` Service, 6443 where clusters expose it directly. */
export const API_SERVER_PORTS: readonly NetworkPort[] = [{ port: 443 }, { port: 6443 }];

/** DNS, over UDP and TCP (large answers). */
export const DNS_PORTS: readonly NetworkPort[] = [{ port: 53, protocol: 'UDP' }, { port: 53, protocol: 'TCP' }];

/**
 * NodeLocal DNSCache's usual link-local address: a DaemonSet on the host network answers there,
 * so no pod or namespace selector matches it.
 */
export const NODE_LOCAL_DNS_ADDRESS = '169.254.20.10';

/** Groups that resolve names (the Service's) and so get DNS with their first egress rule. */
const RESOLVING_GROUPS: readonly PodGroup[] = ['database', 'database-clients', 'chart-backup'];

type Direction = 'ingress' | 'egress';

/**
 * Every NetworkPolicy of a deployment, one per group of pods and direction, written from
 * {@link NetworkRule}s. Who may reach PostgreSQL: pods of the listed namespaces, this project's
 * own Jobs, the chart's backup pods and the listed client networks, on PostgreSQL's port only.
 * The database pods, our Jobs and the backup pods may resolve names and reach the database;
 * the credentials bootstrap only the API server. A feature that needs more declares it with
 * {@link allowEgress} or {@link allowIngress} (e.g. the WAL archive's object store, replication
 * peers). The chart's own NetworkPolicy is turned off in the values (it allows every source).
 *
 * Written with the generated `KubeNetworkPolicy` API: cdk8s-plus's NetworkPolicy holds one peer
 * per rule and cannot write a rule without one, which the API server's rule needs.
 */
export class DatabaseNetworkPolicy extends Construct {
  private readonly database: DatabaseEndpoint;
  private readonly backupPods?: Readonly<Record<string, string>>;
  private readonly policies = new Map<string, NetworkRule[]>();

  constructor(scope: Construct, id: string, props: DatabaseNetworkPolicyProps) {
    super(scope, id);
    this.database = props.database;
    this.backupPods = props.backupPods;
    const postgres = [{ port: CONTAINER_PORT }];
    // Matched by kubernetes.io/metadata.name, which Kubernetes sets and users cannot forge.
    for (const namespace of props.allowedNamespaces ?? []) this.allowIngress('database', { peers: [{ namespace }], ports: postgres });
    this.allowIngress('database', { peers: [{ pods: this.selector('database-clients') }], ports: postgres });
    if (this.backupPods) this.allowIngress('database', { peers: [{ pods: this.selector('chart-backup') }], ports: postgres });
    for (const cidr of props.allowedCidrs ?? []) this.allowIngress('database', { peers: [{ cidr }], ports: postgres });

    this.rules('database', 'egress');
    for (const clients of ['database-clients', 'chart-backup'] as const) {
      if (clients === 'chart-backup' && !this.backupPods) continue;
      this.allowEgress(clients, { peers: [{ pods: this.selector('database') }], ports: postgres });
    }
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
   * Lets the pods of our `component` (e.g. the credentials bootstrap) reach the Kubernetes API
   * server and nothing else. The API server's address differs per cluster: the rule names its
   * ports and no peer (an ipBlock of 0.0.0.0/0 would leave out IPv6 clusters).
   */
  allowKubernetesApi(component: Component): void {
    this.allowEgress(component, { ports: API_SERVER_PORTS });
  }

  /**
   * The rules of the policy selecting `group` in `direction`, created on first use; an egress
   * policy of a group that resolves names starts with DNS: kube-system's DNS pods (CoreDNS behind
   * the kube-dns Service) and NodeLocal DNSCache's address.
   */
  private rules(group: PodGroup, direction: Direction): NetworkRule[] {
    const id = `${group}-${direction}`;
    const existing = this.policies.get(id);
    if (existing) return existing;
    const rules: NetworkRule[] = direction === 'egress' && RESOLVING_GROUPS.includes(group)
      ? [{ peers: [{ namespace: 'kube-system' }, { cidr: `${NODE_LOCAL_DNS_ADDRESS}/32` }], ports: DNS_PORTS }]
      : [];
    this.policies.set(id, rules);
    const { namespace, releaseName } = this.database;
    const component: Component = group === 'database' || group === 'database-clients' || group === 'chart-backup' ? 'network-policy' : group;
    new kplus.k8s.KubeNetworkPolicy(this, id, {
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
        return { ...this.database.objects.podLabels };
      case 'database-clients':
        return { 'app.kubernetes.io/part-of': PART_OF, [DATABASE_CLIENT_LABEL]: 'true' };
      case 'chart-backup':
        if (!this.backupPods) throw new Error('chart-backup: the chart renders no backup pods here (backups are off)');
        return { ...this.backupPods };
      default:
        return { 'app.kubernetes.io/part-of': PART_OF, 'app.kubernetes.io/component': group };
    }
  }
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
