// Copies of the project in temp folders, synthesized the way a person does (`node --import tsx
// main.ts` in the copy), so tests and the bench can change migrations/ or dist/ freely without
// touching the checkout. node_modules is a symlink to the checkout's.
import { SpawnSyncReturns, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { DistJob } from './dist-job';
import { Manifest, ROOT, byComponent, manifests } from './dist';

/** What a synth needs from the checkout, besides node_modules. */
export const PROJECT_ENTRIES = ['main.ts', 'lib', 'migrations', 'imports', 'cdk8s.yaml', 'package.json', 'tsconfig.json', 'reference'] as const;

export interface ProjectCopyOptions {
  /** Folder for the copy's temp directory. @default os.tmpdir() */
  readonly parent?: string;
  /** Replace migrations/ by these files (path inside migrations/ → content). @default the checkout's migrations/ */
  readonly migrations?: Readonly<Record<string, string>>;
}

/** A copy of the project in a temp folder (node_modules linked), so runs cannot touch the checkout. */
export function projectCopy(options: ProjectCopyOptions = {}): string {
  const dir = mkdtempSync(path.join(options.parent ?? tmpdir(), 'learnflow-project-'));
  for (const entry of PROJECT_ENTRIES) {
    if (entry === 'migrations' && options.migrations) continue;
    cpSync(path.join(ROOT, entry), path.join(dir, entry), { recursive: true });
  }
  if (options.migrations) writeMigrations(path.join(dir, 'migrations'), options.migrations);
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

/** Replaces the folder `dir` by exactly these files (path inside it → content). */
export function writeMigrations(dir: string, files: Readonly<Record<string, string>>): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
}

/** `node --import tsx main.ts` in `project` (the `app` of cdk8s.yaml and `npm run synth`). */
export function synthProject(project: string, env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, ['--import', 'tsx', 'main.ts'], {
    cwd: project,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
}

/** Like {@link synthProject}, but throws with the app's output when it does not exit 0. */
export function synthProjectOrThrow(project: string, env: Record<string, string> = {}): void {
  const run = synthProject(project, env);
  if (run.status === 0) return;
  // Quoted line by line, so test runners do not take the app's stack for the test's own.
  const output = `${run.stderr}${run.stdout}`.trimEnd().replace(/^/gm, '  | ');
  throw new Error(`synth in ${project} exited ${run.status ?? run.signal}:\n${output}`);
}

/** The migration Job and its ConfigMaps of `<distDir>/<profile>`, as distMigrationJob() reads dist/. */
export function distMigrationJobIn(distDir: string, profile: string): DistJob & { readonly configMaps: Manifest[] } {
  const all = manifests(profile, distDir);
  const jobs = all.filter(byComponent('Job', 'migrations'));
  if (jobs.length !== 1) throw new Error(`expected one migration Job in ${distDir}/${profile}, found ${jobs.length}`);
  const job = jobs[0];
  const spec = job.spec.template.spec;
  const [container] = spec.containers;
  const projected = spec.volumes.find((v: any) => v.projected);
  const mount = container.volumeMounts.find((m: any) => m.name === projected.name);
  const byName = new Map(all.filter((m) => m.kind === 'ConfigMap').map((m) => [m.metadata.name, m]));
  const configMaps: Manifest[] = [];
  const files: Record<string, string> = {};
  for (const source of projected.projected.sources) {
    const cm = byName.get(source.configMap.name);
    if (!cm) throw new Error(`${distDir}/${profile}: the Job mounts ConfigMap ${source.configMap.name}, which is not rendered`);
    configMaps.push(cm);
    Object.assign(files, cm.data);
  }
  const env: Record<string, string> = {};
  const secretEnv: Record<string, { name: string; key: string }> = {};
  for (const e of container.env) {
    if (e.valueFrom?.secretKeyRef) secretEnv[e.name] = e.valueFrom.secretKeyRef;
    else env[e.name] = e.value;
  }
  return { job, files, command: container.command, env, secretEnv, mountPath: mount.mountPath, configMaps };
}
