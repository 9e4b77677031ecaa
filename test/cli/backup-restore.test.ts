// `backup` and `restore` against a real kube-apiserver: the Jobs they create are read back and
// compared with their templates (the dump CronJob and the restore template of dist/), and
// the test finishes them as the Job controller would. The fixture project's `backups` profile
// renders backups; its `status` profile does not.
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { fixtureManifests, fixtureProject } from '../support/fixture-project';
import { Kube, describeKube, useSharedKube } from '../support/kube';
import { CliEnv, cli, completeJob, eventually, failJob, fixtureTarget, jobPodExited, kubectlDir, scratchDir, startCli } from './support';

const T = fixtureTarget('backups');
const WITHOUT_BACKUPS = fixtureTarget('status');
const NS = T.namespace;
const FULLNAME = T.chart.service;
const BACKUP_CRONJOB = `${FULLNAME}-dump`;
const cronJob = (name: string) => fixtureManifests(T.profile).find((m) => m.kind === 'CronJob' && m.metadata.name === name)!;
const TEMPLATE = cronJob(`${FULLNAME}-backup-restore`);
const DUMP_CRONJOB = cronJob(BACKUP_CRONJOB);
const DUMP = 'learnflow-20261122T023000Z.dump';
const PROFILE = ['--profile', T.profile];

describeKube('learnflow-postgres backup and restore on a real API server', () => {
  let kube: Kube;
  let scratch: ReturnType<typeof scratchDir>;
  let env: CliEnv;

  useSharedKube((k) => {
    kube = k;
    scratch = scratchDir();
    const home = path.join(scratch.dir, 'home');
    mkdirSync(home);
    env = { kubeconfig: kube.kubeconfig, path: [kubectlDir()], home };
  });
  afterAll(() => scratch?.remove());

  const jobs = async (prefix: string) => {
    const list = JSON.parse(await kube.kubectlOk(['get', 'jobs', '-n', NS, '-o', 'json', '--ignore-not-found'])).items ?? [];
    return list.filter((j: any) => j.metadata.name.startsWith(prefix));
  };
  const waitForJob = (prefix: string) => eventually(`a ${prefix}… Job`, async () => (await jobs(prefix))[0]);

  it('refuses a profile without backups (exit 1), saying how to turn them on', async () => {
    const r = await cli(['backup', '--profile', WITHOUT_BACKUPS.profile], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`backups are off in profile '${WITHOUT_BACKUPS.profile}'`);
    expect(r.stderr).toContain(`backup: { enabled: true } in profile '${WITHOUT_BACKUPS.profile}' of lib/profiles.ts`);
  });

  it('--dry-run prints the backup and restore commands and creates nothing', async () => {
    const backup = await cli(['backup', ...PROFILE, '--dry-run'], env);
    expect(backup.code, backup.stderr).toBe(0);
    expect(backup.stdout).toMatch(new RegExp(`^kubectl -n ${NS} create job ${FULLNAME}-backup-\\d+ --from=cronjob/${BACKUP_CRONJOB}$`, 'm'));
    const restore = await cli(['restore', ...PROFILE, DUMP, '--dry-run'], env);
    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.stdout).toMatch(new RegExp(`^kubectl -n ${NS} create job ${FULLNAME}-restore-\\d+ --from=cronjob/${TEMPLATE.metadata.name} --dry-run=client -o json   #`, 'm'));
    expect(restore.stdout).toContain(`every container gets RESTORE_FILE=${DUMP}`);
    expect(restore.stdout).toMatch(/^kubectl create -f - {3}# stdin: that Job$/m);
    expect(await kube.kubectl(['get', 'namespace', NS])).toMatchObject({ code: 1 });
  });

  it('exits 1 when the dump CronJob is not there (dist/ not applied)', async () => {
    const r = await cli(['backup', ...PROFILE], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the dump CronJob ${NS}/${BACKUP_CRONJOB} not found`);
    expect(await kube.kubectl(['get', 'namespace', NS])).toMatchObject({ code: 1 });
  });

  it('backup: a Job from the dump CronJob of dist/ with its command, waited for (exit 0)', async () => {
    await kube.kubectlOk(['apply', '-f', path.join(fixtureProject(), 'dist', T.profile)]);
    const run = startCli(['backup', ...PROFILE, '--timeout', '30'], env);
    const job = await waitForJob(`${FULLNAME}-backup-`);
    // What `kubectl create job --from=cronjob/…` makes: owned by the CronJob, marked manual, same pod template.
    expect(job.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'CronJob', name: BACKUP_CRONJOB })]);
    expect(job.metadata.annotations).toMatchObject({ 'cronjob.kubernetes.io/instantiate': 'manual' });
    expect(job.spec.template.spec.containers[0].command).toEqual(DUMP_CRONJOB.spec.jobTemplate.spec.template.spec.containers[0].command);
    expect(run.output()).not.toContain('backup complete');
    await completeJob(kube, NS, job.metadata.name);
    const r = await run.done;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`[2/2] job/${job.metadata.name}: backup complete`);
  });

  it('restore: refuses a path instead of a file name before creating anything', async () => {
    const r = await cli(['restore', ...PROFILE, '../etc/passwd'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("'../etc/passwd' is not a backup file name");
    expect(await jobs(`${FULLNAME}-restore-`)).toEqual([]);
  });

  it('restore: the template\'s Job with RESTORE_FILE set, everything else copied; exit 1 when it fails', async () => {
    const run = startCli(['restore', ...PROFILE, DUMP, '--timeout', '30'], env);
    const job = await waitForJob(`${FULLNAME}-restore-`);
    const [container] = job.spec.template.spec.containers;
    const [template] = TEMPLATE.spec.jobTemplate.spec.template.spec.containers;
    expect(container.command).toEqual(template.command);
    expect(container.image).toBe(template.image);
    expect(container.env).toContainEqual({ name: 'RESTORE_FILE', value: DUMP });
    expect(container.env.filter((e: any) => e.name !== 'RESTORE_FILE')).toEqual(template.env);
    expect(job.spec.template.spec.volumes).toEqual(TEMPLATE.spec.jobTemplate.spec.template.spec.volumes);
    expect(job.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'CronJob', name: TEMPLATE.metadata.name })]);
    // restore.sh exits 1 for a missing dump; the Job's pod failure policy fails the Job at once.
    const pod = await jobPodExited(kube, NS, job.metadata.name, container.name, 1);
    await failJob(kube, NS, job.metadata.name, container.name, 1);
    const r = await run.done;
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toContain(`restore Job ${job.metadata.name} failed`);
    expect(r.stderr).toContain(`read the log: kubectl -n ${NS} logs ${pod} --tail=-1 — a failed restore was rolled back`);
  });

  it('restore: exit 8 when its pod could not reach the database', async () => {
    await kube.kubectlOk(['delete', 'jobs', '-n', NS, '-l', 'app.kubernetes.io/component=backup']);
    const run = startCli(['restore', ...PROFILE, DUMP, '--timeout', '30'], env);
    const job = await waitForJob(`${FULLNAME}-restore-`);
    await jobPodExited(kube, NS, job.metadata.name, 'restore', 8);
    await failJob(kube, NS, job.metadata.name, 'restore', 8);
    const r = await run.done;
    expect(r.code, r.stdout + r.stderr).toBe(8);
    expect(r.stderr).toContain('the database was not reachable');
  });
});
