// The migration ConfigMaps' data: the plan (plan.tsv, or its parts), the runner and the SQL
// files, and the constants the synthesizer shares with runner.sh.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ADVISORY_LOCK_KEY,
  PLAN_KEY,
  PLAN_PARTS_KEY,
  POSTGRES_DURATION,
  RUNNER_ENV,
  RUNNER_KEY,
  migrationBundle,
  planEntries,
  renderPlan,
} from '../../lib/migrations/bundle';
import { CONFIGMAP_DATA_BUDGET, encodedSize } from '../../lib/migrations/layout';
import { migration } from '../support/runner-harness';

const runnerText = readFileSync(path.join(__dirname, '..', '..', 'lib', 'migrations', 'runner.sh'), 'utf8');
const users = migration('001', 'create_users', 'CREATE TABLE users (id integer);\n', 'DROP TABLE users;\n');
const index = migration('002', 'index_users', '-- learnflow:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS users_id ON users (id);\n');

describe('renderPlan', () => {
  it('writes one tab-separated line per migration in ascending version, no header', () => {
    expect(renderPlan([index, users])).toBe(
      [
        ['001', 'create_users', users.up.sha256, users.down.sha256, 'tx'].join('\t'),
        ['002', 'index_users', index.up.sha256, index.down.sha256, 'notx'].join('\t'),
        '',
      ].join('\n'),
    );
  });

  it('leaves out the file names, which follow from version and name', () => {
    const renamed = { ...users, up: { ...users.up, key: 'users.sql' } };
    expect(() => renderPlan([renamed])).toThrow('users.sql: a plan names files 001_create_users.up.sql');
  });

  it('orders versions by number, not as text', () => {
    const v9 = migration('9', 'nine', 'SELECT 9;\n');
    const v10 = migration('10', 'ten', 'SELECT 10;\n');
    expect(renderPlan([v10, v9]).split('\n').map((line) => line.split('\t')[0])).toEqual(['9', '10', '']);
  });

  it('is empty for no migrations', () => {
    expect(renderPlan([])).toBe('');
  });
});

describe('planEntries', () => {
  const many = Array.from({ length: 40 }, (_, i) => migration(String(i + 1).padStart(3, '0'), `step_${i + 1}`, `SELECT ${i + 1};\n`));

  it('is plan.tsv alone while the plan fits one ConfigMap', () => {
    expect(planEntries(many)).toEqual([[PLAN_KEY, renderPlan(many)]]);
  });

  it('splits a longer plan into whole lines in parts of at most the budget, listed in order in plan.parts', () => {
    const budget = 1000;
    const entries = planEntries(many, budget);
    const [[indexKey, index], ...parts] = entries;
    expect(indexKey).toBe(PLAN_PARTS_KEY);
    expect(index).toBe(parts.map(([key]) => `${key}\n`).join(''));
    expect(parts.map(([key]) => key).slice(0, 3)).toEqual([PLAN_KEY, 'plan-002.tsv', 'plan-003.tsv']);
    expect(parts.map(([, text]) => text).join('')).toBe(renderPlan(many));
    for (const [key, text] of parts) {
      expect(encodedSize(key, text), key).toBeLessThanOrEqual(budget);
      expect(text.endsWith('\n'), key).toBe(true);
    }
  });

  it('keeps 1,000 migrations in plan.tsv, under the budget of one ConfigMap', () => {
    const thousand = Array.from({ length: 1000 }, (_, i) => migration(String(i + 1).padStart(4, '0'), `add_feature_${i}_enabled`, `SELECT ${i};\n`));
    const entries = planEntries(thousand);
    expect(entries.map(([key]) => key)).toEqual([PLAN_KEY]);
    expect(encodedSize(PLAN_KEY, entries[0][1])).toBeLessThanOrEqual(CONFIGMAP_DATA_BUDGET);
  });
});

describe('migrationBundle', () => {
  it('holds the runner, the plan and every up and down file under its key, keys sorted', () => {
    const bundle = migrationBundle([index, users]);
    expect(Object.keys(bundle)).toEqual([
      '001_create_users.down.sql',
      '001_create_users.up.sql',
      '002_index_users.down.sql',
      '002_index_users.up.sql',
      PLAN_KEY,
      RUNNER_KEY,
    ]);
    expect(bundle[RUNNER_KEY]).toBe(runnerText);
    expect(bundle[PLAN_KEY]).toBe(renderPlan([users, index]));
    expect(bundle['002_index_users.up.sql']).toBe(index.up.sql);
  });

  it('carries the plan in parts when it is split', () => {
    const bundle = migrationBundle([users, index], { planPartBudget: 200 });
    expect(Object.keys(bundle)).toEqual([
      '001_create_users.down.sql',
      '001_create_users.up.sql',
      '002_index_users.down.sql',
      '002_index_users.up.sql',
      'plan-002.tsv',
      PLAN_PARTS_KEY,
      PLAN_KEY,
      RUNNER_KEY,
    ]);
    expect(bundle[PLAN_PARTS_KEY]).toBe('plan.tsv\nplan-002.tsv\n');
    expect(bundle[PLAN_KEY] + bundle['plan-002.tsv']).toBe(renderPlan([users, index]));
  });

  it('refuses two files with the same key', () => {
    expect(() => migrationBundle([users, { ...users, version: '003' }])).toThrow('001_create_users.up.sql: two bundle entries share this key');
  });
});

describe('constants shared with runner.sh', () => {
  it.each(Object.values(RUNNER_ENV).filter((v) => v.default !== undefined))('$name defaults to $default in the runner too', ({ name, default: value }) => {
    expect(runnerText).toContain(`\${${name}:-${value}}`);
  });

  it('takes the advisory lock key derived from "learnflow-migrations"', () => {
    expect(ADVISORY_LOCK_KEY).toBe(1201360753686228956n);
    expect(runnerText).toContain(`LOCK_KEY=${ADVISORY_LOCK_KEY}`);
    expect(runnerText).toContain(`LOCK_CLASSID=${ADVISORY_LOCK_KEY >> 32n}`);
    expect(runnerText).toContain(`LOCK_OBJID=${ADVISORY_LOCK_KEY & 0xffffffffn}`);
  });

  it('accepts the durations the runner accepts', () => {
    expect(['15min', '10s', '500ms', '2h', '0', '30'].filter((d) => POSTGRES_DURATION.test(d))).toHaveLength(6);
    expect(['15 min', '1.5s', '10m', '', 's', '1d'].filter((d) => POSTGRES_DURATION.test(d))).toEqual([]);
  });
});
