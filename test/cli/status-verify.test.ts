// `status` and `verify` computed from real objects on a real kube-apiserver: the real helm installs
// the vendored chart with dist/'s values (the command deploy runs), the test creates what the
// StatefulSet controller would and writes the statuses the Job controller, the kubelet and the
// volume binder would write, and reads what the CLI makes of them. The fixture project's `status`
// profile (chart 16.7.27, a release named like the chart).
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { expect, it } from 'vitest';
import { DeploymentStatus } from '../../lib/cli/commands/status';
import { FIXTURE_VERSIONS, fixtureObject, fixtureProject } from '../support/fixture-project';
import { Kube } from '../support/kube';
import { describeWithTools, helmEnv, runToolOk } from '../support/tools';
import { parseAllDocuments } from 'yaml';
import {
  CliEnv, Helm, bindClaim, cli, completeJob, create, eventually, failJob, fixtureTarget, get, jobPodExited, kubectlDir,
  runBootstrap, runStatefulSet, setPodReady, startCli, time, unreachableKubeconfig, CliCluster, useCliCluster } from './support';

const T = fixtureTarget('status');
const { namespace: NS, chart: CHART, jobs: JOBS, connection: CONNECTION } = T;
const PROFILE = ['--profile', T.profile];
const DIST_DIR = () => path.join(fixtureProject(), 'dist', T.profile);
const [FIRST, LAST] = [FIXTURE_VERSIONS[0], FIXTURE_VERSIONS.at(-1)!];
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** `status --profile <profile> --json`: exit 0, nothing on stderr, one JSON object. */
async function statusJson(profile: string, env: CliEnv): Promise<DeploymentStatus> {
  const r = await cli(['status', '--profile', profile, '--json'], env);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout);
}

