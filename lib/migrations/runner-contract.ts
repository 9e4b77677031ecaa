import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { ScriptContract, knobProblem, renderScript } from '../script-contract';

/** ConfigMap key (and file name in the Job's mount) of the runner script. */
export const RUNNER_KEY = 'runner.sh';
/**
 * ConfigMap key of the plan: one tab-separated line per migration, ascending version. When the
 * plan is too big for one ConfigMap entry, this is its first part (see {@link PLAN_PARTS_KEY}).
 */
export const PLAN_KEY = 'plan.tsv';
/**
 * ConfigMap key of the list of plan parts, one file name a line, in order: `plan.tsv`,
 * `plan-002.tsv`, … Present only when the plan has more than one part; the runner reads the
 * parts it names (it never lists its mount) and concatenates them.
 */
export const PLAN_PARTS_KEY = 'plan.parts';
/**
 * ConfigMap key of the list of migration files carried in parts, one `<key> <parts>` a line:
 * a runner's copy larger than one ConfigMap may hold is split into `<key>.part-001`, `-002`, …
 * (at most 999), which the runner joins and checks against the plan's sha256 of the whole copy.
 * Present only when some file is split.
 */
export const FILE_PARTS_KEY = 'files.parts';

/** ConfigMap key of part `index` (1-based) of a file carried in parts. */
export function filePartKey(key: string, index: number): string {
  return `${key}.part-${String(index).padStart(3, '0')}`;
}

/** Most parts a file may be carried in: the runner numbers them with three digits. */
export const MAX_FILE_PARTS = 999;

/** The session advisory lock key every runner takes: sha256('learnflow-migrations'), first 8 bytes, signed. */
export const ADVISORY_LOCK_KEY: bigint = createHash('sha256').update('learnflow-migrations').digest().readBigInt64BE(0);

/** Table where the runner records applied migrations (created by the first migrate run). */
export const APPLIED_MIGRATIONS_TABLE = 'public.applied_migrations';

/**
 * SQLSTATEs that end a migration for a reason a later try can overcome: lock_not_available
 * (lock_timeout on a busy table), deadlock_detected, serialization_failure. The migration was
 * rolled back (a no-transaction file is written to be re-run); the runner exits lockTimeout, which
 * the Job retries.
 */
export const TRANSIENT_SQLSTATES = ['55P03', '40P01', '40001'] as const;

/**
 * The contract of runner.sh (`sh runner.sh [migrate|status|rollback]`), rendered into the
 * script the migration Job runs.
 */
export const RUNNER = {
  body: path.join(__dirname, RUNNER_KEY),
  program: 'learnflow-migrate',
  exits: {
    ok: { code: 0, retried: false, meaning: 'done: migrated, rolled back, or status found no drift' },
    usage: { code: 1, retried: false, meaning: 'bad command, knob or plan: retrying cannot help; nothing changed' },
    lockTimeout: {
      code: 4,
      retried: true,
      meaning: 'a lock was not granted in time (the migration lock, or a table lock past lockTimeout) or a deadlock: what was being applied was rolled back; the Job retries',
    },
    migrationFailed: { code: 7, retried: false, meaning: 'a migration failed and was rolled back, or drift: the database, plan and files disagree' },
    connectionFailed: { code: 8, retried: true, meaning: 'the database was unreachable within the wait, refused the login, or the connection dropped' },
    stopped: { code: 143, retried: true, meaning: 'terminated (pod deleted): the running migration was cancelled and rolled back' },
  },
  knobs: {
    /** Directory with the plan and the SQL files. Default: the directory of runner.sh. */
    migrationsDir: { env: 'MIGRATIONS_DIR' },
    /** Seconds to wait for the database to accept connections, then exit 8; at least libpq's shortest connect timeout. */
    dbWaitSeconds: { env: 'MIGRATE_DB_WAIT_SECONDS', default: '300', rule: { kind: 'whole', unit: 'seconds', min: 2, max: 86400 } },
    /** Seconds to wait for the migration lock, then exit 4. */
    lockWaitSeconds: { env: 'MIGRATE_LOCK_WAIT_SECONDS', default: '120', rule: { kind: 'whole', unit: 'seconds', min: 1, max: 86400 } },
    /** PostgreSQL `statement_timeout` for every statement the runner sends. */
    statementTimeout: { env: 'MIGRATE_STATEMENT_TIMEOUT', default: '15min', rule: { kind: 'duration' } },
    /** PostgreSQL `lock_timeout` for every statement the runner sends. */
    lockTimeout: { env: 'MIGRATE_LOCK_TIMEOUT', default: '10s', rule: { kind: 'duration' } },
    /** rollback only, required: undo every applied migration above this plan version; 0 undoes all. */
    targetVersion: { env: 'MIGRATE_TARGET_VERSION' },
  },
  constants: {
    LOCK_KEY: ADVISORY_LOCK_KEY,
    // How pg_locks shows the key: classid, objid (objsubid 1).
    LOCK_CLASSID: ADVISORY_LOCK_KEY >> 32n,
    LOCK_OBJID: ADVISORY_LOCK_KEY & 0xffffffffn,
    TABLE: APPLIED_MIGRATIONS_TABLE,
    PLAN_KEY,
    PLAN_PARTS_KEY,
    FILE_PARTS_KEY,
    MAX_FILE_PARTS,
    TRANSIENT_SQLSTATES: TRANSIENT_SQLSTATES.join(' '),
  },
  includes: [path.join(__dirname, '..', 'tls-failures.sh')],
} as const satisfies ScriptContract;

export type RunnerKnob = keyof typeof RUNNER.knobs;

/** The runner script as the Job runs it. */
export function runnerScript(): string {
  return renderScript(RUNNER);
}

/**
 * What is wrong with the runner knobs a Job would be given, one line each, named `field`
 * (e.g. `migrations.statementTimeout`): the same rule the runner applies to its variables.
 */
export function runnerKnobProblems(values: Partial<Record<RunnerKnob, string | number | undefined>>, field: (knob: RunnerKnob) => string): string[] {
  return Object.entries(values).flatMap(([knob, value]) => {
    const rule = (RUNNER.knobs as Record<string, { rule?: Parameters<typeof knobProblem>[0] }>)[knob]?.rule;
    const problem = value === undefined || rule === undefined ? undefined : knobProblem(rule, String(value));
    return problem ? [`${field(knob as RunnerKnob)}: ${problem}`] : [];
  });
}
