// Running bin/learnflow-postgres as a user would (a child process with kubectl and the real helm
// on PATH and a KUBECONFIG), in the fixture project (test/support/fixture-project.ts: profiles and
// migrations of the tests' own), and playing the parts a real cluster's controllers and kubelet
// would: the tier has none, so the tests create what the StatefulSet controller creates for the
// chart's real StatefulSet (runStatefulSet) and set the status of Jobs, pods and claims themselves
// through the status subresource, exactly as those components write it.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll } from 'vitest';
import { ChartObjects, chartObjects } from '../../lib/chart';
import { DeploymentConfig, resolveConfig } from '../../lib/config';
import { FIXTURE_PROFILES, FixtureProfile, fixtureObject, fixtureProject } from '../support/fixture-project';
import { Kube, kubeBinaries, useSharedKube } from '../support/kube';
import { RunResult, helmEnv, runTool, toolPath } from '../support/tools';

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliEnv {
  /** The project whose bin/learnflow-postgres runs, in its root. @default the fixture project */
  readonly root?: string;
  /** KUBECONFIG of the run. */
  readonly kubeconfig: string;
  /** Directories on PATH, in order (nothing else is on it). */
  readonly path: readonly string[];
  /** HOME (kubectl's discovery cache) and TMPDIR. */
  readonly home: string;
}

export interface RunningCli {
  /** Output so far. */
  output(): string;
  readonly done: Promise<CliResult>;
}

/** Starts `node bin/learnflow-postgres args…` in the project's root; resolves when it exits. */
export function startCli(args: readonly string[], env: CliEnv, timeoutMs = 90_000): RunningCli {
  let stdout = '';
  let stderr = '';
  const root = env.root ?? fixtureProject();
  const child = spawn(process.execPath, [path.join(root, 'bin', 'learnflow-postgres'), ...args], {
    cwd: root,
    env: { PATH: env.path.join(path.delimiter), KUBECONFIG: env.kubeconfig, HOME: env.home, TMPDIR: env.home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  const done = new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  return { output: () => stdout + stderr, done };
}

export const cli = (args: readonly string[], env: CliEnv, timeoutMs?: number) => startCli(args, env, timeoutMs).done;

/** A scratch directory for a test file; remove() at the end. */
export function scratchDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'learnflow-cli-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The directory of the tier's kubectl. */
export const kubectlDir = () => path.dirname(kubeBinaries().kubectl);

/** A kubeconfig like `kube`'s, pointing at a loopback port nothing listens on. */
export async function unreachableKubeconfig(kube: Kube, dir: string): Promise<string> {
  const port = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port: p } = server.address() as { port: number };
      server.close(() => resolve(p));
    });
  });
  const config = JSON.parse(readFileSync(kube.kubeconfig, 'utf8'));
  config.clusters[0].cluster.server = `https://127.0.0.1:${port}`;
  const file = path.join(dir, 'unreachable.kubeconfig');
  writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
  return file;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns a value (not undefined); throws after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** One object as the server holds it, or undefined. */
export async function get(kube: Kube, ns: string, kindName: string): Promise<any> {
  const r = await kube.kubectl(['get', kindName, '-n', ns, '-o', 'json', '--ignore-not-found']);
  if (r.code !== 0) throw new Error(`kubectl get ${kindName}: ${r.stderr}`);
  return r.stdout.trim() === '' ? undefined : JSON.parse(r.stdout);
}

/** Applies objects (JSON documents), as admin. */
export async function create(kube: Kube, ...objects: object[]): Promise<void> {
  // A stream of JSON objects: YAML 1.2's plain `no` would reach kubectl's YAML 1.1 reader as a boolean.
  await kube.kubectlOk(['apply', '-f', '-'], { input: objects.map((o) => JSON.stringify(o)).join('\n') });
}

/** `kubectl patch <kind/name> --subresource=status --type=merge`: what a controller or kubelet writes. */
export async function patchStatus(kube: Kube, ns: string, kindName: string, status: object): Promise<void> {
  const [kind, name] = kindName.split('/');
  await kube.kubectlOk(['patch', kind, name, '-n', ns, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })]);
}

