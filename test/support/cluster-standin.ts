// The parts of a cluster the test API server does not run, played for one namespace so that an
// Argo CD sync can get past its waves. Nothing here decides an outcome: every result comes from
// running the product's own commands against a real PostgreSQL. What it stands in for:
//
//   - the Job controller and the kubelet: each Job without a final condition runs once per pod
//     attempt, its init containers then its container, each command exactly as the live Job holds
//     it (argv, plain variables, Secret variables read from the live Secret, ConfigMap, Secret and
//     emptyDir volumes laid out as the kubelet mounts them). Two things differ, because there is
//     no pod network: PGHOSTADDR/PGPORT send libpq to the throwaway PostgreSQL (PGHOST stays the
//     Service's name, which verify-full checks the certificate against), and the credentials
//     bootstrap's kubectl reaches the API server with a token of the Job's ServiceAccount (the
//     Role in dist/ decides what it may do). A Secret a variable needs that does not exist keeps
//     the Job running, as the kubelet keeps a pod in CreateContainerConfigError. The status written
//     is the Job controller's: Complete; or Failed with reason PodFailurePolicy when the exit code
//     is in a FailJob rule; otherwise the pod is retried (at once, without the controller's
//     backoff delay) until backoffLimit, then Failed with BackoffLimitExceeded.
//   - the StatefulSet controller and the kubelet for the chart's database: PostgreSQL is configured
//     the way the image's entrypoint does it from the StatefulSet's variables (the superuser's and
//     the application user's passwords from the Secret, the database, TLS from the chart's
//     certificate Secret), the data claim is created from the claim template, and the StatefulSet
//     reports one ready replica only while that PostgreSQL accepts the application user's login.
//   - cert-manager: a Certificate is issued by a throwaway CA (openssl) for its DNS names, into its
//     Secret (tls.crt, tls.key, ca.crt), and reported Ready.
//   - the garbage collector: an object deleted in the foreground (Argo CD prunes that way) keeps
//     its foregroundDeletion finalizer until its dependents are gone; ours have none here (no pods),
//     so the finalizer is removed, as the collector would at once.
//   - the disruption controller (the chart's PodDisruptionBudget counts that pod), the volume
//     provisioner (claims Bound) and a cloud's load balancer controller (an address on
//     a LoadBalancer Service), which Argo CD's health checks wait for.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Kube, kubeBinaries } from './kube';
import { Pg, asServerUser } from './postgres';

/** One run of a Job's pod: what the container did. */
export interface PodRun {
  readonly job: string;
  readonly attempt: number;
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** What the namespace held when the pod started: `Kind/name` → Job condition or StatefulSet ready replicas. */
  readonly seen: Readonly<Record<string, string>>;
}

