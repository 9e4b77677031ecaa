// The GitOps tier: Argo CD syncing this project's dist/ for real. One start-up for the tier:
//   - the test API server (startKube) with cert-manager's CRDs, redis, Argo CD's repo-server and
//     application controller with its CRDs and config objects (test/support/argocd.ts);
//   - a local OCI registry holding the vendored chart, for profiles whose chartSource is a
//     registry (bitnami or mirror: both read as a mirror at that registry, since Docker Hub is out
//     of reach here), registered in Argo CD as a Helm OCI repository;
//   - a Git repository holding this project's files as a user pushes them: the code, charts/,
//     the tests' own migrations and LearnFlow's profiles (each in a namespace of its own, with
//     argocd.repoURL set to the repository), synthesized and committed, served over HTTP by Git's
//     own server (git http-backend), where Argo CD clones it as from any Git host.
// The Applications are the ones the synth renders into dist/<profile>/argocd/application.yaml,
// applied as the README says. Nothing runs pods: test/support/cluster-standin.ts plays that part.
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, rmSync, writeFileSync } from 'node:fs';
import { Server, createServer } from 'node:http';
import * as path from 'node:path';
import { LearnflowPostgresProps } from '../../lib/config';
import { CHART_NAME } from '../../lib/chart-source';
import { PROFILES, ProfileName } from '../../lib/profiles';
import { ArgoCd, startArgoCd } from './argocd';
import { ROOT } from './dist';
import { FIXTURE_MIGRATIONS } from './fixture-project';
import { Kube, startKube } from './kube';
import { projectCopy, synthProjectOrThrow, writeMigrations, writeProfiles } from './project';
import { OciRegistry, startOciRegistry } from './servers';
import { helmEnv, runToolOk } from './tools';

/** The repository (inside the OCI registry) that mirrors Bitnami's chart. */
const MIRROR_PATH = 'bitnamicharts';

export interface ProjectRepo {
  /** The working copy: Git serves its repository. */
  readonly dir: string;
  /** http://127.0.0.1:<port>/learnflow-postgres.git */
  readonly url: string;
  /** Replaces migrations/ by these files, synthesizes, commits everything; returns the commit. */
  commitMigrations(migrations: Readonly<Record<string, string>>, message: string): string;
  /** The Application of `profile` as the synth rendered it (dist/<profile>/argocd/application.yaml). */
  applicationFile(profile: string): string;
}

export interface GitopsTier {
  readonly kube: Kube;
  readonly argocd: ArgoCd;
  readonly registry: OciRegistry;
  readonly repo: ProjectRepo;
  /** The profiles as the repository holds them (namespace, chart source, Argo CD props changed), and the extra ones. */
  readonly profiles: Readonly<Record<string, LearnflowPostgresProps>>;
  /** Wall time of the whole start-up: API server, Argo CD, registry, repository. */
  readonly startupMs: number;
  stop(): Promise<void>;
}

/** The namespace each profile syncs to in the tier. */
export const gitopsNamespace = (profile: string) => `gitops-${profile}`;

/**
 * LearnFlow's profile as the tier deploys it: its own namespace, Argo CD reading `repoURL`, and a
 * registry chart source pointed at the local registry.
 */
export function gitopsProfile(profile: ProfileName, repoURL: string, registryHost: string): LearnflowPostgresProps {
  return { ...PROFILES[profile], ...gitopsSettings(profile, PROFILES[profile], repoURL, registryHost) };
}

/** The tier's changes to a profile `props` named `name`: namespace, Argo CD's repoURL, a registry chart source served locally. */
export function gitopsSettings(name: string, props: LearnflowPostgresProps, repoURL: string, registryHost: string): LearnflowPostgresProps {
  const registry = props.chartSource === 'bitnami' || props.chartSource === 'mirror';
  return {
    ...props,
    namespace: gitopsNamespace(name),
    ...(registry ? { chartSource: 'mirror', chartMirror: `oci://${registryHost}/${MIRROR_PATH}` } : {}),
    argocd: { ...props.argocd, repoURL },
  };
}

export interface StartGitopsOptions {
  /** More profiles beside LearnFlow's, e.g. a chart source no profile uses (the repository URL and registry given). */
  readonly extraProfiles?: (repoURL: string, registryHost: string) => Record<string, LearnflowPostgresProps>;
}

