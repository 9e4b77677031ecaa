// Running kubectl and helm: found on PATH (KUBECONFIG and the rest of the environment are passed
// through), output captured, never a shell in between. Also how commands are shown to a person.
import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import * as path from 'node:path';

export interface RunResult {
  /** Exit code; 127 when the program could not be started, 124 when killed after `timeoutMs`. */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Written to stdin. */
  readonly input?: string;
  /** Kill the process after this long. @default 120000 */
  readonly timeoutMs?: number;
}

/** The kubeconfig context every kubectl and helm call uses (`--context`); undefined: the current one. */
let kubeContext: string | undefined;

/** Sets the context of every later kubectl and helm call, and of every command shown to a person. */
export function useKubeContext(context: string | undefined): void {
  kubeContext = context;
}

/** `args` with the context for `program`: kubectl takes `--context`, helm `--kube-context`. */
function withContext(program: string, args: readonly string[]): readonly string[] {
  if (kubeContext === undefined) return args;
  if (path.basename(program) === 'kubectl') return ['--context', kubeContext, ...args];
  if (path.basename(program) === 'helm') return [...args, '--kube-context', kubeContext];
  return args;
}

/** Runs `program args…` (looked up on PATH) and resolves with its output; never rejects. */
export function run(program: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  args = withContext(program, args);
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 120_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ code: 127, stdout, stderr: `${program}: ${error.code === 'ENOENT' ? 'not found on PATH' : error.message}` });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: timedOut ? 124 : code ?? 1, stdout, stderr: timedOut ? `${stderr}${program}: killed after ${options.timeoutMs ?? 120_000} ms` : stderr });
    });
    child.stdin.on('error', () => {}); // the program may exit before reading its input
    child.stdin.end(options.input ?? '');
  });
}

/** The absolute path of `name` on PATH, as a shell would find it; undefined when absent. */
export function findOnPath(name: string, searchPath = process.env.PATH ?? ''): string | undefined {
  for (const dir of searchPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** One argument as POSIX sh reads it back unchanged: bare when safe, else in single quotes. */
export function shellQuote(arg: string): string {
  if (arg !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** `program arg…`, shell-quoted: what a person pastes to run the same command. */
export function commandLine(program: string, args: readonly string[]): string {
  return [program, ...withContext(program, args)].map(shellQuote).join(' ');
}

/** The last `lines` non-empty lines of `text`. */
export function tail(text: string, lines = 20): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