describeWithTools('learnflow-postgres status and verify from real objects and a real Helm release', ['helm'], () => {
  let kube: Kube;
  let scratch: CliCluster['scratch'];
  let helm: Helm;
  let env: CliEnv;
  useCliCluster((cluster) => ({ kube, scratch, helm, env } = cluster));

  const status = () => statusJson(T.profile, env);

  /** Deletes a Job of dist/ and applies dist/ again: a fresh Job with no status, as after a new sync. */
  const recreate = async (name: string) => {
    await kube.kubectlOk(['delete', 'job', name, '-n', NS]);
    await kube.kubectlOk(['apply', '-f', DIST_DIR()]);
  };

  it('exits 2 when the cluster cannot be reached', async () => {
    const r = await cli(['status', ...PROFILE], { ...env, kubeconfig: await unreachableKubeconfig(kube, scratch.dir) });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Kubernetes API not accessible');
  });

  it('status --json is one JSON object even when the cluster cannot be reached: an error field, exit 2', async () => {
    const r = await cli(['status', ...PROFILE, '--json'], { ...env, kubeconfig: await unreachableKubeconfig(kube, scratch.dir) });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ profile: T.profile, exit_code: 2, error: expect.stringContaining('Kubernetes API not accessible') });
    expect(out.next).toContainEqual(expect.stringContaining('kubectl config current-context'));
  });

  it('NotDeployed on an empty cluster (exit 0), as JSON and as a table', async () => {
    expect(await status()).toEqual({
      profile: T.profile, namespace: NS, release: T.release, managed_by: null, chart: null,
      phase: 'NotDeployed', pods_ready: 0, pods_total: 0, pvc_bound: false, database_accessible: false,
      migrations_applied: null, migrations_pending: null, connection_string: CONNECTION, last_updated: null,
      jobs: {
        credentials: { name: JOBS.credentials, phase: 'Missing' },
        migrations: { name: JOBS.migrations, phase: 'Missing' },
        verification: { name: JOBS.verification, phase: 'Missing' },
      },
      conditions: [`namespace ${NS} does not exist`],
    });
    const table = await cli(['status', ...PROFILE], env);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^Phase +NotDeployed$/m);
    expect(table.stdout).toMatch(new RegExp(`^Connection string +${escape(CONNECTION)}$`, 'm'));
    expect(table.stdout).toMatch(new RegExp(`^Why +namespace ${NS} does not exist$`, 'm'));
  });

  it('verify: stage 1 fails without a release (exit 5); exit 3 without helm', async () => {
    const r = await cli(['verify', ...PROFILE], env);
    expect(r.code).toBe(5);
    expect(r.stdout).toMatch(new RegExp(`^stage 1 release +FAILED: release ${T.release} not installed in ${NS}$`, 'm'));
    expect(r.stderr).toContain('health check failed at stage 1 release');
    expect(r.stderr).toContain(`learnflow-postgres deploy --profile ${T.profile}`);
    const noHelm = await cli(['verify', ...PROFILE], { ...env, path: [kubectlDir()] });
    expect(noHelm.code).toBe(3);
  });

  it('Deploying while the pod is not ready and the claim is Pending', async () => {
    // What deploy does: dist/, the credentials bootstrap's Secret, then the pinned helm command.
    await kube.kubectlOk(['apply', '-f', DIST_DIR()]);
    await runBootstrap(kube, T.profile, scratch.dir);
    const install = await helm(T.helmUpgrade);
    expect(install.code, install.stderr).toBe(0);
    expect(await runStatefulSet(kube, NS, CHART.statefulSet)).toEqual({ pod: CHART.pod, claims: [CHART.dataClaim] });
    await setPodReady(kube, NS, CHART.pod, false);
    const s = await status();
    expect(s).toMatchObject({
      phase: 'Deploying', managed_by: 'helm', chart: `postgresql-${T.chartVersion}`,
      pods_ready: 0, pods_total: 1, pvc_bound: false, database_accessible: false, migrations_applied: null,
    });
    expect(s.conditions).toContain(`pod/${CHART.pod} not ready: phase Running; postgresql running, not ready`);
    expect(s.conditions).toContain(`pvc/${CHART.dataClaim} Pending`);
    expect(s.conditions).toContain(`job/${JOBS.migrations} (migrations) not finished yet`);
    expect(s.last_updated).not.toBeNull();
  });

  it('Ready once the pod is Ready, the claim Bound and every Job complete; last_updated is the newest change', async () => {
    await bindClaim(kube, NS, CHART.dataClaim);
    await setPodReady(kube, NS, CHART.pod, true);
    await completeJob(kube, NS, JOBS.credentials);
    await completeJob(kube, NS, JOBS.migrations);
    const newest = time(3600); // a transition an hour ahead is the newest thing on the server
    await completeJob(kube, NS, JOBS.verification, newest);
    const s = await status();
    expect(s).toMatchObject({
      phase: 'Ready', pods_ready: 1, pods_total: 1, pvc_bound: true, database_accessible: true,
      migrations_applied: FIXTURE_VERSIONS, migrations_pending: [],
      connection_string: CONNECTION, last_updated: newest, conditions: [],
    });
    const table = await cli(['status', ...PROFILE], env);
    expect(table.stdout).toMatch(/^Pods ready +1\/1$/m);
    const n = FIXTURE_VERSIONS.length;
    expect(table.stdout).toMatch(new RegExp(`^Migrations +${n} of ${n} applied \\(${FIRST}\\.\\.${LAST}\\)$`, 'm'));
    expect(table.stdout).toMatch(/^Pending migrations +none$/m);
  });

  it('database not accessible while the pod is not Ready, even after a verification', async () => {
    await setPodReady(kube, NS, CHART.pod, false);
    expect(await status()).toMatchObject({ phase: 'Deploying', pods_ready: 0, database_accessible: false });
    await setPodReady(kube, NS, CHART.pod, true);
  });

  it('verify: all four stages pass (exit 0)', async () => {
    const r = await cli(['verify', ...PROFILE], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^stage 1 release +ok: release ${T.release} deployed, revision 1, chart postgresql-${escape(T.chartVersion)}$`, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^stage 2 pod readiness +ok: pod ${CHART.pod} Ready$`, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^stage 3 database ping +ok: job/${JOBS.verification} Complete$`, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^stage 4 schema +ok: job/${JOBS.verification} Complete$`, 'm'));
  });

  it('--context picks the kubeconfig context for every kubectl and helm call', async () => {
    // A kubeconfig whose current context cannot be reached, and a context that can.
    const config = JSON.parse(readFileSync(kube.kubeconfig, 'utf8'));
    const unreachable = JSON.parse(readFileSync(await unreachableKubeconfig(kube, scratch.dir), 'utf8'));
    config.clusters.push({ ...unreachable.clusters[0], name: 'nowhere' });
    config.contexts = [{ name: 'lftest-good', context: config.contexts[0].context }, { name: 'nowhere', context: { ...config.contexts[0].context, cluster: 'nowhere' } }];
    config['current-context'] = 'nowhere';
    const file = path.join(scratch.dir, 'two-contexts.kubeconfig');
    writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
    expect((await cli(['status', ...PROFILE], { ...env, kubeconfig: file })).code).toBe(2);
    const r = await cli(['status', ...PROFILE, '--context', 'lftest-good', '--json'], { ...env, kubeconfig: file });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).profile).toBe(T.profile);
    // verify's stage 1 is helm's: it found the release through the context, not the current one.
    const v = await cli(['verify', ...PROFILE, '--context', 'lftest-good'], { ...env, kubeconfig: file });
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(v.stdout).toMatch(new RegExp(`^stage 1 release +ok: release ${T.release} deployed, revision 1, chart postgresql-${escape(T.chartVersion)}$`, 'm'));
    expect((await cli(['verify', ...PROFILE], { ...env, kubeconfig: file })).code).toBe(2);
  });


  it('verify: exit 8 when the verification pod could not connect (stage 3), 5 when the schema check failed (stage 4)', async () => {
    await recreate(JOBS.verification);
    await jobPodExited(kube, NS, JOBS.verification, 'verify', 8);
    await failJob(kube, NS, JOBS.verification, 'verify', 8);
    const unreachable = await cli(['verify', ...PROFILE], env);
    expect(unreachable.code, unreachable.stdout + unreachable.stderr).toBe(8);
    expect(unreachable.stdout).toMatch(new RegExp(`^stage 3 database ping +FAILED: job/${JOBS.verification} could not connect to ${CONNECTION} \\(exit 8\\)$`, 'm'));
    expect(unreachable.stdout).toMatch(/^stage 4 schema +FAILED: not run \(stage 3 failed\)$/m);
    expect(unreachable.stderr).toContain('--rerun');

    await recreate(JOBS.verification);
    await kube.kubectlOk(['delete', 'pods', '-l', `job-name=${JOBS.verification}`, '-n', NS]);
    await jobPodExited(kube, NS, JOBS.verification, 'verify', 5);
    await failJob(kube, NS, JOBS.verification, 'verify', 5);
    const schema = await cli(['verify', ...PROFILE], env);
    expect(schema.code).toBe(5);
    expect(schema.stdout).toMatch(/^stage 3 database ping +ok: passed \(the Job got to stage 4\)$/m);
    expect(schema.stdout).toMatch(/^stage 4 schema +FAILED: /m);
  }, 150_000); // two verify runs, each re-creating the Job: the deploy tests' limit on a loaded machine

  it('verify --rerun creates the verification Job again from dist/ and waits for it', async () => {
    const before = await get(kube, NS, `job/${JOBS.verification}`);
    const run = startCli(['verify', ...PROFILE, '--rerun', '--timeout', '30'], env);
    const fresh = await eventually('a fresh verification Job', async () => {
      const j = await get(kube, NS, `job/${JOBS.verification}`);
      return j && j.metadata.uid !== before.metadata.uid ? j : undefined;
    });
    expect(fresh.spec.template.spec.containers[0].command).toEqual(fixtureObject(T.profile, 'Job', 'verification').spec.template.spec.containers[0].command);
    await completeJob(kube, NS, JOBS.verification);
    const r = await run.done;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`re-created job/${JOBS.verification} from dist/${T.profile}/: job.batch/${JOBS.verification} created`);
  });

  it('Failed when the migration Job failed; migrations then unknown', async () => {
    await recreate(JOBS.migrations);
    await failJob(kube, NS, JOBS.migrations, 'migrate', 7);
    const s = await status();
    expect(s).toMatchObject({ phase: 'Failed', migrations_applied: null, migrations_pending: null, jobs: { migrations: { name: JOBS.migrations, phase: 'Failed' } } });
    expect(s.conditions).toContainEqual(expect.stringMatching(new RegExp(`^job/${JOBS.migrations} \\(migrations\\) Failed: PodFailurePolicy: Container migrate .* exit code 7`)));
    const table = await cli(['status', ...PROFILE], env);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^Phase +Failed$/m);
    expect(table.stdout).toContain(`unknown until job/${JOBS.migrations} completes (Failed); plan: ${FIXTURE_VERSIONS.join(', ')}`);
  });
});

