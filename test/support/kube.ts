// A throwaway Kubernetes API server for tests, the way controller-runtime's envtest runs one:
// etcd + kube-apiserver as plain processes on loopback ports, state in a temp dir, no kubelet, no
// controllers (so nothing is scheduled or run: Jobs stay Jobs, namespaces never finish deleting,
// ServiceAccounts and their `default` must be created by the test). What it does give is the real
// API: schemas, defaulting, validation, admission (Pod Security included), RBAC, TokenRequest.
//
// Binaries: `sh scripts/kube-test-env.sh` builds kube-apiserver + kubectl into a cache dir and
// installs etcd. One server per test file (beforeAll/afterAll):
//
//   describeKube('my thing', () => {
//     let kube: Kube;
//     beforeAll(async () => { kube = await startKube(); });
//     afterAll(async () => { await kube?.stop(); });
//     ...
//   });
import { ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, inject, it } from 'vitest';
import { freePort } from './ports';

const ROOT = path.resolve(__dirname, '..', '..');
const SETUP_SCRIPT = path.join(ROOT, 'scripts', 'kube-test-env.sh');
const SETUP_HINT = 'run `sh scripts/kube-test-env.sh` (installs etcd-server with apt, builds kube-apiserver and kubectl with Go)';

export interface KubectlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface KubectlOptions {
  /** Written to kubectl's stdin (e.g. manifests for `apply -f -`). */
  input?: string;
  /** Act as someone else: a kubeconfig from asServiceAccount(). Default: the admin's. */
  kubeconfig?: string;
  /** Kill kubectl after this long (default 30 s). */
  timeoutMs?: number;
}

/** What locates a running server: enough for another process to use it (see {@link connectKube}). */
export interface KubeInfo {
  /** Kubeconfig of an admin (static token, group system:masters). */
  readonly kubeconfig: string;
  /** https://127.0.0.1:<port> */
  readonly server: string;
  /** The server's CA certificate, for ServiceAccount kubeconfigs. */
  readonly ca: string;
  /** Kubernetes version of the server and kubectl, e.g. `1.31.0`. */
  readonly version: string;
  /** Wall time from startKube() to a ready apiserver. */
  readonly startupMs: number;
  /** The temp dir holding etcd's data, keys, logs and kubeconfigs (removed by stop()). */
  readonly dir: string;
}

export interface Kube extends KubeInfo {
  /** Runs our kubectl against this server; never throws for a non-zero exit. */
  kubectl(args: string[], opts?: KubectlOptions): Promise<KubectlResult>;
  /** Like kubectl() but throws (with stderr) unless it exits 0; returns stdout. */
  kubectlOk(args: string[], opts?: KubectlOptions): Promise<string>;
  /**
   * A kubeconfig that authenticates as ServiceAccount `name` in `ns` (which must exist) with a
   * TokenRequest token, i.e. as `system:serviceaccount:<ns>:<name>` — for RBAC checks.
   */
  asServiceAccount(ns: string, name: string): Promise<string>;
  /** Kills kube-apiserver and etcd and removes the temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartKubeOptions {
  /** Kubernetes version of the server (and its kubectl), built by scripts/kube-test-env.sh. @default kubeVersion() */
  version?: string;
  /** Extra kube-apiserver flags, e.g. `['--feature-gates=Foo=true']`. */
  apiserverArgs?: string[];
  /** Give up waiting for /readyz after this long (default 90 s). */
  readyTimeoutMs?: number;
}

export interface KubeBinaries {
  readonly version: string;
  readonly binDir: string;
  readonly kubeApiserver: string;
  readonly kubectl: string;
  readonly etcd: string;
}

/** The version scripts/kube-test-env.sh builds (LEARNFLOW_KUBE_VERSION overrides both). */
export function kubeVersion(): string {
  const fromEnv = process.env.LEARNFLOW_KUBE_VERSION?.replace(/^v/, '');
  if (fromEnv) return fromEnv;
  const match = /^KUBE_VERSION_DEFAULT=([0-9]+\.[0-9]+\.[0-9]+)\s*$/m.exec(readFileSync(SETUP_SCRIPT, 'utf8'));
  if (!match) throw new Error(`no KUBE_VERSION_DEFAULT=<x.y.z> line in ${SETUP_SCRIPT}`);
  return match[1];
}

export function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The path of executable `name` on PATH, or undefined. */
export function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

