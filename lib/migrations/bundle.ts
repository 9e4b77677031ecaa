import { CONFIGMAP_DATA_BUDGET, encodedSize, encodedTextSize } from './layout';
import { sha256Hex } from './files';
import { runForm } from './run-form';
import { PLAN_KEY, PLAN_PARTS_KEY, RUNNER_KEY, runnerScript } from './runner-contract';
import { Migration } from './types';
import { compareVersions } from './versions';

export { PLAN_KEY, PLAN_PARTS_KEY, RUNNER_KEY } from './runner-contract';

const byVersion = (a: Migration, b: Migration): number => compareVersions(a.version, b.version);

/**
 * plan.tsv: one line per migration in ascending version, tab-separated, no header:
 * `version name checksum tx|notx up_copy_sha256 down_copy_sha256`. `checksum` is the SHA-256 of
 * the up file as written, what applied_migrations records; the last two are those of the
 * runner's copies the Job mounts (run-form.ts), which the runner checks before it runs them.
 * The files' names follow from version and name (`version_name.up.sql`, `version_name.down.sql`,
 * as files.ts names every migration's keys).
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
    return `${m.version}\t${m.name}\t${m.up.sha256}\t${m.transactional ? 'tx' : 'notx'}\t${copySha(m.up)}\t${copySha(m.down)}\n`;
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

const copyShas = new WeakMap<Migration['up'], string>();
/** SHA-256 of the runner's copy of a file. */
function copySha(file: Migration['up']): string {
  let sha = copyShas.get(file);
  if (sha === undefined) {
    sha = sha256Hex(Buffer.from(runForm(file), 'utf8'));
    copyShas.set(file, sha);
  }
  return sha;
}

/**
 * The migration ConfigMaps' data: runner.sh as rendered from its contract, the plan (plan.tsv,
 * or its parts and their list) and the runner's copy of every up and down file under its key,
 * keys sorted so the output is deterministic.
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
    [m.up.key, runForm(m.up)],
    [m.down.key, runForm(m.down)],
  ]);
  const seen = new Set<string>();
  for (const [key] of files) {
    if (seen.has(key)) throw new Error(`${key}: two bundle entries share this key (each migration file needs its own name)`);
    seen.add(key);
  }
  const entries: [string, string][] = [[RUNNER_KEY, runnerScript()], ...planEntries(migrations, options.planPartBudget), ...files];
  return entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
