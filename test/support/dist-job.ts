// The migration Job exactly as dist/ renders it: its ConfigMaps' data laid out like the
// kubelet's mount, its command and its environment, pointed at a test server. The Job comes
// from the checkout's dist/, or is rendered in memory by the same chart the synth uses, for a
// migration set a test builds (renderedMigrationJob).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { App, Yaml } from 'cdk8s';
import { parse } from 'yaml';
import { LearnflowPostgresChart } from '../../lib/learnflow-postgres';
import { LearnflowPostgresProps } from '../../lib/config';
import { Migration } from '../../lib/migrations/types';
import { TERMINATION_MESSAGE_PATH } from '../../lib/verification/replica-report';
import { Manifest, byComponent, manifests } from './dist';
import { Pg } from './postgres';
import { RunnerResult, materializeBundle } from './runner-harness';

export interface DistJob {
  readonly job: Manifest;
  /** The merged data of every ConfigMap the Job mounts. */
  readonly files: Record<string, string>;
  /** The ConfigMaps the Job mounts, in mount order. */
  readonly configMaps: readonly Manifest[];
  /** The container's command, e.g. ['sh', '/migrations/runner.sh', 'migrate']. */
  readonly command: readonly string[];
  /** Plain `value` variables of the container. */
  readonly env: Record<string, string>;
  /** Variables read from Secrets: name → {secret, key}. */
  readonly secretEnv: Record<string, { name: string; key: string }>;
  readonly mountPath: string;
}

/** The single container of a Job (or a CronJob's template), split into plain and Secret-backed variables. */
export function jobContainer(job: Manifest): { command: string[]; env: Record<string, string>; secretEnv: Record<string, { name: string; key: string }> } {
  const [container] = podSpec(job).containers;
  const env: Record<string, string> = {};
  const secretEnv: Record<string, { name: string; key: string }> = {};
  for (const e of container.env ?? []) {
    if (e.valueFrom?.secretKeyRef) secretEnv[e.name] = e.valueFrom.secretKeyRef;
    else env[e.name] = e.value;
  }
  return { command: container.command, env, secretEnv };
}

const podSpec = (job: Manifest) => (job.kind === 'CronJob' ? job.spec.jobTemplate.spec.template.spec : job.spec.template.spec);

/** Runs `command` (argv) with only `env` (plus PATH) and collects its exit and output. */
export function runCommand(command: readonly string[], env: Record<string, string>): Promise<RunnerResult> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(command[0], command.slice(1), { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: Date.now() - started }));
  });
}

/**
 * The dump CronJob's pod against `pg`: PGUSER postgres, PGHOST/PGPORT, PGDUMP_DIR `dumps`, and
 * the superuser's password (or `password`) mounted as a file where PASSWORD_FILE says, never in
 * the environment. `scratch` holds the mounted Secret.
 */
export function runDumpPod(cronJob: Manifest, pg: Pg, dumps: string, scratch: string, password = pg.password): Promise<RunnerResult> {
  const secret = mkdtempSync(path.join(scratch, 'secret-'));
  writeFileSync(path.join(secret, 'password'), password, { mode: 0o440 });
  return runCommand(jobContainer(cronJob).command, {
    PATH: pg.env().PATH, PGUSER: 'postgres', PGHOST: pg.host, PGPORT: String(pg.port), PGDUMP_DIR: dumps, PASSWORD_FILE: path.join(secret, 'password'),
  });
}

/** Runs a Job's container command locally with its environment, `overrides` replacing values. */
export function runJobContainer(job: Manifest, overrides: Record<string, string>): Promise<RunnerResult> {
  const { command, env } = jobContainer(job);
  return runCommand(command, { ...env, ...overrides });
}

/** The migration Job's templates (suspended CronJobs), by the runner command they run. */
export type MigrationTemplate = 'status' | 'rollback';

/**
 * The migration Job among `all` (or one of its templates) with what it mounts. `where` names
 * the manifests' origin in errors.
 */
