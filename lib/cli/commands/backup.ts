// `backup` and `restore`: on demand, with the same Jobs as the schedule. A backup is a Job made
// from the dump CronJob (`kubectl create job --from=cronjob/…`, its command is
// lib/backup/backup.sh); a restore is a Job made from the suspended template of dist/ with
// RESTORE_FILE set, as the README's pipeline does. Both wait for the Job and exit with its outcome.
import { CliError, EXIT } from '../exit-codes';
import { commandLine, tail } from '../exec';
import { KUBECTL, Kubectl, calls, isNotAccessible, notAccessible } from '../kubectl';
import { KubeObject } from '../k8s-state';
import { checkCluster } from '../preflight';
import { Progress } from '../progress';
import { Target, loadTarget } from '../target';
import { resourceName } from '../../names';
import { describeReport, jobPodReport, waitForJob } from '../wait';

/** Backups and restores may take long; the Job's own waits are bounded too. */
export const DEFAULT_BACKUP_TIMEOUT_S = 3600;

export interface BackupOptions {
  readonly profile: string;
  readonly dryRun?: boolean;
  /** Seconds to wait for the Job. @default DEFAULT_BACKUP_TIMEOUT_S */
  readonly timeoutS?: number;
  /** Seconds since the epoch in the Job's name. @default now */
  readonly now?: number;
}

export interface RestoreOptions extends BackupOptions {
  /** A dump's file name on the backup volume, e.g. `learnflow-20261122T023000Z.dump`. */
  readonly file: string;
}

/** Exit 1 unless the profile renders backups; names what to change. */
function requireBackups(target: Target): { cronJob: string; template: string } {
  if (!target.config.backup.enabled || !target.backupCronJob || !target.restoreTemplate) {
    throw new CliError(EXIT.general, `backups are off in profile '${target.profile}' (backup.enabled is false): there is no backup CronJob or restore template`, [
      `turn them on: backup: { enabled: true } in profile '${target.profile}' of lib/profiles.ts (schedule, keep and storage: README "Backups and restore")`,
      `then npm run synth and learnflow-postgres deploy --profile ${target.profile}`,
    ]);
  }
  return { cronJob: target.backupCronJob, template: target.restoreTemplate };
}

/** The same rule restore.sh applies: a file name in the backup folder, not a path. */
export function checkRestoreFile(file: string): void {
  if (file === '' || file.includes('/') || file.startsWith('.')) {
    throw new CliError(EXIT.general, `'${file}' is not a backup file name: give the name of a dump on the backup volume, e.g. learnflow-20261122T023000Z.dump (not a path)`, [
      'the names are in the backup Job\'s log ("learnflow-backup: wrote …"); a restore without a valid name lists the dumps it can see',
    ]);
  }
}

const jobName = (target: Target, what: 'backup' | 'restore', now: number) => resourceName(target.release, `${what}-${now}`);

export async function backup(options: BackupOptions, progress = new Progress()): Promise<number> {
  const target = loadTarget(options.profile);
  const { cronJob } = requireBackups(target);
  const ns = target.namespace;
  const name = jobName(target, 'backup', options.now ?? Math.floor(Date.now() / 1000));
  const timeoutS = options.timeoutS ?? DEFAULT_BACKUP_TIMEOUT_S;
  if (options.dryRun) {
    progress.line([
      `# learnflow-postgres backup --profile ${target.profile} --dry-run`,
      '# Nothing was run and the cluster was not contacted. A backup runs, with kubectl from PATH:',
      `${commandLine(KUBECTL, calls.readyz())}   # cluster reachable, else exit 2`,
      `${commandLine(KUBECTL, calls.get(ns, 'cronjob', cronJob))}   # read-only: the dump CronJob, else exit 1`,
      commandLine(KUBECTL, calls.createJobFrom(ns, name, cronJob)),
      ...waitPlan(ns, name, timeoutS),
    ].join('\n'));
    return EXIT.ok;
  }
  const kubectl = new Kubectl();
  await checkCluster(kubectl);
  if (!(await kubectl.json(calls.get(ns, 'cronjob', cronJob)))) {
    throw new CliError(EXIT.general, `the dump CronJob ${ns}/${cronJob} not found`, [
      `it comes with ${target.distDir}/ when backup.enabled is on: learnflow-postgres deploy --profile ${target.profile}`,
    ]);
  }
  progress.start('[1/2]', `backup job/${name} from cronjob/${cronJob}`);
  progress.info((await kubectl.ok(calls.createJobFrom(ns, name, cronJob))).trim());
  progress.done('created');
  return finish(kubectl, progress, target, name, timeoutS, 'backup', [
    `the dumps live on claim ${cronJob} (README "Backups and restore"); restore one with learnflow-postgres restore --profile ${target.profile} <file>`,
  ]);
}

