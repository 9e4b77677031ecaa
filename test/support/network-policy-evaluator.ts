// A NetworkPolicy evaluator following the Kubernetes semantics
// (https://kubernetes.io/docs/concepts/services-networking/network-policies/), to judge the
// policies we render against a model of a cluster:
//   - a pod is isolated for a direction when some policy of its namespace selects it
//     (podSelector) and lists that direction in policyTypes (absent: Ingress, plus Egress when
//     the policy has egress rules); an isolated pod allows only what some rule of those
//     policies allows, policies add up, and an unselected pod allows everything;
//   - a connection between two pods needs the source's egress and the destination's ingress;
//   - a rule without peers (`to`/`from`) matches every peer, a rule without ports every port;
//     a port is TCP unless said, `endPort` makes it a range;
//   - a peer is an ipBlock (cidr minus except), or pod and namespace selectors (both: AND; a
//     podSelector alone: the policy's namespace; a namespaceSelector alone: every pod there);
//   - ipBlock against pod addresses: Kubernetes leaves it to the plugin. `ipBlockMatchesPods`
//     true is what Calico and others do (an ipBlock admits the pods whose addresses it covers),
//     false the reading that ipBlocks are for addresses outside the cluster only.
// Addresses that are not pods (external clients, the API server, NodeLocal DNSCache on the
// host network) are matched by ipBlocks only. Node-local traffic (kubelet probes) is out of
// scope: the policies we render do not depend on it.
import { containsAddress, parseAddress, parseCidr } from '../../lib/cidr';

export interface ModelPod {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly ip: string;
}

/** An address outside every pod: an external client, a node, the API server, NodeLocal DNSCache. */
export interface ModelAddress {
  readonly name: string;
  readonly ip: string;
}

export type Endpoint = ModelPod | ModelAddress;

export interface ClusterModel {
  /** Namespace name → its labels (`kubernetes.io/metadata.name` is added, as Kubernetes does). */
  readonly namespaces: Readonly<Record<string, Readonly<Record<string, string>>>>;
  readonly pods: readonly ModelPod[];
  /** NetworkPolicy manifests, as the API server stores them. */
  readonly policies: readonly any[];
}

export interface EvaluatorOptions {
  /** The plugin matches ipBlocks against pod addresses too (Calico and others do). */
  readonly ipBlockMatchesPods: boolean;
}

export interface Verdict {
  readonly allowed: boolean;
  /** Which side decided, for messages: e.g. `egress of job: allowed by ns/name rule 2`. */
  readonly why: string;
}

const isPod = (e: Endpoint): e is ModelPod => 'namespace' in e;

interface Selector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/** A label selector against labels: every matchLabels entry and every expression holds. */
export function selects(selector: Selector | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!selector) return true;
  const byLabel = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  return byLabel && (selector.matchExpressions ?? []).every((e) => {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    switch (e.operator) {
      case 'In': return has && (e.values ?? []).includes(labels[e.key]);
      case 'NotIn': return !has || !(e.values ?? []).includes(labels[e.key]);
      case 'Exists': return has;
      case 'DoesNotExist': return !has;
      default: throw new Error(`label selector operator ${e.operator} is not one Kubernetes knows`);
    }
  });
}

function policyTypes(policy: any): string[] {
  return policy.spec.policyTypes ?? ['Ingress', ...(policy.spec.egress ? ['Egress'] : [])];
}

function namespaceLabels(cluster: ClusterModel, namespace: string): Record<string, string> {
  const labels = cluster.namespaces[namespace];
  if (!labels) throw new Error(`namespace ${namespace} is not in the model`);
  return { ...labels, 'kubernetes.io/metadata.name': namespace };
}

function addressOf(text: string) {
  const address = parseAddress(text);
  if (!address) throw new Error(`${text} is not an address`);
  return address;
}