/** RFC 3339 without fractions, as Kubernetes writes times; `offsetS` from now. */
export const time = (offsetS = 0) => new Date(Math.floor(Date.now() / 1000) * 1000 + offsetS * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** What the Job controller writes when a Job's pod succeeded. */
export async function completeJob(kube: Kube, ns: string, job: string, at = time()): Promise<void> {
  await patchStatus(kube, ns, `job/${job}`, {
    startTime: at, completionTime: at, succeeded: 1, active: 0,
    conditions: [{ type: 'Complete', status: 'True', lastProbeTime: at, lastTransitionTime: at }],
  });
}

/** What the Job controller writes when a pod failure policy rule fails the Job. */
export async function failJob(kube: Kube, ns: string, job: string, container: string, exitCode: number): Promise<void> {
  const at = time();
  const message = `Container ${container} for pod ${ns}/${job}-x1 failed with exit code ${exitCode} matching FailJob rule at index 0`;
  await patchStatus(kube, ns, `job/${job}`, {
    startTime: at, failed: 1, active: 0,
    conditions: [
      { type: 'FailureTarget', status: 'True', reason: 'PodFailurePolicy', message, lastProbeTime: at, lastTransitionTime: at },
      { type: 'Failed', status: 'True', reason: 'PodFailurePolicy', message, lastProbeTime: at, lastTransitionTime: at },
    ],
  });
}

/** The "restricted" Pod Security settings every pod here needs (the namespace enforces them). */
const restricted = {
  securityContext: { runAsNonRoot: true, runAsUser: 1001, seccompProfile: { type: 'RuntimeDefault' } },
  containerSecurity: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
};

/** The namespace's `default` ServiceAccount, which the ServiceAccount controller would create (admission needs it for pods). */
const defaultServiceAccount = (ns: string) => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: ns } });

/**
 * The pod the Job controller would have created for `job` (labels `job-name`), terminated with
 * `exitCode` as the kubelet reports it, with the termination `message` the container wrote.
 */
export async function jobPodExited(kube: Kube, ns: string, job: string, container: string, exitCode: number, message?: string): Promise<string> {
  const name = `${job}-x1`;
  await create(kube, defaultServiceAccount(ns), {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace: ns, labels: { 'job-name': job, 'batch.kubernetes.io/job-name': job } },
    spec: { restartPolicy: 'Never', securityContext: restricted.securityContext, containers: [{ name: container, image: 'example.invalid/job', securityContext: restricted.containerSecurity }] },
  });
  const at = time();
  await patchStatus(kube, ns, `pod/${name}`, {
    phase: exitCode === 0 ? 'Succeeded' : 'Failed',
    containerStatuses: [{
      name: container, image: 'example.invalid/job', imageID: '', ready: false, restartCount: 0,
      state: { terminated: { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error', startedAt: at, finishedAt: at, ...(message !== undefined ? { message } : {}) } },
    }],
  });
  return name;
}


/** The image of the stand-in database pod: never pulled, nothing runs here; PostgreSQL 16 by its tag, as chart 15.5.38's. */
export const CHART_IMAGE = 'example.invalid/postgresql:16.4.0-debian-12-r14';

/**
 * For tests that need a database pod but no Helm release (the restore commands never call helm):
 * what `helm install` and the StatefulSet controller would create: the `default` ServiceAccount
 * (the ServiceAccount admission plugin needs it), the StatefulSet, its pod and its data claim.
 * Minimal but valid manifests under the chart's names and labels; statuses are set separately.
 */
export async function createChartObjects(kube: Kube, ns: string, chart: ChartObjects): Promise<void> {
  const podSpec = {
    securityContext: restricted.securityContext,
    containers: [{ name: 'postgresql', image: CHART_IMAGE, securityContext: restricted.containerSecurity }],
  };
  await create(kube,
    defaultServiceAccount(ns),
    {
      apiVersion: 'apps/v1', kind: 'StatefulSet',
      metadata: { name: chart.statefulSet, namespace: ns, labels: chart.podLabels },
      spec: {
        replicas: 1, serviceName: chart.headlessService, selector: { matchLabels: chart.podLabels },
        template: { metadata: { labels: chart.podLabels }, spec: podSpec },
        volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '8Gi' } } } }],
      },
    },
    {
      apiVersion: 'v1', kind: 'PersistentVolumeClaim',
      metadata: { name: chart.dataClaim, namespace: ns, labels: chart.podLabels },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '8Gi' } } },
    },
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: chart.pod, namespace: ns, labels: chart.podLabels }, spec: podSpec },
  );
}

