// Certificates clients verify. What the synth renders for `tls.issuer` (a cert-manager
// Certificate for the Service's names, its Secret handed to the chart, our Jobs on verify-full
// against its ca.crt), and then, on a real PostgreSQL serving a certificate from a test CA
// (openssl), set up the way the chart sets the server up (its copy-certs init container, its
// TLS settings): our Jobs as rendered verify it by the Service's name; a wrong CA or a wrong name
// fails with exit 8 naming the cause; a renewed certificate is served after the documented step.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { chartSecretNames } from '../lib/chart';
import { LearnflowPostgresProps } from '../lib/config';
import { LOGIN_PATHS } from '../lib/credentials/passfile-contract';
import { RUNNER } from '../lib/migrations/runner-contract';
import { PROFILES } from '../lib/profiles';
import { podSpecOf } from '../lib/security';
import { exitCodes } from '../lib/script-contract';
import { renderProfile } from '../lib/synth';
import { VERIFY } from '../lib/verification/verify-contract';
import { renderChart } from './support/chart-render';
import { DIST, Manifest, byComponent, manifests } from './support/dist';
import { runPod } from './support/dist-job';
import { Pg, asServerUser, startPostgres } from './support/postgres';
import { describeWithTools } from './support/tools';
import { FIXTURE_MIGRATIONS } from './support/variants';

const documents = (text: string): Manifest[] => parseAllDocuments(text).map((d) => d.toJS() as Manifest).filter((m) => m && m.kind);
const render = (props: LearnflowPostgresProps) => {
  const files = renderProfile('test', props, FIXTURE_MIGRATIONS);
  return { ours: documents(files.get('learnflow-postgres.yaml')!), values: parse(files.get('helm/postgresql-values.yaml')!) };
};
/** Every container of ours that logs in to the database, with its pod spec. */
const loginContainers = (ours: Manifest[]) => ours.flatMap((m) => {
  const spec = podSpecOf(m);
  return spec ? spec.containers.filter((c: any) => (c.env ?? []).some((e: any) => e.name === 'PGPASSFILE')).map((c: any) => ({ where: m.metadata.name, spec, c })) : [];
});
const env = (c: any) => Object.fromEntries((c.env ?? []).map((e: any) => [e.name, e.value]));

describe('a certificate from cert-manager (tls.issuer)', () => {
  const issuer = { kind: 'ClusterIssuer' as const, name: 'internal-ca' };

  it("is a Certificate for every name of the database Service, plus the extra ones, whose Secret the chart serves", () => {
    const { ours, values } = render({ namespace: 'data', tls: { enabled: true, issuer, extraDnsNames: ['db.example.com'] }, cluster: { domain: 'corp.internal' } });
    const [certificate] = ours.filter((m) => m.kind === 'Certificate');
    expect(certificate.apiVersion).toBe('cert-manager.io/v1');
    expect(certificate.spec).toEqual({
      secretName: 'postgres-postgresql-tls',
      dnsNames: ['postgres-postgresql', 'postgres-postgresql.data', 'postgres-postgresql.data.svc', 'postgres-postgresql.data.svc.corp.internal', 'db.example.com'],
      issuerRef: { name: 'internal-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' },
      privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
      usages: ['digital signature', 'server auth'],
    });
    // Ready before the database starts (the credentials wave; Argo CD waits for its Ready condition).
    expect(certificate.metadata.annotations?.['argocd.argoproj.io/sync-wave']).toBe('-1');
    // No certCAFilename: the image would then demand client certificates (see below).
    expect(values.tls).toEqual({ enabled: true, certificatesSecret: 'postgres-postgresql-tls', certFilename: 'tls.crt', certKeyFilename: 'tls.key' });
  });

  it("has our Jobs verify the server by its name against the Secret's ca.crt alone, never mounting the server's key", () => {
    const { ours } = render({ tls: { enabled: true, issuer, certificatesSecret: 'pg-server-tls' } });
    const logins = loginContainers(ours);
    expect(logins.length).toBeGreaterThanOrEqual(4);
    for (const { where, spec, c } of logins) {
      expect(env(c), where).toMatchObject({ PGSSLMODE: 'verify-full', PGSSLROOTCERT: `${LOGIN_PATHS.caDir}/ca.crt`, PGHOST: 'postgres-postgresql.postgres.svc' });
      expect(spec.volumes, where).toContainEqual({ name: 'database-ca', secret: { secretName: 'pg-server-tls', items: [{ key: 'ca.crt', path: 'ca.crt' }], defaultMode: 0o444 } });
      expect(c.volumeMounts, where).toContainEqual({ name: 'database-ca', mountPath: LOGIN_PATHS.caDir, readOnly: true });
    }
    const bootstrap = ours.find(byComponent('Job', 'credentials'))!;
    expect(env(bootstrap.spec.template.spec.containers[0]).URI_QUERY).toBe('?sslmode=verify-full');
  });

  it('is what production uses, from a ClusterIssuer', () => {
    expect(PROFILES.production.tls).toMatchObject({ enabled: true, issuer: { kind: 'ClusterIssuer' } });
    expect(manifests('production').filter((m) => m.kind === 'Certificate')).toHaveLength(1);
  });

  it('keeps, without an issuer, the chart-generated certificate and sslmode=require', () => {
    const { ours, values } = render({ tls: { enabled: true } });
    expect(ours.filter((m) => m.kind === 'Certificate')).toEqual([]);
    expect(values.tls).toEqual({ enabled: true, autoGenerated: true });
    for (const { where, c } of loginContainers(ours)) {
      expect(env(c).PGSSLMODE, where).toBe('require');
      expect(env(c).PGSSLROOTCERT, where).toBeUndefined();
    }
    // A certificate of the user's own is verified like cert-manager's.
    const own = render({ tls: { enabled: true, certificatesSecret: 'pg-tls' } });
    for (const { where, c } of loginContainers(own.ours)) expect(env(c).PGSSLMODE, where).toBe('verify-full');
  });
});

