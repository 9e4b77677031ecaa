// The Argo CD side: the Application a profile renders once it has a repository URL, and the
// sync-wave order of a first sync in every profile's dist/.
import { existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Testing } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ArgoApplicationChart, ArgoApplicationProps } from '../lib/argocd';
import { ChartSourceSettings, resolveChartLocation } from '../lib/chart-source';
import { LearnflowPostgresProps } from '../lib/config';
import { renderProfile } from '../lib/synth';
import { PROFILES, PROFILE_NAMES } from '../lib/profiles';
import { SYNC_WAVES } from '../lib/sync-waves';
import { DIST, Manifest, ROOT, manifests } from './support/dist';
import { FIXTURE_MIGRATIONS } from './support/variants';

const wave = (m: Manifest) => Number(m.metadata.annotations?.['argocd.argoproj.io/sync-wave'] ?? 0);
const component = (m: Manifest) => m.metadata.labels?.['app.kubernetes.io/component'];

const REPO = 'https://git.example.com/platform/learnflow-postgres.git';
/** The chart location of `settings` in this checkout. */
const chartAt = (settings: Partial<ChartSourceSettings>) =>
  resolveChartLocation({ chartSource: 'bitnami', chartVersion: '16.7.27', argocd: true, ...settings }, ROOT).location!;
const PROPS: ArgoApplicationProps = { repoURL: REPO, profile: 'staging', destinationNamespace: 'db', releaseName: 'pg', chart: chartAt({}) };

/** The Application ArgoApplicationChart renders for `props`. */
const application = (props: ArgoApplicationProps) => {
  const [app, ...rest] = Testing.synth(new ArgoApplicationChart(Testing.app({ outdir: os.tmpdir() }), 'application', props));
  expect(rest).toEqual([]);
  return app;
};

describe('the Argo CD Application', () => {
  it('has the pinned chart from its OCI registry with our values, and dist/<profile> of the repository', () => {
    const app = application(PROPS);
    expect(app).toMatchObject({ apiVersion: 'argoproj.io/v1alpha1', kind: 'Application', metadata: { name: 'learnflow-postgres-staging', namespace: 'argocd' } });
    expect(app.spec.project).toBe('default');
    expect(app.spec.destination).toEqual({ server: 'https://kubernetes.default.svc', namespace: 'db' });
    expect(app.spec.sources).toEqual([
      { repoURL: 'registry-1.docker.io/bitnamicharts', chart: 'postgresql', targetRevision: '16.7.27',
        helm: { releaseName: 'pg', valueFiles: ['$values/dist/staging/helm/postgresql-values.yaml'] } },
      { repoURL: REPO, targetRevision: 'main', path: 'dist/staging', directory: { recurse: false } },
      { repoURL: REPO, targetRevision: 'main', ref: 'values' },
    ]);
    expect(app.spec.syncPolicy).toEqual({
      automated: { prune: true, selfHeal: true },
      retry: { limit: 5, backoff: { duration: '5s', factor: 2, maxDuration: '3m' }, refresh: true },
      syncOptions: ['RespectIgnoreDifferences=true', 'PruneLast=true'],
    });
    expect(app.spec.ignoreDifferences).toBeUndefined();
  });

  it('reads the vendored chart by Git path from this repository (chartSource repository), at the same revision', () => {
    const app = application({ ...PROPS, targetRevision: 'v2', chart: chartAt({ chartSource: 'repository' }) });
    expect(app.spec.sources[0]).toEqual({
      repoURL: REPO, targetRevision: 'v2', path: 'charts/postgresql-16.7.27',
      helm: { releaseName: 'pg', valueFiles: ['$values/dist/staging/helm/postgresql-values.yaml'] },
    });
  });

  it('pulls the chart from a mirror registry (chartSource mirror), without the oci:// prefix Argo CD does not take', () => {
    const app = application({ ...PROPS, chart: chartAt({ chartSource: 'mirror', chartMirror: 'oci://harbor.example.com:8443/bitnamicharts', chartVersion: '15.5.38' }) });
    expect(app.spec.sources[0]).toEqual({
      repoURL: 'harbor.example.com:8443/bitnamicharts', chart: 'postgresql', targetRevision: '15.5.38',
      helm: { releaseName: 'pg', valueFiles: ['$values/dist/staging/helm/postgresql-values.yaml'] },
    });
  });

  it('takes the revision, project, namespaces, cluster and manual sync from its props', () => {
    const app = application({ ...PROPS, targetRevision: 'v2', project: 'data', namespace: 'gitops', destinationServer: 'https://prod.example.com', automated: false });
    expect(app.metadata.namespace).toBe('gitops');
    expect(app.spec).toMatchObject({ project: 'data', destination: { server: 'https://prod.example.com', namespace: 'db' } });
    expect(app.spec.sources.slice(1).map((s: any) => s.targetRevision)).toEqual(['v2', 'v2']);
    expect(app.spec.syncPolicy.automated).toBeUndefined();
  });

  it('keeps the first certificate the chart generates, where TLS has no certificatesSecret', () => {
    const app = application({ ...PROPS, chartGeneratedCertificate: true });
    expect(app.spec.ignoreDifferences).toEqual([{ kind: 'Secret', name: 'pg-postgresql-crt', jsonPointers: ['/data'] }]);
    expect(app.spec.syncPolicy.syncOptions).toContain('RespectIgnoreDifferences=true');
  });

  it('is a profile\'s argocd/application.yaml once argocd.repoURL is set, for its namespace, release, chart and certificate', () => {
    const files = (props: LearnflowPostgresProps) => renderProfile('staging', props, FIXTURE_MIGRATIONS);
    expect([...files({ argocd: { targetRevision: 'v2' } }).keys()]).not.toContain('argocd/application.yaml');
    expect([...files({}).keys()]).not.toContain('argocd/application.yaml');
    const rendered = parse(files({
      namespace: 'db', releaseName: 'pg', chartVersion: '16.7.27', chartSource: 'bitnami', tls: { enabled: true }, argocd: { repoURL: REPO },
    }).get('argocd/application.yaml')!);
    expect(rendered).toEqual(application({ ...PROPS, chartGeneratedCertificate: true }));
    // The default source: this repository's unpacked chart.
    const vendored = parse(files({ releaseName: 'pg', namespace: 'db', chartVersion: '16.7.27', argocd: { repoURL: REPO } }).get('argocd/application.yaml')!);
    expect(vendored.spec.sources[0]).toMatchObject({ repoURL: REPO, path: 'charts/postgresql-16.7.27' });
  });

  it.each(PROFILE_NAMES)('is rendered into dist/%s only when its profile sets argocd.repoURL', (profile) => {
    const props: { argocd?: { repoURL?: string } } = PROFILES[profile];
    expect(existsSync(path.join(DIST, profile, 'argocd', 'application.yaml'))).toBe(props.argocd?.repoURL !== undefined);
  });
});

