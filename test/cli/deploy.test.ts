// `learnflow-postgres deploy` against a real kube-apiserver with the real helm: preflight exit
// codes, --dry-run, and whole deploys in which deploy's `helm upgrade --install` installs the
// vendored chart (its StatefulSet, Services, … are the chart's, as helm creates them) and the test
// plays the controllers the tier lacks (Job and StatefulSet controllers, kubelet, volume binder)
// by creating the pod and claim and writing the statuses they would write. The fixture project's
// `deploy` profiles, in their own namespaces of the shared API server; the only test file that
// touches StorageClasses. The tests run in order, on one release.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { expect, it } from 'vitest';
import { parse } from 'yaml';
import { FIXTURE_VERSIONS, fixtureProject } from '../support/fixture-project';
import { Kube } from '../support/kube';
import { describeWithTools, helmEnv, toolPath } from '../support/tools';
import {
  CliEnv, Helm, bindClaim, cli, completeJob, eventually, failJob, fixtureTarget, get, jobPodExited, kubectlDir, releaseInfo,
  runBootstrap, runStatefulSet, setPodReady, startCli, storageClass, unreachableKubeconfig, CliCluster, useCliCluster } from './support';

const T = fixtureTarget('deploy');
const FAST = fixtureTarget('deploy-fast-storage');
const { namespace: NS, chart: CHART, jobs: JOBS } = T;
const PROFILE = ['--profile', T.profile];
const HELM_UPGRADE = T.helmUpgrade;
const HELM_COMMAND = `helm ${HELM_UPGRADE.join(' ')}`;
/** For tests that run whole deploys (each a few dozen kubectl and helm calls): room for a loaded 2-core machine. */
const DEPLOYS_MS = 150_000;