describeWithTools('learnflow-postgres status and verify of a deployment Argo CD manages (no Helm release)', ['helm'], () => {
  const A = fixtureTarget('argocd');
  let kube: Kube;
  let env: CliEnv;
  let scratch: CliCluster['scratch'];
  useCliCluster((cluster) => ({ kube, env, scratch } = cluster));

  it('reads the chart\'s objects as Argo CD applies them: verify needs no helm, status says who manages it', async () => {
    const dist = path.join(fixtureProject(), 'dist', A.profile);
    await kube.kubectlOk(['apply', '-f', dist]);
    // What the Application syncs: the vendored chart rendered by helm template, each object
    // carrying Argo CD's tracking annotation.
    const rendered = await runToolOk('helm', ['template', A.release, path.join(fixtureProject(), `charts/postgresql-${A.chartVersion}.tgz`),
      '--namespace', A.namespace, '-f', path.join(dist, 'helm', 'postgresql-values.yaml')], { env: helmEnv(path.join(scratch.dir, 'helm')) });
    const application = `learnflow-postgres-${A.profile}`;
    const objects = parseAllDocuments(rendered).map((d) => d.toJS()).filter((o) => o?.kind).map((o) => {
      o.metadata.annotations = { ...o.metadata.annotations, 'argocd.argoproj.io/tracking-id': `${application}:${o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : ''}/${o.kind}:${A.namespace}/${o.metadata.name}` };
      return o;
    });
    await create(kube, ...objects);
    // The StatefulSet controller's pod and the kubelet's report; the Jobs' outcome.
    const template = objects.find((o) => o.kind === 'StatefulSet').spec.template.spec;
    await create(kube, { apiVersion: 'v1', kind: 'Pod', metadata: { name: A.chart.pod, namespace: A.namespace, labels: A.chart.podLabels },
      spec: { ...template, volumes: [...template.volumes, { name: 'data', persistentVolumeClaim: { claimName: A.chart.dataClaim } }] } });
    await setPodReady(kube, A.namespace, A.chart.pod, true);
    for (const job of Object.values(A.jobs)) await completeJob(kube, A.namespace, job);

    const noHelm = { ...env, path: [kubectlDir()] };
    const r = await cli(['verify', '--profile', A.profile], noHelm);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^stage 1 release +ok: managed by Argo CD Application ${application} \\(no Helm release\\): statefulset/${A.chart.statefulSet} from chart postgresql-${A.chartVersion.replace(/\./g, '\\.')}$`, 'm'));
    const s = JSON.parse((await cli(['status', '--profile', A.profile, '--json'], noHelm)).stdout);
    expect(s).toMatchObject({ managed_by: 'argocd', chart: `postgresql-${A.chartVersion}`, pods_ready: 1, database_accessible: true });
  });
}, { kube: true });

describeWithTools('learnflow-postgres status and verify of a deployment with read replicas (real chart, real helm)', ['helm'], () => {
  const R = fixtureTarget('replicas');
  const read = R.chart.read!;
  const [first, second] = read.pods;
  const host = (pod: string) => `${pod}.${read.headlessService}.${R.namespace}.svc`;
  const bound = R.config.readReplicas!.maxLagBytes;
  let kube: Kube;
  let scratch: CliCluster['scratch'];
  let helm: Helm;
  let env: CliEnv;
  useCliCluster((cluster) => ({ kube, scratch, helm, env } = cluster));

  const status = () => statusJson(R.profile, env);

  /** A fresh verification Job from dist/, its pod terminated with `exitCode` and the lines verify.sh writes to its termination message. */
  const verificationRun = async (exitCode: number, message: string) => {
    await kube.kubectlOk(['delete', 'job', R.jobs.verification, '-n', R.namespace, '--ignore-not-found']);
    await kube.kubectlOk(['delete', 'pods', '-l', `job-name=${R.jobs.verification}`, '-n', R.namespace]);
    await kube.kubectlOk(['apply', '-f', path.join(fixtureProject(), 'dist', R.profile)]);
    const pod = await jobPodExited(kube, R.namespace, R.jobs.verification, 'verify', exitCode, message);
    if (exitCode === 0) await completeJob(kube, R.namespace, R.jobs.verification);
    else await failJob(kube, R.namespace, R.jobs.verification, 'verify', exitCode);
    return pod;
  };

  it('the chart installs a primary and a read StatefulSet; before any verification the replicas\' lag is unknown', async () => {
    await kube.kubectlOk(['apply', '-f', path.join(fixtureProject(), 'dist', R.profile)]);
    await runBootstrap(kube, R.profile, scratch.dir);
    const install = await helm(R.helmUpgrade);
    expect(install.code, install.stderr).toBe(0);
    expect(await runStatefulSet(kube, R.namespace, R.chart.statefulSet)).toMatchObject({ pod: R.chart.pod });
    for (const [i, pod] of read.pods.entries()) expect((await runStatefulSet(kube, R.namespace, read.statefulSet, i)).pod).toBe(pod);
    await bindClaim(kube, R.namespace, R.chart.dataClaim);
    for (const pod of [R.chart.pod, first]) await setPodReady(kube, R.namespace, pod, true);
    await setPodReady(kube, R.namespace, second, false);
    for (const job of [R.jobs.credentials, R.jobs.migrations]) await completeJob(kube, R.namespace, job);

    const s = await status();
    expect(s.replicas).toEqual({
      statefulset: read.statefulSet, ready: 1, total: 2, max_lag_bytes: bound, checked: null,
      pods: [
        { pod: first, ready: true, state: 'unknown', lag_bytes: null },
        { pod: second, ready: false, state: 'unknown', lag_bytes: null },
      ],
      problems: [`pod/${second} not ready: phase Running; postgresql running, not ready`],
    });
    // Only the primary counts in the deployment's pods; its phase waits for the verification.
    expect(s).toMatchObject({ pods_ready: 1, pods_total: 1, phase: 'Deploying' });
  }, 150_000);

  it('shows each replica streaming and its lag from the verification\'s termination message, and its pod\'s readiness', async () => {
    const pod = await verificationRun(0, `replica ${host(first)}:5432 streaming 0\nreplica ${host(second)}:5432 streaming 8192\n`);
    const s = await status();
    expect(s.phase).toBe('Ready');
    expect(s.replicas).toMatchObject({
      ready: 1, total: 2, checked: { pod, at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
      pods: [
        { pod: first, ready: true, state: 'streaming', lag_bytes: 0 },
        { pod: second, ready: false, state: 'streaming', lag_bytes: 8192 },
      ],
      problems: [`pod/${second} not ready: phase Running; postgresql running, not ready`],
    });
    const table = await cli(['status', '--profile', R.profile], env);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`^Replicas +1/2 ready \\(statefulset/${read.statefulSet}\\); lag bound ${bound} bytes; checked by pod/${pod} at `, 'm'));
    expect(table.stdout).toMatch(new RegExp(`^Replica ${first} +ready; streaming, 0 bytes behind$`, 'm'));
    expect(table.stdout).toMatch(new RegExp(`^Replica ${second} +not ready; streaming, 8192 bytes behind$`, 'm'));
    const v = await cli(['verify', '--profile', R.profile], env);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(v.stdout).toMatch(new RegExp(`^stage 3 database ping +ok: .*; replicas: ${first} streaming \\(0 bytes behind\\), ${second} streaming \\(8192 bytes behind\\)$`, 'm'));
  }, 150_000);

  it('names a replica the verification found lagging or unreachable: status lists it, verify fails at stage 3 (exit 5)', async () => {
    await setPodReady(kube, R.namespace, second, true);
    const lag = bound + 4096;
    await verificationRun(5, `replica ${host(first)}:5432 lagging ${lag}\nreplica ${host(second)}:5432 unreachable -\n`);
    const s = await status();
    expect(s.phase).toBe('Failed');
    expect(s.replicas!.pods).toEqual([
      { pod: first, ready: true, state: 'lagging', lag_bytes: lag },
      { pod: second, ready: true, state: 'unreachable', lag_bytes: null },
    ]);
    expect(s.replicas!.problems).toEqual([
      expect.stringMatching(new RegExp(`^pod/${first} behind the primary by more than readReplicas\\.maxLagBytes \\(${lag} bytes\\) at job/${R.jobs.verification}'s check`)),
      expect.stringMatching(new RegExp(`^pod/${second} did not answer the verification Job at job/${R.jobs.verification}'s check .*verify --profile ${R.profile} --rerun$`)),
    ]);
    const v = await cli(['verify', '--profile', R.profile], env);
    expect(v.code, v.stdout + v.stderr).toBe(5);
    expect(v.stdout).toMatch(new RegExp(`^stage 3 database ping +FAILED: 2 of 2 read replicas not streaming within readReplicas.maxLagBytes at job/${R.jobs.verification}'s check: ${first} lagging \\(${lag} bytes behind\\), ${second} unreachable$`, 'm'));
    expect(v.stdout).toMatch(/^stage 4 schema +FAILED: not run \(stage 3 failed\)$/m);
  }, 150_000);
}, { kube: true });
