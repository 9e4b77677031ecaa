// Runs the migration runner the way the Job does: `sh <mount>/runner.sh [command]` with the
// bundle laid out like a kubelet ConfigMap mount. Tests pass the bundle and the environment, so
// they can take both from migrationBundle() + a test server, or from the synthesized dist/.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseMigrations } from '../../lib/migrations/files';
import { RUNNER } from '../../lib/migrations/runner-contract';
import { exitCodes } from '../../lib/script-contract';
import { Migration, MigrationFile } from '../../lib/migrations/types';

/** The runner's exit codes by name, from its contract. */
export const EXIT = exitCodes(RUNNER);

/** Short waits for the database and the lock: a test server is up, and no other runner should hold the lock. */
export const QUICK = { MIGRATE_DB_WAIT_SECONDS: '2', MIGRATE_LOCK_WAIT_SECONDS: '2' } as const;

export interface RunnerResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Wall time from spawn to exit. */
  readonly ms: number;
}

export interface RunningRunner {
  readonly pid: number;
  /** Output so far. */
  stdout(): string;
  /** Signals the runner's whole process group (sh and psql). */
  kill(signal: NodeJS.Signals): void;
  readonly done: Promise<RunnerResult>;
}

export interface RunnerOptions {
  /** Shell to run runner.sh with. @default 'sh' */
  readonly shell?: string;
}

/**
 * Writes `bundle` (ConfigMap data) into a new directory the way the kubelet mounts a ConfigMap:
 * files in a timestamped `..2024_…` directory, `..data` linking to it, and each key a symlink
 * through `..data`. A stale timestamped directory with a broken plan is left beside it, as the
 * kubelet briefly does during an update: the runner must never list the directory.
 */
export function materializeBundle(bundle: Record<string, string>, parent = os.tmpdir()): string {
  const dir = mkdtempSync(path.join(parent, 'mount-'));
  const current = '..2024_01_01_00_00_00.000000001';
  mkdirSync(path.join(dir, current));
  for (const [key, text] of Object.entries(bundle)) {
    writeFileSync(path.join(dir, current, key), text);
    symlinkSync(path.join('..data', key), path.join(dir, key));
  }
  symlinkSync(current, path.join(dir, '..data'));
  const stale = path.join(dir, '..2023_12_31_23_59_59.000000001');
  mkdirSync(stale);
  writeFileSync(path.join(stale, 'plan.tsv'), 'not a plan\n');
  writeFileSync(path.join(stale, '999_stale.up.sql'), 'SELECT 1/0;\n');
  return dir;
}

/** Starts `<shell> <bundleDir>/runner.sh ...args` in its own process group with only `env` (plus PATH). */
export function startRunner(bundleDir: string, env: Record<string, string>, args: readonly string[] = [], options: RunnerOptions = {}): RunningRunner {
  const started = Date.now();
  const child = spawn(options.shell ?? 'sh', [path.join(bundleDir, 'runner.sh'), ...args], {
    cwd: os.tmpdir(),
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<RunnerResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: Date.now() - started }));
  });
  return {
    pid: child.pid!,
    stdout: () => stdout,
    kill: (signal) => process.kill(-child.pid!, signal),
    done,
  };
}

/** Runs the runner to completion. */
export function runRunner(bundleDir: string, env: Record<string, string>, args: readonly string[] = [], options: RunnerOptions = {}): Promise<RunnerResult> {
  return startRunner(bundleDir, env, args, options).done;
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

function file(key: string, sql: string): MigrationFile {
  return { key, source: `migrations/${key}`, sql, sha256: sha256(sql) };
}

/** A migration built in a test, checksums computed like files.ts does. */
export function migration(version: string, name: string, up: string, down = '-- nothing to undo\n', options: { transactional?: boolean; reversible?: boolean } = {}): Migration {
  const transactional = options.transactional ?? !up.startsWith('-- learnflow:no-transaction\n');
  return {
    version,
    name,
    up: file(`${version}_${name}.up.sql`, up),
    down: file(`${version}_${name}.down.sql`, down),
    transactional,
    reversible: options.reversible ?? !down.startsWith('-- learnflow:irreversible'),
  };
}

/**
 * A migration set read by the synth's own rules from files (path inside migrations/ to text):
 * what `npm run synth` would accept. Throws with the synth's problems otherwise.
 */
export function migrationSet(files: Readonly<Record<string, string>>): Migration[] {
  const parsed = parseFiles(files);
  if (parsed.problems.length > 0) throw new Error(`the synth refuses this set:\n${parsed.problems.join('\n')}`);
  return parsed.migrations;
}

/** Problems the synth reports for a set of files (empty when it accepts them). */
export function synthProblems(files: Readonly<Record<string, string>>): string[] {
  return parseFiles(files).problems;
}

const parseFiles = (files: Readonly<Record<string, string>>) =>
  parseMigrations(Object.entries(files).map(([p, text]) => ({ path: p, bytes: Buffer.from(text, 'utf8') })));

/** Polls `check` until it returns true, or fails after `timeoutMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
