// The major-version guard in a sync (Argo CD, or kubectl apply then helm): the credentials Job
// runs before the chart's StatefulSet (wave -1; the README's kubectl steps wait for it before
// helm), and stops when the data claim exists and the StatefulSet runs another PostgreSQL major
// than the render's chart would start. Here: the Job exactly as the synth renders it for chart
// 15.5.38 (PostgreSQL 16) and for 16.7.27 (PostgreSQL 17), run as its own ServiceAccount against
// a real API server holding the real chart's StatefulSet (helm template of the vendored archive).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { chartObjects } from '../../lib/chart';
import { ChartVersion } from '../../lib/chart';
import { LearnflowPostgresProps, resolveConfig } from '../../lib/config';
import { BOOTSTRAP } from '../../lib/credentials/bootstrap-contract';
import { renderProfile } from '../../lib/synth';
import { helmTemplate } from '../support/chart-render';
import { Manifest } from '../support/dist';
import { Kube, useSharedKube } from '../support/kube';
import { applyObjects, createClaim, deleteClaim, live, runJobHere } from '../support/kube-dist';
import { describeWithTools } from '../support/tools';
import { FIXTURE_MIGRATIONS } from '../support/variants';

const NAMESPACE = 'lftest-major';
const props = (chartVersion: ChartVersion): LearnflowPostgresProps => ({ namespace: NAMESPACE, releaseName: 'pg', chartVersion });
const NAMES = chartObjects('pg');
const ACCOUNT = `${NAMES.service}-credentials`;
const OTHER_MAJOR = BOOTSTRAP.exits.otherMajor.code;

const objects = (yaml: string): Manifest[] => parseAllDocuments(yaml).map((d) => d.toJS() as Manifest).filter((m) => m?.kind);

/** One render of the deployment: its credentials objects (with the Namespace) and the chart's StatefulSet. */
interface Render {
  readonly credentials: Manifest[];
  readonly job: Manifest;
  readonly statefulSet: Manifest;
}

