import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CHART_RELEASES, SUPPORTED_CHART_VERSIONS, chartFullname, chartObjects } from '../lib/chart';
import { LearnflowPostgresProps, resolveConfig } from '../lib/config';
import { renderHelmValues } from '../lib/helm-values';
import { PROFILES } from '../lib/profiles';

const reference = path.join(__dirname, '..', 'reference', 'bitnami-postgresql');
const chartDefaults = (version: string) => parse(readFileSync(path.join(reference, `values-${version}.yaml`), 'utf8'));

/**
 * Paths of `rendered` that the chart does not define. A path ending inside an empty map or a
 * list of the chart's is free-form (resources, nodeSelector, ...) and accepted.
 */
function unknownKeys(rendered: unknown, defaults: unknown, prefix = ''): string[] {
  if (rendered === null || typeof rendered !== 'object' || Array.isArray(rendered)) return [];
  return Object.entries(rendered).flatMap(([key, value]) => {
    const here = prefix ? `${prefix}.${key}` : key;
    const known = defaults as Record<string, unknown>;
    if (!(key in known)) return [here];
    const chartValue = known[key];
    const freeForm = chartValue !== null && typeof chartValue === 'object' && Object.keys(chartValue).length === 0;
    return freeForm ? [] : unknownKeys(value, chartValue, here);
  });
}