/** The kubelet's report on the database pod: Running and Ready, or Running but not ready. */
export async function setPodReady(kube: Kube, ns: string, pod: string, ready: boolean, at = time()): Promise<void> {
  const image = (await get(kube, ns, `pod/${pod}`)).spec.containers.find((c: any) => c.name === 'postgresql').image;
  await patchStatus(kube, ns, `pod/${pod}`, {
    phase: 'Running',
    conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: at, ...(ready ? {} : { reason: 'ContainersNotReady' }) }],
    containerStatuses: [{
      name: 'postgresql', image, imageID: '', ready, restartCount: 0,
      started: true, state: { running: { startedAt: at } },
    }],
  });
}

/**
 * What the StatefulSet controller does for the StatefulSet the real chart created (helm
 * installed it): the claim of each volumeClaimTemplate for `ordinal` (0 unless given) and the pod
 * `<name>-<ordinal>` from the template, mounting them, owned by the StatefulSet. Returns the
 * names it created, so a test can hold them against the names the CLI looks for.
 */
export async function runStatefulSet(kube: Kube, ns: string, name: string, ordinal = 0): Promise<{ pod: string; claims: string[] }> {
  const sts = await get(kube, ns, `statefulset/${name}`);
  if (!sts) throw new Error(`statefulset/${name} not found in ${ns}: did helm install the chart?`);
  const pod = `${name}-${ordinal}`;
  const owner = { apiVersion: 'apps/v1', kind: 'StatefulSet', name, uid: sts.metadata.uid, controller: true, blockOwnerDeletion: true };
  const labels = { ...sts.spec.selector.matchLabels, 'apps.kubernetes.io/pod-index': String(ordinal), 'statefulset.kubernetes.io/pod-name': pod };
  const claims = (sts.spec.volumeClaimTemplates ?? []).map((t: any) => ({
    apiVersion: 'v1', kind: 'PersistentVolumeClaim',
    metadata: { name: `${t.metadata.name}-${pod}`, namespace: ns, labels: { ...t.metadata.labels, ...sts.spec.selector.matchLabels } },
    spec: t.spec,
  }));
  const template = sts.spec.template;
  await create(kube, defaultServiceAccount(ns), ...claims, {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: pod, namespace: ns, labels: { ...template.metadata.labels, ...labels }, annotations: template.metadata.annotations, ownerReferences: [owner] },
    spec: {
      ...template.spec, hostname: pod, subdomain: sts.spec.serviceName,
      volumes: [...(template.spec.volumes ?? []), ...(sts.spec.volumeClaimTemplates ?? []).map((t: any) => ({ name: t.metadata.name, persistentVolumeClaim: { claimName: `${t.metadata.name}-${pod}` } }))],
    },
  });
  return { pod, claims: claims.map((c: any) => c.metadata.name) };
}

/** The persistent volume controller's report: the claim is Bound. */
export async function bindClaim(kube: Kube, ns: string, claim: string): Promise<void> {
  await patchStatus(kube, ns, `pvc/${claim}`, { phase: 'Bound', accessModes: ['ReadWriteOnce'], capacity: { storage: '8Gi' } });
}

/** A StorageClass, marked the cluster's default when `isDefault`. */
export async function storageClass(kube: Kube, name: string, isDefault: boolean): Promise<void> {
  await create(kube, {
    apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass',
    metadata: { name, ...(isDefault ? { annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } } : {}) },
    provisioner: 'example.com/none',
  });
}

/** The real helm (scripts/test-tools.sh), as the CLI runs it: in the project's root, against the test API server. */
export type Helm = (args: readonly string[]) => Promise<RunResult>;

/** What a CLI test file works with: the shared API server, a scratch folder, the real helm, and the CLI's environment. */
export interface CliCluster {
  readonly kube: Kube;
  readonly scratch: { dir: string; remove(): void };
  /** The helm on the CLI's PATH, for the test's own calls (`helm status`, `helm get values`, an install). */
  readonly helm: Helm;
  readonly env: CliEnv;
}

/**
 * The run's shared API server (inside a describeKube or describeWithTools block), a scratch
 * folder, and the CLI's environment: on its PATH the tier's kubectl and the real helm (linked
 * into a folder of its own, so that leaving it out of PATH leaves out helm alone); `ready` hands
 * the pieces to the file's variables.
 */
export function useCliCluster(ready: (cluster: CliCluster) => void): void {
  let scratch: CliCluster['scratch'] | undefined;
  useSharedKube((kube) => {
    scratch = scratchDir();
    const home = path.join(scratch.dir, 'home');
    const bin = path.join(scratch.dir, 'bin');
    mkdirSync(home);
    mkdirSync(bin);
    symlinkSync(toolPath('helm'), path.join(bin, 'helm'));
    const helmHome = path.join(scratch.dir, 'helm');
    const helm: Helm = (args) => runTool('helm', args, { cwd: fixtureProject(), env: { ...helmEnv(helmHome), KUBECONFIG: kube.kubeconfig }, timeoutMs: 120_000 });
    ready({ kube, scratch, helm, env: { kubeconfig: kube.kubeconfig, path: [bin, kubectlDir()], home } });
  });
  afterAll(() => scratch?.remove());
}

