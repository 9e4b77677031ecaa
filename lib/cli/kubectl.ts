// kubectl and helm as the CLI calls them: what counts as "Kubernetes not accessible" (exit 2) and
// the argument lists of every call, shared by the real run and by --dry-run's printout.
import { CliError, EXIT } from './exit-codes';
import { RunOptions, RunResult, commandLine, run, tail } from './exec';
import { KubeObject } from './k8s-state';
import { helmUpgradeArgs } from '../chart-source';
import { Target } from './target';

export const KUBECTL = 'kubectl';
export const HELM = 'helm';

/** kubectl's messages when the API server cannot be reached, or will not let us in. */
const NOT_ACCESSIBLE = [
  'connection refused', 'was refused', 'Unable to connect to the server', 'no such host', 'i/o timeout', 'dial tcp',
  'x509:', 'Unauthorized', 'provide credentials', 'must be logged in', "couldn't get current server API group list",
  'context deadline exceeded', 'TLS handshake timeout', 'error loading config file', 'invalid configuration',
  'no configuration has been provided', 'not found on PATH',
];

export function isNotAccessible(result: RunResult): boolean {
  return result.code === 127 || result.code === 124 || NOT_ACCESSIBLE.some((m) => result.stderr.includes(m));
}

/** What to check when the API server is out of reach. */
export function accessHints(): string[] {
  const config = process.env.KUBECONFIG ? `KUBECONFIG=${process.env.KUBECONFIG}` : 'the default kubeconfig (~/.kube/config; set KUBECONFIG for another)';
  return [
    `check which cluster kubectl talks to: kubectl config current-context (using ${config})`,
    'check that it answers: kubectl cluster-info (VPN, API server address, an expired login or token)',
  ];
}

export function notAccessible(args: readonly string[], result: RunResult): CliError {
  return new CliError(EXIT.kubernetesNotAccessible, `Kubernetes API not accessible (${commandLine(KUBECTL, args)}): ${tail(result.stderr, 3).trim() || `exit ${result.code}`}`, accessHints());
}

/** kubectl calls that fail with exit 2 when the cluster is out of reach and exit 1 otherwise. */
export class Kubectl {
  run(args: readonly string[], options?: RunOptions): Promise<RunResult> {
    return run(KUBECTL, args, options);
  }

  /** stdout of a call that must succeed. */
  async ok(args: readonly string[], options?: RunOptions & { next?: string[] }): Promise<string> {
    return (await this.checked(args, options)).stdout;
  }

  /** The output of a call that must succeed; its stderr holds warnings (e.g. Pod Security's). */
  async checked(args: readonly string[], options?: RunOptions & { next?: string[] }): Promise<RunResult> {
    const result = await this.run(args, options);
    if (result.code === 0) return result;
    if (isNotAccessible(result)) throw notAccessible(args, result);
    throw new CliError(EXIT.general, `${commandLine(KUBECTL, args)} failed (exit ${result.code}): ${tail(result.stderr, 5).trim()}`, options?.next ?? []);
  }

  /** The object (or List) a `get … -o json --ignore-not-found` returns; undefined when not found. */
  async json<T = KubeObject>(args: readonly string[]): Promise<T | undefined> {
    const stdout = await this.ok(args);
    return stdout.trim() === '' ? undefined : (JSON.parse(stdout) as T);
  }

  /** `items` of a `get … -o json` List. */
  async items(args: readonly string[]): Promise<KubeObject[]> {
    return (await this.json<{ items: KubeObject[] }>(args))?.items ?? [];
  }
}

/** Every kubectl and helm argument list the commands use, so that --dry-run prints what runs. */
export const calls = {
  readyz: () => ['get', '--raw', '/readyz'],
  currentServer: () => ['config', 'view', '--minify', '-o', 'jsonpath={.clusters[0].cluster.server}'],
  storageClasses: () => ['get', 'storageclasses', '-o', 'json'],
  namespace: (ns: string) => ['get', 'namespace', ns, '-o', 'json', '--ignore-not-found'],
  applyStdin: () => ['apply', '-f', '-'],
  applyDir: (t: Target) => ['apply', '-f', `${t.distDir}/`],
  get: (ns: string, kind: string, name: string) => ['-n', ns, 'get', kind, name, '-o', 'json', '--ignore-not-found'],
  jobPods: (ns: string, job: string) => ['-n', ns, 'get', 'pods', '-l', `job-name=${job}`, '-o', 'json'],
  podLog: (ns: string, pod: string, lines = 20) => ['-n', ns, 'logs', pod, `--tail=${lines}`, '--all-containers'],
  /** Everything status reads, in one List. */
  statusObjects: (ns: string) => ['-n', ns, 'get', 'statefulsets,pods,persistentvolumeclaims,jobs,cronjobs', '-o', 'json'],
  deleteJob: (ns: string, job: string) => ['-n', ns, 'delete', 'job', job, '--ignore-not-found'],
  createJobFrom: (ns: string, job: string, cronJob: string) => ['-n', ns, 'create', 'job', job, `--from=cronjob/${cronJob}`],
  renderJobFrom: (ns: string, job: string, cronJob: string) => ['-n', ns, 'create', 'job', job, `--from=cronjob/${cronJob}`, '--dry-run=client', '-o', 'json'],
  createStdin: () => ['create', '-f', '-'],
  helmVersion: () => ['version', '--short'],
  /** The release's newest revision, with its status and chart (lib/cli/helm-release.ts). */
  helmRelease: (t: Target) => ['history', t.release, '-n', t.namespace, '--max', '1', '-o', 'json'],
  helmUpgrade: (t: Target) => helmUpgradeArgs(t.chart, t.release, t.namespace, t.valuesFile, t.chartRef),
};
