// Argo CD's repo-server and application controller as local processes against the test API
// server, the way Argo CD's own developers run them (no UI, no API server, no Dex): the CRDs and
// config objects of the same release applied into namespace `argocd`, a `default` AppProject,
// redis-server on loopback. The in-cluster destination (https://kubernetes.default.svc) is the
// test API server: the controller uses its own kubeconfig for it.
//
//   let kube: Kube; let argocd: ArgoCd;
//   beforeAll(async () => { kube = await startKube(); argocd = await startArgoCd(kube); });
//   afterAll(async () => { await argocd?.stop(); await kube?.stop(); });
//
// Binaries: `sh scripts/test-tools.sh argocd redis helm` (Argo CD v3.6.1 built with Go 1.27.3).
import { ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { Kube, get, stopProcess } from './kube';
import { freePort } from './ports';
import { Redis, StartedServer, inServerDir, startRedis, startServer } from './servers';
import { helmEnv, requireTool } from './tools';

/** The namespace Argo CD runs in and watches for Applications. */
export const ARGOCD_NAMESPACE = 'argocd';

export interface ArgoCdBinaries {
  /** The multi-call binary; the others are symlinks to it. */
  readonly argocd: string;
  readonly repoServer: string;
  readonly applicationController: string;
  /** The release's CRDs (application-crd.yaml, appproject-crd.yaml, applicationset-crd.yaml). */
  readonly crdsDir: string;
  /** The release's config objects (argocd-cm.yaml, argocd-secret.yaml, argocd-rbac-cm.yaml, …). */
  readonly configDir: string;
}

export function argoCdBinaries(): ArgoCdBinaries {
  const argocd = requireTool('argocd');
  const dir = path.dirname(argocd);
  return {
    argocd,
    repoServer: path.join(dir, 'argocd-repo-server'),
    applicationController: path.join(dir, 'argocd-application-controller'),
    crdsDir: path.join(dir, 'crds'),
    configDir: path.join(dir, 'config'),
  };
}

export interface ArgoCd {
  readonly namespace: string;
  /** 127.0.0.1:<port>, plaintext gRPC. */
  readonly repoServer: string;
  readonly redis: Redis;
  /** http://127.0.0.1:<port> of each component's metrics server (/healthz, /metrics). */
  readonly repoServerMetrics: string;
  readonly controllerMetrics: string;
  /** Wall time from startArgoCd() to both components healthy. */
  readonly startupMs: number;
  readonly dir: string;
  /** The components' logs so far. */
  logs(): { repoServer: string; applicationController: string };
  /** Stops the controller, the repo-server and redis (the API server is the caller's). */
  stop(): Promise<void>;
}

export interface StartArgoCdOptions {
  /** Extra data for argocd-cm (e.g. `timeout.reconciliation`). */
  readonly argocdCm?: Readonly<Record<string, string>>;
  /** @default 120_000 */
  readonly readyTimeoutMs?: number;
}

const DEFAULT_PROJECT = {
  apiVersion: 'argoproj.io/v1alpha1',
  kind: 'AppProject',
  metadata: { name: 'default', namespace: ARGOCD_NAMESPACE },
  spec: {
    sourceRepos: ['*'],
    destinations: [{ server: '*', namespace: '*' }],
    clusterResourceWhitelist: [{ group: '*', kind: '*' }],
  },
};

/** Applies Argo CD's CRDs and config objects, then starts redis, the repo-server and the controller. */
export async function startArgoCd(kube: Kube, options: StartArgoCdOptions = {}): Promise<ArgoCd> {
  const started = Date.now();
  const bins = argoCdBinaries();
  const helm = requireTool('helm');
  await installArgoCdObjects(kube, bins, options.argocdCm ?? {});

  return inServerDir('argocd', async (dir) => {
    let redis: Redis | undefined;
    const children: ChildProcess[] = [];
    const stop = async () => {
      for (const child of children.reverse()) await stopProcess(child);
      await redis?.stop();
      rmSync(dir, { recursive: true, force: true });
    };
    try {
      redis = await startRedis();
      const home = path.join(dir, 'home');
      mkdirSync(home);
      // The repo-server shells out to git and helm: ours first on PATH. Its working copies,
      // GnuPG and helm state stay in this dir, never in the user's home.
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        HOME: home,
        // Its image has git-verify-wrapper.sh beside the binary too; so does the cache.
        PATH: [path.dirname(helm), path.dirname(bins.argocd), process.env.PATH ?? ''].join(path.delimiter),
        KUBECONFIG: kube.kubeconfig,
        // As in Argo CD's own Procfile: the in-cluster destination uses this kubeconfig.
        ARGOCD_FAKE_IN_CLUSTER: 'true',
        ARGOCD_GPG_ENABLED: 'false',
        ARGOCD_TLS_DATA_PATH: path.join(dir, 'tls'),
        ARGOCD_SSH_DATA_PATH: path.join(dir, 'ssh'),
        ARGOCD_GNUPGHOME: path.join(dir, 'gnupg'),
        // The git credential helper's socket: /tmp/reposerver-ask-pass.sock by default, which two
        // repo-servers on one machine would share.
        ARGOCD_ASK_PASS_SOCK: path.join(dir, 'askpass.sock'),
        ...helmEnv(path.join(home, 'helm')),
        TMPDIR: dir,
      };
      const healthz = (port: number) => async () => (await get(`http://127.0.0.1:${port}/healthz`))[0] === 200;
      const timeout = options.readyTimeoutMs ?? 120_000;

      const repoMetricsPort = await freePort();
      const repo = await startServer({
        name: 'argocd-repo-server',
        command: bins.repoServer,
        args: (port) => [
          '--address', '127.0.0.1', '--port', String(port),
          '--metrics-address', '127.0.0.1', '--metrics-port', String(repoMetricsPort),
          '--redis', redis!.address, '--disable-tls', '--client-ca-path=', '--loglevel', 'info', '--logformat', 'text',
        ],
        dir,
        env,
        ready: healthz(repoMetricsPort),
        readyTimeoutMs: timeout,
      }).then((s) => track(children, s));
      const repoServer = `127.0.0.1:${repo.port}`;

      const controller = await startServer({
        name: 'argocd-application-controller',
        command: bins.applicationController,
        args: (port) => [
          '--kubeconfig', kube.kubeconfig, '--namespace', ARGOCD_NAMESPACE,
          '--repo-server', repoServer, '--repo-server-plaintext',
          '--redis', redis!.address, '--metrics-port', String(port),
          '--status-processors', '2', '--operation-processors', '2',
          '--loglevel', 'info', '--logformat', 'text',
        ],
        dir,
        env,
        ready: (port) => healthz(port)(),
        readyTimeoutMs: timeout,
      }).then((s) => track(children, s));

      const read = (name: string) => {
        try {
          return readFileSync(path.join(dir, `${name}.log`), 'utf8');
        } catch {
          return '';
        }
      };
      return {
        namespace: ARGOCD_NAMESPACE,
        repoServer,
        redis,
        repoServerMetrics: `http://127.0.0.1:${repoMetricsPort}`,
        controllerMetrics: `http://127.0.0.1:${controller.port}`,
        startupMs: Date.now() - started,
        dir,
        logs: () => ({ repoServer: read('argocd-repo-server'), applicationController: read('argocd-application-controller') }),
        stop,
      };
    } catch (e) {
      for (const child of children.reverse()) await stopProcess(child);
      await redis?.stop();
      throw e;
    }
  });
}