export function migrationJobIn(all: readonly Manifest[], where: string, template?: MigrationTemplate): DistJob {
  const jobs = template
    ? all.filter((m) => byComponent('CronJob', 'migrations')(m) && jobContainer(m).command.at(-1) === template)
    : all.filter(byComponent('Job', 'migrations'));
  if (jobs.length !== 1) throw new Error(`expected one ${template ? `${template} template` : 'migration Job'} in ${where}, found ${jobs.length}`);
  const [job] = jobs;
  const spec = podSpec(job);
  const { command, env, secretEnv } = jobContainer(job);
  const projected = spec.volumes.find((v: any) => v.projected);
  const mount = spec.containers[0].volumeMounts.find((m: any) => m.name === projected.name);
  const byName = new Map(all.filter((m) => m.kind === 'ConfigMap').map((m) => [m.metadata.name, m]));
  const configMaps: Manifest[] = [];
  const files: Record<string, string> = {};
  for (const source of projected.projected.sources) {
    const cm = byName.get(source.configMap.name);
    if (!cm) throw new Error(`${where}: the Job mounts ConfigMap ${source.configMap.name}, which is not rendered`);
    configMaps.push(cm);
    Object.assign(files, cm.data);
  }
  return { job, files, configMaps, command, env, secretEnv, mountPath: mount.mountPath };
}

/** Reads the Job (or one of its templates) and what it mounts from dist/<profile>. */
export function distMigrationJob(profile: string, template?: MigrationTemplate): DistJob {
  return migrationJobIn(manifests(profile), `dist/${profile}`, template);
}

/**
 * The manifests the synth writes for `props` with this migration set, rendered in memory by
 * the same chart and read back through YAML, as `kubectl apply` would read dist/.
 */
export function renderManifests(migrations: readonly Migration[], props: LearnflowPostgresProps = {}): Manifest[] {
  const chart = new LearnflowPostgresChart(new App(), 'learnflow-postgres', { ...props, migrationSet: migrations });
  return chart.toJson().map((manifest) => parse(Yaml.stringify(manifest)) as Manifest);
}

/** The migration Job (or one of its templates) that the synth renders for this migration set. */
export function renderedMigrationJob(migrations: readonly Migration[], options: { props?: LearnflowPostgresProps; template?: MigrationTemplate } = {}): DistJob {
  return migrationJobIn(renderManifests(migrations, options.props), 'the rendered chart', options.template);
}

/** Where a test put the Job's mount, and the command and environment to run it with. */
export interface PreparedJob {
  readonly dir: string;
  readonly args: readonly string[];
  readonly env: Record<string, string>;
}

/**
 * Lays the Job's files out like the kubelet's ConfigMap mount under `parent` and maps the
 * Job's command and environment onto it; `connection` (PGHOST, PGPORT, PGPASSWORD, ...) and
 * `overrides` replace the Job's values, as an operator would on a live Job template.
 */
export function prepareDistJob(distJob: DistJob, parent: string, connection: Record<string, string>, overrides: Record<string, string> = {}): PreparedJob {
  const dir = materializeBundle(distJob.files, parent);
  const onMount = (p: string) => (p.startsWith(distJob.mountPath + '/') || p === distJob.mountPath ? path.join(dir, p.slice(distJob.mountPath.length)) : p);
  const [shell, script, ...args] = distJob.command;
  if (shell !== 'sh' || onMount(script) !== path.join(dir, 'runner.sh')) throw new Error(`unexpected Job command ${distJob.command.join(' ')}`);
  const env = Object.fromEntries(Object.entries(distJob.env).map(([k, v]) => [k, onMount(v)]));
  return { dir, args, env: { ...env, TMPDIR: parent, ...connection, ...overrides } };
}

/** What a pod gets from outside: the Secrets' keys and the claims' directories its volumes name. */
export interface PodInputs {
  /** Secret name → key → value. */
  readonly secrets?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Claim name → a directory standing for it. */
  readonly claims?: Readonly<Record<string, string>>;
  /** Replaces variables in every container (init containers included), after the mounts are mapped. */
  readonly env?: Readonly<Record<string, string>>;
}

export interface PodResult {
  /** Each init container's run, in order, up to the first that failed. */
  readonly init: readonly RunnerResult[];
  /** The Job's container, unless an init container failed. */
  readonly main?: RunnerResult;
  /** What the Job's container wrote to its termination message file: what the kubelet puts in its status (`state.terminated.message`). */
  readonly message?: string;
}

