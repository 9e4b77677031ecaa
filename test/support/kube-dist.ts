// dist/ on a test API server (test/support/kube.ts): apply it the ways the README documents,
// read back what the server holds, and synthesize a variant of the project (one more migration).
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { parse } from 'yaml';
import * as path from 'node:path';
import { DIST, Manifest, ROOT, manifests } from './dist';
import { Kube, KubectlResult, kubeBinaries, runProcess } from './kube';
import { APP_COMMAND, projectCopy, writeProfiles } from './project';
import { LearnflowPostgresProps } from '../../lib/config';

/** dist/<profile>/learnflow-postgres.yaml (of `dist`, default the checkout's). */
export const manifestFile = (profile: string, dist = DIST) => path.join(dist, profile, 'learnflow-postgres.yaml');

/** `kubectl apply --server-side --field-manager=learnflow -f <file>`, as admin. */
export function serverSideApply(kube: Kube, file: string, ...extra: string[]): Promise<KubectlResult> {
  return kube.kubectl(['apply', '--server-side', '--field-manager=learnflow', '-f', file, ...extra]);
}

/** Server-side applies these objects (as they are in dist/) for a test's set-up; throws on any error or warning. */
export async function applyObjects(kube: Kube, objects: Manifest[]): Promise<void> {
  // Separate documents, as in dist/: kubectl checks a `kind: List` against its own OpenAPI copy instead.
  // Each as JSON: kubectl reads YAML 1.1, where a plain `no` (the chart's env values) is false.
  const input = objects.map((m) => JSON.stringify(m)).join('\n');
  const r = await kube.kubectl(['apply', '--server-side', '--field-manager=learnflow', '-f', '-'], { input });
  if (r.code !== 0 || r.stderr !== '') throw new Error(`server-side apply of ${objects.map(ref).join(', ')} exited ${r.code}:\n${r.stderr}`);
}

/** `Kind/name`, how the tests name an object. */
/** A data claim `name` in `ns`, as the chart's StatefulSet would leave one (no volume binds here). */
export function createClaim(kube: Kube, ns: string, name: string): Promise<void> {
  return applyObjects(kube, [{
    apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name, namespace: ns },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '8Gi' } } },
  }]);
}

/** Deletes claim `name` of `ns`, if there: no controller-manager here lifts its protection finalizer, so this does first. */
export async function deleteClaim(kube: Kube, ns: string, name: string): Promise<void> {
  const lifted = await kube.kubectl(['patch', 'pvc', name, '-n', ns, '--type', 'merge', '-p', '{"metadata":{"finalizers":null}}']);
  if (lifted.code !== 0 && !lifted.stderr.includes('NotFound')) throw new Error(`kubectl patch pvc ${name} -n ${ns}: ${lifted.stderr}`);
  await kube.kubectlOk(['delete', 'pvc', name, '-n', ns, '--ignore-not-found']);
}

export const ref = (m: { kind: string; metadata: { name: string } }) => `${m.kind}/${m.metadata.name}`;

/** `Kind/name` → resourceVersion of every object in `file` as the server holds it; throws if one is missing. */
export async function versionsOf(kube: Kube, file: string): Promise<Record<string, string>> {
  const list = JSON.parse(await kube.kubectlOk(['get', '-f', file, '-o', 'json']));
  const items: Manifest[] = list.kind === 'List' ? list.items : [list];
  return Object.fromEntries(items.map((m) => [ref(m), m.metadata.resourceVersion]));
}

/** Kinds dist/ renders in the namespace, plus Secrets and claims (made by the bootstrap and the chart). */
const NAMESPACED_KINDS = 'serviceaccounts,roles,rolebindings,networkpolicies,configmaps,jobs,cronjobs,secrets,persistentvolumeclaims';

/** `Kind/name` → resourceVersion of everything in the namespace `ns` (of the kinds above). */
export async function namespaceObjects(kube: Kube, ns: string): Promise<Record<string, string>> {
  const list = JSON.parse(await kube.kubectlOk(['get', NAMESPACED_KINDS, '-n', ns, '-o', 'json']));
  return Object.fromEntries((list.items as Manifest[]).map((m) => [ref(m), m.metadata.resourceVersion]));
}

/** One object as the server holds it (after defaulting), or undefined; `ns` '' for cluster-wide objects. */
export async function live(kube: Kube, kindName: string, ns: string): Promise<Manifest | undefined> {
  const r = await kube.kubectl(['get', kindName, '-n', ns, '-o', 'json', '--ignore-not-found']);
  if (r.code !== 0) throw new Error(`kubectl get ${kindName}: ${r.stderr}`);
  return r.stdout.trim() === '' ? undefined : JSON.parse(r.stdout);
}

