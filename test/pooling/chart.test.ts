// The pooler and the read replicas with the real chart (helm template of the vendored archives)
// and the real API server: the chart renders the replication architecture from our values, every
// host and selector we render resolves to what the chart (or we) render, and everything applies
// without a warning in our restricted namespace.
import { expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { LearnflowPostgresProps, resolveConfig } from '../../lib/config';
import { renderProfile } from '../../lib/synth';
import { Manifest } from '../support/dist';
import { renderChart } from '../support/chart-render';
import { Kube, useSharedKube } from '../support/kube';
import { describeWithTools } from '../support/tools';
import { FIXTURE_MIGRATIONS, VARIANTS } from '../support/variants';
import { describe } from 'vitest';

const CASES: [string, LearnflowPostgresProps][] = [
  ['pooler and 2 synchronous replicas, chart 15.5.38', { ...VARIANTS['pooler-and-read-replicas'], namespace: 'pooling-a' }],
  ['pooler and 2 synchronous replicas, chart 16.7.27', { ...VARIANTS['pooler-and-read-replicas'], chartVersion: '16.7.27', namespace: 'pooling-b' }],
  ['pooler behind a LoadBalancer, TLS from a Secret, standalone', { ...VARIANTS['pooler-loadbalancer-with-tls-secret'], namespace: 'pooling-c' }],
];

const documents = (text: string): Manifest[] => parseAllDocuments(text).map((d) => d.toJS() as Manifest).filter((m) => m && m.kind);
const template = (m: Manifest) => (m.kind === 'CronJob' ? m.spec.jobTemplate.spec.template : m.spec?.template);
const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) => Object.entries(selector).every(([k, v]) => labels[k] === v);

/** Every `<name>.<namespace>.svc` host in a text. */
const hostsIn = (text: string, namespace: string) => [...text.matchAll(new RegExp(`([a-z0-9.-]+)\\.${namespace}\\.svc`, 'g'))].map((m) => m[1]);

describeWithTools('the pooler and the read replicas with the real chart and API server', ['helm'], () => {
  let kube: Kube;
  useSharedKube((k) => (kube = k));

  describe.each(CASES)('%s', (name, props) => {
    const config = resolveConfig(props);
    const ns = config.namespace;
    let ours: Manifest[];
    let chart: Manifest[];
    const load = async () => {
      if (chart) return;
      const files = renderProfile(name.replace(/\W+/g, '-'), props, FIXTURE_MIGRATIONS);
      ours = documents(files.get('learnflow-postgres.yaml')!);
      chart = await renderChart(props, files.get('helm/postgresql-values.yaml')!);
    };

    it('renders the chart\'s replication architecture from our values, or the standalone primary', async () => {
      await load();
      const sets = chart.filter((m) => m.kind === 'StatefulSet');
      const fullname = 'postgres-postgresql';
      if (!config.readReplicas) {
        expect(sets.map((s) => s.metadata.name)).toEqual([fullname]);
        return;
      }
      expect(sets.map((s) => s.metadata.name).sort()).toEqual([`${fullname}-primary`, `${fullname}-read`]);
      const read = sets.find((s) => s.metadata.name.endsWith('-read'))!;
      expect(read.spec.replicas).toBe(config.readReplicas.count);
      const primary = sets.find((s) => s.metadata.name.endsWith('-primary'))!;
      const env = Object.fromEntries(primary.spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value ?? e.valueFrom]));
      expect(env).toMatchObject({
        POSTGRES_REPLICATION_MODE: 'master',
        POSTGRES_REPLICATION_USER: 'repl_user',
        POSTGRES_SYNCHRONOUS_COMMIT_MODE: 'on',
        POSTGRES_NUM_SYNCHRONOUS_REPLICAS: '1',
        POSTGRES_CLUSTER_APP_NAME: 'learnflow_replica',
      });
      // The replication password is our Secret's key, read from a file.
      expect(env.POSTGRES_REPLICATION_PASSWORD_FILE).toMatch(/\/replication-password$/);
      expect(JSON.stringify(primary.spec.template.spec.volumes)).toContain('postgres-postgresql-credentials');
      expect(chart.filter((m) => m.kind === 'NetworkPolicy')).toEqual([]);
      expect(chart.filter((m) => m.kind === 'Service').map((s) => s.metadata.name).sort()).toEqual(
        [`${fullname}-primary`, `${fullname}-primary-hl`, `${fullname}-read`, `${fullname}-read-hl`]);
    });

    it('resolves every host and selector we render to what the chart or we render', async () => {
      await load();
      const services = new Set([...ours, ...chart].filter((m) => m.kind === 'Service').map((m) => m.metadata.name));
      const sets = chart.filter((m) => m.kind === 'StatefulSet');
      const text = JSON.stringify(ours);
      const hosts = [...new Set(hostsIn(text, ns))];
      expect(hosts.length).toBeGreaterThan(1);
      for (const host of hosts) {
        const [first, second] = host.split('.');
        if (second === undefined) {
          expect(services.has(first), `${host}.${ns}.svc: no such Service`).toBe(true);
        } else {
          // <pod>.<headless Service>: a StatefulSet's pod by its ordinal.
          const set = sets.find((s) => s.spec.serviceName === second && first.startsWith(`${s.metadata.name}-`));
          expect(set, `${host}.${ns}.svc: no StatefulSet behind ${second}`).toBeDefined();
          expect(Number(first.slice(set!.metadata.name.length + 1))).toBeLessThan(set!.spec.replicas ?? 1);
        }
      }
      const pods = [...ours, ...chart].flatMap((m) => (template(m) ? [template(m).metadata.labels] : []));
      for (const policy of ours.filter((m) => m.kind === 'NetworkPolicy' && Object.keys(m.spec.podSelector).length > 0)) {
        expect(pods.some((labels) => matches(policy.spec.podSelector.matchLabels, labels)), `${policy.metadata.name} selects no pod`).toBe(true);
      }
      // The database policies select the primary and every replica.
      const dbIngress = ours.find((m) => m.metadata.name.endsWith('-database-ingress'))!;
      for (const set of sets) expect(matches(dbIngress.spec.podSelector.matchLabels, set.spec.template.metadata.labels), set.metadata.name).toBe(true);
      // The pooler's Service selects its pods.
      const pooler = ours.find((m) => m.kind === 'Service' && m.metadata.name.endsWith('-pooler'))!;
      const deployment = ours.find((m) => m.kind === 'Deployment')!;
      expect(matches(pooler.spec.selector, deployment.spec.template.metadata.labels)).toBe(true);
    });

    it('applies with exit 0 and not one warning in the restricted namespace, the chart\'s objects with ours', async () => {
      await load();
      const namespace = ours.find((m) => m.kind === 'Namespace')!;
      await kube.kubectlOk(['apply', '--server-side', '--field-manager=learnflow', '-f', '-'], { input: JSON.stringify(namespace) });
      const rest = [...ours.filter((m) => m.kind !== 'Namespace'), ...chart.map((m) => ({ ...m, metadata: { ...m.metadata, namespace: m.metadata.namespace ?? ns } }))];
      const r = await kube.kubectl(['apply', '--server-side', '--field-manager=learnflow', '--dry-run=server', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: rest }) });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout.trim().split('\n')).toHaveLength(rest.length);
    });
  });
}, { kube: true });