export async function startGitopsTier(profileNames: readonly ProfileName[], options: StartGitopsOptions = {}): Promise<GitopsTier> {
  const started = Date.now();
  const kube = await startKube();
  let argocd: ArgoCd | undefined;
  let registry: OciRegistry | undefined;
  let dir: string | undefined;
  let git: GitServer | undefined;
  try {
    // cert-manager's CRDs (the vendored copies): a profile with tls.issuer renders a Certificate.
    const crds = path.join(ROOT, 'reference', 'crds');
    await kube.kubectlOk(['apply', '--server-side', ...['certificates', 'issuers', 'clusterissuers'].flatMap((c) => ['-f', path.join(crds, `cert-manager.io_${c}.yaml`)])]);
    [argocd, registry] = await Promise.all([startArgoCd(kube), startOciRegistry()]);
    dir = projectCopy({ migrations: FIXTURE_MIGRATIONS });
    git = await serveGit(dir);
    const { url } = git;
    const profiles = { ...Object.fromEntries(profileNames.map((p) => [p, gitopsProfile(p, url, registry!.host)])), ...options.extraProfiles?.(url, registry.host) };
    writeProfiles(dir, profiles);
    await pushVendoredCharts(registry, dir);
    await registerRegistry(kube, argocd, registry);
    const repo = projectRepo(dir, url);
    repo.commitMigrations(FIXTURE_MIGRATIONS, 'LearnFlow PostgreSQL');
    const [a, r, d, g] = [argocd, registry, dir, git];
    return {
      kube, argocd, registry, repo, profiles, startupMs: Date.now() - started,
      stop: async () => {
        await a.stop();
        await r.stop();
        await g.stop();
        await kube.stop();
        rmSync(d, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await argocd?.stop();
    await registry?.stop();
    await git?.stop();
    await kube.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/** `helm push` of every vendored archive: the registry then holds what Bitnami published. */
async function pushVendoredCharts(registry: OciRegistry, project: string): Promise<void> {
  const charts = path.join(project, 'charts');
  const archives = execFileSync('ls', [charts], { encoding: 'utf8' }).split('\n').filter((f) => f.startsWith(`${CHART_NAME}-`) && f.endsWith('.tgz'));
  for (const archive of archives) {
    await runToolOk('helm', ['push', path.join(charts, archive), `oci://${registry.host}/${MIRROR_PATH}`, '--plain-http'], { env: helmEnv(path.join(registry.dir, 'helm')) });
  }
}

/** As `argocd repo add <host>/bitnamicharts --type helm --enable-oci` would: a repository Secret (plain HTTP here). */
async function registerRegistry(kube: Kube, argocd: ArgoCd, registry: OciRegistry): Promise<void> {
  await kube.kubectlOk(['apply', '-f', '-'], { input: JSON.stringify({
    apiVersion: 'v1', kind: 'Secret',
    metadata: { name: 'local-chart-mirror', namespace: argocd.namespace, labels: { 'argocd.argoproj.io/secret-type': 'repository' } },
    stringData: { type: 'helm', name: 'local-chart-mirror', url: `${registry.host}/${MIRROR_PATH}`, enableOCI: 'true', insecureOCIForceHttp: 'true' },
  }) });
}

interface GitServer {
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * Git's smart HTTP protocol on loopback: `git http-backend` run as a CGI program per request,
 * serving the repository of the working copy `dir` as /learnflow-postgres.git.
 */
async function serveGit(dir: string): Promise<GitServer> {
  const name = '/learnflow-postgres.git';
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (!url.pathname.startsWith(`${name}/`)) {
      res.writeHead(404).end();
      return;
    }
    const cgi = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH, GIT_PROJECT_ROOT: dir, GIT_HTTP_EXPORT_ALL: '1',
        REQUEST_METHOD: req.method, PATH_INFO: `/.git${url.pathname.slice(name.length)}`, QUERY_STRING: url.search.replace(/^\?/, ''),
        CONTENT_TYPE: req.headers['content-type'] ?? '', HTTP_CONTENT_ENCODING: req.headers['content-encoding'] ?? '',
        GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''), REMOTE_ADDR: '127.0.0.1',
      },
    });
    req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let headersDone = false;
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) return void res.write(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      headersDone = true;
      let status = 200;
      for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
        const [key, ...value] = line.split(':');
        if (key.toLowerCase() === 'status') status = Number.parseInt(value.join(':').trim(), 10);
        else res.setHeader(key, value.join(':').trim());
      }
      res.writeHead(status);
      res.write(head.subarray(end + 4));
    });
    cgi.on('close', () => res.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}${name}`,
    stop: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

function projectRepo(dir: string, url: string): ProjectRepo {
  const git = (...args: string[]) => execFileSync('git', ['-C', dir, '-c', 'user.name=Platform Engineer', '-c', 'user.email=platform@example.invalid', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  copyFileSync(path.join(ROOT, '.gitignore'), path.join(dir, '.gitignore'));
  git('init', '-q', '-b', 'main');
  // The copy links the checkout's node_modules: a symlink, which `node_modules/` does not match.
  writeFileSync(path.join(dir, '.git', 'info', 'exclude'), '/node_modules\n');
  return {
    dir,
    url,
    commitMigrations(migrations, message) {
      writeMigrations(path.join(dir, 'migrations'), migrations);
      synthProjectOrThrow(dir);
      git('add', '-A');
      git('commit', '-q', '--allow-empty', '-m', message);
      return git('rev-parse', 'HEAD');
    },
    applicationFile: (profile) => path.join(dir, 'dist', profile, 'argocd', 'application.yaml'),
  };
}

// --- Applications, as Argo CD reports them ----------------------------------------------------------

export interface AppStatus {
  readonly sync?: { status?: string; revision?: string; revisions?: string[] };
  readonly health?: { status?: string; message?: string };
  readonly operationState?: any;
  readonly resources?: any[];
  readonly reconciledAt?: string;
  readonly conditions?: any[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class ArgoApps {
  constructor(private readonly kube: Kube, private readonly namespace: string) {}

  async get(name: string): Promise<any | undefined> {
    const r = await this.kube.kubectl(['get', 'application', name, '-n', this.namespace, '-o', 'json']);
    return r.code === 0 ? JSON.parse(r.stdout) : undefined;
  }

  /** Polls until `check` holds; the error shows where the Application stood. */
  async until(name: string, what: string, check: (status: AppStatus, app: any) => boolean, timeoutMs = 300_000): Promise<any> {
    let last: any;
    for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(500)) {
      last = await this.get(name);
      if (last?.status && check(last.status, last)) return last;
    }
    const s = last?.status ?? {};
    throw new Error(`Argo CD: ${name} did not reach "${what}" in ${timeoutMs / 1000} s: sync ${s.sync?.status} health ${s.health?.status} ` +
      `operation ${s.operationState?.phase}: ${s.operationState?.message}; conditions ${JSON.stringify(s.conditions ?? [])}; ` +
      `not synced or healthy: ${JSON.stringify((s.resources ?? []).filter((r: any) => r.status !== 'Synced' || (r.health && r.health.status !== 'Healthy')))}`);
  }

  /** A webhook's or `argocd app get --refresh`'s request (`hard`: render the manifests anew), and the reconciliation it causes. */
  async refresh(name: string, kind: 'normal' | 'hard' = 'normal'): Promise<any> {
    const before = (await this.get(name))?.status?.reconciledAt;
    await this.kube.kubectlOk(['annotate', 'application', name, '-n', this.namespace, `argocd.argoproj.io/refresh=${kind}`, '--overwrite']);
    return this.until(name, `a ${kind} refresh`, (s, app) => app.metadata.annotations?.['argocd.argoproj.io/refresh'] === undefined && s.reconciledAt !== before, 120_000);
  }
}

/** Synced to the commit `revision`, Healthy, the last operation succeeded on it. */
export const syncedHealthy = (revision: string) => (s: AppStatus) =>
  s.sync?.status === 'Synced' && s.health?.status === 'Healthy' && s.operationState?.phase === 'Succeeded' &&
  // Every Git source at `revision` (a registry's chart source is at the chart's version).
  (s.operationState?.syncResult?.revisions ?? []).includes(revision) && (s.sync?.revisions ?? []).includes(revision);
