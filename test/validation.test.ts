import { describe, expect, it } from 'vitest';
import { LearnflowPostgresProps } from '../lib/config';
import { PROFILES } from '../lib/profiles';
import { editDistance, nearest } from '../lib/nearest';
import { PROPS_RULES, Rules, checkProps, parseQuantity, validateProps } from '../lib/validation';

/** A cluster's own networks, which client networks need beside them. */
const CLUSTER = { podCidrs: ['10.244.0.0/16'], serviceCidrs: ['10.96.0.0/12'] };

/** The single problem a props object produces; fails the test when there are more or none. */
function problemOf(props: LearnflowPostgresProps): string {
  const problems = validateProps(props);
  expect(problems).toHaveLength(1);
  return problems[0];
}

describe('validation', () => {
  it('accepts both profiles and the empty description (all defaults)', () => {
    expect(validateProps({})).toEqual([]);
    expect(validateProps({ allowedCidrs: ['10.0.0.0/8', 'fd00::/8', '2001:DB8::/32'], cluster: CLUSTER })).toEqual([]);
    for (const profile of Object.values(PROFILES)) expect(validateProps(profile)).toEqual([]);
  });

  it.each([
    ['namespace', { namespace: 'LearnFlow' }, /^namespace: 'LearnFlow' is not a valid name \(DNS-1123 label/],
    ['namespace too long', { namespace: 'a'.repeat(64) }, /^namespace: .* at most 63 characters/],
    ['releaseName (Helm: 53)', { releaseName: 'a'.repeat(54) }, /^releaseName: .* at most 53 characters/],
    ['releaseName charset', { releaseName: 'pg_main' }, /^releaseName: 'pg_main' is not a valid name/],
    ['databaseName', { databaseName: 'learn-flow' }, /^databaseName: 'learn-flow' is not a valid PostgreSQL name/],
    ['appUser charset', { appUser: 'App' }, /^appUser: 'App' is not a valid PostgreSQL name/],
    ['appUser superuser', { appUser: 'postgres' }, /^appUser: 'postgres' is the superuser/],
    ['chartVersion', { chartVersion: '15.0.0' as never }, /^chartVersion: '15.0.0' is not supported \(one of 15\.5\.38, 16\.7\.27\)/],
    ['chartSource', { chartSource: 'artifacthub' as never }, /^chartSource: 'artifacthub' is unknown \(one of repository, bitnami, mirror\)/],
    ['chartMirror URL', { chartSource: 'mirror', chartMirror: 'harbor.example.com/charts' }, /^chartMirror: 'harbor\.example\.com\/charts' is not an OCI repository \(oci:\/\/host/],
    ['chartMirror naming the chart', { chartSource: 'mirror', chartMirror: 'oci://harbor.example.com/charts/postgresql' }, /^chartMirror: .* names the chart itself \(give the repository that holds postgresql: oci:\/\/harbor\.example\.com\/charts\)/],
    ['chartMirror without the mirror source', { chartMirror: 'oci://harbor.example.com/charts' }, /^chartMirror: conflicts with chartSource repository \(the default\)/],
    ['mirror source without chartMirror', { chartSource: 'mirror' }, /^chartSource: mirror needs chartMirror/],
    ['kubernetesVersion 1.27', { kubernetesVersion: '1.27' as never }, /^kubernetesVersion: '1\.27' is not supported: .*\(supported: 1\.28 to 1\.31\)/],
    ['kubernetesVersion 1.25', { kubernetesVersion: '1.25' as never }, /^kubernetesVersion: '1\.25' is not supported: Kubernetes before 1\.29 requires onPodConditions/],
    ['kubernetesVersion newer than tested', { kubernetesVersion: '1.34' as never }, /^kubernetesVersion: '1\.34' is not supported: it is newer than the newest API server the tests run/],
    ['kubernetesVersion form', { kubernetesVersion: '1.31.0' as never }, /^kubernetesVersion: '1\.31\.0' is not a Kubernetes minor version/],
    ['imageRegistry', { imageRegistry: 'https://mirror' }, /^imageRegistry: 'https:\/\/mirror' is not a registry host/],
    ['image.repository', { image: { repository: 'Bitnami/PG' } }, /^image\.repository: 'Bitnami\/PG' is not an image repository/],
    ['image.tag', { image: { tag: 'bad tag' } }, /^image\.tag: 'bad tag' is not an image tag/],
    ['kubectlImage.registry', { kubectlImage: { registry: 'a b' } }, /^kubectlImage\.registry: 'a b' is not a registry host/],
    ['storageSize not a size', { storageSize: '20GB' }, /^storageSize: '20GB' is not a storage size/],
    ['storageSize too small', { storageSize: '512Mi' }, /^storageSize: '512Mi' is too small \(at least 1Gi/],
    ['storageClass', { storageClass: 'Fast SSD' }, /^storageClass: 'Fast SSD' is not a valid name \(DNS-1123 subdomain/],
    ['storageClassPreset unknown', { storageClassPreset: 'openshift' as never }, /^storageClassPreset: 'openshift' is unknown \(one of minikube, aks, gke, eks\)/],
    ['storage class twice', { storageClass: 'gp3', storageClassPreset: 'eks' }, /^storageClassPreset: conflicts with storageClass/],
    ['cpu quantity', { resources: { requests: { cpu: 'half' } } }, /^resources\.requests\.cpu: 'half' is not a Kubernetes resource quantity/],
    ['memory quantity', { resources: { limits: { memory: '2GB' } } }, /^resources\.limits\.memory: '2GB' is not a Kubernetes resource quantity/],
    ['ephemeral storage quantity', { resources: { limits: { ephemeralStorage: '2GB' } } }, /^resources\.limits\.ephemeralStorage: '2GB' is not a Kubernetes resource quantity/],
    ['ephemeral storage request above limit', { resources: { requests: { ephemeralStorage: '4Gi' }, limits: { ephemeralStorage: '2Gi' } } }, /^resources\.requests\.ephemeralStorage: 4Gi exceeds resources\.limits\.ephemeralStorage 2Gi/],
    ['request above limit', { resources: { requests: { memory: '4Gi' }, limits: { memory: '2Gi' } } }, /^resources\.requests\.memory: 4Gi exceeds resources\.limits\.memory 2Gi/],
    ['serviceType', { serviceType: 'ExternalName' as never }, /^serviceType: 'ExternalName' is unknown/],
    ['port range', { port: 70000 }, /^port: 70000 is out of range \(a whole number from 1 to 65535\)/],
    ['nodePort range', { serviceType: 'NodePort', allowedCidrs: ['10.0.0.0/8'], cluster: CLUSTER, nodePort: 8080 }, /^nodePort: 8080 is out of range \(a whole number from 30000 to 32767\)/],
    ['nodePort with ClusterIP', { nodePort: 30432 }, /^nodePort: conflicts with serviceType ClusterIP/],
    ['LoadBalancer without client networks', { serviceType: 'LoadBalancer' }, /^allowedCidrs: empty while serviceType is LoadBalancer/],
    ['CIDR', { allowedCidrs: ['10.0.0.0/33'], cluster: CLUSTER }, /^allowedCidrs\[0\]: '10\.0\.0\.0\/33' is not a CIDR block/],
    ['IPv6 CIDR', { allowedCidrs: ['fd00::/129'], cluster: CLUSTER }, /^allowedCidrs\[0\]: 'fd00::\/129' is not a CIDR block/],
    ['IPv4 inside IPv6', { allowedCidrs: ['::ffff:10.0.0.0/104'], cluster: CLUSTER }, /^allowedCidrs\[0\]: '::ffff:10\.0\.0\.0\/104' is not a CIDR block/],
    ['CIDR with host bits', { allowedCidrs: ['10.1.2.3/8'], cluster: CLUSTER }, /^allowedCidrs\[0\]: '10\.1\.2\.3\/8' has address bits set past its prefix \(did you mean 10\.0\.0\.0\/8\?\)/],
    ['client networks without the pod networks', { allowedCidrs: ['203.0.113.0/24'], cluster: { serviceCidrs: ['10.96.0.0/12'] } }, /^cluster\.podCidrs: required while allowedCidrs is set \(the policy leaves the cluster's own pod networks out/],
    ['client networks without the Service networks', { allowedCidrs: ['203.0.113.0/24'], cluster: { podCidrs: ['10.244.0.0/16'] } }, /^cluster\.serviceCidrs: required while allowedCidrs is set/],
    ['a client network inside the pod network', { allowedCidrs: ['10.0.0.0/8', '10.244.8.0/24'], cluster: CLUSTER }, /^allowedCidrs\[1\]: '10\.244\.8\.0\/24' lies inside the cluster's network '10\.244\.0\.0\/16' \(cluster\.podCidrs\[0\]\): it would admit the cluster's own pods/],
    ['a client network that is the Service network', { allowedCidrs: ['10.96.0.0/12'], cluster: CLUSTER }, /^allowedCidrs\[0\]: '10\.96\.0\.0\/12' lies inside the cluster's network '10\.96\.0\.0\/12' \(cluster\.serviceCidrs\[0\]\)/],
    ['a client network twice', { allowedCidrs: ['203.0.113.0/24', '203.0.113.0/24'], cluster: CLUSTER }, /^allowedCidrs: '203\.0\.113\.0\/24' is listed twice/],
    ['a pod network', { cluster: { podCidrs: ['10.244.0.0/33'] } }, /^cluster\.podCidrs\[0\]: '10\.244\.0\.0\/33' is not a CIDR block/],
    ['a node-local DNS address', { cluster: { nodeLocalDnsAddresses: ['169.254.20.10/32'] } }, /^cluster\.nodeLocalDnsAddresses\[0\]: '169\.254\.20\.10\/32' is not an IP address/],
    ['allowed namespace name', { allowedNamespaces: ['ok', 'Not_OK'] }, /^allowedNamespaces\[1\]: 'Not_OK' is not a valid name/],
    ['allowed namespace twice', { allowedNamespaces: ['app', 'app'] }, /^allowedNamespaces: 'app' is listed twice/],
    ['TLS secret without TLS', { tls: { certificatesSecret: 'pg-tls' } }, /^tls\.certificatesSecret: conflicts with tls\.enabled false/],
    ['an issuer without TLS', { tls: { issuer: { name: 'internal-ca' } } }, /^tls\.issuer: conflicts with tls\.enabled false \(the server would not serve the certificate/],
    ['an issuer of an unknown kind', { tls: { enabled: true, issuer: { name: 'ca', kind: 'VaultIssuer' } } }, /^tls\.issuer\.kind: 'VaultIssuer' is unknown \(one of Issuer, ClusterIssuer\)/],
    ['an issuer name', { tls: { enabled: true, issuer: { name: 'Internal CA' } } }, /^tls\.issuer\.name: 'Internal CA' is not a valid name/],
    ['extra names without an issuer', { tls: { enabled: true, extraDnsNames: ['db.example.com'] } }, /^tls\.extraDnsNames: needs tls\.issuer/],
    ['an extra name', { tls: { enabled: true, issuer: { name: 'ca' }, extraDnsNames: ['*.example.com', 'DB.example.com'] } }, /^tls\.extraDnsNames\[1\]: 'DB\.example\.com' is not a DNS name/],
    ["the chart's certificate Secret", { tls: { enabled: true, issuer: { name: 'ca' }, certificatesSecret: 'postgres-postgresql-crt' } }, /^tls\.certificatesSecret: 'postgres-postgresql-crt' is the name of a Secret the chart renders \(its self-signed certificate \(tls\.autoGenerated\)\); the certificate needs a Secret of its own \(e\.g\. 'postgres-postgresql-tls'\)/],
    ["the chart's password Secret, for another release", { releaseName: 'db', tls: { enabled: true, certificatesSecret: 'db-postgresql' } }, /^tls\.certificatesSecret: 'db-postgresql' is the name of a Secret the chart renders \(its passwords/],
    ['the credentials Secret', { credentials: { existingSecret: 'pg' }, tls: { enabled: true, issuer: { name: 'ca' }, certificatesSecret: 'pg' } }, /^tls\.certificatesSecret: 'pg' is the name of the credentials Secret/],
    ['a cluster domain', { cluster: { domain: 'Cluster.Local' } }, /^cluster\.domain: 'Cluster\.Local' is not a valid name/],
    ['existing secret name', { credentials: { existingSecret: 'PG Creds' } }, /^credentials\.existingSecret: 'PG Creds' is not a valid name/],
    ['generated password too short', { credentials: { generatedPasswordLength: 16 } }, /^credentials\.generatedPasswordLength: 16 is out of range \(a whole number from 32 to 128\)/],
    ['password length with a managed secret', { credentials: { existingSecret: 'pg', generatedPasswordLength: 48 } }, /^credentials\.generatedPasswordLength: conflicts with credentials\.existingSecret/],
    ['database wait', { migrations: { waitForDatabaseSeconds: 0 } }, /^migrations\.waitForDatabaseSeconds: '0' is not a whole number of seconds from 2 to 86400/],
    ['lock wait', { migrations: { lockWaitSeconds: 1.5 } }, /^migrations\.lockWaitSeconds: '1\.5' is not a whole number of seconds/],
    ['backoff', { migrations: { backoffLimit: -1 } }, /^migrations\.backoffLimit: -1 is out of range/],
    ['statement timeout', { migrations: { statementTimeout: '15 minutes' } }, /^migrations\.statementTimeout: '15 minutes' is not a PostgreSQL duration/],
    ['lock timeout', { migrations: { lockTimeout: '1w' } }, /^migrations\.lockTimeout: '1w' is not a PostgreSQL duration/],
    ['backup schedule', { backup: { enabled: true, schedule: 'nightly' } }, /^backup\.schedule: 'nightly' is not a cron schedule/],
    ['backup keep', { backup: { enabled: true, keep: 0 } }, /^backup\.keep: 0 is out of range \(a whole number from 1 to 1000\)/],
    ['backup volume size', { backup: { enabled: true, storageSize: '500Mi' } }, /^backup\.storageSize: '500Mi' is too small/],
    ['backup class', { backup: { enabled: true, storageClass: 'Slow HDD' } }, /^backup\.storageClass: 'Slow HDD' is not a valid name/],
    ['backup settings while off', { backup: { keep: 3 } }, /^backup: settings given while backup\.enabled is not true/],
    ['Argo CD repository', { argocd: { repoURL: 'github.com/x' } }, /^argocd\.repoURL: 'github\.com\/x' is not a Git URL/],
    ['Argo CD project', { argocd: { repoURL: 'https://g/x.git', project: 'My Project' } }, /^argocd\.project: 'My Project' is not a valid name/],
    ['Argo CD revision', { argocd: { repoURL: 'https://g/x.git', targetRevision: 'main branch' } }, /^argocd\.targetRevision: 'main branch' is not a branch, tag or commit/],
    ['replica count too high', { readReplicas: { count: 9 } }, /^readReplicas\.count: 9 is out of range \(a whole number from 1 to 8\)/],
    ['replica count zero', { readReplicas: { count: 0 } }, /^readReplicas\.count: 0 is out of range/],
    ['replicas without a count', { readReplicas: { synchronousCommit: 'on' } }, /^readReplicas\.count: missing/],
    ['synchronous mode unknown', { readReplicas: { count: 1, synchronousCommit: 'yes' as never } }, /^readReplicas\.synchronousCommit: 'yes' is unknown \(one of off, on, remote_write, remote_apply\)/],
    ['more synchronous replicas than replicas', { readReplicas: { count: 1, synchronousCommit: 'on', numSynchronousReplicas: 2 } }, /^readReplicas\.numSynchronousReplicas: 2 is more than readReplicas\.count 1/],
    ['synchronous replicas while asynchronous', { readReplicas: { count: 2, numSynchronousReplicas: 1 } }, /^readReplicas\.numSynchronousReplicas: conflicts with readReplicas\.synchronousCommit off/],
    ['lag bound too small', { readReplicas: { count: 1, maxLagBytes: 1000 } }, /^readReplicas\.maxLagBytes: 1000 is out of range/],
    ['pool size too high', { pooler: { enabled: true, defaultPoolSize: 501 } }, /^pooler\.defaultPoolSize: 501 is out of range \(a whole number from 1 to 500\)/],
    ['pool size zero', { pooler: { enabled: true, defaultPoolSize: 0 } }, /^pooler\.defaultPoolSize: 0 is out of range/],
    ['pools past max_connections', { pooler: { enabled: true, defaultPoolSize: 30, replicas: 3 } }, /^pooler\.defaultPoolSize: 30 × pooler\.replicas 3 = 90 server connections, more than the 80/],
    ['pooler replicas', { pooler: { enabled: true, replicas: 11 } }, /^pooler\.replicas: 11 is out of range \(a whole number from 1 to 10\)/],
    ['client connections', { pooler: { enabled: true, maxClientConnections: 5 } }, /^pooler\.maxClientConnections: 5 is out of range/],
    ['pool mode', { pooler: { enabled: true, poolMode: 'query' as never } }, /^pooler\.poolMode: 'query' is unknown \(one of transaction, session, statement\)/],
    ['LoadBalancer pooler without client networks', { pooler: { enabled: true, serviceType: 'LoadBalancer' } }, /^pooler\.serviceType: LoadBalancer while allowedCidrs is empty/],
    ['pooler node port on ClusterIP', { pooler: { enabled: true, nodePort: 30432 } }, /^pooler\.nodePort: conflicts with pooler\.serviceType ClusterIP/],
    ['pooler settings while off', { pooler: { replicas: 3 } }, /^pooler: settings given while pooler\.enabled is not true/],
  ])('rejects %s with the field and the rule', (_rule, props, message) => {
    expect(problemOf(props as LearnflowPostgresProps)).toMatch(message);
  });

  it('reports every problem at once', () => {
    const problems = validateProps({ namespace: 'Bad', storageSize: '1', port: 0, appUser: 'postgres' });
    expect(problems.map((p) => p.split(':')[0])).toEqual(['namespace', 'appUser', 'storageSize', 'port']);
  });

  it.each([
    ['a misspelt prop', { storagSize: '20Gi' }, 'storagSize: unknown setting (did you mean storageSize?)'],
    ['one in a nested object', { tls: { enabeld: true } }, 'tls.enabeld: unknown setting (did you mean tls.enabled?)'],
    ['one two levels down', { resources: { requests: { memroy: '1Gi' } } }, 'resources.requests.memroy: unknown setting (did you mean resources.requests.memory?)'],
    ['a wrong case', { StorageClass: 'gp3' }, 'StorageClass: unknown setting (did you mean storageClass?)'],
    ['a prop of another object', { backup: { enabled: true, existingSecret: 'x' } }, 'backup.existingSecret: unknown setting (did you mean backup.storageSize?)'],
    ['one of the Argo CD props', { argocd: { repoUrl: 'https://g/x.git' } }, 'argocd.repoUrl: unknown setting (did you mean argocd.repoURL?)'],
  ])('refuses %s, naming it and the nearest real one', (_what, props, message) => {
    expect(validateProps(props as LearnflowPostgresProps)).toEqual([message]);
  });

  it.each([
    ['text given a number', { storageSize: 20 }, /^storageSize: 20 is not text/],
    ['a number given text', { port: '5432' }, /^port: '5432' is not a number/],
    ['a flag given text', { tls: { enabled: 'yes' } }, /^tls\.enabled: 'yes' is not true or false/],
    ['a list given text', { allowedNamespaces: 'learnflow' }, /^allowedNamespaces: 'learnflow' is not a list/],
    ['an object given text', { backup: 'nightly' }, /^backup: 'nightly' is not an object of settings/],
    ['a list entry', { allowedCidrs: [10] }, /^allowedCidrs\[0\]: 10 is not text/],
  ])('refuses %s with the field and what it must be', (_what, props, message) => {
    expect(problemOf(props as unknown as LearnflowPostgresProps)).toMatch(message);
  });

  it('knows exactly the keys of the props interfaces: the type-check holds the rules to them', () => {
    // A rule for a key the interface lacks, or a key without a rule, does not compile.
    // @ts-expect-error storagSize is not a key of LearnflowPostgresProps
    const extra: Rules<{ storageSize?: string }> = { storageSize: PROPS_RULES.storageSize, storagSize: PROPS_RULES.storageSize };
    // @ts-expect-error the rule for storageSize is missing
    const missing: Rules<{ storageSize?: string; port?: number }> = { port: PROPS_RULES.port };
    expect([extra, missing]).toHaveLength(2);
    expect(Object.keys(PROPS_RULES)).toContain('storageSize');
    expect(checkProps(PROPS_RULES.tls, { enabled: true, certificatesSecret: 'pg-tls' }, 'tls')).toEqual([]);
  });

  it('names the nearest key by edit distance, swaps of neighbours counting once', () => {
    expect(editDistance('storagSize', 'storageSize')).toBe(1);
    expect(editDistance('nmaespace', 'namespace')).toBe(1);
    expect(nearest('releseName', Object.keys(PROPS_RULES))).toBe('releaseName');
    expect(nearest('alowedNamespace', Object.keys(PROPS_RULES))).toBe('allowedNamespaces');
  });

  it('reads Kubernetes quantities', () => {
    expect(parseQuantity('500m')).toBeCloseTo(0.5);
    expect(parseQuantity('2Gi')).toBe(2 * 2 ** 30);
    expect(parseQuantity('1e3')).toBe(1000);
    expect(parseQuantity('2GB')).toBeUndefined();
  });
});
