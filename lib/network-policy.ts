import { k8s } from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { ChartObjects } from './chart';
import { CONTAINER_PORT } from './helm-values';
import { DATABASE_CLIENT_LABEL, PART_OF, resourceName, standardLabels } from './names';
import { SYNC_WAVES, syncWave } from './sync-waves';

export interface DatabaseNetworkPolicyProps {
  readonly namespace: string;
  readonly releaseName: string;
  /** The chart's objects, for the database pod's labels. */
  readonly database: ChartObjects;
  /** Namespaces whose pods may connect. */
  readonly allowedNamespaces: readonly string[];
  /** Client networks outside the cluster that may connect (LoadBalancer, NodePort). */
  readonly allowedCidrs: readonly string[];
  /** Labels of the chart's backup pods, when backups are on. */
  readonly backupPods?: Record<string, string>;
}

/** Kubernetes sets this label on every namespace (1.22+); users cannot forge another's name. */
const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/**
 * Who may reach PostgreSQL: pods of the listed namespaces, this project's own Jobs and the
 * listed client networks, on PostgreSQL's port only. Our Jobs may send only DNS and database
 * traffic. The chart's own NetworkPolicy is turned off in the values (it allows every source).
 */
export class DatabaseNetworkPolicy extends Construct {
  constructor(scope: Construct, id: string, props: DatabaseNetworkPolicyProps) {
    super(scope, id);
    const labels = standardLabels(props.releaseName, 'network-policy');
    const databasePods = { matchLabels: { ...props.database.podLabels } };
    const ourClients = { matchLabels: { 'app.kubernetes.io/part-of': PART_OF, [DATABASE_CLIENT_LABEL]: 'true' } };
    const postgresPort = [{ protocol: 'TCP', port: k8s.IntOrString.fromNumber(CONTAINER_PORT) }];

    new k8s.KubeNetworkPolicy(this, 'ingress', {
      metadata: { name: resourceName(props.releaseName, 'ingress'), namespace: props.namespace, labels, annotations: syncWave(SYNC_WAVES.access) },
      spec: {
        podSelector: databasePods,
        policyTypes: ['Ingress'],
        ingress: [{
          from: [
            ...props.allowedNamespaces.map((ns) => ({ namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: ns } } })),
            { podSelector: ourClients },
            ...(props.backupPods ? [{ podSelector: { matchLabels: props.backupPods } }] : []),
            ...props.allowedCidrs.map((cidr) => ({ ipBlock: { cidr } })),
          ],
          ports: postgresPort,
        }],
      },
    });

    const dnsAndDatabase = [
      {
        to: [{ namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: 'kube-system' } } }],
        ports: [
          { protocol: 'UDP', port: k8s.IntOrString.fromNumber(53) },
          { protocol: 'TCP', port: k8s.IntOrString.fromNumber(53) },
        ],
      },
      { to: [{ podSelector: databasePods }], ports: postgresPort },
    ];
    const egress = (id: string, podSelector: { matchLabels: Record<string, string> }) => new k8s.KubeNetworkPolicy(this, id, {
      metadata: { name: resourceName(props.releaseName, id), namespace: props.namespace, labels, annotations: syncWave(SYNC_WAVES.access) },
      spec: { podSelector, policyTypes: ['Egress'], egress: dnsAndDatabase },
    });
    egress('jobs-egress', ourClients);
    if (props.backupPods) egress('backup-egress', { matchLabels: props.backupPods });
  }
}
