// `status`: a DeploymentStatus, computed from the objects the API server holds (one
// `kubectl get` of the namespace's StatefulSets, pods, claims and Jobs; the read replicas' lag
// from the verification pod's termination message). Read-only; no helm.
import { EXIT } from '../exit-codes';
import { JobPhase, KubeObject, jobState, lastChange, managerOf, matchesLabels, newest, podReady, podSummary, terminationMessage } from '../k8s-state';
import { ReplicaState, VERIFY_CONTAINER, parseReplicaReport } from '../../verification/replica-report';
import { Kubectl, calls } from '../kubectl';
import { Progress } from '../progress';
import { Target, loadTarget } from '../target';
import { checkCluster } from '../preflight';

export type Phase = 'NotDeployed' | 'Deploying' | 'Ready' | 'Failed';

/** The deployment's status in snake_case fields (a stable format for machines), plus what it rests on. */
export interface DeploymentStatus {
  readonly profile: string;
  readonly namespace: string;
  readonly release: string;
  /** Who installed the chart: `helm` (a release) or `argocd` (an Application; no release); null before it exists. */
  readonly managed_by: 'helm' | 'argocd' | null;
  /** The chart the StatefulSet comes from (`postgresql-15.5.38`); null before it exists. */
  readonly chart: string | null;
  readonly phase: Phase;
  readonly pods_ready: number;
  readonly pods_total: number;
  readonly pvc_bound: boolean;
  /** The primary pod is Ready (its readiness probe runs pg_isready) and the verification Job logged in through the Service. */
  readonly database_accessible: boolean;
  /** Versions applied; null when the migration Job has not completed (unknown without querying the database). */
  readonly migrations_applied: string[] | null;
  /** Versions of the plan not applied yet; null when unknown (see migrations_applied). */
  readonly migrations_pending: string[] | null;
  /** Without its password. */
  readonly connection_string: string;
  /** The newest creation or condition change among the objects read; null when there are none. */
  readonly last_updated: string | null;
  /** The Jobs of dist/ by component, by name and outcome. */
  readonly jobs: Readonly<Record<'credentials' | 'migrations' | 'verification', { readonly name: string; readonly phase: JobPhase }>>;
  /** Why the phase is not Ready, one line each (empty when Ready). */
  readonly conditions: string[];
  /** Dumps, archiving and base backups, when the profile has them (a failed backup shows here, never in `phase`). */
  readonly backups?: BackupsStatus;
  /** The read replicas, when the profile has them (a replica down or behind shows here, never in `phase`). */
  readonly replicas?: ReplicasStatus;
}

/** A read replica: its pod's readiness from the API server, and what the newest verification run found. */
export interface ReplicaStatus {
  readonly pod: string;
  readonly ready: boolean;
  /** At the verification run of `checked` (lib/verification/replica-report.ts); `unknown` when it reported nothing on this replica. */
  readonly state: ReplicaState | 'unknown';
  /** Bytes of WAL behind the primary at that run; null when not measured. */
  readonly lag_bytes: number | null;
}

export interface ReplicasStatus {
  readonly statefulset: string;
  readonly ready: number;
  readonly total: number;
  /** The lag the verification allows (readReplicas.maxLagBytes). */
  readonly max_lag_bytes: number;
  /** The verification run the states come from (its pod's termination message) and when it ended; null when none has reported. */
  readonly checked: { readonly pod: string; readonly at: string | null } | null;
  readonly pods: ReplicaStatus[];
  /** What needs a person, one line each. */
  readonly problems: string[];
}

/** pg_stat_archiver, read in the database pod. */
export interface ArchiverState {
  readonly archived_count: number;
  readonly last_archived_wal: string | null;
  readonly last_archived_time: string | null;
  readonly failed_count: number;
  readonly last_failed_wal: string | null;
  readonly last_failed_time: string | null;
  /** The last attempt failed and none succeeded since. */
  readonly failing: boolean;
}

/** A backup CronJob judged as Argo CD judges one: its last run failed when its last success is older than its last schedule. */
export interface CronJobStatus {
  readonly cronjob: string;
  readonly last_success: string | null;
  readonly last_schedule: string | null;
  readonly last_run_failed: boolean;
}

