// `restore --to <time|latest>`: point-in-time recovery (README: Point-in-time recovery). The
// database is stopped (its StatefulSet scaled to 0), a Job from the suspended template
// <fullname>-pitr-restore with RESTORE_TARGET (and RESTORE_SOURCE=offsite with --from-offsite)
// rebuilds its data directory, then the StatefulSet is scaled back to 1 and the pod waited for.
// A refused or failed restore changed nothing: the database is started again as it was.
import { CliError, EXIT } from '../exit-codes';
import { commandLine, tail } from '../exec';
import { KUBECTL, Kubectl, calls, isNotAccessible, notAccessible } from '../kubectl';
import { KubeObject } from '../k8s-state';
import { checkCluster } from '../preflight';
import { Progress } from '../progress';
import { Target, loadTarget } from '../target';
import { resourceName } from '../../names';
import { describeReport, jobPodReport, waitForJob, waitForPodReady, waitUntil } from '../wait';

export interface PitrRestoreOptions {
  readonly profile: string;
  /** 'latest' or a UTC time YYYY-MM-DDTHH:MM:SS[.ffffff]Z. */
  readonly to: string;
  /** Fetch from the object store first (the cluster's backup volume is empty or gone). */
  readonly fromOffsite?: boolean;
  readonly dryRun?: boolean;
  /** Seconds to wait for each step. @default 3600 */
  readonly timeoutS?: number;
  /** Seconds since the epoch in the Job's name. @default now */
  readonly now?: number;
}

/** The rule restore.sh applies to RESTORE_TARGET (lib/pitr/target.sh), checked before anything runs. */
export const TARGET_RULE = "'latest' or a UTC time YYYY-MM-DDTHH:MM:SS[.ffffff]Z, e.g. 2026-11-22T17:00:00Z";
const TARGET = /^(latest|\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?Z)$/;

export function checkTarget(to: string): void {
  if (!TARGET.test(to)) throw new CliError(EXIT.general, `--to: '${to}' is not ${TARGET_RULE}`, ['times are UTC, as the server records commits; the archive\'s reach is in the base-backup Job\'s log']);
}

/** The Job with `name=value` in every container and init container (kubectl set env does the same). */
export function withEnvEverywhere(job: KubeObject, env: Readonly<Record<string, string>>): KubeObject {
  const copy = structuredClone(job) as any;
  const spec = copy.spec.template.spec;
  for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
    c.env = [...(c.env ?? []).filter((e: { name: string }) => !(e.name in env)), ...Object.entries(env).map(([name, value]) => ({ name, value }))];
  }
  return copy;
}

