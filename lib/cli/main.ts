// learnflow-postgres: the operator's command line (bin/learnflow-postgres, npm run cli -- …).
// Parses the command line, calls the command, and turns a CliError into its message, next steps
// and exit code. The commands live in commands/, one module each.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { SUPPORTED_CHART_VERSIONS } from '../chart';
import { SUPPORTED_KUBERNETES_VERSIONS } from '../kubernetes';
import { useKubeContext } from './exec';
import { PROJECT_ROOT, loadTarget } from './target';
import { backup, restore } from './commands/backup';
import { deploy } from './commands/deploy';
import { pitrRestore } from './commands/pitr-restore';
import { status } from './commands/status';
import { verify } from './commands/verify';
import { CliError, EXIT } from './exit-codes';
import { USAGE } from './usage';

type Options = Record<string, { type: 'string' | 'boolean'; short?: string }>;

const COMMON: Options = {
  profile: { type: 'string' }, help: { type: 'boolean', short: 'h' },
  // Passed to every kubectl (--context) and helm (--kube-context) call.
  context: { type: 'string' },
  // Must be the namespace dist/<profile>/ is rendered for: a guard against acting on the wrong one.
  namespace: { type: 'string', short: 'n' },
};

/** `learnflow-postgres <version> (…)`: the package's version and what it deploys. */
export function versionLine(root = PROJECT_ROOT): string {
  let version = 'unknown';
  try {
    version = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).version;
  } catch {
    // a copy without package.json
  }
  return `learnflow-postgres ${version} (Bitnami PostgreSQL chart ${SUPPORTED_CHART_VERSIONS.join(', ')}; Kubernetes ${SUPPORTED_KUBERNETES_VERSIONS[0]}-${SUPPORTED_KUBERNETES_VERSIONS.at(-1)})`;
}

const OPTIONS: Record<string, Options> = {
  deploy: { ...COMMON, upgrade: { type: 'boolean' }, 'skip-existing': { type: 'boolean' }, 'dry-run': { type: 'boolean' }, timeout: { type: 'string' } },
  status: { ...COMMON, json: { type: 'boolean' } },
  verify: { ...COMMON, rerun: { type: 'boolean' }, timeout: { type: 'string' } },
  backup: { ...COMMON, 'dry-run': { type: 'boolean' }, timeout: { type: 'string' } },
  restore: { ...COMMON, 'dry-run': { type: 'boolean' }, timeout: { type: 'string' }, to: { type: 'string' }, 'from-offsite': { type: 'boolean' } },
};

/** A usage mistake: exit 1 with the command's help. */
class UsageError extends Error {
  constructor(message: string, readonly command: string) {
    super(message);
  }
}

function seconds(value: string | undefined, command: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new UsageError(`--timeout: '${value}' is not a whole number of seconds (1 or more)`, command);
  return Number(value);
}

/** Runs one command line (without `node` and the script) and resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(USAGE.main);
    return command === undefined ? EXIT.general : EXIT.ok;
  }
  if (command === '--version' || command === '-V' || command === 'version') {
    process.stdout.write(`${versionLine()}\n`);
    return EXIT.ok;
  }
  // status --json prints one JSON object whatever happens, errors included.
  const json = command === 'status' && rest.includes('--json');
  try {
    if (!Object.prototype.hasOwnProperty.call(OPTIONS, command)) throw new UsageError(`unknown command '${command}'`, 'main');
    let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
    try {
      parsed = parseArgs({ args: [...rest], options: OPTIONS[command], allowPositionals: command === 'restore', strict: true }) as typeof parsed;
    } catch (error) {
      throw new UsageError((error as Error).message, command);
    }
    const { values, positionals } = parsed;
    if (values.help) {
      process.stdout.write(USAGE[command]);
      return EXIT.ok;
    }
    const profile = values.profile as string | undefined;
    if (!profile) throw new UsageError('--profile is required', command);
    useKubeContext(values.context as string | undefined);
    if (values.namespace !== undefined) checkNamespace(profile, values.namespace as string);
    const timeoutS = seconds(values.timeout as string | undefined, command);
    const dryRun = Boolean(values['dry-run']);
    switch (command) {
      case 'deploy':
        if (values.upgrade && values['skip-existing']) throw new UsageError('--upgrade and --skip-existing exclude each other', command);
        return await deploy({ profile, existing: values['skip-existing'] ? 'skip' : 'upgrade', dryRun, timeoutS });
      case 'status':
        return await status({ profile, json: Boolean(values.json) });
      case 'verify':
        return await verify({ profile, rerun: Boolean(values.rerun), timeoutS });
      case 'backup':
        return await backup({ profile, dryRun, timeoutS });
      default:
        if (values.to !== undefined) {
          if (positionals.length > 0) throw new UsageError(`--to restores a point in time, not a dump: drop ${positionals.join(' ')}`, command);
          return await pitrRestore({ profile, to: String(values.to), fromOffsite: Boolean(values['from-offsite']), dryRun, timeoutS });
        }
        if (values['from-offsite']) throw new UsageError('--from-offsite goes with --to', command);
        if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'restore needs the <file> to restore' : `one <file> only (got ${positionals.join(' ')})`, command);
        return await restore({ profile, file: positionals[0], dryRun, timeoutS });
    }
  } catch (error) {
    return json ? reportJson(error, rest) : report(error);
  }
}

/** Exit 1 unless `namespace` is the one dist/<profile>/ is rendered for. */
function checkNamespace(profile: string, namespace: string): void {
  const target = loadTarget(profile);
  if (namespace !== target.namespace) {
    throw new CliError(EXIT.general, `--namespace ${namespace}: dist/${profile}/ is rendered for namespace ${target.namespace} (its Namespace, RBAC, NetworkPolicies and connection strings name it)`, [
      `to deploy profile '${profile}' into ${namespace}: set namespace: '${namespace}' in profile '${profile}' of lib/profiles.ts and run npm run synth`,
      `or run the command with --namespace ${target.namespace} (or without --namespace)`,
    ]);
  }
}

/** A failed `status --json`: one JSON object with `error` (and the exit code), on stdout. */
function reportJson(error: unknown, args: readonly string[]): number {
  const code = error instanceof CliError ? error.code : EXIT.general;
  const profileAt = args.indexOf('--profile');
  const message = error instanceof Error ? error.message : String(error);
  process.stdout.write(`${JSON.stringify({
    profile: profileAt >= 0 ? args[profileAt + 1] ?? null : null,
    error: message,
    exit_code: code,
    next: error instanceof CliError ? error.next : [],
  }, null, 2)}\n`);
  return code;
}

/** Prints what failed and what to do next; returns the exit code. */
function report(error: unknown): number {
  if (error instanceof UsageError) {
    process.stderr.write(`learnflow-postgres: ${error.message}\n\n${USAGE[error.command]}`);
    return EXIT.general;
  }
  if (error instanceof CliError) {
    const lines = [`learnflow-postgres: ${error.message}`];
    if (error.detail) lines.push(error.detail);
    if (error.next.length > 0) lines.push('next:', ...error.next.map((n) => `  - ${n}`));
    process.stderr.write(`${lines.join('\n')}\n`);
    return error.code;
  }
  process.stderr.write(`learnflow-postgres: unexpected error (a bug; please report it with this output):\n${error instanceof Error ? error.stack : String(error)}\n`);
  return EXIT.general;
}

/** Entry point of bin/learnflow-postgres. */
export function run(argv: readonly string[] = process.argv.slice(2)): void {
  main(argv).then((code) => {
    process.exitCode = code;
  });
}