export interface BackupsStatus {
  /** null: unknown (the database pod is not Ready, or kubectl exec was refused); absent without pitr.enabled. */
  readonly archiver?: ArchiverState | null;
  readonly base_backups?: CronJobStatus | null;
  readonly dumps?: CronJobStatus | null;
  /** What needs a person, one line each. */
  readonly problems: string[];
}

/** The query `status` runs in the database pod: one line, space-separated, '-' for none. */
export const ARCHIVER_QUERY = `SELECT archived_count, coalesce(last_archived_wal, '-'), coalesce(to_char(last_archived_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), '-'), failed_count, coalesce(last_failed_wal, '-'), coalesce(to_char(last_failed_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), '-'), coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false) FROM pg_stat_archiver`;

export function parseArchiver(line: string): ArchiverState | null {
  const f = line.trim().split(/\s+/);
  if (f.length !== 7 || !/^\d+$/.test(f[0]) || !/^\d+$/.test(f[3])) return null;
  const orNull = (v: string) => (v === '-' ? null : v);
  return { archived_count: Number(f[0]), last_archived_wal: orNull(f[1]), last_archived_time: orNull(f[2]), failed_count: Number(f[3]), last_failed_wal: orNull(f[4]), last_failed_time: orNull(f[5]), failing: f[6] === 't' };
}

function cronJobStatus(name: string | undefined, objects: readonly KubeObject[]): CronJobStatus | null {
  if (!name) return null;
  const c = objects.find((o) => o.kind === 'CronJob' && o.metadata.name === name);
  const success = c?.status?.lastSuccessfulTime ?? null;
  const schedule = c?.status?.lastScheduleTime ?? null;
  const active = (c?.status?.active ?? []).length > 0;
  return { cronjob: name, last_success: success, last_schedule: schedule, last_run_failed: !active && schedule !== null && (success === null || success < schedule) };
}

function backupsStatus(target: Target, observed: Observed): BackupsStatus | undefined {
  const { backup, pitr } = target.config;
  if (!backup.enabled && !pitr.enabled) return undefined;
  const dumps = cronJobStatus(target.backupCronJob, observed.objects);
  const baseBackups = cronJobStatus(target.baseBackupCronJob, observed.objects);
  const problems: string[] = [];
  for (const c of [dumps, baseBackups]) {
    if (c?.last_run_failed) problems.push(`cronjob/${c.cronjob}: its last run (${c.last_schedule}) failed: kubectl -n ${target.namespace} get jobs -l app.kubernetes.io/component=backup, then the failed Job's log`);
  }
  const archiver = observed.archiver;
  if (archiver?.failing) problems.push(`archiving failing since ${archiver.last_failed_time}: ${archiver.last_failed_wal} could not be archived (the database pod's log says why: learnflow-archive)`);
  return {
    ...(pitr.enabled ? { archiver: archiver ?? null, base_backups: baseBackups } : {}),
    ...(backup.enabled ? { dumps } : {}),
    problems,
  };
}

/** The newest pod of Job `job` among `objects`, with what its container `container` left in its termination message. */
function jobTerminationMessage(objects: readonly KubeObject[], job: string, container: string): { pod: string; at: string | null; message: string } | undefined {
  const pod = newest(objects.filter((o) => o.kind === 'Pod' && o.metadata.labels?.['job-name'] === job));
  const found = terminationMessage(pod, container);
  return pod && found ? { pod: pod.metadata.name, ...found } : undefined;
}

const REPLICA_PROBLEMS: Record<Exclude<ReplicaState, 'streaming'>, string> = {
  lagging: 'behind the primary by more than readReplicas.maxLagBytes',
  'not-in-recovery': 'not in recovery: a primary (promoted?), not a replica',
  'no-wal': 'has replayed no WAL yet',
  unreachable: 'did not answer the verification Job',
};

