// `deploy`: the README's kubectl + helm flow as one command, on dist/<profile>/ as rendered.
//   1 preflight  2 namespace  3 manifests + credentials Job  4 Helm release  5 pod Ready
//   6 migration Job  7 verification Job
// Every step is idempotent: running deploy again continues where a failed or interrupted run stopped.
import { stringify } from 'yaml';
import { CliError, EXIT } from '../exit-codes';
import { commandLine, run, tail } from '../exec';
import { describeRelease, parseRelease, releaseNotFound } from '../helm-release';
import { HELM, KUBECTL, Kubectl, calls, isNotAccessible, notAccessible } from '../kubectl';
import { majorVersionRefusal, targetMajor } from '../../major-version';
import { checkCluster, checkHelm, checkStorage, volumeNeeds } from '../preflight';
import { Progress } from '../progress';
import { Target, loadTarget } from '../target';
import { describeReport, jobPodReport, waitForJob, waitForPodReady } from '../wait';

/** What to do when the Helm release exists already. */
export type ExistingRelease = 'upgrade' | 'skip';

export interface DeployOptions {
  readonly profile: string;
  /** @default 'upgrade' (`helm upgrade --install` is what the README runs every time) */
  readonly existing?: ExistingRelease;
  /** Print the commands instead of running them; contacts nothing. @default false */
  readonly dryRun?: boolean;
  /** Seconds each wait may take. @default DEFAULT_WAITS, per wait */
  readonly timeoutS?: number;
}

/** The README's `kubectl wait --timeout` for each wait, in seconds. */
export const DEFAULT_WAITS = { credentials: 180, pod: 300, migrations: 600, verification: 900 } as const;

const STEPS = 7;
const label = (n: number) => `[${n}/${STEPS}]`;

interface Waits {
  readonly credentials: number;
  readonly pod: number;
  readonly migrations: number;
  readonly verification: number;
}

function waits(timeoutS: number | undefined): Waits {
  return timeoutS === undefined ? DEFAULT_WAITS : { credentials: timeoutS, pod: timeoutS, migrations: timeoutS, verification: timeoutS };
}

/** The Namespace document of dist/, as `kubectl apply -f -` receives it. */
const namespaceYaml = (t: Target) => stringify(t.namespaceManifest, { lineWidth: 0 });