const scratch = mkdtempSync(path.join(os.tmpdir(), 'learnflow-major-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function render(chartVersion: ChartVersion): Promise<Render> {
  const files = renderProfile(`major-${chartVersion}`, props(chartVersion), FIXTURE_MIGRATIONS);
  const dist = objects(files.get('learnflow-postgres.yaml')!);
  const values = path.join(scratch, `${chartVersion}.values.yaml`);
  writeFileSync(values, files.get('helm/postgresql-values.yaml')!);
  const chart = objects(await helmTemplate(resolveConfig(props(chartVersion)), values, path.join(scratch, 'helm')));
  const credentials = dist.filter((m) => m.kind === 'Namespace' || m.metadata.labels?.['app.kubernetes.io/component'] === 'credentials');
  return {
    credentials,
    job: credentials.find((m) => m.kind === 'Job')!,
    statefulSet: chart.find((m) => m.kind === 'StatefulSet' && m.metadata.name === NAMES.statefulSet)!,
  };
}

describeWithTools('the major-version guard in a sync: the credentials Job before the StatefulSet', ['helm'], () => {
  let kube: Kube;
  let asAccount: string;
  let pg16: Render;
  let pg17: Render;
  const dirs = { home: path.join(scratch, 'home'), tmp: path.join(scratch, 'tmp') };
  const run = (r: Render) => runJobHere(kube, r.job, asAccount, dirs);
  const claim = () => createClaim(kube, NAMESPACE, NAMES.dataClaim);
  const replaceStatefulSet = async (statefulSet: Manifest) => {
    await kube.kubectlOk(['delete', 'statefulset', NAMES.statefulSet, '-n', NAMESPACE, '--ignore-not-found']);
    await applyObjects(kube, [statefulSet]);
  };

  useSharedKube((k) => (kube = k));
  beforeAll(async () => {
    mkdirSync(dirs.home);
    mkdirSync(dirs.tmp);
    [pg16, pg17] = await Promise.all([render('15.5.38'), render('16.7.27')]);
    await applyObjects(kube, pg16.credentials);
    asAccount = await kube.asServiceAccount(NAMESPACE, ACCOUNT);
    // RBAC reaches the authorizer through an informer.
    for (const deadline = Date.now() + 10_000; ;) {
      const r = await kube.kubectl(['auth', 'can-i', 'get', `statefulset/${NAMES.statefulSet}`, '-n', NAMESPACE, `--as=system:serviceaccount:${NAMESPACE}:${ACCOUNT}`]);
      if (r.code === 0) break;
      if (Date.now() > deadline) throw new Error(`the credentials Role never allowed reading the StatefulSet: ${r.stdout}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }, 120_000);

  it('renders the major each chart starts into its Job: a chart switch is a new Job, which a sync runs before the StatefulSet', () => {
    const env = (r: Render) => Object.fromEntries(r.job.spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value]));
    expect([env(pg16).POSTGRESQL_MAJOR, env(pg17).POSTGRESQL_MAJOR]).toEqual(['16', '17']);
    expect(env(pg17)).toMatchObject({ STATEFULSET: NAMES.statefulSet, DATA_CLAIM: NAMES.dataClaim, CHART_MAJORS: '15.5.38=16 16.7.27=17' });
    expect(pg16.job.metadata.name).not.toBe(pg17.job.metadata.name);
    // Wave -1, before the chart's objects (wave 0), and the refusal fails the Job at once (no retries).
    expect(pg17.job.metadata.annotations?.['argocd.argoproj.io/sync-wave']).toBe('-1');
    expect(pg17.statefulSet.metadata.annotations?.['argocd.argoproj.io/sync-wave']).toBeUndefined();
    const failJob = pg17.job.spec.podFailurePolicy.rules.find((r: any) => r.action === 'FailJob');
    expect(failJob.onExitCodes.values).toContain(OTHER_MAJOR);
  });

  it('a first install (no data claim): passes, and creates the Secret', async () => {
    const r = await run(pg16);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('runs on');
  });

  it('the same major on the data claim: passes, saying which major runs', async () => {
    await applyObjects(kube, [pg16.statefulSet]);
    await claim();
    const r = await run(pg16);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`PostgreSQL 16 runs on ${NAMESPACE}/${NAMES.dataClaim}, the major this chart starts`);
  });

  it('chart 16.7.27 over PostgreSQL 16\'s data: exit 3 naming both majors and the ways through; nothing changed', async () => {
    await applyObjects(kube, pg17.credentials);
    const before = await Promise.all([live(kube, `statefulset/${NAMES.statefulSet}`, NAMESPACE), live(kube, `secret/${ACCOUNT}`, NAMESPACE)]);
    const r = await run(pg17);
    expect(r.code, r.stderr).toBe(OTHER_MAJOR);
    for (const phrase of [
      `PostgreSQL 16 runs on the data volume ${NAMESPACE}/${NAMES.dataClaim}`,
      'chart 15.5.38',
      'would start PostgreSQL 17 on it',
      'Stopped before the database changes',
      "set chartVersion back to '15.5.38'",
      'a dump with the backup Job, a fresh volume for PostgreSQL 17',
    ]) expect(r.stderr).toContain(phrase);
    const after = await Promise.all([live(kube, `statefulset/${NAMES.statefulSet}`, NAMESPACE), live(kube, `secret/${ACCOUNT}`, NAMESPACE)]);
    expect(after.map((m) => m?.metadata.resourceVersion)).toEqual(before.map((m) => m?.metadata.resourceVersion));
  });

  it('reads the chart label when the image names no version (a digest): still exit 3', async () => {
    const pinned = structuredClone(pg16.statefulSet);
    const db = pinned.spec.template.spec.containers.find((c: any) => c.name === 'postgresql');
    db.image = `docker.io/bitnamilegacy/postgresql@sha256:${'ab12'.repeat(16)}`;
    await replaceStatefulSet(pinned);
    const r = await run(pg17);
    expect(r.code, r.stderr).toBe(OTHER_MAJOR);
    expect(r.stderr).toContain('PostgreSQL 16 runs on the data volume');
  });

  it('the way through: a fresh volume passes for PostgreSQL 17; then going back to 16 over 17\'s data is refused too', async () => {
    await deleteClaim(kube, NAMESPACE, NAMES.dataClaim);
    const fresh = await run(pg17);
    expect(fresh.code, fresh.stderr).toBe(0);
    // The chart 16.7.27 now runs on a new claim.
    await replaceStatefulSet(pg17.statefulSet);
    await claim();
    const same = await run(pg17);
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout).toContain('PostgreSQL 17 runs on');
    const back = await run(pg16);
    expect(back.code, back.stderr).toBe(OTHER_MAJOR);
    expect(back.stderr).toContain("PostgreSQL 17 runs on the data volume");
    expect(back.stderr).toContain("set chartVersion back to '16.7.27'");
  });
}, { kube: true });
