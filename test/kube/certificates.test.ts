// The cert-manager objects of imports/ (cdk8s import of cert-manager v1.21.1's CRDs) against the
// real CRDs on a test API server: the Certificate we render and an Issuer written with the
// imported class are accepted as they are, and the same CRDs refuse what is not valid, so that
// acceptance means something.
import { App, Chart } from 'cdk8s';
import { beforeAll, expect, it } from 'vitest';
import { Issuer } from '../../imports/certmanager-issuer-cert-manager.io';
import { LearnflowPostgresProps } from '../../lib/config';
import { renderProfile } from '../../lib/synth';
import { Manifest, manifests } from '../support/dist';
import { describeKube, Kube, useSharedKube } from '../support/kube';
import { applyObjects, installCertManagerCrds } from '../support/kube-dist';
import { FIXTURE_MIGRATIONS } from '../support/variants';
import { parseAllDocuments } from 'yaml';

const NAMESPACE = 'lf-certificates';

/** The Certificate `props` render, moved into the file's namespace. */
function certificateOf(props: LearnflowPostgresProps): Manifest {
  const text = renderProfile('test', props, FIXTURE_MIGRATIONS).get('learnflow-postgres.yaml')!;
  const certificate = parseAllDocuments(text).map((d) => d.toJS() as Manifest).find((m) => m?.kind === 'Certificate')!;
  return { ...certificate, metadata: { ...certificate.metadata, namespace: NAMESPACE } };
}

describeKube('cert-manager objects against the real CRDs', () => {
  let kube: Kube;
  useSharedKube((k) => (kube = k));

  beforeAll(async () => {
    await installCertManagerCrds(kube);
    await kube.kubectlOk(['create', 'namespace', NAMESPACE]);
  }, 90_000);

  it("accepts production's Certificate and an Issuer written with the imported class, with no warning", async () => {
    const chart = new Chart(new App(), 'issuer');
    new Issuer(chart, 'issuer', { metadata: { name: 'test-ca', namespace: NAMESPACE }, spec: { ca: { secretName: 'test-ca-key-pair' } } });
    const [issuer] = chart.toJson() as Manifest[];
    const [production] = manifests('production').filter((m) => m.kind === 'Certificate');
    const variant = certificateOf({ releaseName: 'other', tls: { enabled: true, issuer: { name: 'test-ca' }, extraDnsNames: ['db.example.com', '*.db.example.com'] } });
    await applyObjects(kube, [issuer, { ...production, metadata: { ...production.metadata, namespace: NAMESPACE } }, variant]);
    const stored = JSON.parse(await kube.kubectlOk(['get', 'certificates.cert-manager.io', '-n', NAMESPACE, '-o', 'json'])).items;
    expect(stored.map((c: Manifest) => c.spec.issuerRef)).toEqual([
      { group: 'cert-manager.io', kind: 'Issuer', name: 'test-ca' },
      { group: 'cert-manager.io', kind: 'ClusterIssuer', name: 'learnflow-internal-ca' },
    ]);
  });

  it('refuses what the CRDs do not allow: acceptance above is the schema speaking', async () => {
    const certificate = certificateOf({ tls: { enabled: true, issuer: { name: 'test-ca' } } });
    const broken = { ...certificate, metadata: { ...certificate.metadata, name: 'broken' }, spec: { ...certificate.spec, privateKey: { algorithm: 'DSA' } } };
    const r = await kube.kubectl(['apply', '--server-side', '--dry-run=server', '-f', '-'], { input: JSON.stringify(broken) });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/spec\.privateKey\.algorithm: Unsupported value: "DSA"/);
    const { secretName: _, ...noSecret } = certificate.spec;
    const missing = await kube.kubectl(['apply', '--server-side', '--dry-run=server', '-f', '-'], { input: JSON.stringify({ ...certificate, metadata: { ...certificate.metadata, name: 'no-secret' }, spec: noSecret }) });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/spec\.secretName: Required value/);
  });
});