/** What `helm status -o json` says about `release`; undefined when there is none. */
export async function releaseInfo(helm: Helm, release: string, ns: string): Promise<{ version: number; info: { status: string }; namespace: string } | undefined> {
  const r = await helm(['status', release, '-n', ns, '-o', 'json']);
  if (r.code !== 0 && /release: not found/.test(r.stderr)) return undefined;
  if (r.code !== 0) throw new Error(`helm status ${release} -n ${ns} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/**
 * Runs the credentials bootstrap of `profile`'s dist/ as the Job's pod would (its script, its
 * env, its ServiceAccount) and resolves with its output; dist/ must be applied.
 */
export async function runBootstrap(kube: Kube, profile: FixtureProfile, scratchDirectory: string): Promise<string> {
  const job = fixtureObject(profile, 'Job', 'credentials');
  const [container] = job.spec.template.spec.containers;
  const vars = Object.fromEntries(container.env.map((e: any) => [e.name, e.value]));
  const ns = job.metadata.namespace!;
  const kubeconfig = await kube.asServiceAccount(ns, job.spec.template.spec.serviceAccountName);
  const tmp = path.join(scratchDirectory, `bootstrap-${profile}`);
  mkdirSync(tmp, { recursive: true });
  const [shell, ...args] = container.command;
  // RBAC reaches the authorizer through an informer: retry briefly until the Role applies.
  return eventually('the bootstrap to succeed', () => new Promise<string | undefined>((resolve) => {
    const child = spawn(shell, args, {
      env: { ...vars, PATH: `${kubectlDir()}:/usr/bin:/bin`, HOME: tmp, TMPDIR: tmp, KUBECONFIG: kubeconfig },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.on('close', (code) => resolve(code === 0 ? out : undefined));
  }), 15_000);
}

/** A profile of the fixture project as its tests expect it, derived from its props (not from the CLI). */
export interface FixtureTarget {
  readonly profile: FixtureProfile;
  readonly config: DeploymentConfig;
  readonly namespace: string;
  readonly release: string;
  readonly chartVersion: string;
  /** The chart's names and labels for this release. */
  readonly chart: ChartObjects;
  /** dist/<profile>/helm/postgresql-values.yaml, as the CLI shows it from the project's root. */
  readonly valuesFile: string;
  /** The exact `helm upgrade --install` argv deploy runs. */
  readonly helmUpgrade: readonly string[];
  /** The Jobs of dist/<profile>/, by component (content-hashed names). */
  readonly jobs: Record<'credentials' | 'migrations' | 'verification', string>;
  /** `postgresql://<user>@<host>:<port>/<database>[?sslmode=require]`. */
  readonly connection: string;
}

export function fixtureTarget(profile: FixtureProfile): FixtureTarget {
  const config = resolveConfig(FIXTURE_PROFILES[profile]);
  const { namespace, releaseName: release, chartVersion, appUser, port, databaseName, tls } = config;
  const chart = chartObjects(release, config.readReplicas?.count ?? 0);
  const valuesFile = `dist/${profile}/helm/postgresql-values.yaml`;
  const jobs = Object.fromEntries((['credentials', 'migrations', 'verification'] as const).map((component) =>
    [component, fixtureObject(profile, 'Job', component).metadata.name])) as FixtureTarget['jobs'];
  // From the project's root, where the CLI runs: the vendored archive (chartSource repository), or a registry's chart.
  const chartArgs = config.chartSource === 'repository' ? [`charts/postgresql-${chartVersion}.tgz`]
    : [`${config.chartSource === 'bitnami' ? 'oci://registry-1.docker.io/bitnamicharts' : config.chartMirror}/postgresql`, '--version', chartVersion];
  const helmUpgrade = ['upgrade', '--install', release, ...chartArgs, '--namespace', namespace, '-f', valuesFile];
  const connection = `postgresql://${appUser}@${chart.service}.${namespace}.svc:${port}/${databaseName}${tls.enabled ? '?sslmode=require' : ''}`;
  return { profile, config, namespace, release, chartVersion, chart, valuesFile, helmUpgrade, jobs, connection };
}