function replicasStatus(target: Target, observed: Observed): ReplicasStatus | undefined {
  const read = target.database.read;
  const bound = target.config.readReplicas?.maxLagBytes;
  if (!read || bound === undefined) return undefined;
  const job = target.jobs.verification;
  const report = jobTerminationMessage(observed.objects, job, VERIFY_CONTAINER);
  const findings = report ? parseReplicaReport(report.message) : [];
  const problems: string[] = [];
  const pods = read.pods.map((name): ReplicaStatus => {
    const pod = observed.objects.find((o) => o.kind === 'Pod' && o.metadata.name === name && matchesLabels(o, read.podLabels));
    const finding = findings.find((f) => f.host.startsWith(`${name}.`));
    const ready = podReady(pod);
    if (!pod) problems.push(`pod/${name} not created yet`);
    else if (!ready) problems.push(`pod/${name} not ready: ${podSummary(pod)}`);
    if (finding && finding.state !== 'streaming') {
      problems.push(`pod/${name} ${REPLICA_PROBLEMS[finding.state]}${finding.lagBytes !== null ? ` (${finding.lagBytes} bytes)` : ''} at job/${job}'s check${report?.at ? ` (${report.at})` : ''}: see its log, or check again with learnflow-postgres verify --profile ${target.profile} --rerun`);
    }
    return { pod: name, ready, state: finding?.state ?? 'unknown', lag_bytes: finding?.lagBytes ?? null };
  });
  return {
    statefulset: read.statefulSet,
    ready: pods.filter((p) => p.ready).length,
    total: pods.length,
    max_lag_bytes: bound,
    checked: report && findings.length > 0 ? { pod: report.pod, at: report.at } : null,
    pods,
    problems,
  };
}

/** What status reads from the cluster. */
export interface Observed {
  readonly namespaceExists: boolean;
  /** Everything of those kinds in the namespace (filtered here by name and labels). */
  readonly objects: readonly KubeObject[];
  /** pg_stat_archiver from the database pod; undefined or null when it could not be read. */
  readonly archiver?: ArchiverState | null;
}