/** Where the binaries of `version` are; throws with what is missing and how to get it. */
export function kubeBinaries(version = kubeVersion()): KubeBinaries {
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  const binDir = (version === kubeVersion() && process.env.LEARNFLOW_KUBE_BIN_DIR) || path.join(cache, 'learnflow-postgres', 'kube', version);
  const kubeApiserver = path.join(binDir, 'kube-apiserver');
  const kubectl = path.join(binDir, 'kubectl');
  const etcd = onPath('etcd') ?? (isExecutable('/usr/bin/etcd') ? '/usr/bin/etcd' : undefined);
  const missing = [
    isExecutable(kubeApiserver) ? null : kubeApiserver,
    isExecutable(kubectl) ? null : kubectl,
    etcd ? null : 'etcd (on PATH or /usr/bin/etcd)',
  ].filter((m): m is string => m !== null);
  const hint = version === kubeVersion() ? SETUP_HINT : SETUP_HINT.replace('`sh scripts', `\`LEARNFLOW_KUBE_VERSION=${version} sh scripts`);
  if (missing.length > 0) throw new Error(`Kubernetes test binaries missing: ${missing.join(', ')}; ${hint}`);
  return { version, binDir, kubeApiserver, kubectl, etcd: etcd! };
}

/** Whether startKube() can run here (for `version`); `reason` says what is missing. */
export function kubeAvailable(version?: string): { ok: boolean; reason?: string } {
  try {
    kubeBinaries(version);
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
}

/** True when LEARNFLOW_REQUIRE_KUBE is set (CI): then a missing toolchain fails instead of skipping. */
export function kubeRequired(): boolean {
  const v = process.env.LEARNFLOW_REQUIRE_KUBE;
  return v !== undefined && v !== '' && v !== '0' && v !== 'false';
}

/**
 * `describe` for suites that need startKube(): runs them where the binaries are; elsewhere skips
 * them (saying why), unless LEARNFLOW_REQUIRE_KUBE is set, where it registers one failing test
 * with the reason instead.
 */
export function describeKube(name: string, fn: () => void): void {
  const available = kubeAvailable();
  if (available.ok) {
    describe(name, fn);
  } else if (kubeRequired()) {
    describe(name, () => {
      it('has the Kubernetes test binaries (LEARNFLOW_REQUIRE_KUBE is set)', () => {
        throw new Error(available.reason);
      });
    });
  } else {
    console.warn(`skipping "${name}": ${available.reason}`);
    describe.skip(`${name} [skipped: no kube-apiserver/etcd here]`, fn);
  }
}

/** Processes still running when the test worker exits are killed with it. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  live.add(child);
  child.on('exit', () => live.delete(child));
}

/** Starts a server process with its output appended to `log`; it is killed if the test worker exits. */
export function spawnLogged(cmd: string, args: string[], log: string, env?: NodeJS.ProcessEnv): ChildProcess {
  const fd = openSync(log, 'a');
  try {
    const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], ...(env ? { env } : {}) });
    track(child);
    return child;
  } finally {
    closeSync(fd);
  }
}

export function tail(file: string, lines = 25): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** GET `url` and resolve with [status, body]; rejects on a connection error. */
export function get(url: string, headers: Record<string, string> = {}, ca?: string): Promise<[number, string]> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const opts = { method: 'GET', headers, timeout: 5_000, ...(u.protocol === 'https:' ? (ca ? { ca } : { rejectUnauthorized: false }) : {}) };
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, opts, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve([res.statusCode ?? 0, body]));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Polls until `check` resolves true; fails early if `child` exits. */
export async function waitFor(what: string, child: ChildProcess, log: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before it was ready; log ${log}:\n${tail(log)}`);
    }
    try {
      if (await check()) return;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${what} not ready after ${timeoutMs} ms (${last}); log ${log}:\n${tail(log)}`);
    await sleep(100);
  }
}

export async function stopProcess(child: ChildProcess | undefined, graceMs = 10_000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** A temp dir, on tmpfs where there is one: etcd fsyncs every write and has no flag to stop it. */
function makeTempDir(): string {
  for (const base of ['/dev/shm', os.tmpdir()]) {
    try {
      accessSync(base, constants.W_OK);
      return mkdtempSync(path.join(base, 'learnflow-kube-'));
    } catch {
      // try the next
    }
  }
  return mkdtempSync(path.join(os.tmpdir(), 'learnflow-kube-'));
}

function kubeconfigYaml(server: string, ca: string, user: string, token: string): string {
  // JSON is YAML; quoting every value keeps paths and tokens safe.
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'learnflow-test', cluster: { server, 'certificate-authority': ca } }],
      users: [{ name: user, user: { token } }],
      contexts: [{ name: user, context: { cluster: 'learnflow-test', user } }],
      'current-context': user,
      preferences: {},
    },
    null,
    2,
  ) + '\n';
}