export interface ClusterStandIn {
  /** Every pod run so far, oldest first. */
  readonly runs: readonly PodRun[];
  /** libpq variables for `db` as the superuser (the Secret's password once the database is configured). */
  adminEnv(db: string): Record<string, string>;
  /** What it is doing now (for error messages). */
  activity(): string;
  /** Runs `sql` in `db` as the superuser; stdout, trimmed. */
  psql(db: string, sql: string): string;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const at = () => new Date(Math.floor(Date.now() / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
const quoteIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;
const quoteLiteral = (s: string) => `'${s.replace(/'/g, "''")}'`;

/**
 * Plays the controllers for namespace `ns` until stop(): polls the API server every `pollMs`,
 * runs what is due, writes the statuses. `pg` is a throwaway server the test owns.
 */
export function startClusterStandIn(kube: Kube, ns: string, pg: Pg, options: { pollMs?: number } = {}): ClusterStandIn {
  const scratch = mkdtempSync(path.join(os.tmpdir(), `learnflow-standin-${ns}-`));
  chmodSync(scratch, 0o711); // the server's user (postgres, when root runs the tests) reads the TLS files inside
  const runs: PodRun[] = [];
  const handled = new Set<string>(); // Job uids with a final status written (or being run)
  let database: { user: string; db: string; adminPassword: string; userPassword: string; tls?: string } | undefined;
  let readyPods = 0;
  let caDir: string | undefined;
  let doing = 'starting';
  let stopped = false;
  let failure: Error | undefined;

  const getJson = async (args: string[]) => JSON.parse(await kube.kubectlOk([...args, '-n', ns, '-o', 'json']));
  const list = async (kind: string) => (await getJson(['get', kind])).items as any[];
  const patchStatus = (kind: string, name: string, status: object) =>
    kube.kubectlOk(['patch', kind, name, '-n', ns, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })]);
  const secretData = async (name: string): Promise<Record<string, string> | undefined> => {
    const r = await kube.kubectl(['get', 'secret', name, '-n', ns, '-o', 'json']);
    if (r.code !== 0) return undefined;
    const data = JSON.parse(r.stdout).data ?? {};
    return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v as string, 'base64').toString('utf8')]));
  };

  const adminEnv = (db = database?.db ?? 'postgres'): Record<string, string> => ({
    ...pg.env(db), PGPASSWORD: database?.adminPassword ?? pg.password,
  });
  const psql = (sql: string, env = adminEnv('postgres')) =>
    execFileSync(path.join(pg.bindir, 'psql'), ['-XAtq', '-v', 'ON_ERROR_STOP=1', '-c', sql], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

  // --- the database: StatefulSet, its data claim, PostgreSQL configured as the image would -------

  /** A container variable's value: plain, from a Secret key, or (`<NAME>_FILE`) a file of a mounted Secret. */
  const resolveVar = async (spec: any, container: any, name: string): Promise<string | undefined> => {
    const v = container.env?.find((e: any) => e.name === name);
    if (v?.value !== undefined) return v.value;
    if (v?.valueFrom?.secretKeyRef) return (await secretData(v.valueFrom.secretKeyRef.name))?.[v.valueFrom.secretKeyRef.key];
    const file = container.env?.find((e: any) => e.name === `${name}_FILE`)?.value;
    if (!file) return undefined;
    const mount = container.volumeMounts?.find((m: any) => file.startsWith(`${m.mountPath.replace(/\/+$/, '')}/`));
    const secret = spec.volumes?.find((vol: any) => vol.name === mount?.name)?.secret?.secretName;
    return secret ? (await secretData(secret))?.[path.basename(file)] : undefined;
  };

  async function configureDatabase(sts: any): Promise<boolean> {
    const spec = sts.spec.template.spec;
    const container = spec.containers.find((c: any) => c.name === 'postgresql');
    const [user, db, userPassword, adminPassword, tlsOn] = await Promise.all(
      ['POSTGRES_USER', 'POSTGRES_DATABASE', 'POSTGRES_PASSWORD', 'POSTGRES_POSTGRES_PASSWORD', 'POSTGRESQL_ENABLE_TLS'].map((n) => resolveVar(spec, container, n)),
    );
    // The kubelet cannot start the container without its Secret: not ready.
    if (!user || !db || !userPassword || !adminPassword) return false;
    const tlsSecret = tlsOn === 'yes' ? spec.volumes.find((v: any) => v.name === 'raw-certificates')?.secret?.secretName : undefined;
    const wanted = { user, db, adminPassword, userPassword, tls: tlsSecret };
    if (JSON.stringify(wanted) === JSON.stringify(database)) return true;
    // As the image's first start: the superuser's password, the application user and its database.
    const env = adminEnv('postgres');
    psql(`ALTER ROLE postgres PASSWORD ${quoteLiteral(adminPassword)}`, env);
    database = { ...wanted };
    const admin = adminEnv('postgres');
    if (psql(`SELECT count(*) FROM pg_roles WHERE rolname = ${quoteLiteral(user)}`, admin) === '0') psql(`CREATE ROLE ${quoteIdent(user)} LOGIN`, admin);
    psql(`ALTER ROLE ${quoteIdent(user)} PASSWORD ${quoteLiteral(userPassword)}`, admin);
    if (psql(`SELECT count(*) FROM pg_database WHERE datname = ${quoteLiteral(db)}`, admin) === '0') psql(`CREATE DATABASE ${quoteIdent(db)} OWNER ${quoteIdent(user)}`, admin);
    if (tlsSecret) await enableTls(tlsSecret, admin);
    return true;
  }

  /** The chart's certificate as the server's (POSTGRESQL_TLS_CERT_FILE/KEY_FILE). */
  async function enableTls(secret: string, env: Record<string, string>): Promise<void> {
    const data = await secretData(secret);
    if (!data?.['tls.crt'] || !data['tls.key']) throw new Error(`stand-in: TLS Secret ${ns}/${secret} has no tls.crt/tls.key`);
    const dir = path.join(scratch, 'tls');
    mkdirSync(dir, { recursive: true });
    const owner = asServerUser();
    for (const [file, text] of [['tls.crt', data['tls.crt']], ['tls.key', data['tls.key']]]) {
      const p = path.join(dir, file);
      writeFileSync(p, text, { mode: 0o600 });
      if (owner) chownSync(p, owner.uid, owner.gid);
    }
    if (owner) chownSync(dir, owner.uid, owner.gid);
    psql(`ALTER SYSTEM SET ssl_cert_file = ${quoteLiteral(path.join(dir, 'tls.crt'))}`, env);
    psql(`ALTER SYSTEM SET ssl_key_file = ${quoteLiteral(path.join(dir, 'tls.key'))}`, env);
    psql('ALTER SYSTEM SET ssl = on', env);
    psql('SELECT pg_reload_conf()', env);
  }

  /** The readiness probe's question: does the application user get in? */
  const answers = () => {
    if (!database) return false;
    try {
      return psql('SELECT 1', { ...pg.env(database.db), PGUSER: database.user, PGPASSWORD: database.userPassword }) === '1';
    } catch {
      return false;
    }
  };

  async function playStatefulSets(): Promise<void> {
    for (const sts of await list('statefulsets')) {
      const name = sts.metadata.name;
      for (const template of sts.spec.volumeClaimTemplates ?? []) {
        const claim = `${template.metadata.name}-${name}-0`;
        if ((await kube.kubectl(['get', 'pvc', claim, '-n', ns])).code !== 0) {
          await kube.kubectlOk(['create', '-f', '-'], { input: JSON.stringify({
            apiVersion: 'v1', kind: 'PersistentVolumeClaim',
            metadata: { name: claim, namespace: ns, labels: sts.spec.selector.matchLabels },
            spec: template.spec,
          }) });
        }
      }
      const ready = (await configureDatabase(sts)) && answers() ? 1 : 0;
      const revision = `${name}-${sts.metadata.generation}`;
      const status = {
        observedGeneration: sts.metadata.generation, replicas: 1, readyReplicas: ready, availableReplicas: ready,
        currentReplicas: 1, updatedReplicas: 1, currentRevision: revision, updateRevision: revision, collisionCount: 0,
      };
      const s = sts.status ?? {};
      if (Object.entries(status).some(([k, v]) => s[k] !== v)) await patchStatus('statefulset', name, status);
      readyPods = ready;
    }
    // The disruption controller: the chart's PodDisruptionBudget over that one pod.
    for (const pdb of await list('poddisruptionbudgets')) {
      const maxUnavailable = pdb.spec.maxUnavailable ?? 0;
      const desired = Math.max(0, 1 - (typeof maxUnavailable === 'number' ? maxUnavailable : 1));
      const allowed = Math.max(0, readyPods - desired);
      const status = { observedGeneration: pdb.metadata.generation, expectedPods: 1, currentHealthy: readyPods, desiredHealthy: desired, disruptionsAllowed: allowed };
      const s = pdb.status ?? {};
      if (Object.entries(status).some(([k, v]) => s[k] !== v)) {
        await patchStatus('poddisruptionbudget', pdb.metadata.name, {
          ...status,
          conditions: [{ type: 'DisruptionAllowed', status: allowed > 0 ? 'True' : 'False', reason: allowed > 0 ? 'SufficientPods' : 'InsufficientPods', message: '', observedGeneration: pdb.metadata.generation, lastTransitionTime: at() }],
        });
      }
    }
  }

  async function playVolumesAndLoadBalancers(): Promise<void> {
    for (const pvc of await list('pvc')) {
      if (pvc.status?.phase !== 'Bound') await patchStatus('pvc', pvc.metadata.name, { phase: 'Bound', accessModes: pvc.spec.accessModes, capacity: pvc.spec.resources.requests });
    }
    for (const svc of await list('services')) {
      if (svc.spec.type === 'LoadBalancer' && !svc.status?.loadBalancer?.ingress?.length) {
        await patchStatus('service', svc.metadata.name, { loadBalancer: { ingress: [{ ip: '192.0.2.10' }] } }); // TEST-NET-1
      }
    }
  }

  /** cert-manager: each Certificate without its Secret gets one from the throwaway CA, and Ready. */
  async function issueCertificates(): Promise<void> {
    const r = await kube.kubectl(['get', 'certificates.cert-manager.io', '-n', ns, '-o', 'json']);
    if (r.code !== 0) return; // no cert-manager CRDs
    for (const cert of JSON.parse(r.stdout).items as any[]) {
      const ready = (cert.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True');
      if (ready && (await secretData(cert.spec.secretName))) continue;
      const dir = mkdtempSync(path.join(scratch, 'certificate-'));
      const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      if (!caDir) {
        caDir = mkdtempSync(path.join(scratch, 'ca-'));
        execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
          '-subj', '/CN=learnflow-test-ca', '-keyout', 'ca.key', '-out', 'ca.crt'], { cwd: caDir, stdio: 'ignore' });
      }
      openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${cert.spec.dnsNames[0]}`, '-keyout', 'tls.key', '-out', 'tls.csr');
      writeFileSync(path.join(dir, 'ext.cnf'), `subjectAltName=${cert.spec.dnsNames.map((n: string) => `DNS:${n}`).join(',')}\nextendedKeyUsage=serverAuth\n`);
      openssl('x509', '-req', '-in', 'tls.csr', '-CA', path.join(caDir, 'ca.crt'), '-CAkey', path.join(caDir, 'ca.key'), '-CAcreateserial', '-days', '2', '-extfile', 'ext.cnf', '-out', 'tls.crt');
      const file = (f: string) => path.join(f === 'ca.crt' ? caDir! : dir, f);
      await kube.kubectl(['delete', 'secret', cert.spec.secretName, '-n', ns, '--ignore-not-found']);
      await kube.kubectlOk(['create', 'secret', 'tls', cert.spec.secretName, '-n', ns, `--cert=${file('tls.crt')}`, `--key=${file('tls.key')}`]);
      await kube.kubectlOk(['patch', 'secret', cert.spec.secretName, '-n', ns, '--type=merge', '-p',
        JSON.stringify({ data: { 'ca.crt': readFileSync(file('ca.crt')).toString('base64') } })]);
      await patchStatus('certificate.cert-manager.io', cert.metadata.name, {
        conditions: [{ type: 'Ready', status: 'True', reason: 'Ready', message: 'Certificate is up to date and has not expired', lastTransitionTime: at(), observedGeneration: cert.metadata.generation }],
        notAfter: new Date(Date.now() + 2 * 86400_000).toISOString().replace(/\.\d{3}Z$/, 'Z'), revision: 1,
      });
    }
  }

  async function collectGarbage(): Promise<void> {
    for (const o of (await getJson(['get', 'jobs,configmaps,cronjobs'])).items as any[]) {
      const finalizers: string[] = o.metadata.finalizers ?? [];
      if (!o.metadata.deletionTimestamp || !finalizers.includes('foregroundDeletion')) continue;
      await kube.kubectl(['patch', `${o.kind.toLowerCase()}/${o.metadata.name}`, '-n', ns, '--type=merge', '-p',
        JSON.stringify({ metadata: { finalizers: finalizers.filter((f) => f !== 'foregroundDeletion') } })]);
    }
  }

  // --- Jobs --------------------------------------------------------------------------------------

  /** The pod's file system as the kubelet mounts it: mount path → local directory. */
  async function mountVolumes(spec: any, container: any, dir: string): Promise<Map<string, string> | undefined> {
    const mounts = new Map<string, string>();
    for (const m of container.volumeMounts ?? []) {
      const volume = spec.volumes.find((v: any) => v.name === m.name);
      const local = path.join(dir, m.name); // one directory per volume: the pod's containers share it
      mkdirSync(local, { recursive: true });
      if (volume.secret) {
        const data = await secretData(volume.secret.secretName);
        if (!data) return undefined; // ContainerCreating until it exists
        const items: { key: string; path: string }[] = volume.secret.items ?? Object.keys(data).map((key) => ({ key, path: key }));
        for (const item of items) writeFileSync(path.join(local, item.path), data[item.key] ?? '', { mode: 0o600 });
        mounts.set(m.mountPath.replace(/\/+$/, ''), local);
        continue;
      }
      const configMaps = volume.configMap ? [volume.configMap] : (volume.projected?.sources ?? []).map((s: any) => s.configMap).filter(Boolean);
      for (const ref of configMaps) {
        const r = await kube.kubectl(['get', 'configmap', ref.name, '-n', ns, '-o', 'json']);
        if (r.code !== 0) return undefined; // ContainerCreating until it exists
        for (const [file, text] of Object.entries(JSON.parse(r.stdout).data ?? {})) writeFileSync(path.join(local, file), text as string);
      }
      mounts.set(m.mountPath.replace(/\/+$/, ''), local);
    }
    return mounts;
  }

  /** The Jobs (Complete, Failed or Running) and StatefulSets (ready replicas) of the namespace. */
  async function observe(): Promise<Record<string, string>> {
    const seen: Record<string, string> = {};
    for (const job of await list('jobs')) {
      const done = (job.status?.conditions ?? []).find((c: any) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
      seen[`Job/${job.metadata.name}`] = done?.type ?? 'Running';
    }
    for (const sts of await list('statefulsets')) seen[`StatefulSet/${sts.metadata.name}`] = `ready ${sts.status?.readyReplicas ?? 0}`;
    return seen;
  }

  async function runPod(job: any, attempt: number): Promise<PodRun | undefined> {
    const spec = job.spec.template.spec;
    const dir = mkdtempSync(path.join(scratch, `${job.metadata.name}-${attempt}-`)); // a Job re-created under its name is a new pod
    const seen = await observe();
    let last: { code: number | null; stdout: string; stderr: string } = { code: 0, stdout: '', stderr: '' };
    for (const container of [...(spec.initContainers ?? []), spec.containers[0]]) {
      const result = await runContainer(spec, container, dir);
      if (!result) return undefined;
      last = { code: result.code, stdout: last.stdout + result.stdout, stderr: last.stderr + result.stderr };
      if (result.code !== 0) break; // a failed init container fails the pod
    }
    return { job: job.metadata.name, attempt, ...last, seen };
  }

  /** One container of the pod, or undefined while a ConfigMap or Secret it needs is missing. */
  async function runContainer(spec: any, container: any, dir: string): Promise<{ code: number | null; stdout: string; stderr: string } | undefined> {
    const mounts = await mountVolumes(spec, container, dir);
    if (!mounts) return undefined;
    const onMounts = (value: string) => {
      for (const [mountPath, local] of mounts) if (value === mountPath || value.startsWith(`${mountPath}/`)) return local + value.slice(mountPath.length);
      return value;
    };
    const env: Record<string, string> = {};
    for (const e of container.env ?? []) {
      if (e.value !== undefined) env[e.name] = onMounts(e.value);
      else if (e.valueFrom?.secretKeyRef) {
        const value = (await secretData(e.valueFrom.secretKeyRef.name))?.[e.valueFrom.secretKeyRef.key];
        if (value === undefined) return undefined; // CreateContainerConfigError: the pod waits
        env[e.name] = value;
      }
    }
    if (env.PGHOST !== undefined) Object.assign(env, { PGHOSTADDR: pg.host, PGPORT: String(pg.port) });
    const account = spec.serviceAccountName;
    if (account && spec.automountServiceAccountToken !== false) env.KUBECONFIG = await kube.asServiceAccount(ns, account);
    const home = mkdtempSync(path.join(dir, 'home-'));
    Object.assign(env, {
      PATH: [pg.bindir, kubeBinaries().binDir, process.env.PATH ?? '/usr/bin:/bin'].join(path.delimiter),
      HOME: home,
      TMPDIR: mounts.get('/tmp') ?? dir,
    });
    const [command, ...args] = [...(container.command ?? []), ...(container.args ?? [])].map(onMounts);
    return new Promise((resolve, reject) => {
      const child = spawn(command, args, { env, cwd: dir });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  /** The outcome the Job controller decides after a failed pod, by the Job's pod failure policy. */
  const failJobRule = (job: any, container: string, code: number) =>
    (job.spec.podFailurePolicy?.rules ?? []).some((r: any) => r.action === 'FailJob' && r.onExitCodes &&
      (r.onExitCodes.containerName ?? container) === container && (r.onExitCodes.operator === 'In') === r.onExitCodes.values.includes(code));

  async function playJob(job: any): Promise<void> {
    const name = job.metadata.name;
    const container = job.spec.template.spec.containers[0].name;
    const started = at();
    for (let attempt = 1; ; attempt++) {
      let run: PodRun | undefined;
      doing = `running Job ${name} (pod ${attempt})`;
      while (!(run = await runPod(job, attempt))) {
        doing = `Job ${name} (pod ${attempt}) waits for a ConfigMap or Secret`;
        if (stopped || (await kube.kubectl(['get', 'job', name, '-n', ns, '-o', `jsonpath={.metadata.uid}`])).stdout !== job.metadata.uid) return;
        await sleep(500);
      }
      runs.push(run);
      if (run.code === 0) {
        await patchStatus('job', name, {
          startTime: started, completionTime: at(), succeeded: 1, active: 0, ready: 0,
          conditions: [{ type: 'Complete', status: 'True', lastProbeTime: at(), lastTransitionTime: at() }],
        });
        return;
      }
      const code = run.code ?? 137;
      const failedBy = failJobRule(job, container, code)
        ? { reason: 'PodFailurePolicy', message: `Container ${container} for pod ${ns}/${name}-${attempt} failed with exit code ${code} matching FailJob rule` }
        : attempt > job.spec.backoffLimit ? { reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' } : undefined;
      if (failedBy) {
        const now = at();
        await patchStatus('job', name, {
          startTime: started, failed: attempt, active: 0, ready: 0,
          conditions: ['FailureTarget', 'Failed'].map((type) => ({ type, status: 'True', ...failedBy, lastProbeTime: now, lastTransitionTime: now })),
        });
        return;
      }
      await patchStatus('job', name, { startTime: started, failed: attempt, active: 1 });
    }
  }

  async function playJobs(): Promise<void> {
    for (const job of await list('jobs')) {
      const done = (job.status?.conditions ?? []).some((c: any) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
      if (done || handled.has(job.metadata.uid) || job.metadata.deletionTimestamp) continue;
      handled.add(job.metadata.uid);
      // One Job at a time is enough here: the waves never run two of ours at once.
      try {
        await playJob(job);
      } catch (e) {
        handled.delete(job.metadata.uid); // the next poll tries again
        throw e;
      }
    }
  }

  const loop = (async () => {
    while (!stopped) {
      try {
        if ((await kube.kubectl(['get', 'namespace', ns])).code === 0) {
          doing = 'collecting garbage';
          await collectGarbage();
          doing = 'issuing certificates';
          await issueCertificates();
          doing = 'binding claims';
          await playVolumesAndLoadBalancers();
          doing = 'playing the StatefulSet';
          await playStatefulSets();
          doing = 'looking for Jobs';
          await playJobs();
          doing = 'idle';
        }
      } catch (e) {
        if (!stopped) {
          failure = e as Error;
          console.error(`cluster stand-in for ${ns}: ${failure.message}`);
        }
      }
      await sleep(options.pollMs ?? 500);
    }
  })();

  return {
    runs,
    activity: () => `${doing}${failure ? ` (last error: ${failure.message})` : ''}`,
    adminEnv: (db) => {
      if (failure) throw failure;
      return adminEnv(db);
    },
    psql: (db, sql) => {
      if (failure) throw failure;
      return psql(sql, adminEnv(db));
    },
    stop: async () => {
      stopped = true;
      await loop;
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}