/** The status of `target` from what the cluster holds: pure, so every rule is testable. */
export function computeStatus(target: Target, observed: Observed): DeploymentStatus {
  const { database, jobs: jobNames } = target;
  const find = (kind: string, name: string) => observed.objects.find((o) => o.kind === kind && o.metadata.name === name);
  const statefulSet = find('StatefulSet', database.statefulSet);
  const pods = observed.objects.filter((o) => o.kind === 'Pod' && matchesLabels(o, database.podLabels));
  const claim = find('PersistentVolumeClaim', database.dataClaim);
  const jobObjects = {
    credentials: find('Job', jobNames.credentials),
    migrations: find('Job', jobNames.migrations),
    verification: find('Job', jobNames.verification),
  };
  const states = {
    credentials: jobState(jobObjects.credentials),
    migrations: jobState(jobObjects.migrations),
    verification: jobState(jobObjects.verification),
  };

  const podsReady = pods.filter(podReady).length;
  const podsTotal = Math.max(typeof statefulSet?.spec?.replicas === 'number' ? statefulSet.spec.replicas : 0, pods.length);
  const pvcBound = claim?.status?.phase === 'Bound';
  const primaryReady = podReady(pods.find((p) => p.metadata.name === database.pod));
  const databaseAccessible = primaryReady && states.verification.phase === 'Complete';
  const migrationsDone = states.migrations.phase === 'Complete';
  const plan = target.migrationPlan.map((m) => m.version);

  const conditions: string[] = [];
  if (!observed.namespaceExists) conditions.push(`namespace ${target.namespace} does not exist`);
  for (const [component, state] of Object.entries(states)) {
    const name = jobNames[component as keyof typeof jobNames];
    if (state.phase === 'Failed') conditions.push(`job/${name} (${component}) Failed${state.reason ? `: ${state.reason}` : ''}`);
    else if (state.phase === 'Running') conditions.push(`job/${name} (${component}) not finished yet`);
    else if (state.phase === 'Missing' && observed.namespaceExists) conditions.push(`job/${name} (${component}) not found: apply ${target.distDir}/`);
  }
  if (observed.namespaceExists && !statefulSet) conditions.push(`statefulset/${database.statefulSet} not found: the Helm release is not installed`);
  for (const pod of pods) if (!podReady(pod)) conditions.push(`pod/${pod.metadata.name} not ready: ${podSummary(pod)}`);
  if (statefulSet && pods.length === 0) conditions.push(`pod/${database.pod} not created yet`);
  if (claim && !pvcBound) conditions.push(`pvc/${database.dataClaim} ${claim.status?.phase ?? 'Pending'}`);
  if (!claim && statefulSet) conditions.push(`pvc/${database.dataClaim} not created yet`);

  const anyJob = Object.values(states).some((s) => s.phase !== 'Missing');
  let phase: Phase;
  if (!observed.namespaceExists || (!statefulSet && pods.length === 0 && !anyJob)) phase = 'NotDeployed';
  else if (Object.values(states).some((s) => s.phase === 'Failed')) phase = 'Failed';
  else if (podsTotal > 0 && podsReady === podsTotal && pvcBound && databaseAccessible && migrationsDone) phase = 'Ready';
  else phase = 'Deploying';

  const manager = managerOf(statefulSet);
  const pinned = `postgresql-${target.chartVersion}`;
  if (manager?.chart !== undefined && manager.chart !== pinned) conditions.push(`statefulset/${database.statefulSet} is from chart ${manager.chart}, dist/ pins ${pinned}: deploy (or sync) to upgrade it`);
  return {
    profile: target.profile,
    namespace: target.namespace,
    release: target.release,
    managed_by: manager?.by ?? null,
    chart: manager?.chart ?? null,
    phase,
    pods_ready: podsReady,
    pods_total: podsTotal,
    pvc_bound: pvcBound,
    database_accessible: databaseAccessible,
    migrations_applied: migrationsDone ? plan : null,
    migrations_pending: migrationsDone ? [] : null,
    connection_string: target.connectionString,
    last_updated: lastChange([statefulSet, ...pods, claim, ...Object.values(jobObjects)]) ?? null,
    jobs: {
      credentials: { name: jobNames.credentials, phase: states.credentials.phase },
      migrations: { name: jobNames.migrations, phase: states.migrations.phase },
      verification: { name: jobNames.verification, phase: states.verification.phase },
    },
    conditions: phase === 'Ready' ? [] : conditions,
    ...(backupsStatus(target, observed) ? { backups: backupsStatus(target, observed) } : {}),
    ...(replicasStatus(target, observed) ? { replicas: replicasStatus(target, observed) } : {}),
  };
}

/** Reads the cluster; exit 2 when it cannot. */
export async function readStatus(target: Target, kubectl = new Kubectl()): Promise<DeploymentStatus> {
  await checkCluster(kubectl);
  const namespaceExists = (await kubectl.json(calls.namespace(target.namespace))) !== undefined;
  const objects = namespaceExists ? await kubectl.items(calls.statusObjects(target.namespace)) : [];
  const pod = objects.find((o) => o.kind === 'Pod' && o.metadata.name === target.database.pod);
  let archiver: ArchiverState | null = null;
  if (target.config.pitr.enabled && podReady(pod)) {
    // Loopback inside the database pod is trusted (pg_hba with pitr.enabled): no password needed.
    const r = await kubectl.run(['-n', target.namespace, 'exec', target.database.pod, '-c', 'postgresql', '--', 'psql', '-h', '127.0.0.1', '-U', 'postgres', '-d', 'postgres', '-XAt', '-F', ' ', '-c', ARCHIVER_QUERY]);
    archiver = r.code === 0 ? parseArchiver(r.stdout) : null;
  }
  return computeStatus(target, { namespaceExists, objects, archiver });
}

const yesNo = (b: boolean) => (b ? 'yes' : 'no');

