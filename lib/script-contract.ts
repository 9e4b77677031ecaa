import { readFileSync } from 'node:fs';
import * as path from 'node:path';

/**
 * The one contract between TypeScript and a shell script we ship: its exit codes, its knobs
 * (environment variables with their defaults and rules) and its constants are written once,
 * in the script's TypeScript module. The synth renders the script as its body with a generated
 * block of assignments in place of the {@link CONTRACT_MARKER} line; the body uses the
 * variables, never literal codes or defaults. Tests run the script exactly as rendered.
 *
 * A knob's rule is applied the same way on both sides: {@link knobProblem} here (the synth
 * refuses a bad prop), `check_knob` in the script (script-rules.sh), with the same wording;
 * test/script-contract.test.ts proves the two agree value for value.
 */
export interface ScriptContract {
  /** The script body (next to its module), with one {@link CONTRACT_MARKER} line. */
  readonly body: string;
  /** Name the script prints before its messages, e.g. `learnflow-migrate`. */
  readonly program: string;
  readonly exits: Readonly<Record<string, ExitCode>>;
  readonly knobs: Readonly<Record<string, Knob>>;
  /** Shell variables the body reads, e.g. a table name: `NAME=value`. */
  readonly constants?: Readonly<Record<string, string | number | bigint>>;
  /**
   * Shell files of functions shared between scripts (e.g. lib/passfile.sh), rendered into the
   * generated block, so that every script we ship stays one self-contained file.
   */
  readonly includes?: readonly string[];
}

export interface ExitCode {
  readonly code: number;
  /** What it means to an operator (the README's table says the same). */
  readonly meaning: string;
  /** Whether the Job retries it; false codes fail the Job at once (its pod failure policy). */
  readonly retried: boolean;
}

export interface Knob {
  /** The environment variable. */
  readonly env: string;
  /** Used when the variable is unset or empty; absent when the script requires it or has none. */
  readonly default?: string;
  /** What a value must be; the script and the synth both refuse anything else. */
  readonly rule?: KnobRule;
}

export type KnobRule =
  /** A whole number of `unit` (e.g. seconds) in [min, max], written without leading zeros. */
  | { readonly kind: 'whole'; readonly unit: string; readonly min: number; readonly max: number }
  /**
   * A PostgreSQL duration for a millisecond setting (statement_timeout, lock_timeout): a whole
   * number without leading zeros and an optional unit ms, s, min, h or d (no unit: ms), at most
   * PostgreSQL's limit of 2147483647 ms. PostgreSQL also reads fractions, signs, spaces, hex and
   * octal (`010` is 8 to it): refused here on purpose, so a value means what it says.
   */
  | { readonly kind: 'duration' };

/** The line of a script body that the rendered copy replaces by the contract's assignments. */
export const CONTRACT_MARKER = '# learnflow:contract';

/** PostgreSQL's largest value for an integer setting, in its base unit (ms for the timeouts). */
export const POSTGRES_INT_MAX = 2147483647;

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 };
const WHOLE = /^(0|[1-9][0-9]{0,9})$/;
const DURATION = /^(0|[1-9][0-9]{0,9})(ms|s|min|h|d)?$/;

/** The rule in words: what a value must be. */
export function describeRule(rule: KnobRule): string {
  switch (rule.kind) {
    case 'whole':
      return `a whole number of ${rule.unit} from ${rule.min} to ${rule.max}`;
    case 'duration':
      return `a PostgreSQL duration: a whole number with an optional unit ms, s, min, h or d (e.g. 15min, 10s, 500ms; 0 turns it off), at most ${POSTGRES_INT_MAX} ms`;
  }
}

/** `'value' is not …` when `value` breaks `rule`, undefined when it keeps it. */
export function knobProblem(rule: KnobRule, value: string): string | undefined {
  return keepsRule(rule, value) ? undefined : `'${value}' is not ${describeRule(rule)}`;
}

