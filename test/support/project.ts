// Copies of the project in temp folders, synthesized the way a person does (the `app` command
// of cdk8s.yaml in the copy), so tests and the bench can change migrations/ or dist/ freely without
// touching the checkout. node_modules is a symlink to the checkout's.
import { SpawnSyncReturns, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DistJob, migrationJobIn } from './dist-job';
import { ROOT, manifests } from './dist';

/** What a synth needs from the checkout, besides node_modules. */
export const PROJECT_ENTRIES = ['main.ts', 'lib', 'migrations', 'imports', 'scripts', 'cdk8s.yaml', 'package.json', 'tsconfig.json', 'reference'] as const;

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

/** The `app` command of cdk8s.yaml (also `npm run synth`), as argv, e.g. `['node', 'scripts/synth.cjs']`. */
export const APP_COMMAND: readonly string[] = (() => {
  const app = /^app:\s*(.+)$/m.exec(readFileSync(path.join(ROOT, 'cdk8s.yaml'), 'utf8'));
  if (!app) throw new Error('cdk8s.yaml has no app command');
  return app[1].trim().split(/\s+/);
})();

/** The app command in `project`, run with this Node.js. */
export function synthProject(project: string, env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, APP_COMMAND.slice(1), {
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

/**
 * The migration Job and its ConfigMaps of `<distDir>/<profile>`: what distMigrationJob() reads
 * from the checkout's dist/, for the dist/ of a project copy.
 */
export function distMigrationJobIn(distDir: string, profile: string): DistJob {
  return migrationJobIn(manifests(profile, distDir), `${distDir}/${profile}`);
}