/**
 * Runs a Job's pod (or a CronJob template's) here, as the kubelet would: every volume a
 * directory under `dir` (a Secret's or ConfigMap's items as files, with their modes; emptyDirs
 * empty; claims from `inputs.claims`), each container's mount paths mapped onto them in its
 * variables and command, the init containers in order, then the Job's container unless one of
 * them failed. `all` holds the ConfigMaps the pod mounts.
 */
export async function runPod(all: readonly Manifest[], job: Manifest, dir: string, inputs: PodInputs = {}): Promise<PodResult> {
  const spec = podSpec(job);
  const configMaps = new Map(all.filter((m) => m.kind === 'ConfigMap').map((m) => [m.metadata.name, m.data as Record<string, string>]));
  const volumes = new Map<string, string>();
  for (const volume of spec.volumes ?? []) {
    const at = path.join(dir, `volume-${volume.name}`);
    volumes.set(volume.name, at);
    if (volume.persistentVolumeClaim) {
      const claim = inputs.claims?.[volume.persistentVolumeClaim.claimName];
      if (!claim) throw new Error(`the pod mounts claim ${volume.persistentVolumeClaim.claimName}: give it in inputs.claims`);
      volumes.set(volume.name, claim);
      continue;
    }
    mkdirSync(at, { recursive: true });
    const write = (data: Record<string, string>, items: { key: string; path: string; mode?: number }[] | undefined, mode: number) => {
      for (const item of items ?? Object.keys(data).map((key): { key: string; path: string; mode?: number } => ({ key, path: key }))) {
        if (data[item.key] === undefined) throw new Error(`volume ${volume.name}: no key ${item.key} (the kubelet would not start the pod)`);
        writeFileSync(path.join(at, item.path), data[item.key], { mode: item.mode ?? mode });
      }
    };
    if (volume.secret) {
      const data = inputs.secrets?.[volume.secret.secretName];
      if (!data) throw new Error(`the pod mounts Secret ${volume.secret.secretName}: give it in inputs.secrets`);
      write(data, volume.secret.items, volume.secret.defaultMode ?? 0o644);
    } else if (volume.configMap) {
      write(configMaps.get(volume.configMap.name) ?? {}, volume.configMap.items, volume.configMap.defaultMode ?? 0o644);
    } else if (volume.projected) {
      for (const source of volume.projected.sources) write(configMaps.get(source.configMap.name) ?? {}, source.configMap.items, volume.projected.defaultMode ?? 0o644);
    } else if (!volume.emptyDir) {
      throw new Error(`volume ${volume.name}: a kind runPod does not know`);
    }
  }
  // The kubelet's termination message file of each container: a file of its own, read back after the run.
  const messageFile = (container: any) => path.join(dir, `termination-message-${container.name}`);
  const run = (container: any) => {
    const mounts: [string, string][] = (container.volumeMounts ?? []).map((m: any) => [m.mountPath, volumes.get(m.name)!]);
    mounts.push([container.terminationMessagePath ?? TERMINATION_MESSAGE_PATH, messageFile(container)]);
    const onMount = (value: string) => {
      const mount = mounts.find(([p]) => value === p || value.startsWith(`${p}/`));
      return mount ? mount[1] + value.slice(mount[0].length) : value;
    };
    const env: Record<string, string> = {};
    for (const e of container.env ?? []) {
      if (e.valueFrom) throw new Error(`${container.name}: ${e.name} comes from ${JSON.stringify(e.valueFrom)}, which runPod does not give`);
      env[e.name] = onMount(e.value);
    }
    return runCommand([...container.command, ...(container.args ?? [])].map(onMount), { ...env, ...inputs.env });
  };
  const init: RunnerResult[] = [];
  for (const container of spec.initContainers ?? []) {
    const result = await run(container);
    init.push(result);
    if (result.code !== 0) return { init };
  }
  const main = await run(spec.containers[0]);
  // The kubelet keeps at most 4096 bytes of it.
  const message = existsSync(messageFile(spec.containers[0])) ? readFileSync(messageFile(spec.containers[0]), 'utf8').slice(0, 4096) : undefined;
  return { init, main, message };
}