describe.each(PROFILE_NAMES)('GitOps for %s', (profile) => {
  const all = manifests(profile);

  it('orders the first sync: namespace, access, credentials, database, migrations, verification', () => {
    const byComponent = (c: string, kind?: string) => all.filter((m) => component(m) === c && (!kind || m.kind === kind)).map(wave);
    expect(byComponent('namespace')).toEqual([SYNC_WAVES.namespace]);
    expect(new Set(all.filter((m) => ['NetworkPolicy', 'ServiceAccount', 'Role', 'RoleBinding'].includes(m.kind)).map(wave))).toEqual(new Set([SYNC_WAVES.access]));
    expect(byComponent('credentials', 'Job')).toEqual([SYNC_WAVES.credentials]);
    expect(byComponent('migrations', 'Job')).toEqual([SYNC_WAVES.migrations]);
    expect(byComponent('verification', 'Job')).toEqual([SYNC_WAVES.verification]);
    // The chart's resources carry no annotation: wave 0, between credentials and migrations.
    expect(SYNC_WAVES.credentials).toBeLessThan(SYNC_WAVES.database);
    expect(SYNC_WAVES.database).toBeLessThan(SYNC_WAVES.migrations);
    expect(SYNC_WAVES.migrations).toBeLessThan(SYNC_WAVES.verification);
  });

  it('has no hook or self-deleting resource that Argo CD would re-create or show OutOfSync', () => {
    for (const m of all) {
      const where = `${m.kind}/${m.metadata.name}`;
      expect(Object.keys(m.metadata.annotations ?? {}).filter((a) => a.startsWith('argocd.argoproj.io/hook')), where).toEqual([]);
      expect(m.spec?.ttlSecondsAfterFinished, where).toBeUndefined();
      expect(m.spec?.jobTemplate?.spec?.ttlSecondsAfterFinished, where).toBeUndefined();
    }
  });

  it('re-creates only the credentials Job at every sync (its cause is fixed outside Git; test/gitops/ shows the recovery)', () => {
    const replaced = all.filter((m) => m.metadata.annotations?.['argocd.argoproj.io/sync-options'] === 'Force=true,Replace=true');
    expect(replaced.map((m) => `${m.kind}/${m.metadata.labels?.['app.kubernetes.io/component']}`)).toEqual(['Job/credentials']);
  });
});
