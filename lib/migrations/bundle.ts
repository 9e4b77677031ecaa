import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { CONFIGMAP_DATA_BUDGET, encodedSize, encodedTextSize } from './layout';
import { Migration } from './types';
import { compareVersions } from './versions';

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

/** The runner's exit codes (`sh runner.sh [migrate|status|rollback]`). */
export const EXIT = {
  /** Done: migrated, rolled back, or status found no drift. */
  ok: 0,
  /** Bad command, environment variable or plan: retrying cannot help. */
  usage: 1,
  /** Another runner held the migration lock for MIGRATE_LOCK_WAIT_SECONDS; nothing changed. */
  lockTimeout: 4,
  /** A migration failed (and was rolled back), or drift: files or database differ from the plan. */
  migrationFailed: 7,
  /** The database was unreachable for MIGRATE_DB_WAIT_SECONDS, refused the login, or the connection dropped. Safe to retry. */
  connectionFailed: 8,
} as const;

/**
 * Environment variables the runner reads besides libpq's (PGHOST, PGPORT, PGDATABASE, PGUSER,
 * PGPASSWORD, …). `default` is what runner.sh uses when the variable is unset or empty.
 */
export const RUNNER_ENV = {
  /** Directory with the plan and the SQL files. Default: the directory of runner.sh. */
  migrationsDir: { name: 'MIGRATIONS_DIR', default: undefined },
  /** Whole seconds to wait for the database to accept connections, then exit 8. */
  dbWaitSeconds: { name: 'MIGRATE_DB_WAIT_SECONDS', default: '300' },
  /** Whole seconds to wait for the migration lock, then exit 4. */
  lockWaitSeconds: { name: 'MIGRATE_LOCK_WAIT_SECONDS', default: '120' },
  /** PostgreSQL `statement_timeout` while migrating (a {@link POSTGRES_DURATION}). */
  statementTimeout: { name: 'MIGRATE_STATEMENT_TIMEOUT', default: '15min' },
  /** PostgreSQL `lock_timeout` while migrating (a {@link POSTGRES_DURATION}). */
  lockTimeout: { name: 'MIGRATE_LOCK_TIMEOUT', default: '10s' },
  /** rollback only, required: undo every applied migration above this plan version; 0 undoes all. */
  targetVersion: { name: 'MIGRATE_TARGET_VERSION', default: undefined },
} as const;

/** Durations the runner accepts for the timeouts: digits and an optional unit ms, s, min or h. */
export const POSTGRES_DURATION = /^[0-9]{1,9}(ms|s|min|h)?$/;

/** The session advisory lock key every runner takes: sha256('learnflow-migrations'), first 8 bytes, signed. */
export const ADVISORY_LOCK_KEY: bigint = createHash('sha256').update('learnflow-migrations').digest().readBigInt64BE(0);

/** Table where the runner records applied migrations (created by the first migrate run). */
export const APPLIED_MIGRATIONS_TABLE = 'public.applied_migrations';

const byVersion = (a: Migration, b: Migration): number => compareVersions(a.version, b.version);

/**
 * plan.tsv: one line per migration in ascending version, tab-separated, no header:
 * `version name up_sha256 down_sha256 tx|notx`. The files' names follow from version and name
 * (`version_name.up.sql`, `version_name.down.sql`, as files.ts names every migration's keys).
 */
export function renderPlan(migrations: readonly Migration[]): string {
  return planLines(migrations).join('');
}

function planLines(migrations: readonly Migration[]): string[] {
  return [...migrations].sort(byVersion).map((m) => {
    const base = `${m.version}_${m.name}`;
    if (m.up.key !== `${base}.up.sql` || m.down.key !== `${base}.down.sql`) {
      const [file, expected] = m.up.key !== `${base}.up.sql` ? [m.up, `${base}.up.sql`] : [m.down, `${base}.down.sql`];
      throw new Error(`${file.key}: a plan names files ${expected}; this migration's key differs`);
    }
    return `${m.version}\t${m.name}\t${m.up.sha256}\t${m.down.sha256}\t${m.transactional ? 'tx' : 'notx'}\n`;
  });
}

/**
 * The plan as ConfigMap entries: `plan.tsv` alone while it fits one ConfigMap; beyond that,
 * whole lines in parts `plan.tsv`, `plan-002.tsv`, … of at most `budget` bytes each (as
 * kubectl encodes them), listed in order under {@link PLAN_PARTS_KEY}.
 */
export function planEntries(migrations: readonly Migration[], budget = CONFIGMAP_DATA_BUDGET): [string, string][] {
  const partKey = (i: number) => (i === 0 ? PLAN_KEY : `plan-${String(i + 1).padStart(3, '0')}.tsv`);
  const parts: [string, string][] = [];
  let lines: string[] = [];
  let size = encodedSize(partKey(0), '');
  for (const line of planLines(migrations)) {
    // Encoded sizes add up line by line: JSON escapes character by character.
    const lineSize = encodedTextSize(line);
    if (lines.length > 0 && size + lineSize > budget) {
      parts.push([partKey(parts.length), lines.join('')]);
      lines = [];
      size = encodedSize(partKey(parts.length), '');
    }
    lines.push(line);
    size += lineSize;
  }
  parts.push([partKey(parts.length), lines.join('')]);
  if (parts.length === 1) return parts;
  return [[PLAN_PARTS_KEY, parts.map(([key]) => `${key}\n`).join('')], ...parts];
}

/** The runner script as stored next to this module. */
export function runnerScript(): string {
  return readFileSync(path.join(__dirname, RUNNER_KEY), 'utf8');
}

/**
 * The migration ConfigMaps' data: runner.sh, the plan (plan.tsv, or its parts and their list)
 * and every up and down file under its key, keys sorted so the output is deterministic.
 */
export function migrationBundle(migrations: readonly Migration[], options: BundleOptions = {}): Record<string, string> {
  return Object.fromEntries(bundleEntries(migrations, options));
}

export interface BundleOptions {
  /** Most bytes per plan part (see {@link planEntries}). @default CONFIGMAP_DATA_BUDGET */
  readonly planPartBudget?: number;
}

/** {@link migrationBundle} as `[key, content]` pairs in key order: thousands of keys need no object in between. */
export function bundleEntries(migrations: readonly Migration[], options: BundleOptions = {}): [string, string][] {
  const files = migrations.flatMap((m): [string, string][] => [
    [m.up.key, m.up.sql],
    [m.down.key, m.down.sql],
  ]);
  const seen = new Set<string>();
  for (const [key] of files) {
    if (seen.has(key)) throw new Error(`${key}: two bundle entries share this key (each migration file needs its own name)`);
    seen.add(key);
  }
  const entries: [string, string][] = [[RUNNER_KEY, runnerScript()], ...planEntries(migrations, options.planPartBudget), ...files];
  return entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
