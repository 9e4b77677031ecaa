import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CHART_RELEASES } from '../chart';
import { scanOf } from './files';
import { RULES_OFF, safeRewrite } from './lint-rules';
import { statementText } from './sql-scanner';
import type { Migration } from './types';

/**
 * The lock-safety lint: squawk (squawk-cli, its binary from the platform package npm installs)
 * over the up files of the migrations it is given, each judged as the runner runs it (in a
 * transaction, or not under the no-transaction header), for the oldest PostgreSQL a supported
 * chart ships, with the rules that do not fit the runner off (lint-rules.ts). Down files are
 * not linted: they run only in a deliberate rollback, always in a transaction, and undo by
 * dropping; the rollback test proves them instead.
 *
 * Opting out is per statement and per rule, with the reason, in squawk's own comment on the
 * line above the statement: `-- squawk-ignore <rule>[, <rule>] -- <why>`. Anything broader (no
 * rule named, no reason, a file-wide `squawk-ignore-file`, a block comment, squawk's own
 * transaction switches) is itself a finding.
 */

/** One problem the lint reports, located in its file. */
export interface LintFinding {
  /** The file's path, as sources name it. */
  readonly file: string;
  /** 1-based line and column. */
  readonly line: number;
  readonly column: number;
  /** squawk's rule, or `opt-out` for a malformed opt-out comment. */
  readonly rule: string;
  readonly message: string;
  /** What to write instead. */
  readonly rewrite: string;
}

/** A finding as the tests and `npm run migrations -- check` print it: location, rule, message, then what to do. */
export function formatFinding(f: LintFinding): string {
  const optOut = f.rule === 'opt-out' || f.rule === 'unused-ignore'
    ? ''
    : `\n    or, if it is safe here (a small table, a maintenance window): '-- squawk-ignore ${f.rule} -- <why>' on the line above the statement`;
  return `${f.file}:${f.line}:${f.column}: ${f.rule}: ${f.message}\n    safe rewrite: ${f.rewrite}${optOut}`;
}

/** squawk's `--pg-version`: the oldest PostgreSQL among the supported charts (rules such as adding-field-with-default depend on it). */
export const LINT_PG_VERSION: string = Object.values(CHART_RELEASES)
  .map((release) => release.postgresqlVersion.split('.').slice(0, 2).join('.'))
  .sort((a, b) => Number(a.split('.')[0]) - Number(b.split('.')[0]) || Number(a.split('.')[1]) - Number(b.split('.')[1]))[0];

/** The squawk binary npm installed for this platform (squawk-cli resolves its platform package). */
export function squawkBinary(): string {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require('squawk-cli/js/index.js') as { getBinaryPath(): string }).getBinaryPath();
  } catch (error) {
    throw new Error(`squawk's binary for ${process.platform}-${process.arch} is not installed: ${(error as Error).message.split('\n')[0]} ` +
      '(run npm ci; it comes in the optional dependency @squawk-cli/<platform>, so do not install with --omit=optional)');
  }
}