describe('Bitnami values', () => {
  // Every profile, and one that sets every value we render, against each supported chart.
  const EVERY_VALUE: LearnflowPostgresProps = {
    imageRegistry: 'mirror.example.com', storageSize: '20Gi', storageClass: 'fast', serviceType: 'LoadBalancer', nodePort: 30432,
    allowedCidrs: ['10.0.0.0/8'], tls: { enabled: true, certificatesSecret: 'pg-tls' }, resources: { requests: { cpu: '1' }, limits: { memory: '2Gi' } },
    backup: { enabled: true, storageSize: '50Gi', storageClass: 'slow' },
  };
  for (const version of SUPPORTED_CHART_VERSIONS) {
    for (const [profile, props] of [...Object.entries<LearnflowPostgresProps>(PROFILES), ['every value', EVERY_VALUE] as const]) {
      it(`sets only keys that chart ${version} defines (${profile})`, () => {
        const config = resolveConfig({ ...props, chartVersion: version });
        const values = renderHelmValues(config, 'secret');
        expect(unknownKeys(values, chartDefaults(version))).toEqual([]);
      });
    }
  }

  it('would catch the wrong keys of the design notes (primary.tls, top-level persistence)', () => {
    const wrongKeys = { primary: { tls: { enabled: true } }, persistence: { size: '8Gi' } };
    expect(unknownKeys(wrongKeys, chartDefaults('15.5.38'))).toEqual(['primary.tls', 'persistence']);
  });

  it.each(SUPPORTED_CHART_VERSIONS)('keeps each image tag of chart %s and only swaps bitnami/ for the pullable bitnamilegacy/', (version) => {
    const defaults = chartDefaults(version);
    const images = CHART_RELEASES[version].images;
    for (const [ours, theirs] of [
      [images.postgresql, defaults.image],
      [images.osShell, defaults.volumePermissions.image],
    ]) {
      expect(ours.tag).toBe(theirs.tag);
      expect(ours.registry).toBe(theirs.registry);
      expect(ours.repository).toBe(theirs.repository.replace(/^bitnami\//, 'bitnamilegacy/'));
    }
    // allowInsecureImages is only rendered where the chart knows it.
    expect('security' in defaults.global).toBe(CHART_RELEASES[version].hasAllowInsecureImages);
  });

  it('points every image the chart runs at a mirror when imageRegistry is set', () => {
    const values = renderHelmValues(resolveConfig({ imageRegistry: 'mirror.example.com:5000', tls: { enabled: true } }), 'secret');
    expect([values.image, values.volumePermissions!.image].map((i) => i.registry)).toEqual(['mirror.example.com:5000', 'mirror.example.com:5000']);
    // Without TLS the chart runs no os-shell container: no image is set for it.
    expect(renderHelmValues(resolveConfig({}), 'secret')).not.toHaveProperty('volumePermissions');
  });

  it('hands the chart our secret and its key names, and turns the chart\'s open NetworkPolicy off', () => {
    const values = renderHelmValues(resolveConfig({ databaseName: 'app', appUser: 'app_owner' }), 'pg-credentials');
    expect(values.auth).toMatchObject({
      existingSecret: 'pg-credentials',
      username: 'app_owner',
      database: 'app',
      secretKeys: { adminPasswordKey: 'postgres-password', userPasswordKey: 'password' },
    });
    expect(values.primary.networkPolicy.enabled).toBe(false);
    // The chart's default would be enabled with allowExternal: true, i.e. open to every source.
    for (const version of SUPPORTED_CHART_VERSIONS) {
      expect(chartDefaults(version).primary.networkPolicy).toMatchObject({ enabled: true, allowExternal: true });
    }
  });

  it('renders storage, resources, a LoadBalancer and TLS with the chart\'s real keys', () => {
    const values = renderHelmValues(resolveConfig({
      storageSize: '20Gi', storageClassPreset: 'eks', serviceType: 'LoadBalancer', allowedCidrs: ['10.0.0.0/8'], tls: { enabled: true },
      resources: { requests: { cpu: '500m', memory: '512Mi' }, limits: { cpu: '2000m', memory: '2Gi' } },
    }), 'x');
    expect(values.primary.persistence).toEqual({ enabled: true, size: '20Gi', storageClass: 'gp3' });
    // Ephemeral storage bounded as the chart's presets bound it, unless the props say.
    expect(values.primary.resources).toEqual({ requests: { cpu: '500m', memory: '512Mi', 'ephemeral-storage': '50Mi' }, limits: { cpu: '2000m', memory: '2Gi', 'ephemeral-storage': '2Gi' } });
    const disk = renderHelmValues(resolveConfig({ resources: { limits: { ephemeralStorage: '8Gi' } } }), 'x');
    expect(disk.primary.resources).toEqual({ requests: { 'ephemeral-storage': '50Mi' }, limits: { 'ephemeral-storage': '8Gi' } });
    // externalTrafficPolicy Local: the pod sees the client's address, which the NetworkPolicy matches.
    expect(values.primary.service).toEqual({ type: 'LoadBalancer', ports: { postgresql: 5432 }, externalTrafficPolicy: 'Local', loadBalancerSourceRanges: ['10.0.0.0/8'] });
    expect(values.tls).toEqual({ enabled: true, autoGenerated: true });
    const ownCertificate = renderHelmValues(resolveConfig({ tls: { enabled: true, certificatesSecret: 'pg-tls' } }), 'x');
    expect(ownCertificate.tls).toEqual({ enabled: true, certificatesSecret: 'pg-tls', certFilename: 'tls.crt', certKeyFilename: 'tls.key' });
  });

  it('leaves every default to the chart: 8Gi, the default class, its resource preset, no TLS, ClusterIP', () => {
    const values = renderHelmValues(resolveConfig({}), 'x');
    expect(values.primary.persistence).toEqual({ enabled: true, size: '8Gi' });
    expect(values.primary).not.toHaveProperty('resources');
    expect(values.tls).toEqual({ enabled: false });
    expect(values.primary.service).toEqual({ type: 'ClusterIP', ports: { postgresql: 5432 } });
  });

  it('gives a NodePort its port, and no loadBalancerSourceRanges outside a LoadBalancer', () => {
    const values = renderHelmValues(resolveConfig({ serviceType: 'NodePort', nodePort: 30432, allowedCidrs: ['10.0.0.0/8'] }), 'x');
    expect(values.primary.service).toEqual({ type: 'NodePort', ports: { postgresql: 5432 }, nodePorts: { postgresql: 30432 }, externalTrafficPolicy: 'Local' });
  });

  it('names the chart\'s objects as the chart does (<release>-postgresql, not postgres-postgres)', () => {
    expect(chartFullname('postgres')).toBe('postgres-postgresql');
    expect(chartFullname('my-postgresql')).toBe('my-postgresql');
    expect(chartFullname('a'.repeat(60))).toHaveLength(63);
    expect(chartObjects('postgres')).toMatchObject({
      service: 'postgres-postgresql', headlessService: 'postgres-postgresql-hl', statefulSet: 'postgres-postgresql',
      pod: 'postgres-postgresql-0', dataClaim: 'data-postgres-postgresql-0',
    });
  });
});
