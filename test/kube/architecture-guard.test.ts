// The volume guard in a sync: the chart names the primary's StatefulSet and its data claim after
// its architecture (`<fullname>` standalone, `<fullname>-primary` with read replicas), so turning
// read replicas on or off over existing data would start the primary empty on a new claim. The
// credentials Job (wave -1, before the chart) stops first. Here: the Job exactly as the synth
// renders it for each architecture, run as its own ServiceAccount against a real API server.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chartObjects } from '../../lib/chart';
import { LearnflowPostgresProps } from '../../lib/config';
import { BOOTSTRAP } from '../../lib/credentials/bootstrap-contract';
import { Manifest } from '../support/dist';
import { Kube, describeKube, useSharedKube } from '../support/kube';
import { applyObjects, createClaim, deleteClaim, live, runJobHere } from '../support/kube-dist';
import { variantManifests } from '../support/variants';

const NAMESPACE = 'lftest-architecture';
const STANDALONE = chartObjects('pg');
const REPLICATED = chartObjects('pg', 1);
const DATA_ELSEWHERE = BOOTSTRAP.exits.dataElsewhere.code;

/** The credentials objects (with the Namespace) that the synth renders for these props. */
function credentials(name: string, props: LearnflowPostgresProps): { all: Manifest[]; job: Manifest } {
  const all = variantManifests(name, { namespace: NAMESPACE, releaseName: 'pg', ...props })
    .filter((m) => m.kind === 'Namespace' || m.metadata.labels?.['app.kubernetes.io/component'] === 'credentials');
  return { all, job: all.find((m) => m.kind === 'Job')! };
}

const scratch = mkdtempSync(path.join(os.tmpdir(), 'learnflow-architecture-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describeKube('the volume guard in a sync: read replicas turned on or off over existing data', () => {
  let kube: Kube;
  const standalone = credentials('standalone', {});
  const replicated = credentials('replicated', { readReplicas: { count: 1 } });
  const dirs = { home: path.join(scratch, 'home'), tmp: path.join(scratch, 'tmp') };
  const account = (r: typeof standalone) => r.all.find((m) => m.kind === 'ServiceAccount')!.metadata.name;
  const run = async (r: typeof standalone) => {
    await applyObjects(kube, r.all);
    const as = await kube.asServiceAccount(NAMESPACE, account(r));
    // RBAC reaches the authorizer through an informer: wait until the Role lets it read both claims.
    for (const deadline = Date.now() + 10_000; ;) {
      const can = await Promise.all([STANDALONE.dataClaim, REPLICATED.dataClaim].map((claim) =>
        kube.kubectl(['auth', 'can-i', 'get', `persistentvolumeclaim/${claim}`, '-n', NAMESPACE, `--as=system:serviceaccount:${NAMESPACE}:${account(r)}`])));
      if (can.every((c) => c.code === 0)) break;
      if (Date.now() > deadline) throw new Error(`the credentials Role never allowed reading both data claims: ${can.map((c) => c.stdout).join(' ')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return runJobHere(kube, r.job, as, dirs);
  };
  const claim = (name: string) => createClaim(kube, NAMESPACE, name);

  useSharedKube((k) => (kube = k));
  beforeAll(() => {
    mkdirSync(dirs.home);
    mkdirSync(dirs.tmp);
  });

  it('renders each architecture\'s claim and the other one into the Job, and fails the Job at once on the refusal', () => {
    const env = (r: typeof standalone) => Object.fromEntries(r.job.spec.template.spec.containers[0].env.map((e: { name: string; value: string }) => [e.name, e.value]));
    expect(env(standalone)).toMatchObject({ DATA_CLAIM: 'data-pg-postgresql-0', OTHER_DATA_CLAIM: 'data-pg-postgresql-primary-0' });
    expect(env(replicated)).toMatchObject({ DATA_CLAIM: 'data-pg-postgresql-primary-0', OTHER_DATA_CLAIM: 'data-pg-postgresql-0' });
    const failJob = replicated.job.spec.podFailurePolicy.rules.find((r: { action: string }) => r.action === 'FailJob');
    expect(failJob.onExitCodes.values).toContain(DATA_ELSEWHERE);
  });

  it('a first install with replicas (no claim at all) passes; so does a standalone database on its own claim', async () => {
    const first = await run(replicated);
    expect(first.code, first.stderr).toBe(0);
    await claim(STANDALONE.dataClaim);
    const same = await run(standalone);
    expect(same.code, same.stderr).toBe(0);
  });

  it('read replicas turned on over the standalone data: exit 4 naming both claims and the ways through; nothing changed', async () => {
    const before = await live(kube, `pvc/${STANDALONE.dataClaim}`, NAMESPACE);
    const r = await run(replicated);
    expect(r.code, r.stderr).toBe(DATA_ELSEWHERE);
    for (const phrase of [
      `the database's data is on ${NAMESPACE}/${STANDALONE.dataClaim}`,
      `would start the primary empty on a new claim ${NAMESPACE}/${REPLICATED.dataClaim}`,
      'read replicas are turned on',
      'Stopped before the database changes',
      'set readReplicas back',
      `a dump with the backup Job, delete the claim ${STANDALONE.dataClaim}`,
    ]) expect(r.stderr).toContain(phrase);
    expect((await live(kube, `pvc/${STANDALONE.dataClaim}`, NAMESPACE))?.metadata.resourceVersion).toBe(before?.metadata.resourceVersion);
    expect(await live(kube, `pvc/${REPLICATED.dataClaim}`, NAMESPACE)).toBeUndefined();
  });

  it('the way through: once the old claim is gone the replicas render passes; turning them off again over its data is refused too', async () => {
    await deleteClaim(kube, NAMESPACE, STANDALONE.dataClaim);
    const moved = await run(replicated);
    expect(moved.code, moved.stderr).toBe(0);
    await claim(REPLICATED.dataClaim);
    const again = await run(replicated);
    expect(again.code, again.stderr).toBe(0);
    const off = await run(standalone);
    expect(off.code, off.stderr).toBe(DATA_ELSEWHERE);
    expect(off.stderr).toContain(`the database's data is on ${NAMESPACE}/${REPLICATED.dataClaim}`);
    expect(off.stderr).toContain('read replicas are turned off');
  });
});