/** Whether `peer` of a policy in `policyNamespace` covers `endpoint`. */
function peerMatches(cluster: ClusterModel, peer: any, policyNamespace: string, endpoint: Endpoint, options: EvaluatorOptions): boolean {
  if (peer.ipBlock) {
    if (peer.podSelector || peer.namespaceSelector) throw new Error('a peer with an ipBlock cannot have selectors (the API server refuses it)');
    if (isPod(endpoint) && !options.ipBlockMatchesPods) return false;
    const cidr = parseCidr(peer.ipBlock.cidr);
    if (!cidr) throw new Error(`ipBlock.cidr ${peer.ipBlock.cidr} is not a CIDR`);
    const address = addressOf(endpoint.ip);
    const excepted = (peer.ipBlock.except ?? []).some((e: string) => {
      const network = parseCidr(e);
      if (!network) throw new Error(`ipBlock.except ${e} is not a CIDR`);
      return containsAddress(network, address);
    });
    return containsAddress(cidr, address) && !excepted;
  }
  if (!peer.podSelector && !peer.namespaceSelector) throw new Error('a peer needs an ipBlock, a podSelector or a namespaceSelector');
  if (!isPod(endpoint)) return false;
  const inNamespace = peer.namespaceSelector
    ? selects(peer.namespaceSelector, namespaceLabels(cluster, endpoint.namespace))
    : endpoint.namespace === policyNamespace;
  return inNamespace && selects(peer.podSelector, endpoint.labels);
}

function portMatches(ports: any[] | undefined, port: number, protocol: string): boolean {
  if (!ports || ports.length === 0) return true;
  return ports.some((p) => {
    if ((p.protocol ?? 'TCP') !== protocol) return false;
    if (p.port === undefined) return true;
    if (typeof p.port !== 'number') throw new Error(`named port ${p.port}: the model has no container ports`);
    return p.endPort === undefined ? p.port === port : port >= p.port && port <= p.endPort;
  });
}

/** One side of a connection: `pod`'s egress to `peer` or its ingress from `peer`. */
function side(cluster: ClusterModel, pod: ModelPod, direction: 'Ingress' | 'Egress', peer: Endpoint, port: number, protocol: string, options: EvaluatorOptions): Verdict {
  const selecting = cluster.policies.filter((p) =>
    p.kind === 'NetworkPolicy' && (p.metadata.namespace ?? 'default') === pod.namespace
    && selects(p.spec.podSelector, pod.labels) && policyTypes(p).includes(direction));
  const what = `${direction.toLowerCase()} of ${pod.namespace}/${pod.name}`;
  if (selecting.length === 0) return { allowed: true, why: `${what}: not isolated` };
  for (const policy of selecting) {
    const rules: any[] = (direction === 'Egress' ? policy.spec.egress : policy.spec.ingress) ?? [];
    for (const [i, rule] of rules.entries()) {
      const peers: any[] | undefined = direction === 'Egress' ? rule.to : rule.from;
      const peerOk = !peers || peers.length === 0 || peers.some((p) => peerMatches(cluster, p, policy.metadata.namespace, peer, options));
      if (peerOk && portMatches(rule.ports, port, protocol)) return { allowed: true, why: `${what}: allowed by ${policy.metadata.name} rule ${i + 1}` };
    }
  }
  return { allowed: false, why: `${what}: denied (selected by ${selecting.map((p) => p.metadata.name).join(', ')})` };
}

/** Whether `from` may open a connection to `to` on `port`: egress of a pod source and ingress of a pod destination. */
export function connection(cluster: ClusterModel, from: Endpoint, to: Endpoint, port: number, protocol: 'TCP' | 'UDP', options: EvaluatorOptions): Verdict {
  const sides = [
    ...(isPod(from) ? [side(cluster, from, 'Egress', to, port, protocol, options)] : []),
    ...(isPod(to) ? [side(cluster, to, 'Ingress', from, port, protocol, options)] : []),
  ];
  const denied = sides.find((s) => !s.allowed);
  return denied ?? { allowed: true, why: sides.map((s) => s.why).join('; ') || 'no pod involved' };
}