export async function deploy(options: DeployOptions, progress = new Progress()): Promise<number> {
  const target = loadTarget(options.profile);
  const existing = options.existing ?? 'upgrade';
  const limits = waits(options.timeoutS);
  if (options.dryRun) {
    progress.line(deployPlan(target, existing, limits).trimEnd());
    return EXIT.ok;
  }
  const kubectl = new Kubectl();
  const { namespace: ns, jobs } = target;
  progress.line(`learnflow-postgres deploy: profile ${target.profile} from ${target.distDir}/ → namespace ${ns}, release ${target.release}, chart ${target.chartVersion}`);

  // 1. Preflight: nothing has changed yet when one of these fails.
  progress.start(label(1), 'preflight');
  progress.info(`cluster: ${await checkCluster(kubectl)} answers /readyz`);
  progress.info(`helm: ${await checkHelm()}`);
  progress.info(`storage: ${await checkStorage(kubectl, target)}`);
  if (existing === 'upgrade') progress.info(`PostgreSQL major: ${await checkMajorVersion(kubectl, target)}`);
  progress.done('ok');

  // 2. Namespace: the one of dist/, applied alone first; an existing one is fine.
  progress.start(label(2), `namespace ${ns}`);
  const existed = (await kubectl.json(calls.namespace(ns))) !== undefined;
  const nsApply = await kubectl.checked(calls.applyStdin(), { input: namespaceYaml(target) });
  progress.info(`${nsApply.stdout}${nsApply.stderr}`.trim());
  progress.done(existed ? 'exists, continuing' : 'created');

  // 3. Everything dist/ renders (client-side apply, as in the README), then the credentials Job.
  progress.start(label(3), 'manifests and credentials');
  progress.info(commandLine(KUBECTL, calls.applyDir(target)));
  const applied = await kubectl.checked(calls.applyDir(target), { next: [`check the manifests: kubectl apply -f ${target.distDir}/ --dry-run=server`] });
  progress.info(summarizeApply(applied.stdout));
  if (applied.stderr.trim() !== '') progress.info(applied.stderr.trim()); // kubectl's warnings, e.g. Pod Security
  const credentials = await waitForJob(kubectl, progress, ns, jobs.credentials, limits.credentials);
  if (credentials.state.phase === 'Failed') {
    const report = await jobPodReport(kubectl, ns, jobs.credentials);
    throw new CliError(EXIT.general, `credentials Job ${jobs.credentials} failed${credentials.state.reason ? ` (${credentials.state.reason})` : ''}: the database would not get its password`, [
      `read why: ${report.logCommand} — it refuses, with the fix, when the Secret is missing while the data claim ${target.database.dataClaim} exists (restore the Secret: README "Credentials"), or when a user-managed Secret is missing or too weak`,
      `after the fix: ${commandLine(KUBECTL, ['-n', ns, 'delete', 'job', jobs.credentials])}, then run deploy again (it re-creates the Job)`,
    ], describeReport(report));
  }
  progress.done(`job/${jobs.credentials} complete, Secret ${target.credentialsSecret} ready`);

  // 4. The database: the pinned chart with the rendered values.
  progress.start(label(4), `database (Helm release ${target.release}, chart ${target.chartVersion})`);
  const release = await helmRelease(target);
  const claim = await kubectl.json(calls.get(ns, 'persistentvolumeclaim', target.database.dataClaim));
  if (claim) {
    const bound = claim.status?.phase === 'Bound';
    progress.info(`data claim ${target.database.dataClaim}: ${claim.status?.phase ?? 'Pending'}${bound ? `, ${claim.status?.capacity?.storage ?? ''} on ${claim.spec?.storageClassName ?? 'default class'}: the StatefulSet reuses it (data kept)` : ''}`);
  } else {
    progress.info(`data claim ${target.database.dataClaim}: none yet, the chart creates it (${volumeNeeds(target)[0].volume})`);
  }
  if (release && existing === 'skip') {
    progress.done(`release exists (${release}), skipped (--skip-existing)`);
  } else {
    progress.info(release ? `release exists (${release}): upgrading` : 'no release yet: installing');
    const args = calls.helmUpgrade(target);
    progress.info(commandLine(HELM, args));
    const upgrade = await run(HELM, args, { timeoutMs: 15 * 60_000 });
    if (upgrade.code !== 0) {
      if (/Kubernetes cluster unreachable/.test(upgrade.stderr)) throw notAccessible(args, upgrade);
      throw new CliError(EXIT.general, `helm upgrade --install failed (exit ${upgrade.code}): ${tail(upgrade.stderr, 5).trim()}`, [
        `see the release: helm status ${target.release} -n ${ns} and helm history ${target.release} -n ${ns}`,
        target.chart.vendored
          ? `the chart is ${target.chartRef}, vendored in this repository (chartSource repository): check helm's error above, then run deploy again`
          : `pulling ${target.chartRef} needs access to its registry (chartSource ${target.chart.source}; air-gapped: chartSource repository, or a mirror with chartSource mirror); then run deploy again`,
      ]);
    }
    const revision = /REVISION: (\d+)/.exec(upgrade.stdout)?.[1];
    progress.done(`${release ? 'upgraded' : 'installed'}${revision ? ` (revision ${revision})` : ''}`);
  }

  // 5. The chart's pod Ready: its readiness probe (pg_isready) passes.
  progress.start(label(5), `readiness (pod ${target.database.pod})`);
  await waitForPodReady(kubectl, progress, ns, target.database.pod, limits.pod);
  progress.done('Ready');

  // 6. Migrations: the Job of dist/ (it waits for the database by itself).
  progress.start(label(6), `migrations (job/${jobs.migrations}, ${target.migrationPlan.length} in the plan)`);
  const migration = await waitForJob(kubectl, progress, ns, jobs.migrations, limits.migrations);
  const migrationReport = await jobPodReport(kubectl, ns, jobs.migrations, migration.state.phase === 'Failed' ? 20 : 1);
  if (migration.state.phase === 'Failed') {
    const unreachable = migrationReport.exitCode === EXIT.databaseConnectionFailed;
    throw new CliError(unreachable ? EXIT.databaseConnectionFailed : EXIT.migrationFailed,
      `migration Job ${jobs.migrations} failed${migration.state.reason ? ` (${migration.state.reason})` : ''}${unreachable ? ': the database was not reachable' : ''}`,
      unreachable ? connectionHints(target) : [
        `read the log: ${migrationReport.logCommand} — it names the file, the line and PostgreSQL's error; the failed migration was rolled back, earlier ones stay applied`,
        'fix the file (if it was never applied anywhere) or add a new migration, run npm run synth, then deploy again: the new set gets a new Job',
      ], describeReport(migrationReport));
  }
  progress.done(`complete${migrationReport.log ? ` (${migrationReport.log.trim()})` : ''}`);

  // 7. Health stages 3 and 4: the verification Job of dist/.
  progress.start(label(7), `verification (job/${jobs.verification})`);
  const verification = await waitForJob(kubectl, progress, ns, jobs.verification, limits.verification);
  const verificationReport = await jobPodReport(kubectl, ns, jobs.verification);
  if (verification.state.phase === 'Failed') throw verificationFailed(target, verification.state.reason, verificationReport);
  if (verificationReport.log) progress.info(verificationReport.log.trim());
  progress.done('complete, database reachable, schema as planned');

  progress.line(`deployed: ${target.connectionString} (password: kubectl -n ${ns} get secret ${target.credentialsSecret} -o jsonpath='{.data.password}' | base64 -d)`);
  return EXIT.ok;
}

