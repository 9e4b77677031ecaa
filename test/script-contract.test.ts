// One contract between TypeScript and the shell scripts: a knob's rule decides the same way in
// the synth (knobProblem, validateProps) and in the rendered scripts (check_knob), word for
// word, and PostgreSQL never refuses a duration the rule accepts.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { RUNNER, runnerScript } from '../lib/migrations/runner-contract';
import { KnobRule, POSTGRES_INT_MAX, describeRule, knobProblem, renderScript } from '../lib/script-contract';
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
    '', '0', '00', '01', '1', '2', '9', '10', '300', '86400', '86401', '172800', '9999999999', '99999999999', '-1', '+5', ' 5', '5 ', '1.5', '1e3', '0x10',
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
  const functions = script.slice(script.indexOf('check_seconds()'), script.indexOf('# ---- end of the generated values'));
  const program = `PROG=test\n${functions}\nfor v in "$@"; do if out=$(check_knob ${knob} "$v"); then echo OK; else printf '%s\\n' "$out"; fi; done\n`;
  return execFileSync('sh', ['-c', program, 'sh', ...values], { encoding: 'utf8' }).split('\n').slice(0, values.length)
    .map((line) => (line === 'OK' ? undefined : line));
}

const ruled: [string, string, KnobRule][] = [
  ...Object.values(RUNNER.knobs).filter((k) => 'rule' in k).map((k): [string, string, KnobRule] => ['runner.sh', k.env, (k as { rule: KnobRule }).rule]),
  ...Object.values(VERIFY.knobs).filter((k) => 'rule' in k).map((k): [string, string, KnobRule] => ['verify.sh', k.env, (k as { rule: KnobRule }).rule]),
];

describe('knob rules', () => {
  it.each(ruled)('%s %s: the script decides and words it exactly as the synth does', (script, env, rule) => {
    const values = corpus();
    const rendered = script === 'runner.sh' ? runnerScript() : renderScript(VERIFY);
    const shell = shellVerdicts(rendered, env, values);
    const typescript = values.map((v) => {
      const problem = knobProblem(rule, v);
      return problem === undefined ? undefined : `test: ${env}: ${problem}`;
    });
    expect(shell).toEqual(typescript);
    expect(typescript.filter((v) => v === undefined).length).toBeGreaterThan(10);
  });

  it('every default keeps its rule', () => {
    for (const [, env, rule] of ruled) {
      const knob = [...Object.values(RUNNER.knobs), ...Object.values(VERIFY.knobs)].find((k) => k.env === env) as { default?: string };
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
    expect(validateProps({ migrations: { waitForDatabaseSeconds: 1 } })).toEqual([`migrations.waitForDatabaseSeconds: '1' is not ${describeRule({ kind: 'seconds', min: 2, max: 86400 })}`]);
    expect(validateProps({ migrations: { lockWaitSeconds: 2.5 } })).toHaveLength(1);
  });
});
