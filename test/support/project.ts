// Copies of the project in temp folders, synthesized the way a person does (the `app` command
// of cdk8s.yaml in the copy), so tests and the bench can change migrations/ or dist/ freely without
// touching the checkout. node_modules is a symlink to the checkout's.
import { SpawnSyncReturns, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DistJob, migrationJobIn } from './dist-job';
import { ROOT, manifests } from './dist';
import { LearnflowPostgresProps } from '../../lib/config';

/** What a synth and the command line need from the checkout, besides node_modules. */
export const PROJECT_ENTRIES = ['main.ts', 'lib', 'migrations', 'imports', 'scripts', 'bin', 'cdk8s.yaml', 'package.json', 'tsconfig.json', 'reference', 'charts', 'vendored.json'] as const;

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

/** The declaration of the profiles in lib/profiles.ts, from its `PROFILES = {` to its closing `} as const satisfies`. */
const PROFILES_LITERAL = /export const PROFILES = \{\n[^]*?\n\} as const satisfies Record<string, LearnflowPostgresProps>;/;

/**
 * Replaces the profiles of the copy `project` by `profiles`, as a person editing lib/profiles.ts
 * would: the rest of the file stays as it is.
 */
export function writeProfiles(project: string, profiles: Readonly<Record<string, LearnflowPostgresProps>>): void {
  const file = path.join(project, 'lib', 'profiles.ts');
  const text = readFileSync(file, 'utf8');
  if (!PROFILES_LITERAL.test(text)) throw new Error(`${file}: no \`export const PROFILES = { ... } as const satisfies Record<string, LearnflowPostgresProps>;\``);
  const literal = `export const PROFILES = ${JSON.stringify(profiles, null, 2)} as const satisfies Record<string, LearnflowPostgresProps>;`;
  writeFileSync(file, text.replace(PROFILES_LITERAL, () => literal));
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

/**
 * The environment the project runs the cdk8s CLI in (.ci/run exports it, package.json passes
 * --no-check-upgrade): without it the CLI asks npm for a newer version of itself on every
 * command and prints a stack trace when offline.
 */
export const CDK8S_ENV = { CDK8S_CHECK_UPGRADE: 'false' } as const;

/** `cdk8s <args>` (the project's cdk8s-cli) in `project`, in {@link CDK8S_ENV}. */
export function cdk8sCli(project: string, args: readonly string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(path.join(ROOT, 'node_modules', '.bin', 'cdk8s'), args, {
    cwd: project,
    env: { ...process.env, ...CDK8S_ENV, ...env },
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
