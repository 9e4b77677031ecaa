// The evaluator the reach tests rely on, held to the Kubernetes documentation's own cases
// (https://kubernetes.io/docs/concepts/services-networking/network-policies/).
import { describe, expect, it } from 'vitest';
import { ClusterModel, ModelPod, connection, selects } from './support/network-policy-evaluator';

const pod = (namespace: string, name: string, labels: Record<string, string>, ip: string): ModelPod => ({ namespace, name, labels, ip });
const db = pod('prod', 'db', { role: 'db' }, '10.244.1.10');
const frontend = pod('prod', 'frontend', { role: 'frontend' }, '10.244.1.11');
const otherProd = pod('other', 'frontend', { role: 'frontend' }, '10.244.2.11');
const policy = (name: string, spec: Record<string, unknown>, namespace = 'prod') => ({ kind: 'NetworkPolicy', metadata: { name, namespace }, spec });
const cluster = (...policies: any[]): ClusterModel => ({
  namespaces: { prod: { env: 'prod' }, other: { env: 'prod' } },
  pods: [db, frontend, otherProd],
  policies,
});
const strict = { ipBlockMatchesPods: true };
const allowed = (c: ClusterModel, from: any, to: any, port = 5432, protocol: 'TCP' | 'UDP' = 'TCP', options = strict) => connection(c, from, to, port, protocol, options).allowed;

describe('the NetworkPolicy evaluator', () => {
  it('allows everything to pods no policy selects, and isolates a selected pod for the policy types it lists', () => {
    expect(allowed(cluster(), frontend, db)).toBe(true);
    const denyIngress = policy('deny', { podSelector: {} });
    expect(allowed(cluster(denyIngress), frontend, db)).toBe(false);
    // policyTypes absent: Ingress only (the policy has no egress rules), so egress stays open.
    expect(allowed(cluster(denyIngress), db, { name: 'outside', ip: '8.8.8.8' }, 53, 'UDP')).toBe(true);
    expect(allowed(cluster(policy('deny', { podSelector: {}, policyTypes: ['Egress'] })), db, { name: 'outside', ip: '8.8.8.8' }, 53, 'UDP')).toBe(false);
  });

  it('adds policies up, and needs both the egress of the source and the ingress of the destination', () => {
    const denyAll = policy('deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    const dbIngress = policy('db', { podSelector: { matchLabels: { role: 'db' } }, ingress: [{ from: [{ podSelector: { matchLabels: { role: 'frontend' } } }] }] });
    expect(allowed(cluster(denyAll, dbIngress), frontend, db)).toBe(false);
    const frontendEgress = policy('fe', { podSelector: { matchLabels: { role: 'frontend' } }, policyTypes: ['Egress'], egress: [{ to: [{ podSelector: { matchLabels: { role: 'db' } } }], ports: [{ port: 5432 }] }] });
    expect(allowed(cluster(denyAll, dbIngress, frontendEgress), frontend, db)).toBe(true);
    expect(allowed(cluster(denyAll, dbIngress, frontendEgress), frontend, db, 5433)).toBe(false);
  });

  it('reads a namespaceSelector and a podSelector in one peer as AND, in two peers as OR', () => {
    const and = policy('and', { podSelector: { matchLabels: { role: 'db' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { env: 'prod' } }, podSelector: { matchLabels: { role: 'frontend' } } }] }] });
    const or = policy('or', { podSelector: { matchLabels: { role: 'db' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { env: 'prod' } } }, { podSelector: { matchLabels: { role: 'x' } } }] }] });
    const strangerDb = pod('other', 'x', { role: 'x' }, '10.244.2.12');
    const c = (p: any) => ({ ...cluster(p), pods: [db, frontend, otherProd, strangerDb] });
    expect(allowed(c(and), otherProd, db)).toBe(true);
    expect(allowed(c(and), strangerDb, db)).toBe(false);
    expect(allowed(c(or), strangerDb, db)).toBe(true);
    // A podSelector alone selects in the policy's own namespace only.
    const podOnly = policy('pod', { podSelector: { matchLabels: { role: 'db' } }, ingress: [{ from: [{ podSelector: { matchLabels: { role: 'frontend' } } }] }] });
    expect(allowed(cluster(podOnly), otherProd, db)).toBe(false);
    expect(allowed(cluster(podOnly), frontend, db)).toBe(true);
  });

  it('matches ports by protocol (TCP by default) and ranges with endPort', () => {
    const ranged = policy('r', { podSelector: {}, ingress: [{ ports: [{ port: 32000, endPort: 32768 }, { protocol: 'UDP', port: 53 }] }] });
    expect(allowed(cluster(ranged), frontend, db, 32768)).toBe(true);
    expect(allowed(cluster(ranged), frontend, db, 32769)).toBe(false);
    expect(allowed(cluster(ranged), frontend, db, 53, 'UDP')).toBe(true);
    expect(allowed(cluster(ranged), frontend, db, 53, 'TCP')).toBe(false);
  });

  it('matches ipBlocks less their except, and against pod addresses only where the CNI does', () => {
    const block = (except?: string[]) => policy('b', { podSelector: { matchLabels: { role: 'db' } }, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8', ...(except ? { except } : {}) } }] }] });
    const client = { name: 'client', ip: '10.9.0.1' };
    expect(allowed(cluster(block()), client, db)).toBe(true);
    expect(allowed(cluster(block()), frontend, db, 5432, 'TCP', { ipBlockMatchesPods: true })).toBe(true);
    expect(allowed(cluster(block()), frontend, db, 5432, 'TCP', { ipBlockMatchesPods: false })).toBe(false);
    expect(allowed(cluster(block(['10.244.0.0/16'])), frontend, db, 5432, 'TCP', { ipBlockMatchesPods: true })).toBe(false);
    expect(allowed(cluster(block(['10.244.0.0/16'])), client, db)).toBe(true);
  });

  it('evaluates label selectors with matchLabels and every matchExpressions operator', () => {
    const labels = { app: 'web', tier: 'front' };
    expect(selects({}, labels)).toBe(true);
    expect(selects({ matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['front', 'back'] }] }, labels)).toBe(true);
    expect(selects({ matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['front'] }] }, labels)).toBe(false);
    expect(selects({ matchExpressions: [{ key: 'x', operator: 'DoesNotExist' }, { key: 'app', operator: 'Exists' }] }, labels)).toBe(true);
    expect(() => selects({ matchExpressions: [{ key: 'x', operator: 'Gt' }] }, labels)).toThrow(/Gt/);
  });
});