/** The pod spec of a Job or of a CronJob's job template. */
export function podSpec(m: Manifest): Record<string, any> {
  return m.kind === 'CronJob' ? m.spec.jobTemplate.spec.template.spec : m.spec.template.spec;
}

/** The names of the ConfigMaps a Job or CronJob mounts through its projected volume. */
export function mountedConfigMaps(m: Manifest): string[] {
  return (podSpec(m).volumes ?? []).flatMap((v: any) => (v.projected?.sources ?? []).map((s: any) => s.configMap?.name)).filter(Boolean);
}

export interface ProjectVariant {
  /** The variant's dist/ folder. */
  readonly dist: string;
  manifests(profile: string): Manifest[];
  remove(): void;
}

export interface VariantOptions {
  /** Files to add (path in the project → content), e.g. one more migration. */
  readonly files?: Readonly<Record<string, string>>;
  /** Profiles to render instead of lib/profiles.ts's. */
  readonly profiles?: Readonly<Record<string, LearnflowPostgresProps>>;
}

/**
 * Synthesizes a copy of the project with a developer's change (files added, other profiles), as
 * `npm run synth` would after it. The checkout is untouched. Asynchronous (unlike
 * synthProject), so API servers can start meanwhile.
 */
export async function synthesizeVariant(options: VariantOptions): Promise<ProjectVariant> {
  const dir = projectCopy();
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    for (const [file, text] of Object.entries(options.files ?? {})) writeFileSync(path.join(dir, file), text);
    if (options.profiles) writeProfiles(dir, options.profiles);
    await new Promise<void>((resolve, reject) => {
      execFile(process.execPath, APP_COMMAND.slice(1), { cwd: dir }, (error, stdout, stderr) => {
        if (error) reject(new Error(`synth in ${dir} failed: ${error.message}\n${stderr}${stdout}`));
        else resolve();
      });
    });
  } catch (e) {
    remove();
    throw e;
  }
  const dist = path.join(dir, 'dist');
  return { dist, manifests: (profile) => manifests(profile, dist), remove };
}

/**
 * Runs the one container of a Job from dist/ here, exactly as rendered (its command and plain
 * environment), with our kubectl first on PATH and `kubeconfig` (e.g. the Job's ServiceAccount
 * from kube.asServiceAccount): the script talks to the test API server as it would in the pod.
 */
export function runJobHere(kube: Kube, job: Manifest, kubeconfig: string, scratch: { home: string; tmp: string }): Promise<KubectlResult> {
  const [container] = job.spec.template.spec.containers;
  const env: Record<string, string> = {};
  for (const e of container.env ?? []) {
    if (e.valueFrom) throw new Error(`${ref(job)}: variable ${e.name} is not a plain value`);
    env[e.name] = e.value ?? '';
  }
  const [file, ...args] = container.command as string[];
  return runProcess(file, args, {
    env: { ...env, PATH: `${kubeBinaries(kube.version).binDir}${path.delimiter}${process.env.PATH}`, HOME: scratch.home, TMPDIR: scratch.tmp, KUBECONFIG: kubeconfig },
    timeoutMs: 30_000,
  });
}

/** cert-manager's CRDs as vendored in reference/crds/ (v1.21.1): what a cluster running cert-manager serves. */
export const CERT_MANAGER_CRDS = ['certificates', 'issuers', 'clusterissuers'].map((plural) => ({
  file: path.join(ROOT, 'reference', 'crds', `cert-manager.io_${plural}.yaml`),
  name: `${plural}.cert-manager.io`,
}));

/**
 * Installs cert-manager's CRDs (server-side: they are too large for client-side apply's annotation) and waits until
 * they are served. Servers before Kubernetes 1.30 do not know the CRDs' `selectableFields` (what cert-manager
 * releases for those versions ship without): it is left out there; `cert-manager.io/v1` is the same.
 */
export async function installCertManagerCrds(kube: Kube): Promise<void> {
  const knowsSelectableFields = Number(kube.version.split('.')[1]) >= 30;
  for (const crd of CERT_MANAGER_CRDS) {
    const manifest = parse(readFileSync(crd.file, 'utf8'));
    if (!knowsSelectableFields) for (const v of manifest.spec.versions) delete v.selectableFields;
    const r = await kube.kubectl(['apply', '--server-side', '--field-manager=cert-manager', '-f', '-'], { input: JSON.stringify(manifest) });
    if (r.code !== 0) throw new Error(`installing ${crd.name}: ${r.stderr}`);
  }
  await kube.kubectlOk(['wait', '--for=condition=established', '--timeout=60s', ...CERT_MANAGER_CRDS.map((c) => `crd/${c.name}`)]);
}