export async function pitrRestore(options: PitrRestoreOptions, progress = new Progress()): Promise<number> {
  const target = loadTarget(options.profile);
  const template = requirePitr(target, options.fromOffsite);
  checkTarget(options.to);
  const ns = target.namespace;
  const sts = target.database.statefulSet;
  const name = resourceName(target.release, `pitr-${options.now ?? Math.floor(Date.now() / 1000)}`);
  const timeoutS = options.timeoutS ?? 3600;
  const env = { RESTORE_TARGET: options.to, ...(options.fromOffsite ? { RESTORE_SOURCE: 'offsite' } : {}) };
  const render = calls.renderJobFrom(ns, name, template);
  const scale = (replicas: number) => ['-n', ns, 'scale', 'statefulset', sts, `--replicas=${replicas}`];
  if (options.dryRun) {
    progress.line([
      `# learnflow-postgres restore --profile ${target.profile} --to ${options.to}${options.fromOffsite ? ' --from-offsite' : ''} --dry-run`,
      '# Nothing was run and the cluster was not contacted. A point-in-time restore runs, with kubectl from PATH:',
      `${commandLine(KUBECTL, calls.readyz())}   # cluster reachable, else exit 2`,
      `${commandLine(KUBECTL, scale(0))}   # stop the database (Argo CD: suspend auto-sync first)`,
      `# wait: pod/${target.database.pod} gone`,
      `${commandLine(KUBECTL, render)}   # read-only: the Job the suspended template makes`,
      `# in it, every container gets ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')} (as kubectl set env does), then:`,
      `${commandLine(KUBECTL, calls.createStdin())}   # stdin: that Job`,
      `# wait: job/${name} Complete (Failed: the data directory is unchanged; the database is started again, exit 1, or 8 when its pod exited 8)`,
      `${commandLine(KUBECTL, scale(1))}   # start the database`,
      `# wait: pod/${target.database.pod} Ready`,
    ].join('\n'));
    return EXIT.ok;
  }
  const kubectl = new Kubectl();
  await checkCluster(kubectl);
  progress.line(`point-in-time restore of ${ns}/${sts} to ${options.to}${options.fromOffsite ? ' from the object store' : ''}: the database is stopped meanwhile; scale your applications down first`);
  progress.line(`with Argo CD, suspend auto-sync first (argocd app set <app> --sync-policy none): self-heal would start the database during the restore`);
  const rendered = await kubectl.run(render);
  if (rendered.code !== 0) {
    if (isNotAccessible(rendered)) throw notAccessible(render, rendered);
    throw new CliError(EXIT.general, `cannot make a Job from the template ${ns}/${template}: ${tail(rendered.stderr, 3).trim()}`, [
      `the template comes from ${target.distDir}/: learnflow-postgres deploy --profile ${target.profile}`,
    ]);
  }
  progress.start('[1/4]', `stop statefulset/${sts}`);
  await kubectl.ok(scale(0));
  await waitUntil(progress, timeoutS, async () => {
    const pod = await kubectl.json(calls.get(ns, 'pod', target.database.pod));
    return pod ? { done: false, detail: `pod/${target.database.pod} still there` } : { done: true, value: undefined };
  }, (detail) => new CliError(EXIT.timeout, `timed out after ${timeoutS}s waiting for the database to stop (${detail})`, [`see why: ${commandLine(KUBECTL, ['-n', ns, 'describe', 'pod', target.database.pod])}`]));
  progress.done('stopped');

  progress.start('[2/4]', `restore job/${name} from cronjob/${template} with ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  progress.info((await kubectl.ok(calls.createStdin(), { input: JSON.stringify(withEnvEverywhere(JSON.parse(rendered.stdout), env)) })).trim());
  progress.done('created');
  progress.start('[3/4]', `job/${name}`);
  const { state } = await waitForJob(kubectl, progress, ns, name, timeoutS);
  const report = await jobPodReport(kubectl, ns, name);
  const failed = state.phase === 'Failed';
  if (!failed) progress.done('restored');

  progress.start('[4/4]', `start statefulset/${sts}`);
  await kubectl.ok(scale(1));
  await waitForPodReady(kubectl, progress, ns, target.database.pod, timeoutS);
  progress.done(failed ? 'started again, as it was' : 'ready');
  if (failed) {
    const unreachable = report.exitCode === EXIT.databaseConnectionFailed;
    throw new CliError(unreachable ? EXIT.databaseConnectionFailed : EXIT.general,
      `point-in-time restore Job ${name} failed${state.reason ? ` (${state.reason})` : ''}: the data directory is unchanged`, [
        `read why (the reason and the fix are in its log): ${report.logCommand}`,
        `after the fix, run the restore again (a new Job: ${commandLine(KUBECTL, ['-n', ns, 'delete', 'job', name])} removes this one)`,
      ], describeReport(report));
  }
  if (report.log) progress.info(report.log.trim());
  progress.line(`the previous data directory is kept on the data volume as data.before-restore: delete it once you are satisfied (README: Point-in-time recovery)`);
  return EXIT.ok;
}

/** Exit 1 unless the profile renders point-in-time recovery (and an object store for --from-offsite). */
function requirePitr(target: Target, fromOffsite?: boolean): string {
  if (!target.config.pitr.enabled || !target.pitrRestoreTemplate) {
    throw new CliError(EXIT.general, `point-in-time recovery is off in profile '${target.profile}' (pitr.enabled is false)`, [
      `turn it on: pitr: { enabled: true } in profile '${target.profile}' of lib/profiles.ts (README: Point-in-time recovery), then npm run synth and deploy`,
      'a dump can still be restored: learnflow-postgres restore --profile <p> <file> (with backup.enabled)',
    ]);
  }
  if (fromOffsite && !target.config.objectStore) {
    throw new CliError(EXIT.general, `--from-offsite: profile '${target.profile}' has no objectStore`, ['set objectStore (bucket, region or endpoint, secretName) in lib/profiles.ts']);
  }
  return target.pitrRestoreTemplate;
}