describeWithTools('learnflow-postgres deploy on a real API server with the real helm', ['helm'], () => {
  let kube: Kube;
  let scratch: CliCluster['scratch'];
  let helm: Helm;
  let env: CliEnv;
  useCliCluster((cluster) => ({ kube, scratch, helm, env } = cluster));

  const namespaceExists = async (ns = NS) => (await get(kube, '', `namespace/${ns}`)) !== undefined;
  const SECRET = `${CHART.service}-credentials`;
  const release = () => releaseInfo(helm, T.release, NS);
  /** The release's revision; undefined before it is installed. */
  const revision = async () => (await release())?.version;

  /** resourceVersion of every object of the profile's dist/, of every object the chart's release holds, and of the generated Secret. */
  const versions = async () => {
    const manifest = await helm(['get', 'manifest', T.release, '-n', NS]);
    expect(manifest.code, manifest.stderr).toBe(0);
    const list = async (args: string[], input?: string) => JSON.parse(await kube.kubectlOk(['get', ...args, '-o', 'json'], { input })).items;
    const items = [
      ...(await list(['-f', path.join(fixtureProject(), 'dist', T.profile, 'learnflow-postgres.yaml')])),
      ...(await list(['-f', '-'], manifest.stdout)),
      await get(kube, NS, `secret/${SECRET}`),
    ];
    return Object.fromEntries(items.map((m: any) => [`${m.kind}/${m.metadata.name}`, m.metadata.resourceVersion]));
  };

  it('exits 2 with what to check when the cluster cannot be reached', async () => {
    const r = await cli(['deploy', ...PROFILE], { ...env, kubeconfig: await unreachableKubeconfig(kube, scratch.dir) });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/Kubernetes API not accessible \(kubectl get --raw \/readyz\): .*(refused|connect)/);
    expect(r.stderr).toContain('kubectl config current-context');
    expect(await namespaceExists()).toBe(false);
  });

  it('exits 3 with an install hint when helm is not on PATH', async () => {
    const r = await cli(['deploy', ...PROFILE], { ...env, path: [kubectlDir()] });
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain('Helm not installed: `helm` not found on PATH');
    expect(r.stderr).toContain('https://helm.sh/docs/intro/install/');
    expect(await namespaceExists()).toBe(false);
  });

  it('exits 6 when no StorageClass is the default, naming the fix, and changes nothing', async () => {
    await storageClass(kube, 'standard', false);
    const r = await cli(['deploy', ...PROFILE], env);
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toContain('insufficient resources');
    expect(r.stderr).toContain(`the data volume (${T.config.storageSize}) uses the cluster's default StorageClass, and no class is marked default (classes in this cluster: standard)`);
    expect(r.stderr).toContain(`kubectl patch storageclass <name> -p '{"metadata":{"annotations":{"storageclass.kubernetes.io/is-default-class":"true"}}}'`);
    expect(await namespaceExists()).toBe(false);
  });

  it('exits 6 when the profile names classes the cluster lacks, for the data and the backup volume', async () => {
    const r = await cli(['deploy', '--profile', FAST.profile], env);
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toContain(`the data volume (${FAST.config.storageSize}) needs StorageClass '${FAST.config.storageClass}', which does not exist (classes in this cluster: standard)`);
    expect(r.stderr).toContain(`the backup volume (${FAST.config.backup.storageSize}) needs StorageClass '${FAST.config.backup.storageClass}'`);
    expect(await namespaceExists(FAST.namespace)).toBe(false);
  });

  it('--dry-run prints every command in order, contacts nothing and changes nothing', async () => {
    // Neither kubectl nor helm on PATH and no cluster to reach: a dry run needs none of them.
    const r = await cli(['deploy', ...PROFILE, '--dry-run'], { ...env, path: [], kubeconfig: await unreachableKubeconfig(kube, scratch.dir) });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const lines = r.stdout.split('\n');
    const order = [
      'kubectl get --raw /readyz',
      'helm version --short',
      'kubectl get storageclasses -o json',
      `kubectl get namespace ${NS} -o json --ignore-not-found`,
      "kubectl apply -f - <<'YAML'",
      `kubectl apply -f dist/${T.profile}/`,
      `kubectl -n ${NS} get job ${JOBS.credentials} -o json --ignore-not-found`,
      `helm history ${T.release} -n ${NS} --max 1 -o json`,
      HELM_COMMAND,
      `kubectl -n ${NS} get pod ${CHART.pod} -o json --ignore-not-found`,
      `kubectl -n ${NS} get job ${JOBS.migrations} -o json --ignore-not-found`,
      `kubectl -n ${NS} get job ${JOBS.verification} -o json --ignore-not-found`,
    ].map((command) => lines.findIndex((l) => l === command || l.startsWith(`${command}   #`)));
    expect(order.every((i) => i >= 0), JSON.stringify(order)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(r.stdout).toContain(`# wait: job/${JOBS.credentials} Complete, polling every second for up to 180s`);
    expect(r.stdout).toContain(`# wait: pod/${CHART.pod} Ready, polling every second for up to 300s`);
    expect(r.stdout).toMatch(/^ {4}pod-security.kubernetes.io\/enforce: restricted$/m); // the Namespace of dist/, verbatim
    expect(await namespaceExists()).toBe(false);
  });

  it('deploys: applies dist/, waits for each Job and the pod, installs the vendored chart with the rendered values after the credentials', async () => {
    await storageClass(kube, 'standard', true);
    const run = startCli(['deploy', ...PROFILE, '--timeout', '60'], env);

    // The Job controller and the bootstrap's pod: the Secret is created, then the Job completes.
    await eventually('the credentials Job', () => get(kube, NS, `job/${JOBS.credentials}`));
    await eventually('deploy to wait for it', async () => (run.output().includes(`waiting`) ? true : undefined));
    const bootstrap = await runBootstrap(kube, T.profile, scratch.dir);
    expect(bootstrap).toBe(`learnflow-credentials: secret ${NS}/${SECRET} created with generated passwords (${T.config.credentials.generatedPasswordLength} characters)\n`);
    expect(await release()).toBeUndefined(); // the database waits for its Secret
    await completeJob(kube, NS, JOBS.credentials);

    // helm installs the chart; then what the StatefulSet controller, the kubelet and the volume
    // binder would do with the chart's StatefulSet: its pod and claim under the names deploy waits for.
    await eventually('the chart\'s StatefulSet', () => get(kube, NS, `statefulset/${CHART.statefulSet}`));
    expect(await runStatefulSet(kube, NS, CHART.statefulSet)).toEqual({ pod: CHART.pod, claims: [CHART.dataClaim] });
    await bindClaim(kube, NS, CHART.dataClaim);
    await setPodReady(kube, NS, CHART.pod, true);
    await completeJob(kube, NS, JOBS.migrations);
    await completeJob(kube, NS, JOBS.verification);

    const r = await run.done;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    // The release: the pinned chart, in the profile's namespace, with exactly the values of dist/.
    expect(await release()).toMatchObject({ namespace: NS, version: 1, info: { status: 'deployed' } });
    const list = await helm(['list', '-n', NS, '-o', 'json']);
    expect(JSON.parse(list.stdout)).toMatchObject([{ name: T.release, chart: `postgresql-${T.chartVersion}` }]);
    const values = await helm(['get', 'values', T.release, '-n', NS, '-o', 'json']);
    expect(JSON.parse(values.stdout)).toEqual(parse(readFileSync(path.join(fixtureProject(), T.valuesFile), 'utf8')));
    for (const line of [
      '[1/7] preflight',
      `storage: data volume (${T.config.storageSize}): default StorageClass standard`,
      `[2/7] namespace ${NS}: created`,
      `      kubectl apply -f dist/${T.profile}/`,
      `job.batch/${JOBS.credentials} created`,
      `[3/7] manifests and credentials: job/${JOBS.credentials} complete, Secret ${SECRET} ready`,
      'no release yet: installing',
      `      ${HELM_COMMAND}`,
      `[4/7] database (Helm release ${T.release}, chart ${T.chartVersion}): installed (revision 1)`,
      `[5/7] readiness (pod ${CHART.pod}): Ready`,
      `[6/7] migrations (job/${JOBS.migrations}, ${FIXTURE_VERSIONS.length} in the plan): complete`,
      `[7/7] verification (job/${JOBS.verification}): complete, database reachable, schema as planned`,
      `deployed: ${T.connection} (password: kubectl -n ${NS} get secret ${SECRET}`,
    ]) expect(r.stdout).toContain(line);
    expect(r.stdout).toMatch(/^\[1\/7\] preflight: ok \(\d+\.\ds\)$/m);
  }, DEPLOYS_MS);

  it('deploys again without changing anything: namespace exists, Secret kept, release upgraded, Bound claim reused', async () => {
    const before = await versions();
    const r = await cli(['deploy', ...PROFILE, '--timeout', '30'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await versions()).toEqual(before);
    expect(r.stdout).toContain(`[2/7] namespace ${NS}: exists, continuing`);
    expect(r.stdout).toMatch(/\d+ objects: 0 created or configured, \d+ unchanged/);
    expect(r.stdout).toContain(`release exists (deployed, revision 1, chart postgresql-${T.chartVersion}): upgrading`);
    expect(r.stdout).toContain(`data claim ${CHART.dataClaim}: Bound, 8Gi on standard: the StatefulSet reuses it (data kept)`);
    expect(r.stdout).toContain(`[4/7] database (Helm release ${T.release}, chart ${T.chartVersion}): upgraded (revision 2)`);
    expect(await revision()).toBe(2);
  }, DEPLOYS_MS);

  it('refuses to start another PostgreSQL major on the data volume, before anything changes; the running chart goes on', async () => {
    // The volume runs PostgreSQL 17 (as after chart 16.7.27), while dist/ pins chart 15.5.38 (16):
    // the same refusal as switching 15.5.38 -> 16.7.27 over a volume of 16.
    const statefulSet = `statefulset/${CHART.statefulSet}`;
    const setImage = (image: string) => kube.kubectlOk(['set', 'image', statefulSet, `postgresql=${image}`, '-n', NS]);
    const chartImage = (await get(kube, NS, statefulSet)).spec.template.spec.containers.find((c: any) => c.name === 'postgresql').image;
    expect(chartImage).toMatch(/postgresql:16\./);
    await setImage(chartImage.replace(/:16\.[^:]*$/, ':17.6.0-debian-12-r4'));
    const before = await versions();
    const r = await cli(['deploy', ...PROFILE, '--timeout', '30'], env);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toContain(`PostgreSQL 17 runs on the data volume ${CHART.dataClaim}, and chart ${T.chartVersion} would start PostgreSQL 16 on it`);
    expect(r.stderr).toContain("set chartVersion back to '16.7.27'");
    expect(r.stderr).toContain('README "Upgrading PostgreSQL\'s major version"');
    expect(r.stdout).not.toContain('[2/7]');
    expect(await versions()).toEqual(before); // the release too: still revision 2
    expect(await revision()).toBe(2);
    // --skip-existing leaves the release (and so the data) alone: nothing to guard.
    expect((await cli(['deploy', ...PROFILE, '--skip-existing', '--timeout', '30'], env)).code).toBe(0);
    // The way through "keep the chart that runs": the same major again, and deploy goes on.
    await setImage(chartImage);
    const again = await cli(['deploy', ...PROFILE, '--timeout', '30'], env);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toContain(`PostgreSQL major: 16 on data claim ${CHART.dataClaim}, as the StatefulSet runs it`);
    expect(await revision()).toBe(3);
  }, DEPLOYS_MS);

  it('--skip-existing leaves an existing release alone', async () => {
    const r = await cli(['deploy', ...PROFILE, '--skip-existing', '--timeout', '30'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`release exists (deployed, revision 3, chart postgresql-${T.chartVersion}), skipped (--skip-existing)`);
    expect(await revision()).toBe(3);
  }, DEPLOYS_MS);

  it('stops at a release another helm operation holds (pending-upgrade), naming the rollback; after the rollback, deploy goes on', async () => {
    // An upgrade with --wait never finishes here (no controller reports the StatefulSet ready):
    // killed midway, it leaves the release pending-upgrade, as an interrupted helm does.
    const waiting = spawn(toolPath('helm'), [...HELM_UPGRADE, '--wait', '--timeout', '10m'], {
      cwd: fixtureProject(), stdio: 'ignore',
      env: { ...helmEnv(path.join(scratch.dir, 'helm-wait')), KUBECONFIG: kube.kubeconfig, PATH: process.env.PATH ?? '', HOME: scratch.dir },
    });
    try {
      await eventually('the release to be pending-upgrade', async () => ((await release())?.info.status === 'pending-upgrade' ? true : undefined), 60_000);
    } finally {
      waiting.kill('SIGKILL');
    }
    const r = await cli(['deploy', ...PROFILE, '--timeout', '30'], env);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toContain(`Helm release ${T.release} is pending-upgrade: another helm operation is running or was interrupted`);
    expect(r.stderr).toContain(`helm rollback ${T.release} <revision> -n ${NS}`);
    expect(await revision()).toBe(4);
    // The way through it names: roll back to the last deployed revision, then deploy.
    const rollback = await helm(['rollback', T.release, '3', '-n', NS]);
    expect(rollback.code, rollback.stderr).toBe(0);
    const again = await cli(['deploy', ...PROFILE, '--skip-existing', '--timeout', '30'], env);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toContain(`release exists (deployed, revision 5, chart postgresql-${T.chartVersion}), skipped (--skip-existing)`);
  }, DEPLOYS_MS);

  it('exits 4 when the pod does not become ready within --timeout, saying what it saw and what to check', async () => {
    await setPodReady(kube, NS, CHART.pod, false);
    try {
      const started = Date.now();
      const r = await cli(['deploy', ...PROFILE, '--skip-existing', '--timeout', '2'], env);
      expect(r.code, r.stdout + r.stderr).toBe(4);
      // Far below the default wait (300 s), with room for a loaded machine's kubectl and helm calls.
      expect(Date.now() - started).toBeLessThan(100_000);
      expect(r.stderr).toContain(`timed out after 2s waiting for pod/${CHART.pod} to become Ready (last seen: pod/${CHART.pod}: phase Running; postgresql running, not ready)`);
      expect(r.stderr).toContain(`kubectl -n ${NS} describe pod ${CHART.pod}`);
    } finally {
      await setPodReady(kube, NS, CHART.pod, true); // the next tests deploy to a Ready pod
    }
  }, DEPLOYS_MS);

  const DEPLOY_AGAIN = ['deploy', ...PROFILE, '--skip-existing', '--timeout', '60'];

  /** Deletes `job` and deploys again: apply re-creates it, and its pod's `container` exits `code`. */
  const deployWhileJobFails = async (job: string, container: string, code: number) => {
    await kube.kubectlOk(['delete', 'job', job, '-n', NS]);
    const run = startCli(DEPLOY_AGAIN, env);
    await eventually(`the re-created Job ${job}`, () => get(kube, NS, `job/${job}`));
    const pod = await jobPodExited(kube, NS, job, container, code);
    await failJob(kube, NS, job, container, code);
    return { r: await run.done, pod };
  };

  it('exits 7 when the migration Job fails, with its log command and the next step', async () => {
    const { r, pod } = await deployWhileJobFails(JOBS.migrations, 'migrate', 7);
    expect(r.code, r.stdout + r.stderr).toBe(7);
    expect(r.stderr).toContain(`learnflow-postgres: migration Job ${JOBS.migrations} failed (PodFailurePolicy: Container migrate`);
    expect(r.stderr).toContain(`pod ${pod} exited 7; its log is not available here`);
    expect(r.stderr).toContain(`read the log: kubectl -n ${NS} logs ${pod} --tail=-1`);
    expect(r.stderr).toContain('add a new migration, run npm run synth, then deploy again');
  }, DEPLOYS_MS);

  it('exits 8 when the verification pod could not connect (exit 8)', async () => {
    await kube.kubectlOk(['delete', 'job', JOBS.migrations, JOBS.verification, '-n', NS]);
    await kube.kubectlOk(['delete', 'pods', '-l', `job-name=${JOBS.migrations}`, '-n', NS]);
    const run = startCli(DEPLOY_AGAIN, env);
    await eventually('the re-created Jobs', async () => ((await get(kube, NS, `job/${JOBS.verification}`)) ? true : undefined));
    await completeJob(kube, NS, JOBS.migrations);
    await jobPodExited(kube, NS, JOBS.verification, 'verify', 8);
    await failJob(kube, NS, JOBS.verification, 'verify', 8);
    const r = await run.done;
    expect(r.code, r.stdout + r.stderr).toBe(8);
    expect(r.stderr).toContain(`verification Job ${JOBS.verification} failed: stage 3 (database ping) could not connect to ${T.connection}`);
    expect(r.stderr).toContain('learnflow.io/database-client=true');
  }, DEPLOYS_MS);

  it('exits 1 when the credentials Job fails, pointing at its log and how to run it again', async () => {
    const { r, pod } = await deployWhileJobFails(JOBS.credentials, 'bootstrap', 1);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toContain(`credentials Job ${JOBS.credentials} failed`);
    expect(r.stderr).toContain(`read why: kubectl -n ${NS} logs ${pod} --tail=-1`);
    expect(r.stderr).toContain(`Secret is missing while the data claim ${CHART.dataClaim} exists`);
    expect(r.stderr).toContain(`after the fix: kubectl -n ${NS} delete job ${JOBS.credentials}, then run deploy again`);
    expect(await revision()).toBe(5); // helm never ran
  }, DEPLOYS_MS);
}, { kube: true });