describeWithTools('the chart, rendered', ['helm'], () => {
  it('renders no Secret besides the ones the certificate Secret may not be named after (lib/chart.ts)', async () => {
    const all: string[] = [];
    for (const [chartVersion, extra] of [
      ['15.5.38', {}], ['16.7.27', { passwordUpdateJob: { enabled: true } }], ['16.7.27', { passwordUpdateJob: { enabled: true, previousPasswords: { postgresPassword: 'x', password: 'y' } } }],
    ] as const) {
      const values = { tls: { enabled: true, autoGenerated: true }, serviceBindings: { enabled: true }, auth: { username: 'app', password: 'p', postgresPassword: 'q' }, ...extra };
      const rendered = await renderChart({ chartVersion }, JSON.stringify(values));
      all.push(...rendered.filter((m) => m.kind === 'Secret').map((m) => m.metadata.name));
    }
    expect([...new Set(all)].sort()).toEqual(chartSecretNames('postgres').map((s) => s.name).sort());
  }, 60_000);
});

// ---------------------------------------------------------------- a real server, a real CA

const EXIT = { runner: exitCodes(RUNNER), verify: exitCodes(VERIFY) };
const PROFILE = 'production';

/** openssl, in `dir`. */
const openssl = (dir: string, ...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });

/** A test CA: key and self-signed certificate in `dir`/`name`.{key,crt}. */
function makeCa(dir: string, name: string): string {
  openssl(dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`);
  return readFileSync(path.join(dir, `${name}.crt`), 'utf8');
}

/** A server certificate for `names`, signed by CA `ca`, with `serial`: { 'tls.crt', 'tls.key' }. */
function issue(dir: string, ca: string, names: readonly string[], serial: number): { 'tls.crt': string; 'tls.key': string } {
  const base = `server-${serial}`;
  writeFileSync(path.join(dir, `${base}.ext`), `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`);
  openssl(dir, 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${names[0]}`);
  openssl(dir, 'x509', '-req', '-in', `${base}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-set_serial', String(serial), '-days', '2', '-out', `${base}.crt`, '-extfile', `${base}.ext`);
  return { 'tls.crt': readFileSync(path.join(dir, `${base}.crt`), 'utf8'), 'tls.key': readFileSync(path.join(dir, `${base}.key`), 'utf8') };
}

/**
 * A Secret volume as the kubelet keeps it: the files in a timestamped directory, `..data`
 * pointing at it, each key a link through `..data`; an update swaps `..data` atomically.
 */
function writeSecretVolume(dir: string, data: Record<string, string>, generation: number): void {
  const current = `..2026_01_01_00_00_0${generation}.000000001`;
  mkdirSync(path.join(dir, current), { mode: 0o755 });
  for (const [key, value] of Object.entries(data)) {
    writeFileSync(path.join(dir, current, key), value, { mode: 0o644 });
    try { symlinkSync(path.join('..data', key), path.join(dir, key)); } catch { /* the link stays from the first generation */ }
  }
  symlinkSync(current, path.join(dir, '..data_tmp'));
  renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
}

/** The serial of the certificate the server at `port` serves, read the way any client reads it. */
function servedSerial(port: number): string {
  const out = execFileSync('sh', ['-c', `openssl s_client -starttls postgres -connect 127.0.0.1:${port} </dev/null 2>/dev/null | openssl x509 -noout -serial`], { encoding: 'utf8' });
  return out.trim().replace(/^serial=/, '');
}

describeWithTools('on a real PostgreSQL serving a certificate from a test CA', ['helm'], () => {
  const all = manifests(PROFILE);
  const certificate = all.find((m) => m.kind === 'Certificate')!;
  const names: string[] = certificate.spec.dnsNames;
  const secrets = { credentials: PROFILES.production.credentials.existingSecret, certificate: certificate.spec.secretName as string };
  const migrate = all.find(byComponent('Job', 'migrations'))!;
  const verify = all.find(byComponent('Job', 'verification'))!;
  const dump = all.find((m) => m.kind === 'CronJob' && m.metadata.name.endsWith('-dump'))!;
  const appPassword = 'app-password-for-the-tls-test-1234';
  let dir: string;
  let raw: string;
  let copies: string;
  let copyCerts: string[];
  let pg: Pg;
  let caCert: string;
  let otherCa: string;

  /** The chart's copy-certs init container, as helm renders it, on our directories, as the server's user. */
  const runCopyCerts = () => {
    const script = copyCerts.join('\n').replaceAll('/tmp/certs', raw).replaceAll('/opt/bitnami/postgresql/certs', copies);
    const server = asServerUser();
    const [cmd, args] = server ? server.wrap('/bin/sh', ['-ec', script]) : ['/bin/sh', ['-ec', script]];
    execFileSync(cmd, args, { stdio: 'pipe' });
  };

  /** Our Job's pod as rendered, its Service name reached at the test server's address (PGHOSTADDR). */
  const runJob = (job: Manifest, ca = caCert, env: Record<string, string> = {}) => runPod(all, job, mkdtempSync(path.join(dir, 'pod-')), {
    secrets: {
      [secrets.credentials]: { password: appPassword, 'postgres-password': pg.password },
      [secrets.certificate]: { 'ca.crt': ca, 'tls.crt': 'unused', 'tls.key': 'unused' },
    },
    env: { PATH: pg.env().PATH, PGHOSTADDR: pg.host, PGPORT: String(pg.port), VERIFY_DB_WAIT_SECONDS: '5', MIGRATE_DB_WAIT_SECONDS: '5', ...env },
  });

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'learnflow-tls-'));
    chmodSync(dir, 0o755);
    caCert = makeCa(dir, 'test-ca');
    otherCa = makeCa(dir, 'other-ca');
    raw = path.join(dir, 'raw-certificates');
    copies = path.join(dir, 'postgresql-certificates');
    mkdirSync(raw, { mode: 0o755 });
    mkdirSync(copies, { mode: 0o755 });
    const server = asServerUser();
    if (server) chownSync(copies, server.uid, server.gid);
    writeSecretVolume(raw, { 'ca.crt': caCert, ...issue(dir, 'test-ca', names, 1001) }, 1);

    // The chart's pod for production's values: its copy-certs command and its TLS settings.
    const chart = await renderChart(PROFILES.production, readFileSync(path.join(DIST, PROFILE, 'helm', 'postgresql-values.yaml'), 'utf8'));
    const statefulSet = chart.find((m) => m.kind === 'StatefulSet')!;
    const init = statefulSet.spec.template.spec.initContainers.find((c: any) => c.name === 'copy-certs');
    copyCerts = init.command.slice(2);
    const chartEnv = env(statefulSet.spec.template.spec.containers[0]);
    expect(chartEnv.POSTGRESQL_ENABLE_TLS).toBe('yes');
    // The image turns on client-certificate authentication (`hostssl ... cert` ahead of its
    // password lines) whenever POSTGRESQL_TLS_CA_FILE is set: our Jobs, without client
    // certificates, would be refused. The chart sets it only from tls.certCAFilename.
    expect(chartEnv.POSTGRESQL_TLS_CA_FILE).toBeUndefined();
    runCopyCerts();
    const onCopies = (p: string) => p.replace('/opt/bitnami/postgresql/certs', copies);
    pg = await startPostgres({ settings: {
      ssl: 'on',
      ssl_cert_file: onCopies(chartEnv.POSTGRESQL_TLS_CERT_FILE),
      ssl_key_file: onCopies(chartEnv.POSTGRESQL_TLS_KEY_FILE),
    } });
    pg.psql('postgres', `CREATE ROLE learnflow LOGIN PASSWORD '${appPassword}'; CREATE DATABASE learnflow OWNER learnflow`);
  }, 60_000);
  afterAll(async () => {
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves the certificate through the chart\'s own copy, and our Jobs verify it by the Service\'s name', async () => {
    expect(servedSerial(pg.port)).toBe('03E9');
    const migrated = await runJob(migrate);
    expect(migrated.init.map((r) => r.code)).toEqual([0]);
    expect(migrated.main?.stderr).toBe('');
    expect(migrated.main?.code).toBe(EXIT.runner.ok);
    const verified = await runJob(verify);
    expect(verified.main?.stderr).toBe('');
    expect(verified.main?.code).toBe(EXIT.verify.ok);
    expect(verified.main?.stdout).toContain('stage 3 database ping: ok (postgres-postgresql.postgres.svc:');
    // Encrypted and verified: PostgreSQL reports the session's TLS.
    expect(pg.psql('postgres', `SELECT count(*) > 0 FROM pg_stat_ssl WHERE ssl`)).toBe('t');
  });

  it('has the dump CronJob verify it too, logging in through a password file', async () => {
    const container = podSpecOf(dump)!.containers[0];
    expect(env(container)).toMatchObject({ PGSSLMODE: 'verify-full', PGSSLROOTCERT: `${LOGIN_PATHS.caDir}/ca.crt`, PGHOST: 'postgres-postgresql.postgres.svc' });
    expect(JSON.stringify(container.env)).not.toContain('PGPASSWORD');
    const dumps = mkdtempSync(path.join(dir, 'backups-'));
    const inputs = (ca: string) => ({
      secrets: { [secrets.credentials]: { 'postgres-password': pg.password }, [secrets.certificate]: { 'ca.crt': ca } } as Record<string, Record<string, string>>,
      claims: { [dump.spec.jobTemplate.spec.template.spec.volumes.find((v: any) => v.persistentVolumeClaim).persistentVolumeClaim.claimName]: dumps },
      env: { PATH: pg.env().PATH, PGHOSTADDR: pg.host, PGPORT: String(pg.port) },
    });
    const r = await runPod(all, dump, mkdtempSync(path.join(dir, 'pod-')), inputs(caCert));
    expect(r.main?.stderr).toBe('');
    expect(r.main?.code).toBe(0);
    const wrong = await runPod(all, dump, mkdtempSync(path.join(dir, 'pod-')), inputs(otherCa));
    expect(wrong.main?.code).toBe(1);
    expect(wrong.main?.stderr).toContain('certificate verify failed');
  });

  it('fails with exit 8 at once, naming the cause, when the CA is not the one that signed the certificate', async () => {
    for (const [job, code] of [[migrate, EXIT.runner.connectionFailed], [verify, EXIT.verify.connectionFailed]] as const) {
      const started = Date.now();
      const r = await runJob(job, otherCa);
      expect(r.main?.code, r.main?.stderr).toBe(code);
      expect(r.main?.stderr).toContain("the server's certificate is not signed by the CA in");
      expect(r.main?.stderr).toContain('certificate verify failed');
      // Not retried until the wait runs out: waiting cannot fix it.
      expect(Date.now() - started).toBeLessThan(4_000);
    }
  });

  it('fails with exit 8 at once, naming the cause, when the certificate does not name the host', async () => {
    for (const [job, code] of [[migrate, EXIT.runner.connectionFailed], [verify, EXIT.verify.connectionFailed]] as const) {
      const r = await runJob(job, caCert, { PGHOST: 'postgres-postgresql.elsewhere.svc' });
      expect(r.main?.code, r.main?.stderr).toBe(code);
      expect(r.main?.stderr).toContain("the server's certificate does not name the host postgres-postgresql.elsewhere.svc");
    }
  });

  it('serves a renewed certificate after the documented step (a restart: the chart copies the Secret at start), not after a reload alone', async () => {
    // cert-manager renews: a new key and serial in the same Secret; the kubelet swaps the files.
    writeSecretVolume(raw, { 'ca.crt': caCert, ...issue(dir, 'test-ca', names, 1002) }, 2);
    pg.ctl('reload');
    expect(servedSerial(pg.port)).toBe('03E9');
    // `kubectl rollout restart statefulset/<fullname>`: copy-certs runs again, then the server starts.
    runCopyCerts();
    pg.ctl('restart');
    expect(servedSerial(pg.port)).toBe('03EA');
    const verified = await runJob(verify);
    expect(verified.main?.code, verified.main?.stderr).toBe(EXIT.verify.ok);
  });
});