/** Lints the up files of `migrations`; resolves with every finding, in file order. */
export async function lintMigrations(migrations: readonly Migration[]): Promise<LintFinding[]> {
  const findings = migrations.flatMap((m) => optOutFindings(m));
  if (migrations.length === 0) return findings;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'learnflow-lint-'));
  try {
    const config = path.join(work, 'squawk.toml');
    fs.writeFileSync(config, ''); // an empty config: no .squawk.toml from elsewhere applies
    const byPath = new Map<string, Migration>();
    const groups: Record<'tx' | 'notx', string[]> = { tx: [], notx: [] };
    migrations.forEach((m, i) => {
      const file = path.join(work, `${String(i).padStart(6, '0')}.sql`);
      // What PostgreSQL's grammar reads: COPY data and pg_dump's \restrict lines blanked, lines kept.
      fs.writeFileSync(file, statementText(m.up.sql, scanOf(m.up)));
      byPath.set(file, m);
      groups[m.transactional ? 'tx' : 'notx'].push(file);
    });
    const reports = await Promise.all((['tx', 'notx'] as const).filter((g) => groups[g].length > 0).map((g) => runSquawk(config, g === 'tx', groups[g])));
    for (const violation of reports.flat()) {
      // Syntax is judged by PostgreSQL's own grammar (grammar.ts), not squawk's parser.
      if (violation.rule_name === 'syntax-error') continue;
      const migration = byPath.get(path.resolve(violation.file));
      if (!migration) throw new Error(`squawk reported a file it was not given: ${violation.file}`);
      findings.push({
        file: migration.up.source,
        line: violation.line + 1,
        column: violation.column + 1,
        rule: violation.rule_name,
        message: violation.message,
        rewrite: safeRewrite(violation.rule_name, violation.help),
      });
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  const order = new Map(migrations.map((m, i) => [m.up.source, i]));
  return findings.sort((a, b) => order.get(a.file)! - order.get(b.file)! || a.line - b.line || a.column - b.column || (a.rule < b.rule ? -1 : 1));
}

interface SquawkViolation {
  readonly file: string;
  /** 0-based, as squawk's JSON reporter writes them. */
  readonly line: number;
  readonly column: number;
  readonly message: string;
  readonly help: string | null;
  readonly rule_name: string;
}

function runSquawk(config: string, inTransaction: boolean, files: readonly string[]): Promise<SquawkViolation[]> {
  const args = [
    '--config', config,
    '--reporter', 'json',
    '--pg-version', LINT_PG_VERSION,
    '--exclude', Object.keys(RULES_OFF).join(','),
    inTransaction ? '--assume-in-transaction' : '--no-assume-in-transaction',
    ...files,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(squawkBinary(), args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SQUAWK_DISABLE_GITHUB_ANNOTATIONS: '1' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      // Exit 1 with a JSON array means findings; anything else is squawk failing.
      try {
        if (code === 0 || code === 1) return resolve(JSON.parse(stdout || '[]') as SquawkViolation[]);
      } catch {
        // fall through
      }
      reject(new Error(`squawk ${args.slice(0, -files.length).join(' ')} exited ${code}: ${(stderr || stdout).trim().slice(0, 2000)}`));
    });
  });
}

const SQUAWK_DIRECTIVE = /squawk-(?:ignore-file|ignore|disable-assume-in-transaction|enable-assume-in-transaction)\b/;
const LINE_IGNORE = /^--\s*squawk-ignore(?!-)(.*)$/;

/** Opt-outs that are not per rule and with a reason: refused, so that every one is explicit. */
function optOutFindings(migration: Migration): LintFinding[] {
  const scan = scanOf(migration.up);
  const finding = (line: number, message: string, rewrite: string): LintFinding =>
    ({ file: migration.up.source, line, column: 1, rule: 'opt-out', message, rewrite });
  const per = "'-- squawk-ignore <rule> -- <why>' on the line above the statement";
  const findings: LintFinding[] = [];
  for (const comment of scan.blockComments) {
    if (SQUAWK_DIRECTIVE.test(comment.text)) findings.push(finding(comment.line, 'squawk directive in a /* */ comment', per));
  }
  for (const comment of scan.lineComments) {
    const directive = SQUAWK_DIRECTIVE.exec(comment.text)?.[0];
    if (!directive) continue;
    if (directive !== 'squawk-ignore') {
      findings.push(finding(comment.line, `'${directive}' applies to more than one statement or changes how the file is judged`,
        directive === 'squawk-ignore-file' ? per : `the runner decides: '-- learnflow:no-transaction' as the first line runs a file outside a transaction`));
      continue;
    }
    const body = LINE_IGNORE.exec(comment.text.trim())?.[1] ?? '';
    const reasonAt = body.indexOf('--');
    const rules = (reasonAt < 0 ? body : body.slice(0, reasonAt)).split(',').map((r) => r.trim()).filter(Boolean);
    const reason = reasonAt < 0 ? '' : body.slice(reasonAt + 2).trim();
    if (rules.length === 0) findings.push(finding(comment.line, 'squawk-ignore names no rule (it would silence every rule)', per));
    else if (reason === '') findings.push(finding(comment.line, `squawk-ignore ${rules.join(', ')} gives no reason`, `'-- squawk-ignore ${rules.join(', ')} -- <why it is safe here>'`));
  }
  return findings;
}
