// The tools `sh scripts/test-tools.sh` builds and installs (helm, rclone, kube-score, an OCI
// registry, Argo CD, pgbouncer, redis-server, checkov): where each one is, its pinned version, a
// `describe` that skips without them (or fails, where they are required), and a runner.
//
//   describeWithTools('the chart renders', ['helm'], () => {
//     it('...', async () => {
//       const out = await runToolOk('helm', ['template', 'pg', chartDir, '-f', valuesFile]);
//     });
//   });
//
// Servers built on these tools: ./s3.ts (rclone serve s3), ./oci-registry.ts, ./argocd.ts.
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'vitest';
import { KubectlResult, RunProcessOptions, isExecutable, kubeAvailable, kubeRequired, onPath, runProcess } from './kube';

const ROOT = path.resolve(__dirname, '..', '..');
const SETUP_SCRIPT = path.join(ROOT, 'scripts', 'test-tools.sh');

export const TOOL_NAMES = ['helm', 'rclone', 'kube-score', 'registry', 'argocd', 'pgbouncer', 'redis', 'busybox', 'checkov'] as const;
export type ToolName = (typeof TOOL_NAMES)[number];

/** The name in the script's `<NAME>_VERSION=` lines and in the `LEARNFLOW_<NAME>` overrides. */
const envName = (tool: ToolName) => tool.toUpperCase().replace(/-/g, '_');

/** The version scripts/test-tools.sh pins, e.g. `3.21.4`; undefined for Debian's packages (whatever Debian ships). */
export function toolVersion(tool: ToolName): string | undefined {
  const match = new RegExp(`^${envName(tool)}_VERSION=([0-9][0-9A-Za-z.+-]*)\\s*$`, 'm').exec(readFileSync(SETUP_SCRIPT, 'utf8'));
  return match?.[1];
}

/** The cache root the script builds into. */
export function toolsCache(): string {
  return process.env.LEARNFLOW_TOOLS_CACHE || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'learnflow-postgres');
}

/** Where `tool` is: `LEARNFLOW_<TOOL>` (e.g. LEARNFLOW_HELM, LEARNFLOW_KUBE_SCORE) if set, else where the script puts it. */
export function toolPath(tool: ToolName): string {
  const override = process.env[`LEARNFLOW_${envName(tool)}`];
  if (override) return override;
  switch (tool) {
    case 'pgbouncer':
      return onPath('pgbouncer') ?? '/usr/sbin/pgbouncer';
    case 'redis':
      return onPath('redis-server') ?? '/usr/bin/redis-server';
    case 'busybox':
      return onPath('busybox') ?? '/bin/busybox';
    case 'checkov':
      return path.join(toolsCache(), 'checkov', toolVersion(tool)!, 'venv', 'bin', 'checkov');
    default:
      return path.join(toolsCache(), tool, toolVersion(tool)!, tool);
  }
}

const setupHint = (tools: readonly ToolName[]) => `run \`sh scripts/test-tools.sh ${tools.join(' ')}\` (or \`npm run tools:setup\` for all)`;

/** The tools of `tools` that are missing here, as one sentence, or undefined when all are there. */
export function missingTools(tools: readonly ToolName[]): string | undefined {
  const missing = tools.filter((t) => !isExecutable(toolPath(t)));
  if (missing.length === 0) return undefined;
  return `missing ${missing.map((t) => `${t} (${toolPath(t)})`).join(', ')}; ${setupHint(missing)}`;
}

/** The path of `tool`; throws, saying how to get it, when it is missing. */
export function requireTool(tool: ToolName): string {
  const missing = missingTools([tool]);
  if (missing) throw new Error(missing);
  return toolPath(tool);
}

/** True where missing tools must fail instead of skip: LEARNFLOW_REQUIRE_TOOLS, or LEARNFLOW_REQUIRE_KUBE (CI sets it). */
export function toolsRequired(): boolean {
  const v = process.env.LEARNFLOW_REQUIRE_TOOLS;
  return (v !== undefined && v !== '' && v !== '0' && v !== 'false') || kubeRequired();
}

export interface DescribeWithToolsOptions {
  /** The suite also starts the Kubernetes API tier (startKube). @default false */
  readonly kube?: boolean;
  /** Other versions of the API tier it starts (scripts/kube-test-env.sh with LEARNFLOW_KUBE_VERSION). @default none */
  readonly kubeVersions?: readonly string[];
}

/**
 * `describe` for suites that need `tools` (and the API tier with `kube: true`): runs them where
 * everything is there; elsewhere skips them with the reason, unless toolsRequired(), where it
 * registers one failing test naming what is missing and how to get it.
 */
export function describeWithTools(name: string, tools: readonly ToolName[], fn: () => void, options: DescribeWithToolsOptions = {}): void {
  const kube = [...(options.kube ? [kubeAvailable()] : []), ...(options.kubeVersions ?? []).map((v) => kubeAvailable(v))];
  const reason = [missingTools(tools), ...kube.map((k) => k.reason)].filter(Boolean).join('; ');
  if (!reason) {
    describe(name, fn);
  } else if (toolsRequired()) {
    describe(name, () => {
      it(`has ${[...tools, ...(options.kube ? ['the Kubernetes API tier'] : [])].join(', ')} (required here)`, () => {
        throw new Error(reason);
      });
    });
  } else {
    console.warn(`skipping "${name}": ${reason}`);
    describe.skip(`${name} [skipped: ${tools.join(', ')} missing]`, fn);
  }
}

/**
 * Environment for a helm of its own: cache, config (repositories, registry logins) and data under
 * `dir`, so tests never read or write the user's ~/.config/helm.
 */
export function helmEnv(dir: string): Record<string, string> {
  return {
    HELM_CACHE_HOME: path.join(dir, 'cache'),
    HELM_CONFIG_HOME: path.join(dir, 'config'),
    HELM_DATA_HOME: path.join(dir, 'data'),
  };
}

export type RunResult = KubectlResult;

export interface RunOptions extends Omit<RunProcessOptions, 'env'> {
  /** Added to the environment. */
  readonly env?: Readonly<Record<string, string>>;
}

/** Runs `tool` (a ToolName, or any executable's path) and resolves with its exit code and output; never rejects on a non-zero exit. */
export function runTool(tool: ToolName | string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const file = (TOOL_NAMES as readonly string[]).includes(tool) ? requireTool(tool as ToolName) : tool;
  return runProcess(file, args, { ...options, env: { ...process.env, ...options.env } });
}

/** Like runTool() but rejects, with the output, unless the tool exits 0; resolves with stdout. */
export async function runToolOk(tool: ToolName | string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  const r = await runTool(tool, args, options);
  if (r.code !== 0) throw new Error(`${path.basename(tool)} ${args.join(' ')} exited ${r.code}:\n${r.stderr || r.stdout}`);
  return r.stdout;
}