export async function restore(options: RestoreOptions, progress = new Progress()): Promise<number> {
  const target = loadTarget(options.profile);
  const { template } = requireBackups(target);
  checkRestoreFile(options.file);
  const ns = target.namespace;
  const name = jobName(target, 'restore', options.now ?? Math.floor(Date.now() / 1000));
  const timeoutS = options.timeoutS ?? DEFAULT_BACKUP_TIMEOUT_S;
  const render = calls.renderJobFrom(ns, name, template);
  if (options.dryRun) {
    progress.line([
      `# learnflow-postgres restore --profile ${target.profile} ${options.file} --dry-run`,
      '# Nothing was run and the cluster was not contacted. A restore runs, with kubectl from PATH:',
      `${commandLine(KUBECTL, calls.readyz())}   # cluster reachable, else exit 2`,
      `${commandLine(KUBECTL, render)}   # read-only: the Job the suspended template makes`,
      `# in it, every container gets RESTORE_FILE=${options.file} (as kubectl set env does), then:`,
      `${commandLine(KUBECTL, calls.createStdin())}   # stdin: that Job`,
      ...waitPlan(ns, name, timeoutS),
    ].join('\n'));
    return EXIT.ok;
  }
  const kubectl = new Kubectl();
  await checkCluster(kubectl);
  progress.line(`restoring ${options.file} into database ${target.config.databaseName}: it replaces its contents (all or nothing); scale your applications down first`);
  progress.start('[1/2]', `restore job/${name} from cronjob/${template} with RESTORE_FILE=${options.file}`);
  const rendered = await kubectl.run(render);
  if (rendered.code !== 0) {
    if (isNotAccessible(rendered)) throw notAccessible(render, rendered);
    throw new CliError(EXIT.general, `cannot make a Job from the restore template ${ns}/${template}: ${tail(rendered.stderr, 3).trim()}`, [
      `the template comes from ${target.distDir}/: learnflow-postgres deploy --profile ${target.profile} (or kubectl apply -f ${target.distDir}/)`,
    ]);
  }
  const job = withEnv(JSON.parse(rendered.stdout), 'RESTORE_FILE', options.file);
  progress.info((await kubectl.ok(calls.createStdin(), { input: JSON.stringify(job) })).trim());
  progress.done('created');
  return finish(kubectl, progress, target, name, timeoutS, 'restore', []);
}

/** The Job with `name=value` in every container's environment, replacing an entry of that name (kubectl set env). */
export function withEnv(job: KubeObject, name: string, value: string): KubeObject {
  const copy = structuredClone(job) as any;
  for (const c of copy.spec.template.spec.containers) {
    c.env = [...(c.env ?? []).filter((e: { name: string }) => e.name !== name), { name, value }];
  }
  return copy;
}

function waitPlan(ns: string, job: string, timeoutS: number): string[] {
  return [
    `# wait: job/${job} Complete, polling every second for up to ${timeoutS}s (Failed: exit 1, or 8 when its pod exited 8; timeout: exit 4)`,
    commandLine(KUBECTL, calls.get(ns, 'job', job)),
  ];
}

/** Waits for the Job; exit 0 Complete, 8 when its pod exited 8, 1 otherwise, 4 on timeout. */
async function finish(kubectl: Kubectl, progress: Progress, target: Target, job: string, timeoutS: number, what: 'backup' | 'restore', after: string[]): Promise<number> {
  const ns = target.namespace;
  progress.start('[2/2]', `job/${job}`);
  const { state } = await waitForJob(kubectl, progress, ns, job, timeoutS);
  const report = await jobPodReport(kubectl, ns, job);
  if (state.phase === 'Failed') {
    const unreachable = report.exitCode === EXIT.databaseConnectionFailed;
    throw new CliError(unreachable ? EXIT.databaseConnectionFailed : EXIT.general,
      `${what} Job ${job} failed${state.reason ? ` (${state.reason})` : ''}${unreachable ? ': the database was not reachable' : ''}`, [
        `read the log: ${report.logCommand}${what === 'restore' ? ' — a failed restore was rolled back: the database is unchanged; a wrong name lists the dumps it can see' : ''}`,
        unreachable ? `is the database up? learnflow-postgres status --profile ${target.profile}` : `after the fix, run ${what} again (a new Job: ${commandLine(KUBECTL, ['-n', ns, 'delete', 'job', job])} removes this one)`,
      ], describeReport(report));
  }
  if (report.log) progress.info(report.log.trim());
  progress.done(`${what} complete`);
  for (const line of after) progress.line(line);
  return EXIT.ok;
}