function keepsRule(rule: KnobRule, value: string): boolean {
  switch (rule.kind) {
    case 'whole':
      return WHOLE.test(value) && Number(value) >= rule.min && Number(value) <= rule.max;
    case 'duration': {
      const match = DURATION.exec(value);
      return match !== null && Number(match[1]) * DURATION_UNITS[match[2] ?? 'ms'] <= POSTGRES_INT_MAX;
    }
  }
}

/** The contract's exit codes by name. */
export function exitCodes<C extends ScriptContract>(contract: C): { readonly [K in keyof C['exits']]: number } {
  return Object.fromEntries(Object.entries(contract.exits).map(([name, exit]) => [name, exit.code])) as { readonly [K in keyof C['exits']]: number };
}

/** Exit codes the Job must not retry, ascending: its pod failure policy fails the Job on them. */
export function failJobOnExitCodes(contract: ScriptContract): number[] {
  return Object.values(contract.exits).filter((e) => !e.retried && e.code !== 0).map((e) => e.code).sort((a, b) => a - b);
}

const rendered = new Map<ScriptContract, string>();

/** The script as the Job runs it: its body with the contract's assignments at the marker. */
export function renderScript(contract: ScriptContract): string {
  let text = rendered.get(contract);
  if (text === undefined) {
    const body = readFileSync(contract.body, 'utf8');
    const lines = body.split('\n');
    const at = lines.indexOf(CONTRACT_MARKER);
    if (at < 0 || lines.indexOf(CONTRACT_MARKER, at + 1) >= 0) {
      throw new Error(`${contract.body}: needs exactly one line '${CONTRACT_MARKER}' where its contract's values go`);
    }
    lines.splice(at, 1, ...contractBlock(contract));
    text = lines.join('\n');
    rendered.set(contract, text);
  }
  return text;
}

/** Shell-quoted: single quotes unless the value is a plain word. */
export function shellWord(value: string): string {
  return /^[A-Za-z0-9_.,:/@%+=-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

const RULES_SH = path.join(__dirname, 'script-rules.sh');

function contractBlock(contract: ScriptContract): string[] {
  const module = path.basename(contract.body);
  const lines = [
    `# ---- generated by the synth from the TypeScript contract of ${module}: edit that, not this copy`,
    `PROG=${shellWord(contract.program)}`,
    ...Object.entries(contract.exits).map(([name, exit]) => `EXIT_${constantName(name)}=${exit.code}`),
    ...Object.values(contract.knobs).filter((k) => k.default !== undefined).map((k) => `DEFAULT_${k.env}=${shellWord(k.default!)}`),
    ...Object.entries(contract.constants ?? {}).map(([name, value]) => `${name}=${shellWord(String(value))}`),
  ];
  const ruled = Object.values(contract.knobs).filter((k) => k.rule !== undefined);
  for (const file of contract.includes ?? []) lines.push(...shellFunctions(file));
  if (ruled.length > 0) {
    lines.push(...shellFunctions(RULES_SH));
    lines.push('check_knob() { # name value: prints what is wrong and returns 1 when the value breaks its rule', '  case $1 in');
    for (const knob of ruled) lines.push(`    ${knob.env}) ${ruleCall(knob.rule!)} ;;`);
    lines.push('  esac', '}');
  }
  lines.push('# ---- end of the generated values');
  return lines;
}

/** A file of shell functions as lines to render, without its `#!` line. */
function shellFunctions(file: string): string[] {
  return readFileSync(file, 'utf8').trimEnd().split('\n').filter((l) => !l.startsWith('#!'));
}

function ruleCall(rule: KnobRule): string {
  const text = shellWord(describeRule(rule));
  switch (rule.kind) {
    case 'whole':
      return `check_whole "$1" "$2" ${rule.min} ${rule.max} ${text}`;
    case 'duration':
      return `check_duration "$1" "$2" ${POSTGRES_INT_MAX} ${text}`;
  }
}

/** `lockTimeout` → `LOCK_TIMEOUT`. */
export function constantName(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}
