// Checks before anything changes: the cluster answers (exit 2), helm is there (exit 3), and the
// volumes the profile asks for can be provisioned (exit 6).
import { CliError, EXIT } from './exit-codes';
import { RunResult, commandLine, findOnPath, run, tail } from './exec';
import { KubeObject } from './k8s-state';
import { HELM, KUBECTL, Kubectl, accessHints, calls, isNotAccessible, notAccessible } from './kubectl';
import { Target } from './target';

export const DEFAULT_CLASS_ANNOTATIONS = ['storageclass.kubernetes.io/is-default-class', 'storageclass.beta.kubernetes.io/is-default-class'];

/** The API server answers /readyz; returns its address for the report. Exit 2 otherwise. */
export async function checkCluster(kubectl: Kubectl): Promise<string> {
  if (!findOnPath(KUBECTL)) {
    throw new CliError(EXIT.kubernetesNotAccessible, 'kubectl not found on PATH', [
      'install kubectl (https://kubernetes.io/docs/tasks/tools/) and make sure it is on PATH', ...accessHints()]);
  }
  const readyz = await kubectl.run(calls.readyz(), { timeoutMs: 20_000 });
  if (readyz.code !== 0) throw notAccessible(calls.readyz(), readyz);
  const server = await kubectl.run(calls.currentServer(), { timeoutMs: 10_000 });
  return server.code === 0 && server.stdout.trim() !== '' ? server.stdout.trim() : 'the current context';
}

export const HELM_INSTALL_HINTS = [
  'install Helm 3.8 or later (oci:// charts): https://helm.sh/docs/intro/install/ (e.g. `brew install helm`, or the get-helm-3 script)',
  'or deploy without this command: README "Deploying with Argo CD"',
];

/** helm is on PATH and new enough for oci:// charts (3.8+); returns `path (version)`. Exit 3 otherwise. */
export async function checkHelm(): Promise<string> {
  const helm = findOnPath(HELM);
  if (!helm) throw new CliError(EXIT.helmNotInstalled, 'Helm not installed: `helm` not found on PATH', HELM_INSTALL_HINTS);
  const version = await run(HELM, calls.helmVersion(), { timeoutMs: 20_000 });
  const match = /v(\d+)\.(\d+)/.exec(version.stdout);
  if (match && (Number(match[1]) < 3 || (Number(match[1]) === 3 && Number(match[2]) < 8))) {
    throw new CliError(EXIT.helmNotInstalled, `Helm ${match[0]} at ${helm} cannot pull oci:// charts (needs 3.8 or later)`, HELM_INSTALL_HINTS);
  }
  return `${helm}${match ? ` (${version.stdout.trim()})` : ''}`;
}

export interface VolumeNeed {
  /** `data volume`, `backup volume`. */
  readonly volume: string;
  /** The class the profile names; undefined: the cluster's default class. */
  readonly storageClass?: string;
}

/** The volumes the profile's chart values create, with their storage class. */
export function volumeNeeds(target: Target): VolumeNeed[] {
  const { config } = target;
  return [
    { volume: `data volume (${config.storageSize})`, storageClass: config.storageClass },
    ...(config.backup.enabled ? [{ volume: `backup volume (${config.backup.storageSize})`, storageClass: config.backup.storageClass }] : []),
  ];
}

const isDefault = (sc: KubeObject) => DEFAULT_CLASS_ANNOTATIONS.some((a) => sc.metadata.annotations?.[a] === 'true');

/**
 * Problems (empty: fine) with the storage classes `needs` ask for, against the cluster's
 * StorageClasses: a named class must exist; an unnamed one needs a default class.
 */
export function storageProblems(needs: readonly VolumeNeed[], classes: readonly KubeObject[], profile: string): string[] {
  const names = classes.map((c) => c.metadata.name);
  const defaults = classes.filter(isDefault).map((c) => c.metadata.name);
  const available = names.length > 0 ? `classes in this cluster: ${names.join(', ')}` : 'this cluster has no StorageClass at all';
  const problems: string[] = [];
  for (const need of needs) {
    if (need.storageClass !== undefined && !names.includes(need.storageClass)) {
      problems.push(`the ${need.volume} needs StorageClass '${need.storageClass}', which does not exist (${available}). ` +
        `Fix: create it, or set storageClass / storageClassPreset of profile '${profile}' in lib/profiles.ts to one that exists and run npm run synth.`);
    }
    if (need.storageClass === undefined && defaults.length === 0) {
      problems.push(`the ${need.volume} uses the cluster's default StorageClass, and no class is marked default (${available}). ` +
        `Fix: mark one default: kubectl patch storageclass <name> -p '{"metadata":{"annotations":{"storageclass.kubernetes.io/is-default-class":"true"}}}', ` +
        `or set storageClass of profile '${profile}' in lib/profiles.ts and run npm run synth.`);
    }
  }
  return [...new Set(problems)];
}

/** Exit 6 when a volume could not be provisioned; returns a line for the report. */
export async function checkStorage(kubectl: Kubectl, target: Target): Promise<string> {
  const args = calls.storageClasses();
  const result: RunResult = await kubectl.run(args);
  if (result.code !== 0) {
    if (isNotAccessible(result)) throw notAccessible(args, result);
    // A namespace admin may not read cluster-scoped StorageClasses: say so and let the claim tell.
    if (/forbidden/i.test(result.stderr)) return `not checked: ${tail(result.stderr, 1).trim()}`;
    throw new CliError(EXIT.general, `${commandLine(KUBECTL, args)} failed: ${tail(result.stderr, 3).trim()}`);
  }
  const classes: KubeObject[] = JSON.parse(result.stdout).items ?? [];
  const needs = volumeNeeds(target);
  const problems = storageProblems(needs, classes, target.profile);
  if (problems.length > 0) {
    throw new CliError(EXIT.insufficientResources, `insufficient resources: ${problems.length === 1 ? 'a volume' : 'volumes'} cannot be provisioned`, problems);
  }
  const defaults = classes.filter(isDefault).map((c) => c.metadata.name);
  return needs.map((n) => `${n.volume}: ${n.storageClass ? `StorageClass ${n.storageClass}` : `default StorageClass ${defaults[0]}`}`).join('; ');
}