/**
 * Exit 1 when the data volume holds another PostgreSQL major than the chart would run (before
 * anything changes); returns a line for the report otherwise.
 */
async function checkMajorVersion(kubectl: Kubectl, target: Target): Promise<string> {
  const ns = target.namespace;
  const claim = await kubectl.json(calls.get(ns, 'persistentvolumeclaim', target.database.dataClaim));
  const statefulSet = claim ? await kubectl.json(calls.get(ns, 'statefulset', target.database.statefulSet)) : undefined;
  const refusal = majorVersionRefusal(target.config, target.profile, { dataClaim: claim?.metadata.name, statefulSet });
  if (refusal) throw new CliError(EXIT.general, refusal.message, refusal.next);
  const major = targetMajor(target.config);
  return claim ? `${major} on data claim ${target.database.dataClaim}${statefulSet ? ', as the StatefulSet runs it' : ''}` : `${major} (no data volume yet)`;
}

/** `deployed, revision 3, chart postgresql-15.5.38` when the release exists; undefined when not. */
async function helmRelease(target: Target): Promise<string | undefined> {
  const args = calls.helmRelease(target);
  const result = await run(HELM, args, { timeoutMs: 60_000 });
  if (releaseNotFound(result)) return undefined;
  if (result.code !== 0) {
    if (/Kubernetes cluster unreachable/.test(result.stderr) || isNotAccessible(result)) throw notAccessible(args, result);
    throw new CliError(EXIT.general, `${commandLine(HELM, args)} failed (exit ${result.code}): ${tail(result.stderr, 3).trim()}`);
  }
  const release = parseRelease(result.stdout);
  if (release.status.startsWith('pending-')) {
    throw new CliError(EXIT.general, `Helm release ${target.release} is ${release.status}: another helm operation is running or was interrupted`, [
      `see: helm history ${target.release} -n ${target.namespace}; if nothing is running, roll back to the last deployed revision: helm rollback ${target.release} <revision> -n ${target.namespace}`,
      'then run deploy again',
    ]);
  }
  return describeRelease(release);
}

/** Next steps when a Job could not reach the database (exit 8). */
function connectionHints(target: Target): string[] {
  const ns = target.namespace;
  return [
    `is the database up? helm status ${target.release} -n ${ns}; kubectl -n ${ns} get pod ${target.database.pod}`,
    `does the Secret hold the password the database has? kubectl -n ${ns} get secret ${target.credentialsSecret}`,
    'does your CNI let the Job through? its pod carries learnflow.io/database-client=true (README "Network access")',
  ];
}

/** Exit 8 when the verification pod exited 8 (stage 3: no connection), else 5. */
export function verificationFailed(target: Target, reason: string | undefined, report: Awaited<ReturnType<typeof jobPodReport>>): CliError {
  const ns = target.namespace;
  const job = target.jobs.verification;
  const rerun = `to check again: ${commandLine(KUBECTL, ['-n', ns, 'delete', 'job', job])}, then deploy again (or: learnflow-postgres verify --profile ${target.profile} --rerun)`;
  if (report.exitCode === EXIT.databaseConnectionFailed) {
    return new CliError(EXIT.databaseConnectionFailed, `verification Job ${job} failed: stage 3 (database ping) could not connect to ${target.connectionString}`,
      [...connectionHints(target), rerun], describeReport(report));
  }
  return new CliError(EXIT.healthCheckFailed, `verification Job ${job} failed${reason ? ` (${reason})` : ''}: health check failed`, [
    `read the log: ${report.logCommand} — stage 4 names the missing tables or the newest applied migration`,
    `check the migration Job: ${commandLine(KUBECTL, ['-n', ns, 'logs', '-l', `job-name=${target.jobs.migrations}`, '--tail=-1'])}`,
    rerun,
  ], describeReport(report));
}

