// What Argo CD does with the objects that hold or make backups, judged by Argo CD itself (its
// repo-server and application controller against the test API server):
//   - a backup claim left Pending is Progressing to Argo CD, Bound is Healthy: the claim must
//     have a consumer in wave 0 (the database pod mounts it; lib/pitr/chart-values.ts);
//   - a failed backup run turns its CronJob Degraded, yet the Application stays Healthy;
//   - renaming the namespace in Git (the objects move) with
//     auto-prune on prunes the CronJob but neither the Namespace nor the claim;
//   - deleting the Application with its resources deletes neither of them either.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ArgoCd, startArgoCd } from '../support/argocd';
import { Kube, startKube } from '../support/kube';
import { Manifest } from '../support/dist';
import { backupObjectsForArgoCd } from '../support/pitr';
import { describeWithTools, runToolOk } from '../support/tools';

const NS = 'pitr-argo';
const APP = 'pitr-argo';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describeWithTools('Argo CD and the backup objects', ['argocd', 'redis', 'helm'], () => {
  let kube: Kube;
  let argocd: ArgoCd;
  let scratch: string;
  let repo: string;
  let objects: Manifest[];
  const git = (...args: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.name=test', '-c', 'user.email=test@example.invalid', ...args], { stdio: 'pipe', encoding: 'utf8' });
  const commit = (manifests: Manifest[], message: string) => {
    writeFileSync(path.join(repo, 'app', 'objects.yaml'), manifests.map((m) => stringify(m)).join('---\n'));
    git('add', '-A');
    git('commit', '-qm', message, '--allow-empty');
    return git('rev-parse', 'HEAD').trim();
  };
  const app = async () => JSON.parse(await kube.kubectlOk(['get', 'application', APP, '-n', argocd.namespace, '-o', 'json']));
  const refresh = () => kube.kubectlOk(['annotate', 'application', APP, '-n', argocd.namespace, 'argocd.argoproj.io/refresh=hard', '--overwrite']);
  async function until(what: string, check: (a: any) => boolean, timeoutMs = 60_000): Promise<any> {
    let last: any;
    for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(500)) {
      last = await app().catch(() => undefined);
      if (last && check(last)) return last;
    }
    throw new Error(`Argo CD: ${what} not reached in ${timeoutMs} ms; status ${JSON.stringify(last?.status?.sync)} ${JSON.stringify(last?.status?.health)} ${JSON.stringify(last?.status?.operationState?.message)}`);
  }
  const live = async (kind: string, name: string, ns?: string) => {
    const r = await kube.kubectl(['get', kind, name, ...(ns ? ['-n', ns] : []), '-o', 'json']);
    return r.code === 0 ? JSON.parse(r.stdout) : undefined;
  };
  // No garbage collector here: a deleted object with dependents keeps its foreground finalizer.
  const deleting = (o: any) => o === undefined || o.metadata.deletionTimestamp !== undefined;
  const named = (kind: string) => objects.find((m) => m.kind === kind)!;

  beforeAll(async () => {
    scratch = mkdtempSync(path.join(os.tmpdir(), 'learnflow-pitr-argo-'));
    repo = path.join(scratch, 'gitops');
    mkdirSync(path.join(repo, 'app'), { recursive: true });
    git('init', '-q', '-b', 'main');
    objects = backupObjectsForArgoCd(NS);
    kube = await startKube();
    argocd = await startArgoCd(kube, { argocdCm: { 'timeout.reconciliation': '10s' } });
  }, 240_000);
  afterAll(async () => {
    await argocd?.stop();
    await kube?.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('judges the claim by its phase and keeps a failed backup from degrading the Application', async () => {
    const first = commit(objects, 'profile');
    await kube.kubectlOk(['apply', '-f', '-'], { input: JSON.stringify({
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Application',
      metadata: { name: APP, namespace: argocd.namespace, finalizers: ['resources-finalizer.argocd.argoproj.io/background'] },
      spec: {
        project: 'default',
        source: { repoURL: `file://${repo}`, path: 'app', targetRevision: 'main' },
        destination: { server: 'https://kubernetes.default.svc', namespace: NS },
        syncPolicy: { automated: { prune: true }, syncOptions: ['PruneLast=true', 'PrunePropagationPolicy=background'] },
      },
    }) });
    // No volume controller here: the new claim stays Pending, as under WaitForFirstConsumer
    // before a pod mounts it. Argo CD judges it Progressing and the sync waits in its wave (0)...
    const claim = named('PersistentVolumeClaim').metadata.name;
    await until('the sync waiting on the Pending claim', (a) => a.status?.health?.status === 'Progressing' &&
      String(a.status?.operationState?.message ?? '').includes(`waiting for healthy state of /PersistentVolumeClaim/${claim}`));
    // ... until it is Bound: the database pod, in the same wave, mounts it (lib/pitr/chart-values.ts).
    await kube.kubectlOk(['patch', 'pvc', claim, '-n', NS, '--subresource=status', '--type=merge', '-p', '{"status":{"phase":"Bound"}}']);
    await until('synced and Healthy once the claim is Bound', (a) => a.status?.sync?.status === 'Synced' && a.status?.sync?.revision === first && a.status?.health?.status === 'Healthy', 90_000);

    // The last scheduled base backup failed: its CronJob is Degraded to Argo CD ...
    const cronJob = objects.find((m) => m.kind === 'CronJob' && m.metadata.annotations?.['argocd.argoproj.io/ignore-healthcheck'] === 'true')!.metadata.name;
    await kube.kubectlOk(['patch', 'cronjob', cronJob, '-n', NS, '--subresource=status', '--type=merge', '-p',
      JSON.stringify({ status: { lastScheduleTime: '2026-12-03T02:30:00Z', lastSuccessfulTime: '2026-12-02T02:31:00Z' } })]);
    const failed = await live('cronjob', cronJob, NS);
    const file = path.join(scratch, 'cronjob.json');
    writeFileSync(file, JSON.stringify(failed));
    writeFileSync(path.join(scratch, 'argocd-cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: argocd-cm}\ndata: {}\n');
    const judged = await runToolOk('argocd', ['admin', 'settings', 'resource-overrides', 'health', file, '--argocd-cm-path', path.join(scratch, 'argocd-cm.yaml')]);
    expect(judged).toContain('STATUS: Degraded');
    // ... and the Application stays Healthy: `argocd app wait --health` is not broken by it.
    await refresh();
    await sleep(3000);
    const after = await until('a reconciliation after the failure', (a) => a.status?.reconciledAt !== undefined);
    expect(after.status.health.status).toBe('Healthy');
  }, 180_000);

  it('never prunes the Namespace or the claim when they leave Git, and never deletes them with the Application', async () => {
    // The namespace is renamed: every object moves, auto-prune removes what was left behind.
    const renamed = backupObjectsForArgoCd(`${NS}-renamed`);
    const second = commit(renamed, 'namespace renamed');
    await refresh();
    const claimName = named('PersistentVolumeClaim').metadata.name;
    await until('the sync waiting on the new claim', (a) => String(a.status?.operationState?.message ?? '').includes(`/PersistentVolumeClaim/${claimName}`), 90_000);
    await kube.kubectlOk(['patch', 'pvc', claimName, '-n', `${NS}-renamed`, '--subresource=status', '--type=merge', '-p', '{"status":{"phase":"Bound"}}']);
    const synced = await until('synced to the rename', (a) => a.status?.operationState?.syncResult?.revision === second && a.status?.operationState?.phase === 'Succeeded', 90_000);
    // Argo CD pruned the old CronJobs and ConfigMap, skipped the Namespace and the claim, and says so.
    const skipped = synced.status.operationState.syncResult.resources.filter((r: any) => r.namespace === NS || r.name === NS);
    expect(skipped.filter((r: any) => r.status === 'PruneSkipped').map((r: any) => r.kind).sort()).toEqual(['Namespace', 'PersistentVolumeClaim']);
    const cronJobs = objects.filter((m) => m.kind === 'CronJob').map((m) => m.metadata.name);
    for (const name of cronJobs) expect(deleting(await live('cronjob', name, NS)), name).toBe(true);
    const ns = await live('namespace', NS);
    const claim = await live('pvc', named('PersistentVolumeClaim').metadata.name, NS);
    expect(ns?.metadata.deletionTimestamp).toBeUndefined();
    expect(claim?.metadata.deletionTimestamp).toBeUndefined();
    expect(ns.metadata.annotations['argocd.argoproj.io/sync-options']).toBe('Prune=false,Delete=false');

    // The Application is deleted with its resources (its finalizer): the data stays.
    await kube.kubectlOk(['delete', 'application', APP, '-n', argocd.namespace, '--wait=false']);
    for (const deadline = Date.now() + 60_000; Date.now() < deadline && (await kube.kubectl(['get', 'application', APP, '-n', argocd.namespace])).code === 0;) await sleep(500);
    expect((await kube.kubectl(['get', 'application', APP, '-n', argocd.namespace])).code).not.toBe(0);
    for (const name of cronJobs) expect(deleting(await live('cronjob', name, `${NS}-renamed`)), name).toBe(true);
    expect(deleting(await live('configmap', named('ConfigMap').metadata.name, `${NS}-renamed`))).toBe(true);
    for (const namespace of [NS, `${NS}-renamed`]) {
      expect((await live('namespace', namespace))?.metadata.deletionTimestamp, namespace).toBeUndefined();
      const kept = await live('pvc', named('PersistentVolumeClaim').metadata.name, namespace);
      expect(kept, namespace).toBeDefined();
      expect(kept.metadata.deletionTimestamp, namespace).toBeUndefined();
    }
  }, 240_000);
}, { kube: true });