function track(children: ChildProcess[], server: StartedServer): StartedServer {
  children.push(server.child);
  return server;
}

/** The CRDs (server-side, they are large), namespace `argocd`, the config objects and the `default` project. */
async function installArgoCdObjects(kube: Kube, bins: ArgoCdBinaries, argocdCm: Readonly<Record<string, string>>): Promise<void> {
  const crds = readdirSync(bins.crdsDir).filter((f) => f.endsWith('.yaml')).map((f) => path.join(bins.crdsDir, f));
  await kube.kubectlOk(['apply', '--server-side', ...crds.flatMap((f) => ['-f', f])]);
  // `kubectl wait` fails on a CRD whose status has no conditions yet, so poll until it has them.
  for (const crd of ['applications.argoproj.io', 'appprojects.argoproj.io']) {
    const deadline = Date.now() + 60_000;
    const established = async () => {
      const { status } = JSON.parse(await kube.kubectlOk(['get', 'crd', crd, '-o', 'json']));
      return (status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === 'Established' && c.status === 'True');
    };
    while (!(await established())) {
      if (Date.now() > deadline) throw new Error(`CRD ${crd} not Established after 60 s`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  await kube.kubectlOk(['create', 'namespace', ARGOCD_NAMESPACE]);
  const config = readdirSync(bins.configDir).filter((f) => f.endsWith('.yaml')).map((f) => path.join(bins.configDir, f));
  await kube.kubectlOk(['apply', '-n', ARGOCD_NAMESPACE, ...config.flatMap((f) => ['-f', f])]);
  if (Object.keys(argocdCm).length > 0) {
    await kube.kubectlOk(['patch', 'configmap', 'argocd-cm', '-n', ARGOCD_NAMESPACE, '--type=merge', '-p', JSON.stringify({ data: argocdCm })]);
  }
  await kube.kubectlOk(['apply', '-f', '-'], { input: JSON.stringify(DEFAULT_PROJECT) });
}
