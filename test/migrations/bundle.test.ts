// The migration ConfigMaps' data: the plan (plan.tsv, or its parts), the runner rendered from
// its contract and the runner's copies of the SQL files.
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FILE_PARTS_KEY, PLAN_KEY, PLAN_PARTS_KEY, RUNNER_KEY, bundleEntries, migrationBundle, planEntries, renderPlan } from '../../lib/migrations/bundle';
import { CONFIGMAP_DATA_BUDGET, encodedSize, splitText } from '../../lib/migrations/layout';
import { runForm } from '../../lib/migrations/run-form';
import { ADVISORY_LOCK_KEY, RUNNER, runnerScript } from '../../lib/migrations/runner-contract';
import { migration } from '../support/runner-harness';

const sha = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
const users = migration('001', 'create_users', 'CREATE TABLE users (id integer);\n', 'DROP TABLE users;\n');
const index = migration('002', 'index_users', '-- learnflow:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS users_id ON users (id);\n');

describe('renderPlan', () => {
  it('writes one tab-separated line per migration in ascending version, no header: the recorded checksum of the up file as written, those of the runner\'s copies, and whether its down file undoes it', () => {
    const dropped = migration('003', 'drop_users', 'DROP TABLE users;\n', '-- learnflow:irreversible the rows are gone\n', { reversible: false });
    expect(renderPlan([index, dropped, users])).toBe(
      [
        ['001', 'create_users', users.up.sha256, 'tx', sha(runForm(users.up)), sha(runForm(users.down)), 'yes'].join('\t'),
        ['002', 'index_users', index.up.sha256, 'notx', sha(runForm(index.up)), sha(runForm(index.down)), 'yes'].join('\t'),
        ['003', 'drop_users', dropped.up.sha256, 'tx', sha(runForm(dropped.up)), sha(runForm(dropped.down)), 'no'].join('\t'),
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

  it('keeps 800 migrations in plan.tsv, under the budget of one ConfigMap', () => {
    const many = Array.from({ length: 800 }, (_, i) => migration(String(i + 1).padStart(4, '0'), `add_feature_${i}_enabled`, `SELECT ${i};\n`));
    const entries = planEntries(many);
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
    expect(bundle[RUNNER_KEY]).toBe(runnerScript());
    expect(bundle[PLAN_KEY]).toBe(renderPlan([users, index]));
    expect(bundle['002_index_users.up.sql']).toBe(runForm(index.up));
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

describe('runner.sh as the Job runs it', () => {
  const body = readFileSync(RUNNER.body, 'utf8');
  /** The body without its comments (shell and SQL), which may speak of codes in words. */
  const code = body.split('\n').filter((line) => !/^\s*(#|--)/.test(line)).join('\n');

  it('carries the values of its contract, once, in place of the marker line', () => {
    const rendered = runnerScript();
    expect(rendered.startsWith('#!/bin/sh\n')).toBe(true);
    expect(rendered).not.toContain('\n# learnflow:contract\n');
    for (const [name, exit] of [['USAGE', 1], ['LOCK_TIMEOUT', 4], ['MIGRATION_FAILED', 7], ['CONNECTION_FAILED', 8]] as const) {
      expect(rendered).toContain(`\nEXIT_${name}=${exit}\n`);
    }
    expect(rendered).toContain(`\nDEFAULT_MIGRATE_STATEMENT_TIMEOUT=${RUNNER.knobs.statementTimeout.default}\n`);
    expect(rendered).toContain(`\nLOCK_KEY=${ADVISORY_LOCK_KEY}\n`);
    expect(rendered).toContain(`\nLOCK_CLASSID=${ADVISORY_LOCK_KEY >> 32n}\n`);
    expect(rendered).toContain(`\nTABLE=${RUNNER.constants.TABLE}\n`);
  });

  it('takes the advisory lock key derived from "learnflow-migrations"', () => {
    expect(ADVISORY_LOCK_KEY).toBe(1201360753686228956n);
  });

  it('writes no exit code, default or lock key of its own: the body uses the contract\'s variables', () => {
    expect(code.match(/\b(exit|fail) [0-9]/g)).toBeNull();
    expect(code).not.toMatch(/:-(300|120|15min|10s)\}/);
    expect(code).not.toContain(String(ADVISORY_LOCK_KEY));
    expect(code).not.toContain('applied_migrations');
  });
});

describe('files larger than one ConfigMap entry', () => {
  const rows = Array.from({ length: 400 }, (_, i) => `(${i}, 'row <${i}> & more')`).join(',\n');
  const big = migration('001', 'seed', `CREATE TABLE seed (id integer, note text);\nINSERT INTO seed VALUES\n${rows};\n`, 'DROP TABLE seed;\n');

  it('carries a copy over the budget in numbered parts, listed with their count in files.parts, that join back to the copy', () => {
    const budget = 4000;
    const entries = new Map(bundleEntries([big], { entryBudget: budget }));
    expect(entries.has(big.up.key)).toBe(false);
    const count = Number(/^001_seed\.up\.sql (\d+)\n$/.exec(entries.get(FILE_PARTS_KEY)!)![1]);
    expect(count).toBeGreaterThan(3);
    const parts = Array.from({ length: count }, (_, i) => `${big.up.key}.part-${String(i + 1).padStart(3, '0')}`);
    expect(parts.map((key) => entries.get(key)).join('')).toBe(runForm(big.up));
    for (const key of parts) expect(encodedSize(key, entries.get(key)!), key).toBeLessThanOrEqual(budget);
    expect(entries.get(big.down.key)).toBe(runForm(big.down));
  });

  it('writes no files.parts while every copy fits', () => {
    expect(Object.keys(migrationBundle([big]))).not.toContain(FILE_PARTS_KEY);
  });

  it('splits at line ends, and a line longer than a part between characters, never inside a surrogate pair', () => {
    expect(splitText('aaaa\nbbbb\ncc\n', 12)).toEqual(['aaaa\nbbbb\n', 'cc\n']); // '\n' is two bytes in JSON
    const line = '😀<'.repeat(50);
    const parts = splitText(line, 30);
    expect(parts.join('')).toBe(line);
    for (const part of parts) {
      expect(encodedSize('', part) - 6).toBeLessThanOrEqual(30);
      expect(part.charCodeAt(part.length - 1) >= 0xd800 && part.charCodeAt(part.length - 1) < 0xdc00).toBe(false);
    }
  });
});