/** kubectl apply's output in one line per change and a count of the unchanged. */
export function summarizeApply(output: string): string {
  const lines = output.trim().split('\n').filter((l) => l.trim() !== '');
  const unchanged = lines.filter((l) => l.endsWith(' unchanged'));
  const changed = lines.filter((l) => !l.endsWith(' unchanged'));
  return [...changed, `${lines.length} objects: ${changed.length} created or configured, ${unchanged.length} unchanged`].join('\n');
}

/** The commands a deploy runs, in order, as a person could paste them (`--dry-run`). */
export function deployPlan(target: Target, existing: ExistingRelease, limits: Waits = DEFAULT_WAITS): string {
  const ns = target.namespace;
  const k = (args: readonly string[], note?: string) => `${commandLine(KUBECTL, args)}${note ? `   # ${note}` : ''}`;
  const wait = (what: string, timeoutS: number, outcome: string, args: readonly string[]) =>
    [`# wait: ${what}, polling every second for up to ${timeoutS}s (${outcome}; timeout: exit 4)`, k(args)];
  const storage = volumeNeeds(target).map((n) => n.storageClass
    ? `${n.volume} needs StorageClass ${n.storageClass}`
    : `${n.volume} needs a default StorageClass (storageclass.kubernetes.io/is-default-class=true)`).join('; ');
  return [
    `# learnflow-postgres deploy --profile ${target.profile}${existing === 'skip' ? ' --skip-existing' : ''} --dry-run`,
    '# Nothing was run and the cluster was not contacted. A deploy runs these commands, in this order,',
    '# with kubectl and helm from PATH (KUBECONFIG honoured), and stops at the first failure.',
    `# [1/${STEPS}] preflight (read-only)`,
    k(calls.readyz(), 'cluster reachable, else exit 2'),
    `${commandLine(HELM, calls.helmVersion())}   # helm on PATH, 3.8+, else exit 3`,
    k(calls.storageClasses(), `${storage}; else exit 6`),
    ...(existing === 'upgrade' ? [
      k(calls.get(ns, 'persistentvolumeclaim', target.database.dataClaim), 'read-only: a data volume?'),
      k(calls.get(ns, 'statefulset', target.database.statefulSet), `read-only: the PostgreSQL major it runs must be ${targetMajor(target.config)}, else exit 1`),
    ] : []),
    `# [2/${STEPS}] namespace ${ns} (an existing one is fine)`,
    k(calls.namespace(ns), 'read-only: exists?'),
    `${commandLine(KUBECTL, calls.applyStdin())} <<'YAML'`,
    namespaceYaml(target).trimEnd(),
    'YAML',
    `# [3/${STEPS}] manifests and credentials`,
    k(calls.applyDir(target)),
    ...wait(`job/${target.jobs.credentials} Complete`, limits.credentials, 'Failed: exit 1 with its log', calls.get(ns, 'job', target.jobs.credentials)),
    `# [4/${STEPS}] database: Helm release ${target.release}`,
    `${commandLine(HELM, calls.helmRelease(target))}   # read-only: does the release exist, which chart runs?`,
    k(calls.get(ns, 'persistentvolumeclaim', target.database.dataClaim), 'read-only: a Bound claim is reused'),
    `${commandLine(HELM, calls.helmUpgrade(target))}${existing === 'skip' ? '   # only when the release does not exist (--skip-existing)' : ''}`,
    `# [5/${STEPS}] readiness`,
    ...wait(`pod/${target.database.pod} Ready`, limits.pod, 'its readiness probe is pg_isready', calls.get(ns, 'pod', target.database.pod)),
    `# [6/${STEPS}] migrations (${target.migrationPlan.map((m) => m.version).join(', ') || 'none'})`,
    ...wait(`job/${target.jobs.migrations} Complete`, limits.migrations, 'Failed: exit 7, or 8 when its pod exited 8', calls.get(ns, 'job', target.jobs.migrations)),
    `# [7/${STEPS}] verification (health stages 3 and 4)`,
    ...wait(`job/${target.jobs.verification} Complete`, limits.verification, 'Failed: exit 5, or 8 when its pod exited 8', calls.get(ns, 'job', target.jobs.verification)),
    `# a failed Job's exit code and log: ${commandLine(KUBECTL, calls.jobPods(ns, '<job>'))}, then ${commandLine(KUBECTL, calls.podLog(ns, '<pod>'))}`,
  ].join('\n') + '\n';
}
