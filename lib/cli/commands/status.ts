// `status`: a DeploymentStatus, computed from the objects the API server holds (one
// `kubectl get` of the namespace's StatefulSets, pods, claims and Jobs). Read-only; no helm.
import { EXIT } from '../exit-codes';
import { JobPhase, KubeObject, jobState, lastChange, matchesLabels, podReady, podSummary } from '../k8s-state';
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
}

/** What status reads from the cluster. */
export interface Observed {
  readonly namespaceExists: boolean;
  /** Everything of those kinds in the namespace (filtered here by name and labels). */
  readonly objects: readonly KubeObject[];
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

  return {
    profile: target.profile,
    namespace: target.namespace,
    release: target.release,
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
  };
}

/** Reads the cluster; exit 2 when it cannot. */
export async function readStatus(target: Target, kubectl = new Kubectl()): Promise<DeploymentStatus> {
  await checkCluster(kubectl);
  const namespaceExists = (await kubectl.json(calls.namespace(target.namespace))) !== undefined;
  const objects = namespaceExists ? await kubectl.items(calls.statusObjects(target.namespace)) : [];
  return computeStatus(target, { namespaceExists, objects });
}

const yesNo = (b: boolean) => (b ? 'yes' : 'no');

/** The status as a two-column table for a person. */
export function statusTable(s: DeploymentStatus, target: Target): string {
  const migrations = s.migrations_applied === null
    ? `unknown until job/${s.jobs.migrations.name} completes (${s.jobs.migrations.phase}); plan: ${target.migrationPlan.map((m) => m.version).join(', ') || 'none'}`
    : `${s.migrations_applied.length} of ${target.migrationPlan.length} applied${s.migrations_applied.length ? ` (${s.migrations_applied[0]}..${s.migrations_applied[s.migrations_applied.length - 1]})` : ''}`;
  const rows: [string, string][] = [
    ['Phase', s.phase],
    ['Pods ready', `${s.pods_ready}/${s.pods_total}`],
    ['PVC bound', `${yesNo(s.pvc_bound)} (${target.database.dataClaim})`],
    ['Database accessible', `${yesNo(s.database_accessible)} (pod Ready and verification Job ${s.jobs.verification.phase})`],
    ['Migrations', migrations],
    ['Pending migrations', s.migrations_pending === null ? 'unknown' : s.migrations_pending.length ? s.migrations_pending.join(', ') : 'none'],
    ['Connection string', s.connection_string],
    ['Last updated', s.last_updated ?? '-'],
    ...Object.entries(s.jobs).map(([component, j]) => [`Job ${component}`, `${j.name}: ${j.phase}`] as [string, string]),
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
