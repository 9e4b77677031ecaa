import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { DatabaseEndpoint } from './database-client';
import { CONTAINER_PORT } from './helm-values';
import { Component, DATABASE_CLIENT_LABEL, PART_OF, resourceName, standardLabels } from './names';
import { SYNC_WAVES, syncWave } from './sync-waves';

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
const API_SERVER_PORTS = [443, 6443];

/**
 * Every NetworkPolicy of a deployment. Who may reach PostgreSQL: pods of the listed namespaces,
 * this project's own Jobs, the chart's backup pods and the listed client networks, on
 * PostgreSQL's port only. Our Jobs and the backup pods may send only DNS and database traffic;
 * pods given to {@link allowKubernetesApi} only reach the API server. The chart's own
 * NetworkPolicy is turned off in the values (it allows every source).
 */
export class DatabaseNetworkPolicy extends Construct {
  private readonly database: DatabaseEndpoint;

  constructor(scope: Construct, id: string, props: DatabaseNetworkPolicyProps) {
    super(scope, id);
    this.database = props.database;
    const databasePods = kplus.Pods.select(this, 'database-pods', { labels: { ...props.database.objects.podLabels } });
    const ourClients = kplus.Pods.select(this, 'our-clients', { labels: { 'app.kubernetes.io/part-of': PART_OF, [DATABASE_CLIENT_LABEL]: 'true' } });
    const backupPods = props.backupPods ? kplus.Pods.select(this, 'backup-pods', { labels: { ...props.backupPods } }) : undefined;
    const postgres = [kplus.NetworkPolicyPort.tcp(CONTAINER_PORT)];

    const ingress = this.policy('ingress', 'network-policy', databasePods);
    for (const [i, name] of (props.allowedNamespaces ?? []).entries()) {
      // Matched by kubernetes.io/metadata.name, which Kubernetes sets and users cannot forge.
      ingress.addIngressRule(kplus.Namespaces.select(this, `namespace-${i}`, { names: [name] }), postgres);
    }
    ingress.addIngressRule(ourClients, postgres);
    if (backupPods) ingress.addIngressRule(backupPods, postgres);
    for (const [i, cidr] of (props.allowedCidrs ?? []).entries()) {
      const block = cidr.includes(':')
        ? kplus.NetworkPolicyIpBlock.ipv6(this, `cidr-${i}`, cidr.toLowerCase())
        : kplus.NetworkPolicyIpBlock.ipv4(this, `cidr-${i}`, cidr);
      ingress.addIngressRule(block, postgres);
    }

    const kubeSystem = kplus.Namespaces.select(this, 'kube-system', { names: ['kube-system'] });
    for (const [policyId, pods] of [['jobs-egress', ourClients], ['backup-egress', backupPods]] as const) {
      if (!pods) continue;
      const egress = this.policy(policyId, 'network-policy', pods);
      egress.addEgressRule(kubeSystem, [kplus.NetworkPolicyPort.udp(53), kplus.NetworkPolicyPort.tcp(53)]);
      egress.addEgressRule(databasePods, postgres);
    }
  }

  /**
   * Lets the pods of our `component` (e.g. the credentials bootstrap) reach the Kubernetes API
   * server and nothing else: the policy `<fullname>-<component>-egress`, part of that component.
   */
  allowKubernetesApi(component: Component): void {
    const { namespace, releaseName } = this.database;
    // The low-level API: the API server's address differs per cluster, so the rule names ports
    // and no peer, which cdk8s-plus's addEgressRule cannot express (it needs a peer; an ipBlock
    // of 0.0.0.0/0 would leave out IPv6 clusters and pod addresses are not meant for ipBlocks).
    new kplus.k8s.KubeNetworkPolicy(this, `${component}-egress`, {
      metadata: { name: resourceName(releaseName, `${component}-egress`), namespace, labels: standardLabels(releaseName, component), annotations: syncWave(SYNC_WAVES.access) },
      spec: {
        podSelector: { matchLabels: { 'app.kubernetes.io/part-of': PART_OF, 'app.kubernetes.io/component': component } },
        policyTypes: ['Egress'],
        egress: [{ ports: API_SERVER_PORTS.map((port) => ({ protocol: 'TCP', port: kplus.k8s.IntOrString.fromNumber(port) })) }],
      },
    });
  }

  /**
   * Lets the pods with each of `podLabels` (the database pod, whose upload sidecar copies the
   * backup volume off the cluster, and the restore's fetch step) reach the object store: DNS,
   * and the endpoint's port at any address (a bucket's addresses are the provider's and change).
   * A policy selecting the database pod limits all of its egress to this.
   */
  allowObjectStore(store: { readonly endpoint?: string }, ...podLabels: Readonly<Record<string, string>>[]): void {
    const port = objectStorePort(store.endpoint);
    for (const [i, labels] of podLabels.entries()) {
      const pods = kplus.Pods.select(this, `object-store-pods-${i}`, { labels: { ...labels } });
      const egress = this.policy(i === 0 ? 'database-egress' : 'object-store-egress', 'network-policy', pods);
      egress.addEgressRule(kplus.Namespaces.select(this, `object-store-dns-${i}`, { names: ['kube-system'] }), [kplus.NetworkPolicyPort.udp(53), kplus.NetworkPolicyPort.tcp(53)]);
      egress.addEgressRule(kplus.NetworkPolicyIpBlock.anyIpv4(this, `object-store-v4-${i}`), [kplus.NetworkPolicyPort.tcp(port)]);
      egress.addEgressRule(kplus.NetworkPolicyIpBlock.anyIpv6(this, `object-store-v6-${i}`), [kplus.NetworkPolicyPort.tcp(port)]);
    }
  }

  /** A policy of this deployment selecting `pods`, its rules added by the caller. */
  private policy(id: string, component: Component, pods: kplus.Pods): kplus.NetworkPolicy {
    const { namespace, releaseName } = this.database;
    return new kplus.NetworkPolicy(this, id, {
      metadata: { name: resourceName(releaseName, id), namespace, labels: standardLabels(releaseName, component), annotations: syncWave(SYNC_WAVES.access) },
      selector: pods,
    });
  }
}

/** The object store's TCP port: the endpoint's, else HTTPS. */
export function objectStorePort(endpoint: string | undefined): number {
  const match = endpoint ? /^(https?):\/\/[^/:]+(?::([0-9]+))?/.exec(endpoint) : null;
  if (match?.[2]) return Number(match[2]);
  return match?.[1] === 'http' ? 80 : 443;
}