function backupRows(b: BackupsStatus | undefined): [string, string][] {
  if (!b) return [];
  const cron = (c: CronJobStatus | null | undefined) => (c ? `${c.last_run_failed ? 'LAST RUN FAILED' : 'ok'}; last success ${c.last_success ?? 'never'} (cronjob/${c.cronjob})` : '-');
  const a = b.archiver;
  return [
    ...(b.dumps !== undefined ? [['Dumps', cron(b.dumps)] as [string, string]] : []),
    ...(b.base_backups !== undefined ? [['Base backups', cron(b.base_backups)] as [string, string]] : []),
    ...(a !== undefined ? [['Archiving', a === null ? 'unknown (the database pod is not Ready, or kubectl exec is not allowed)'
      : `${a.failing ? 'FAILING' : 'ok'}; ${a.archived_count} archived, last ${a.last_archived_wal ?? '-'} at ${a.last_archived_time ?? '-'}; ${a.failed_count} failed${a.last_failed_wal ? `, last ${a.last_failed_wal} at ${a.last_failed_time}` : ''}`] as [string, string]] : []),
    ...b.problems.map((p) => ['Backup problem', p] as [string, string]),
  ];
}

function replicaRows(r: ReplicasStatus | undefined, verificationJob: string): [string, string][] {
  if (!r) return [];
  const found = (p: ReplicaStatus) => p.state === 'unknown' ? `lag unknown (job/${verificationJob} reported nothing on it)`
    : `${p.state}${p.lag_bytes !== null ? `, ${p.lag_bytes} bytes behind` : ''}`;
  return [
    ['Replicas', `${r.ready}/${r.total} ready (statefulset/${r.statefulset}); lag bound ${r.max_lag_bytes} bytes; ${r.checked ? `checked by pod/${r.checked.pod} at ${r.checked.at ?? '-'}` : `not checked yet (job/${verificationJob})`}`],
    ...r.pods.map((p) => [`Replica ${p.pod}`, `${p.ready ? 'ready' : 'not ready'}; ${found(p)}`] as [string, string]),
    ...r.problems.map((p) => ['Replica problem', p] as [string, string]),
  ];
}

/** The status as a two-column table for a person. */
export function statusTable(s: DeploymentStatus, target: Target): string {
  const migrations = s.migrations_applied === null
    ? `unknown until job/${s.jobs.migrations.name} completes (${s.jobs.migrations.phase}); plan: ${target.migrationPlan.map((m) => m.version).join(', ') || 'none'}`
    : `${s.migrations_applied.length} of ${target.migrationPlan.length} applied${s.migrations_applied.length ? ` (${s.migrations_applied[0]}..${s.migrations_applied[s.migrations_applied.length - 1]})` : ''}`;
  const rows: [string, string][] = [
    ['Phase', s.phase],
    ['Managed by', s.managed_by === null ? '-' : `${s.managed_by === 'argocd' ? 'Argo CD (no Helm release)' : 'Helm release'}${s.chart ? `, chart ${s.chart}` : ''}`],
    ['Pods ready', `${s.pods_ready}/${s.pods_total}`],
    ['PVC bound', `${yesNo(s.pvc_bound)} (${target.database.dataClaim})`],
    ['Database accessible', `${yesNo(s.database_accessible)} (pod Ready and verification Job ${s.jobs.verification.phase})`],
    ['Migrations', migrations],
    ['Pending migrations', s.migrations_pending === null ? 'unknown' : s.migrations_pending.length ? s.migrations_pending.join(', ') : 'none'],
    ['Connection string', s.connection_string],
    ['Last updated', s.last_updated ?? '-'],
    ...Object.entries(s.jobs).map(([component, j]) => [`Job ${component}`, `${j.name}: ${j.phase}`] as [string, string]),
    ...backupRows(s.backups),
    ...replicaRows(s.replicas, s.jobs.verification.name),
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return [
    `learnflow-postgres status: profile ${s.profile}, namespace ${s.namespace}, release ${s.release}`,
    ...rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`),
    ...s.conditions.map((c, i) => `${i === 0 ? 'Why'.padEnd(width) : ' '.repeat(width)}  ${c}`),
  ].join('\n');
}

export interface StatusOptions {
  readonly profile: string;
  readonly json?: boolean;
}

export async function status(options: StatusOptions, progress = new Progress()): Promise<number> {
  const target = loadTarget(options.profile);
  const s = await readStatus(target);
  progress.line(options.json ? JSON.stringify(s, null, 2) : statusTable(s, target));
  return EXIT.ok;
}
