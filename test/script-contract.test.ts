// One contract between TypeScript and the shell scripts: a knob's rule decides the same way in
// the synth (knobProblem, validateProps) and in the rendered scripts (check_knob), word for
// word, and PostgreSQL never refuses a duration the rule accepts.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { BACKUP, RESTORE } from '../lib/backup/script-contracts';
import { BOOTSTRAP } from '../lib/credentials/bootstrap-contract';
import { PASSFILE } from '../lib/credentials/passfile-contract';
import { RUNNER } from '../lib/migrations/runner-contract';
import { CONTRACT_MARKER, KnobRule, POSTGRES_INT_MAX, ScriptContract, describeRule, knobProblem, renderScript } from '../lib/script-contract';
import { validateProps } from '../lib/validation';
import { VERIFY } from '../lib/verification/verify-contract';
import { Pg } from './support/postgres';
import { usePostgres } from './support/postgres-fixture';

let pg: Pg;
usePostgres('contract', (server) => {
  pg = server;
});

/** Values around every edge of the rules, plus seeded random ones. */
function corpus(): string[] {
  const values = [
    '', '0', '00', '01', '1', '2', '9', '10', '31', '32', '40', '128', '129', '300', '86400', '86401', '172800', '9999999999', '99999999999', '-1', '+5', ' 5', '5 ', '1.5', '1e3', '0x10',
    '15min', '10s', '500ms', '2h', '1d', '0ms', '0s', '010s', '15 min', '1.5s', '10m', 'ms', 's', 'min', '5sms', '5us', '5MS', '5Min',
    `${POSTGRES_INT_MAX}`, `${POSTGRES_INT_MAX + 1}`, `${POSTGRES_INT_MAX}ms`, '2147483s', '2147484s', '35791min', '35792min', '596h', '597h', '24d', '25d',
    '1234567890ms', '999999999h', "1'; rm -rf /", '$(id)', 'é',
  ];
  let seed = 20261203;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const units = ['', 'ms', 's', 'min', 'h', 'd', 'm', 'us'];
  for (let i = 0; i < 300; i++) {
    const digits = String(Math.floor(random() * 10 ** (1 + Math.floor(random() * 11))));
    values.push(`${random() < 0.1 ? '0' : ''}${digits}${units[Math.floor(random() * units.length)]}`);
  }
  return values;
}

/** check_knob's verdict on each value, run by sh from the rendered script's own functions. */
function shellVerdicts(script: string, knob: string, values: readonly string[]): (string | undefined)[] {
  const functions = script.slice(script.indexOf('check_whole()'), script.indexOf('# ---- end of the generated values'));
  const program = `PROG=test\n${functions}\nfor v in "$@"; do if out=$(check_knob ${knob} "$v"); then echo OK; else printf '%s\\n' "$out"; fi; done\n`;
  return execFileSync('sh', ['-c', program, 'sh', ...values], { encoding: 'utf8' }).split('\n').slice(0, values.length)
    .map((line) => (line === 'OK' ? undefined : line));
}

/** Every script we ship, by its contract. */
const CONTRACTS: Record<string, ScriptContract> = { 'runner.sh': RUNNER, 'verify.sh': VERIFY, 'bootstrap.sh': BOOTSTRAP, 'backup.sh': BACKUP, 'restore.sh': RESTORE, 'passfile.sh': PASSFILE };
const ruled: [string, string, KnobRule][] = Object.entries(CONTRACTS).flatMap(([script, contract]) =>
  Object.values(contract.knobs).flatMap((k): [string, string, KnobRule][] => (k.rule ? [[script, k.env, k.rule]] : [])));

describe('every script we ship', () => {
  it.each(Object.entries(CONTRACTS))('%s: renders its contract in place of its one marker line, and its body writes no exit code of its own', (_, contract) => {
    const body = readFileSync(contract.body, 'utf8');
    const rendered = renderScript(contract);
    expect(body.split('\n').filter((line) => line === CONTRACT_MARKER)).toHaveLength(1);
    expect(rendered.split('\n')).not.toContain(CONTRACT_MARKER);
    expect(rendered.startsWith('#!/bin/sh\n')).toBe(true);
    expect(rendered).toContain(`\nPROG=${contract.program}\n`);
    for (const [name, exit] of Object.entries(contract.exits)) expect(rendered).toContain(`\nEXIT_${name.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()}=${exit.code}\n`);
    const code = body.split('\n').filter((line) => !/^\s*(#|--)/.test(line)).join('\n');
    expect(code.match(/\b(exit|fail) [0-9]/g)).toBeNull();
    expect(execFileSync('sh', ['-n', '-c', rendered]).toString()).toBe('');
  });
});

describe('knob rules', () => {
  it.each(ruled)('%s %s: the script decides and words it exactly as the synth does', (script, env, rule) => {
    const values = corpus();
    const rendered = renderScript(CONTRACTS[script]);
    const shell = shellVerdicts(rendered, env, values);
    const typescript = values.map((v) => {
      const problem = knobProblem(rule, v);
      return problem === undefined ? undefined : `test: ${env}: ${problem}`;
    });
    expect(shell).toEqual(typescript);
    expect(typescript.filter((v) => v === undefined).length).toBeGreaterThan(0);
    expect(typescript.filter((v) => v !== undefined).length).toBeGreaterThan(0);
  });

  it('every default keeps its rule', () => {
    for (const [, env, rule] of ruled) {
      const knob = Object.values(CONTRACTS).flatMap((c) => Object.values(c.knobs)).find((k) => k.env === env) as { default?: string };
      expect(knobProblem(rule, knob.default!), env).toBeUndefined();
    }
  });

  it('accepts only durations PostgreSQL takes for statement_timeout and lock_timeout, meaning what they say', () => {
    const accepted = corpus().filter((v) => knobProblem({ kind: 'duration' }, v) === undefined);
    const shown = pg.psql('postgres', accepted.map((v) => `SET statement_timeout = '${v}'; SET lock_timeout = '${v}'; SELECT current_setting('statement_timeout');`).join('\n'));
    expect(shown.split('\n')).toHaveLength(accepted.length);
    // Refused here, though PostgreSQL reads them (with another meaning, or past its limit).
    expect(knobProblem({ kind: 'duration' }, '010s')).toBeDefined();
    expect(() => pg.psql('postgres', "SET statement_timeout = '999999999h'")).toThrow(/Value exceeds integer range/);
    expect(knobProblem({ kind: 'duration' }, '999999999h')).toBeDefined();
    expect(knobProblem({ kind: 'duration' }, '1234567890ms')).toBeUndefined();
    expect(pg.psql('postgres', "SET statement_timeout = '1234567890ms'; SHOW statement_timeout")).toBe('1234567890ms');
  });

  it('refuses at synth exactly what the runner would refuse, naming the prop and the rule', () => {
    for (const value of ['999999999h', '1234567890ms', '15 minutes', '010s', '24d']) {
      const problems = validateProps({ migrations: { statementTimeout: value } });
      const problem = knobProblem({ kind: 'duration' }, value);
      expect(problems, value).toEqual(problem ? [`migrations.statementTimeout: ${problem}`] : []);
    }
    expect(validateProps({ migrations: { waitForDatabaseSeconds: 1 } })).toEqual([`migrations.waitForDatabaseSeconds: '1' is not ${describeRule({ kind: 'whole', unit: 'seconds', min: 2, max: 86400 })}`]);
    expect(validateProps({ migrations: { lockWaitSeconds: 2.5 } })).toHaveLength(1);
  });
});
