// Proven rollbacks: each migration of a set, in order, on one real database, through the Job
// and its rollback template as the synth renders them: dump the schema, apply the migration, run
// its down file (a rollback to the version before), dump again and compare, then apply it once
// more and check it builds the same schema again. A down file marked irreversible must make the
// rollback refuse (exit 1) and change nothing.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { APPLIED_MIGRATIONS_TABLE } from '../../lib/migrations/runner-contract';
import { describeDiff, diffDumps, sameSchema } from '../../lib/migrations/schema-diff';
import { Migration } from '../../lib/migrations/types';
import { DistJob, migrationJobIn, prepareDistJob, renderManifests } from './dist-job';
import { Pg } from './postgres';
import { EXIT, RunnerResult, runRunner } from './runner-harness';

export interface RollbackProof {
  /** Versions whose down file brought the schema back exactly, and whose up file applied again. */
  readonly proven: readonly string[];
  /** Versions whose down file is marked irreversible, and whose rollback was refused with nothing changed. */
  readonly irreversible: readonly string[];
  /** What failed, naming the file and what to do; the walk stops at the first. */
  readonly problems: readonly string[];
}

export interface RollbackProofOptions {
  readonly pg: Pg;
  /** A fresh database the walk may use. */
  readonly db: string;
  /** libpq variables that log the Job into `db` (the application user, as in the cluster). */
  readonly connection: Record<string, string>;
  /** Where the Job's mounts go. */
  readonly mounts: string;
}

const QUICK = { MIGRATE_DB_WAIT_SECONDS: '5', MIGRATE_LOCK_WAIT_SECONDS: '5' };
const FIX = "make the down file undo what the up file did, in reverse order; if it cannot be undone, make its first line '-- learnflow:irreversible <reason>'";

export async function proveRollbacks(migrations: readonly Migration[], options: RollbackProofOptions): Promise<RollbackProof> {
  const { pg, db } = options;
  const proven: string[] = [];
  const irreversible: string[] = [];
  const dump = () => execFileSync(path.join(pg.bindir, 'pg_dump'), ['--schema-only', `--exclude-table=${APPLIED_MIGRATIONS_TABLE}`], { env: pg.env(db), encoding: 'utf8' });
  const run = async (job: DistJob, env: Record<string, string> = {}): Promise<RunnerResult> => {
    const prepared = prepareDistJob(job, options.mounts, options.connection, { ...QUICK, ...env });
    return runRunner(prepared.dir, prepared.env, prepared.args);
  };
  const failed = (problem: string) => ({ proven, irreversible, problems: [problem] });
  /** The runner's first ERROR line (the cause), and its last line (the exit). */
  const lastLines = (result: RunnerResult) => {
    const lines = result.stderr.trim().split('\n');
    return [...new Set([lines.find((l) => / ERROR: /.test(l)), lines.at(-1)].filter(Boolean))].join(' / ');
  };

  let before = dump();
  for (let i = 0; i < migrations.length; i++) {
    const m = migrations[i];
    const target = i === 0 ? '0' : migrations[i - 1].version;
    const all = renderManifests(migrations.slice(0, i + 1));
    const migrate = migrationJobIn(all, 'the rendered chart');
    const rollback = migrationJobIn(all, 'the rendered chart', 'rollback');

    const up = await run(migrate);
    if (up.code !== EXIT.ok) return failed(`${m.up.source}: does not apply on the schema before it (exit ${up.code}): ${lastLines(up)}`);
    const applied = dump();

    const down = await run(rollback, { MIGRATE_TARGET_VERSION: target });
    if (m.reversible === false) {
      if (down.code !== EXIT.usage || !sameSchema(diffDumps(applied, dump()))) {
        return failed(`${m.down.source}: marked irreversible, yet the rollback past it did not refuse with exit ${EXIT.usage} and change nothing (exit ${down.code}): ${lastLines(down)}`);
      }
      irreversible.push(m.version);
      before = applied;
      continue;
    }
    if (down.code !== EXIT.ok) return failed(`${m.down.source}: the rollback of ${m.version} failed (exit ${down.code}): ${lastLines(down)}; ${FIX}`);
    const diff = diffDumps(before, dump());
    if (!sameSchema(diff)) {
      return failed(`${m.down.source}: does not undo ${m.up.source} (pg_dump --schema-only before the up file and after the down file differ): ${describeDiff(diff).join('; ')}; ${FIX}`);
    }

    const again = await run(migrate);
    if (again.code !== EXIT.ok) return failed(`${m.up.source}: does not apply again after its down file (exit ${again.code}): ${lastLines(again)}; ${FIX}`);
    const reapplied = dump();
    const drift = diffDumps(applied, reapplied);
    if (!sameSchema(drift)) {
      return failed(`${m.up.source}: applies again after its down file, but to another schema: ${describeDiff(drift).join('; ')}; ${FIX}`);
    }
    proven.push(m.version);
    before = reapplied;
  }
  return { proven, irreversible, problems: [] };
}
