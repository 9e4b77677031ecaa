// The chart tier on real API servers: every case's dist/ and the chart's render applied together,
// server-side, into its "restricted" namespace, on the oldest and the newest supported Kubernetes
// (lib/kubernetes.ts); then the real helm installs the vendored chart and upgrades it again
// without changing anything but its own release record and what the chart regenerates by design.
// The newest is the run's shared server (each case in a namespace of its own); the oldest starts
// here. No kubelet and no controllers: objects are stored, validated and admitted, never run.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { chartObjects } from '../../lib/chart';
import { passwordKeys } from '../../lib/credentials/keys';
import { CHART_NAME } from '../../lib/chart-source';
import { SUPPORTED_KUBERNETES_VERSIONS, TESTED_KUBERNETES_RELEASES } from '../../lib/kubernetes';
import { RenderedChartCase, chartCases } from '../support/chart-render';
import { installCertManagerCrds } from '../support/kube-dist';
import { refOf } from '../support/chart-refs';
import { ROOT } from '../support/dist';
import { Kube, kubeVersion, startKube, useSharedKube } from '../support/kube';
import { describeWithTools, helmEnv, runTool } from '../support/tools';

const scratch = mkdtempSync(path.join(os.tmpdir(), 'learnflow-chart-cluster-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Runs `fn` over `items`, two at a time (each is a few processes). */
async function twoAtATime<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all([0, 1].map(async () => {
    for (let i = next++; i < items.length; i = next++) results[i] = await fn(items[i]);
  }));
  return results;
}

/** Server-side apply of the case's dist/ and the chart's render, in one go, as a user applies both. */
const applyCase = (kube: Kube, c: RenderedChartCase, ...extra: string[]) =>
  kube.kubectl(['apply', '--server-side', '--field-manager=learnflow', '-f', '-', ...extra], { input: `${c.distYaml}\n---\n${c.chartYaml}` });

/** The kinds the chart renders, plus Secrets (helm's release record). */
const CHART_KINDS = 'statefulsets,services,secrets,serviceaccounts,poddisruptionbudgets,persistentvolumeclaims,cronjobs,networkpolicies,configmaps';

/** `Kind/name` → resourceVersion of everything of those kinds in `ns`. */
async function versionsIn(kube: Kube, ns: string): Promise<Record<string, string>> {
  const list = JSON.parse(await kube.kubectlOk(['get', CHART_KINDS, '-n', ns, '-o', 'json']));
  return Object.fromEntries(list.items.map((m: any) => [refOf(m), m.metadata.resourceVersion]));
}

describeWithTools('dist/ and the chart on real API servers', ['helm'], () => {
  let newest: Kube;
  let oldest: Kube;
  useSharedKube((k) => (newest = k));
  beforeAll(async () => {
    // The shared server may be given another version (LEARNFLOW_KUBE_VERSION); the oldest is pinned.
    oldest = await startKube({ version: TESTED_KUBERNETES_RELEASES.oldest });
    // Profiles with a tls.issuer render a cert-manager Certificate: the cluster serves its CRDs.
    await Promise.all([installCertManagerCrds(newest), installCertManagerCrds(oldest)]);
  }, 120_000);
  afterAll(async () => {
    await oldest?.stop();
  });

  it('runs the oldest and the newest supported Kubernetes', () => {
    expect(TESTED_KUBERNETES_RELEASES.newest).toBe(kubeVersion());
    expect([oldest.version, newest.version].map((v) => v.split('.').slice(0, 2).join('.')))
      .toEqual([SUPPORTED_KUBERNETES_VERSIONS[0], SUPPORTED_KUBERNETES_VERSIONS.at(-1)]);
  });

  for (const which of ['newest', 'oldest'] as const) {
    it(`takes every case's dist/ and chart render, server-side, into its restricted namespace with zero warnings (${which})`, async () => {
      const kube = which === 'newest' ? newest : oldest;
      const cases = await chartCases();
      const results = await twoAtATime(cases, async (c) => ({ c, r: await applyCase(kube, c) }));
      const problems = results.filter(({ r }) => r.code !== 0 || r.stderr !== '').map(({ c, r }) => `${c.name} (exit ${r.code}): ${r.stderr}`);
      expect(problems, `Kubernetes ${kube.version}`).toEqual([]);
      for (const { c, r } of results) expect(r.stdout.trim().split('\n'), c.name).toHaveLength(c.all.length);
      // The namespace enforces "restricted": admission, not our reading, passed every pod template.
      const ns = JSON.parse(await kube.kubectlOk(['get', 'namespace', cases[0].namespace, '-o', 'json']));
      expect(ns.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
    }, 180_000);
  }

  it('"zero warnings" means something: a chart pod template that breaks "restricted" is warned about', async () => {
    const c = (await chartCases())[0];
    const broken = c.chart.find((m) => m.kind === 'StatefulSet')!;
    const copy = structuredClone(broken);
    copy.metadata.name = 'not-restricted';
    for (const container of copy.spec.template.spec.containers) delete container.securityContext;
    const r = await newest.kubectl(['apply', '--server-side', '--dry-run=server', '-f', '-'], { input: JSON.stringify(copy) });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Warning: would violate PodSecurity "restricted:latest"/);
  });

  it('helm upgrade --install, helm status, the same upgrade again: only helm\'s release records change (the generated certificate is kept)', async () => {
    const helmHome = path.join(scratch, 'helm');
    const env = { ...helmEnv(helmHome), KUBECONFIG: newest.kubeconfig };
    const helm = (args: string[]) => runTool('helm', args, { env, timeoutMs: 120_000 });
    const problems = await twoAtATime(await chartCases(), async (c) => {
      // A namespace of its own beside the applied one: helm does not adopt objects it did not create.
      const ns = `${c.namespace}-helm`;
      // A node port is cluster-wide: free it from the applied copy of the case first.
      if (c.config.nodePort !== undefined) await newest.kubectlOk(['delete', 'service', chartObjects(c.release).service, '-n', c.namespace, '--ignore-not-found']);
      await newest.kubectlOk(['create', 'namespace', ns]);
      await newest.kubectlOk(['label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=restricted', 'pod-security.kubernetes.io/warn=restricted']);
      // The credentials Secret exists before helm runs, as the bootstrap (or the user) makes it: the
      // chart looks it up at every upgrade and refuses one without it ("PASSWORDS ERROR").
      const secret = c.config.credentials.existingSecret ?? `${chartObjects(c.release).service}-credentials`;
      await newest.kubectlOk(['create', 'secret', 'generic', secret, '-n', ns,
        ...passwordKeys(c.config).map((key) => `--from-literal=${key}=${randomBytes(20).toString('hex')}`)]);
      const values = path.join(scratch, `${ns}.values.yaml`);
      writeFileSync(values, c.valuesYaml);
      const upgrade = ['upgrade', '--install', c.release, path.join(ROOT, `charts/${CHART_NAME}-${c.config.chartVersion}.tgz`), '--namespace', ns, '-f', values];
      const first = await helm(upgrade);
      if (first.code !== 0) return [`${c.name}: helm upgrade --install exited ${first.code}: ${first.stderr}`];
      const status = await helm(['status', c.release, '--namespace', ns, '-o', 'json']);
      const deployed = status.code === 0 ? JSON.parse(status.stdout).info.status : `exit ${status.code}: ${status.stderr}`;
      const before = await versionsIn(newest, ns);
      const second = await helm(upgrade);
      if (second.code !== 0) return [`${c.name}: the second helm upgrade exited ${second.code}: ${second.stderr}`];
      const after = await versionsIn(newest, ns);
      // Helm's release records: the new revision, and the previous one marked superseded. Nothing
      // else: the chart looks its generated certificate up at an upgrade and keeps it (only a
      // render without a cluster, Argo CD's, makes a new one: see the ignoreDifferences test).
      const regenerated = new Set(Object.keys(after).filter((k) => k.startsWith(`Secret/sh.helm.release.v1.${c.release}.v`)));
      const changed = Object.keys(after).filter((k) => before[k] !== after[k] && !regenerated.has(k));
      const out = [
        ...(deployed === 'deployed' ? [] : [`${c.name}: helm status says ${deployed}`]),
        ...(changed.length ? [`${c.name}: the same upgrade changed ${changed.join(', ')}`] : []),
        ...(first.stderr.trim() ? [`${c.name}: helm printed ${first.stderr.trim()}`] : []),
      ];
      if (!Object.keys(after).includes(`Secret/sh.helm.release.v1.${c.release}.v2`)) out.push(`${c.name}: no revision 2`);
      return out;
    });
    expect(problems.flat()).toEqual([]);
  }, 240_000);
}, { kube: true, kubeVersions: [TESTED_KUBERNETES_RELEASES.oldest] });
