// The pull-request check of migrations/ (grammar and lint, lib/migrations/check.ts): its cost
// must follow what is new, not the history. Two project copies judge the same new migration:
// one holding only it, one holding it after 1,000 released migrations (listed in released.tsv).
// Measured two ways: the check alone, in a warm process (what `npm test` pays per run), and the
// command a person types, `npm run migrations -- check` (node scripts/migrations.cjs check).
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { renderReleased } from '../lib/migrations/released';
import { smallMigrationSet } from '../test/support/generated-migrations';
import { projectCopy } from '../test/support/project';
import { migrationSet } from '../test/support/runner-harness';
import { Sample, median, timeCommand } from './measure';

export const RELEASED_COUNT = 1000;

/** The migration both copies judge: a column, a backfill, an index built safely elsewhere. */
const NEW_MIGRATION = {
  '1001_add_learner_display_name.up.sql': '-- 1001: learners get a display name\nALTER TABLE feature_0 ADD COLUMN display_name text;\n' +
    "UPDATE feature_0 SET display_name = name WHERE display_name IS NULL;\nCOMMENT ON COLUMN feature_0.display_name IS 'shown in the class list';\n",
  '1001_add_learner_display_name.down.sql': 'ALTER TABLE feature_0 DROP COLUMN display_name;\n',
};

export interface LintCase {
  readonly id: 'one' | 'released';
  readonly label: string;
  /** The check alone, warm, in process. */
  readonly check: Sample;
  /** `node scripts/migrations.cjs check`, a whole process. */
  readonly command: Sample;
}

/** Timed checks per process, after one untimed: many samples, since one check takes tens of ms. */
const CHECKS_PER_PROCESS = 10;

export function benchLint(work: string, runs: number): LintCase[] {
  const history = smallMigrationSet(RELEASED_COUNT);
  const one = projectCopy({ parent: work, migrations: NEW_MIGRATION });
  const released = projectCopy({ parent: work, migrations: { ...history, ...NEW_MIGRATION } });
  writeFileSync(path.join(released, 'migrations', 'released.tsv'), renderReleased(migrationSet(history)));
  const cases = [
    { id: 'one' as const, label: 'one migration in all (pending)', project: one },
    { id: 'released' as const, label: `${RELEASED_COUNT.toLocaleString('en')} released migrations and the same one pending`, project: released },
  ];
  const checks = new Map(cases.map((c) => [c.id, [] as number[]]));
  const commands = new Map(cases.map((c) => [c.id, [] as number[]]));
  // Round-robin, one warm-up round: a busy moment of the machine hits both cases alike.
  for (let round = -1; round < runs; round++) {
    const warm = checksInProcess(cases.map((c) => c.project));
    for (const [i, c] of cases.entries()) {
      const command = timeCommand({ cmd: process.execPath, args: ['scripts/migrations.cjs', 'check'], cwd: c.project });
      if (round >= 0) {
        checks.get(c.id)!.push(...warm[i]);
        commands.get(c.id)!.push(command);
      }
    }
  }
  const sample = (id: string, runsOf: number[]): Sample => ({ id, runs: runsOf, median: median(runsOf) });
  return cases.map((c) => ({ id: c.id, label: c.label, check: sample(c.id, checks.get(c.id)!), command: sample(c.id, commands.get(c.id)!) }));
}

/**
 * Warm checks in one fresh process, the projects taking turns: the compiled check module is
 * loaded and run once on each (loading PostgreSQL's parser, squawk's binary into the page
 * cache), then each is timed CHECKS_PER_PROCESS times, interleaved. One list of times per project.
 */
function checksInProcess(projects: readonly string[]): number[][] {
  const script = `
    const path = require('node:path');
    const { compiledProject } = require(path.join(process.cwd(), 'scripts', 'compile.cjs'));
    const { checkMigrations } = require(path.join(compiledProject(process.cwd()), 'lib', 'migrations', 'check.js'));
    const projects = ${JSON.stringify(projects)};
    (async () => {
      for (const root of projects) await checkMigrations({ root });
      const times = projects.map(() => []);
      for (let i = 0; i < ${CHECKS_PER_PROCESS}; i++) {
        // Turns alternate in order: the one after another check pays for its cleanup (squawk exiting, its files removed).
        for (const p of (i % 2 === 0 ? projects.keys() : [...projects.keys()].reverse())) {
          const root = projects[p];
          const started = process.hrtime.bigint();
          const check = await checkMigrations({ root });
          times[p].push(Number(process.hrtime.bigint() - started) / 1e6);
          if (check.problems.length > 0 || check.pending.length !== 1) throw new Error(JSON.stringify(check));
        }
      }
      process.stdout.write(JSON.stringify(times));
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const run = spawnSync(process.execPath, ['-e', script], { cwd: projects[0], encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`the check failed in ${projects.join(', ')}:\n${run.stderr}`);
  return JSON.parse(run.stdout) as number[][];
}