/** Starts etcd + kube-apiserver on free loopback ports and waits until the apiserver is ready. */
export async function startKube(options: StartKubeOptions = {}): Promise<Kube> {
  const started = Date.now();
  const bins = kubeBinaries(options.version);
  const dir = makeTempDir();
  let etcd: ChildProcess | undefined;
  let apiserver: ChildProcess | undefined;
  const stop = async () => {
    try {
      await stopProcess(apiserver);
      await stopProcess(etcd);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  try {
    // --- credentials ---------------------------------------------------------------------------
    const pki = path.join(dir, 'pki');
    mkdirSync(pki, { mode: 0o700 });
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const saKey = path.join(pki, 'sa.key');
    const saPub = path.join(pki, 'sa.pub');
    writeFileSync(saKey, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    writeFileSync(saPub, publicKey.export({ type: 'spki', format: 'pem' }));
    const adminToken = randomBytes(24).toString('hex');
    const tokenFile = path.join(pki, 'tokens.csv');
    writeFileSync(tokenFile, `${adminToken},admin,admin,"system:masters"\n`, { mode: 0o600 });

    // --- etcd ----------------------------------------------------------------------------------
    const etcdLog = path.join(dir, 'etcd.log');
    let etcdUrl = '';
    for (let attempt = 1; ; attempt++) {
      const [client, peer] = [await freePort(), await freePort()];
      if (client === peer) continue;
      etcdUrl = `http://127.0.0.1:${client}`;
      const peerUrl = `http://127.0.0.1:${peer}`;
      rmSync(path.join(dir, 'etcd'), { recursive: true, force: true });
      etcd = spawnLogged(bins.etcd, [
        '--name=default',
        `--data-dir=${path.join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=default=${peerUrl}`,
        '--initial-cluster-state=new',
        '--snapshot-count=10000',
        '--logger=zap',
        '--log-outputs=stderr',
      ], etcdLog);
      try {
        await waitFor('etcd', etcd, etcdLog, 30_000, async () => {
          const [status, body] = await get(`${etcdUrl}/health`);
          return status === 200 && /"health":\s*"true"/.test(body);
        });
        break;
      } catch (e) {
        await stopProcess(etcd);
        if (attempt >= 3) throw e; // a port was taken between freePort() and the start
      }
    }

    // --- kube-apiserver ------------------------------------------------------------------------
    const certDir = path.join(dir, 'certs');
    const apiLog = path.join(dir, 'kube-apiserver.log');
    let server = '';
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      server = `https://127.0.0.1:${port}`;
      apiserver = spawnLogged(bins.kubeApiserver, [
        `--etcd-servers=${etcdUrl}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${port}`,
        `--cert-dir=${certDir}`, // self-signed serving cert for 127.0.0.1
        `--token-auth-file=${tokenFile}`,
        '--authorization-mode=RBAC',
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-key-file=${saPub}`,
        `--service-account-signing-key-file=${saKey}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        // Default admission plugins (NamespaceLifecycle, LimitRanger, ServiceAccount, PodSecurity,
        // ResourceQuota, ValidatingAdmissionPolicy, webhooks, …) stay on; nothing is disabled.
        '--allow-privileged=true', // leave privileged pods to Pod Security admission, as clusters do
        '--endpoint-reconciler-type=none', // no `kubernetes` Endpoints pointing at loopback
        '--profiling=false',
        ...(options.apiserverArgs ?? []),
      ], apiLog);
      try {
        await waitFor('kube-apiserver', apiserver, apiLog, options.readyTimeoutMs ?? 90_000, async () => {
          const [status] = await get(`${server}/readyz`, { Authorization: `Bearer ${adminToken}` });
          return status === 200;
        });
        break;
      } catch (e) {
        await stopProcess(apiserver);
        if (attempt >= 3 || !/address already in use/.test(tail(apiLog, 50))) throw e;
      }
    }

    // The generated apiserver.crt is a chain ending in its own CA, valid for 127.0.0.1.
    const ca = path.join(certDir, 'apiserver.crt');
    const caPem = readFileSync(ca, 'utf8');
    // /readyz can pass a moment before the apiserver has created its system namespaces.
    for (const ns of ['default', 'kube-system', 'kube-public']) {
      await waitFor(`namespace ${ns}`, apiserver!, apiLog, 30_000, async () => {
        const [status] = await get(`${server}/api/v1/namespaces/${ns}`, { Authorization: `Bearer ${adminToken}` }, caPem);
        return status === 200;
      });
    }
    const kubeconfig = path.join(dir, 'admin.kubeconfig');
    writeFileSync(kubeconfig, kubeconfigYaml(server, ca, 'admin', adminToken), { mode: 0o600 });
    return { ...connectKube({ kubeconfig, server, ca, version: bins.version, startupMs: Date.now() - started, dir }), stop };
  } catch (e) {
    await stop();
    throw e;
  }
}


/** A handle on the server `info` locates, e.g. one a globalSetup started; its stop() does nothing. */
export function connectKube(info: KubeInfo): Kube {
  const bins = kubeBinaries(info.version);
  const kubectl = (args: string[], opts: KubectlOptions = {}) =>
    runKubectl(bins.kubectl, ['--kubeconfig', opts.kubeconfig ?? info.kubeconfig, ...args], info.dir, opts);
  const kubectlOk = async (args: string[], opts: KubectlOptions = {}) => {
    const r = await kubectl(args, opts);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}:\n${r.stderr || r.stdout}`);
    return r.stdout;
  };
  return {
    ...info,
    kubectl,
    kubectlOk,
    asServiceAccount: async (ns, name) => {
      const token = (await kubectlOk(['create', 'token', name, '-n', ns, '--duration=1h'])).trim();
      // Several test files may share the server and its folder: a name of its own per kubeconfig.
      const file = path.join(info.dir, `sa-${process.pid}-${randomBytes(4).toString('hex')}-${ns}-${name}.kubeconfig`);
      writeFileSync(file, kubeconfigYaml(info.server, info.ca, `system:serviceaccount:${ns}:${name}`, token), { mode: 0o600 });
      return file;
    },
    stop: async () => {},
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** The API server test/support/global-setup.ts started for this run's files to share. */
    kube?: KubeInfo;
  }
}

/**
 * The run's shared API server (test/support/global-setup.ts), or for a file run without it one
 * of its own, started before the file's tests and stopped after them. Call inside describeKube;
 * keep to namespaces of the file's own and leave cluster-wide objects alone unless the file is
 * their only user (StorageClasses: test/cli/deploy.test.ts).
 */
export function useSharedKube(ready: (kube: Kube) => void): void {
  let own: Kube | undefined;
  beforeAll(async () => {
    const shared = inject('kube');
    const kube = shared ? connectKube(shared) : (own = await startKube());
    ready(kube);
  });
  afterAll(async () => {
    await own?.stop();
  });
}

/** The server and its description, for {@link connectKube} elsewhere. */
export function kubeInfo(kube: Kube): KubeInfo {
  return { kubeconfig: kube.kubeconfig, server: kube.server, ca: kube.ca, version: kube.version, startupMs: kube.startupMs, dir: kube.dir };
}

function runKubectl(kubectl: string, args: string[], dir: string, opts: KubectlOptions): Promise<KubectlResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, KUBECACHEDIR: path.join(dir, 'kubectl-cache') };
  delete env.KUBECONFIG;
  return runProcess(kubectl, args, { env, input: opts.input, timeoutMs: opts.timeoutMs ?? 30_000 });
}

export interface RunProcessOptions {
  /** The whole environment. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Written to stdin. */
  readonly input?: string | Buffer;
  /** Kill the process after this long. @default 60_000 */
  readonly timeoutMs?: number;
}

/** Runs `file` and resolves with its exit code and output; rejects only if it cannot start or is killed (timeout). */
export function runProcess(file: string, args: readonly string[], opts: RunProcessOptions = {}): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const command = `${path.basename(file)} ${args.join(' ')}`;
      if (signal) reject(new Error(`${command} killed by ${signal}${signal === 'SIGKILL' ? ` (timeout ${timeoutMs} ms)` : ''}:\n${stderr}`));
      else resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.on('error', () => {}); // the process may exit before reading all input
    child.stdin.end(opts.input ?? '');
  });
}

/** The log files of a running server, for debugging a failing test. */
export function kubeLogs(kube: Kube): { etcd: string; apiserver: string } {
  const read = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8') : '');
  return { etcd: read(path.join(kube.dir, 'etcd.log')), apiserver: read(path.join(kube.dir, 'kube-apiserver.log')) };
}
