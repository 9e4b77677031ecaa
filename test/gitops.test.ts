// The Argo CD side of dist/: the Application per profile and the sync-wave order of a first sync.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { PROFILES, PROFILE_NAMES } from '../lib/profiles';
import { SYNC_WAVES } from '../lib/sync-waves';
import { DIST, Manifest, manifests } from './support/dist';

const application = (profile: string) => parse(readFileSync(path.join(DIST, profile, 'argocd', 'application.yaml'), 'utf8'));
const wave = (m: Manifest) => Number(m.metadata.annotations?.['argocd.argoproj.io/sync-wave'] ?? 0);
const component = (m: Manifest) => m.metadata.labels?.['app.kubernetes.io/component'];

describe.each(PROFILE_NAMES)('GitOps for %s', (profile) => {
  const all = manifests(profile);
  const props = PROFILES[profile];

  it('renders an Application with the pinned chart from its OCI registry, our values and dist/<profile>', () => {
    const app = application(profile);
    expect(app).toMatchObject({ apiVersion: 'argoproj.io/v1alpha1', kind: 'Application', metadata: { name: `learnflow-postgres-${profile}`, namespace: 'argocd' } });
    expect(app.spec.project).toBe(props.argocd.project);
    expect(app.spec.destination).toEqual({ server: 'https://kubernetes.default.svc', namespace: 'postgres' });
    expect(app.spec.sources).toEqual([
      { repoURL: 'registry-1.docker.io/bitnamicharts', chart: 'postgresql', targetRevision: '15.5.38',
        helm: { releaseName: 'postgres', valueFiles: [`$values/dist/${profile}/helm/postgresql-values.yaml`] } },
      { repoURL: props.argocd.repoURL, targetRevision: 'main', path: `dist/${profile}`, directory: { recurse: false } },
      { repoURL: props.argocd.repoURL, targetRevision: 'main', ref: 'values' },
    ]);
    expect(app.spec.syncPolicy.automated).toEqual({ prune: true, selfHeal: true });
  });

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
});

describe('the chart\'s self-signed certificate under Argo CD', () => {
  it('is generated once and then ignored, where TLS has no certificatesSecret', () => {
    expect(application('production').spec.ignoreDifferences).toEqual([{ kind: 'Secret', name: 'postgres-postgresql-crt', jsonPointers: ['/data'] }]);
    expect(application('production').spec.syncPolicy.syncOptions).toContain('RespectIgnoreDifferences=true');
    expect(application('development').spec.ignoreDifferences).toBeUndefined();
  });
});
