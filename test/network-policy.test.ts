// The API features use to declare the traffic their pods need (lib/network-policy.ts): each
// call lands as a rule of its group's one policy per direction, as the API server takes it.
import { App, Chart } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../lib/config';
import { databaseEndpoint } from '../lib/database-client';
import { DatabaseNetworkPolicy } from '../lib/network-policy';

function policies(build: (policy: DatabaseNetworkPolicy) => void): Record<string, any> {
  const chart = new Chart(new App(), 'test');
  const policy = new DatabaseNetworkPolicy(chart, 'network-policy', {
    database: databaseEndpoint(resolveConfig({})),
  });
  build(policy);
  return Object.fromEntries(chart.toJson().map((m) => [m.metadata.name.replace('postgres-postgresql-', ''), m.spec]));
}

describe('DatabaseNetworkPolicy, for features', () => {
  it("adds a feature's egress to the database pods' policy, after DNS", () => {
    const spec = policies((p) => p.allowEgress('database', { peers: [{ cidr: '52.216.0.0/15' }], ports: [{ port: 443 }] }))['database-egress'];
    expect(spec.policyTypes).toEqual(['Egress']);
    expect(spec.egress.map((r: any) => r.to)).toEqual([
      [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } } }, { ipBlock: { cidr: '169.254.20.10/32' } }],
      [{ ipBlock: { cidr: '52.216.0.0/15' } }],
    ]);
    expect(spec.egress[1].ports).toEqual([{ protocol: 'TCP', port: 443 }]);
  });

  it("lets the database pods and the object store's clients reach the store's port at any address, after DNS", () => {
    const all = policies((p) => p.allowObjectStore({ endpoint: 'http://minio.storage:9000' }));
    expect(all['database-egress'].egress.slice(1)).toEqual([{ ports: [{ protocol: 'TCP', port: 9000 }] }]);
    expect(all['object-store-clients-egress'].podSelector).toEqual({ matchLabels: { 'app.kubernetes.io/part-of': 'learnflow-postgres', 'learnflow.io/object-store-client': 'true' } });
    expect(all['object-store-clients-egress'].egress.map((r: any) => r.ports.map((x: any) => x.port))).toEqual([[53, 53], [9000]]);
    expect(policies((p) => p.allowObjectStore({}))['database-egress'].egress[1].ports).toEqual([{ protocol: 'TCP', port: 443 }]);
  });

  it('gives a component of ours a policy of its own, without DNS unless it asks, and rules without a peer', () => {
    const all = policies((p) => {
      p.allowEgress('backup', { ports: [{ port: 443 }] });
      p.allowEgress('backup', { peers: [{ namespace: 'monitoring', pods: { app: 'pushgateway' } }], ports: [{ port: 9091, endPort: 9092 }] });
    });
    expect(all['backup-egress'].podSelector).toEqual({ matchLabels: { 'app.kubernetes.io/part-of': 'learnflow-postgres', 'app.kubernetes.io/component': 'backup' } });
    expect(all['backup-egress'].egress).toEqual([
      { ports: [{ protocol: 'TCP', port: 443 }] },
      {
        to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } }, podSelector: { matchLabels: { app: 'pushgateway' } } }],
        ports: [{ protocol: 'TCP', port: 9091, endPort: 9092 }],
      },
    ]);
  });

  it("adds ingress rules to the group's ingress policy, e.g. replication between database pods", () => {
    const all = policies((p) => p.allowIngress('database', { peers: [{ pods: { 'app.kubernetes.io/component': 'read' } }], ports: [{ port: 5432 }] }));
    expect(all['database-ingress'].ingress.at(-1)).toEqual({
      from: [{ podSelector: { matchLabels: { 'app.kubernetes.io/component': 'read' } } }],
      ports: [{ protocol: 'TCP', port: 5432 }],
    });
  });
});
