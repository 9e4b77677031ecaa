// The migration Job exactly as dist/ renders it: its ConfigMaps' data laid out like the
// kubelet's mount, its command and its environment, pointed at a test server.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { Manifest, byComponent, findOne, manifests } from './dist';
import { RunnerResult, materializeBundle } from './runner-harness';

export interface DistJob {
  readonly job: Manifest;
  /** The merged data of every ConfigMap the Job mounts. */
  readonly files: Record<string, string>;
  /** The container's command, e.g. ['sh', '/migrations/runner.sh', 'migrate']. */
  readonly command: readonly string[];
  /** Plain `value` variables of the container. */
  readonly env: Record<string, string>;
  /** Variables read from Secrets: name → {secret, key}. */
  readonly secretEnv: Record<string, { name: string; key: string }>;
  readonly mountPath: string;
}

/** The single container of a Job from dist/, split into plain and Secret-backed variables. */
export function jobContainer(job: Manifest): { command: string[]; env: Record<string, string>; secretEnv: Record<string, { name: string; key: string }> } {
  const spec = job.kind === 'CronJob' ? job.spec.jobTemplate.spec.template.spec : job.spec.template.spec;
  const [container] = spec.containers;
  const env: Record<string, string> = {};
  const secretEnv: Record<string, { name: string; key: string }> = {};
  for (const e of container.env ?? []) {
    if (e.valueFrom?.secretKeyRef) secretEnv[e.name] = e.valueFrom.secretKeyRef;
    else env[e.name] = e.value;
  }
  return { command: container.command, env, secretEnv };
}

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

/** Runs a Job's container command locally with its environment, `overrides` replacing values. */
export function runJobContainer(job: Manifest, overrides: Record<string, string>): Promise<RunnerResult> {
  const { command, env } = jobContainer(job);
  return runCommand(command, { ...env, ...overrides });
}

/** Reads the Job (or a CronJob's template, by name) and what it mounts from dist/<profile>. */
export function distMigrationJob(profile: string, cronJob?: string): DistJob {
  const job = cronJob
    ? findOne(profile, (m) => m.kind === 'CronJob' && m.metadata.name === cronJob, `CronJob ${cronJob}`)
    : findOne(profile, byComponent('Job', 'migrations'), 'migration Job');
  const spec = cronJob ? job.spec.jobTemplate.spec.template.spec : job.spec.template.spec;
  const [container] = spec.containers;
  const { env, secretEnv } = jobContainer(job);
  const projected = spec.volumes.find((v: any) => v.projected);
  const mount = container.volumeMounts.find((m: any) => m.name === projected.name);
  const configMaps = new Map(manifests(profile).filter((m) => m.kind === 'ConfigMap').map((m) => [m.metadata.name, m]));
  const files: Record<string, string> = {};
  for (const source of projected.projected.sources) {
    const cm = configMaps.get(source.configMap.name);
    if (!cm) throw new Error(`dist/${profile}: the Job mounts ConfigMap ${source.configMap.name}, which is not rendered`);
    Object.assign(files, cm.data);
  }
  return { job, files, command: container.command, env, secretEnv, mountPath: mount.mountPath };
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
