import { CONFIGMAP_DATA_BUDGET, ConfigMapLayoutError, encodedSize, encodedTextSize, splitText } from './layout';
import { sha256Hex } from './files';
import { runForm } from './run-form';
import { FILE_PARTS_KEY, MAX_FILE_PARTS, PLAN_KEY, PLAN_PARTS_KEY, RUNNER_KEY, filePartKey, runnerScript } from './runner-contract';
import { Migration } from './types';
import { compareVersions } from './versions';

export { FILE_PARTS_KEY, PLAN_KEY, PLAN_PARTS_KEY, RUNNER_KEY } from './runner-contract';

const byVersion = (a: Migration, b: Migration): number => compareVersions(a.version, b.version);

/**
 * plan.tsv: one line per migration in ascending version, tab-separated, no header:
 * `version name checksum tx|notx up_copy_sha256 down_copy_sha256 yes|no`. `checksum` is the
 * SHA-256 of the up file as written, what applied_migrations records; the next two are those of
 * the runner's copies the Job mounts (run-form.ts), which the runner checks before it runs them;
 * the last says whether the down file undoes the up file (no: marked irreversible).
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
    return `${m.version}\t${m.name}\t${m.up.sha256}\t${m.transactional ? 'tx' : 'notx'}\t${copySha(m.up)}\t${copySha(m.down)}\t${m.reversible === false ? 'no' : 'yes'}\n`;
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
  /**
   * Most bytes of one ConfigMap entry (as kubectl encodes it): a runner's copy larger than that
   * is carried in parts. @default CONFIGMAP_DATA_BUDGET
   */
  readonly entryBudget?: number;
}

/** {@link migrationBundle} as `[key, content]` pairs in key order: thousands of keys need no object in between. */
export function bundleEntries(migrations: readonly Migration[], options: BundleOptions = {}): [string, string][] {
  const budget = options.entryBudget ?? CONFIGMAP_DATA_BUDGET;
  const files: [string, string][] = [];
  const split: string[] = [];
  const seen = new Set<string>();
  for (const file of migrations.flatMap((m) => [m.up, m.down])) {
    if (seen.has(file.key)) throw new Error(`${file.key}: two bundle entries share this key (each migration file needs its own name)`);
    seen.add(file.key);
    const copy = runForm(file);
    // No code unit encodes to more than six bytes: most files fit without measuring them here.
    if (6 * (copy.length + file.key.length) + 6 <= budget || encodedSize(file.key, copy) <= budget) {
      files.push([file.key, copy]);
      continue;
    }
    // The longest part key measures every part: all are as long.
    const parts = splitText(copy, budget - encodedSize(filePartKey(file.key, MAX_FILE_PARTS), ''));
    if (parts.length > MAX_FILE_PARTS) {
      throw new ConfigMapLayoutError(`${file.source}: ${parts.length} parts of ${budget} bytes, more than the ${MAX_FILE_PARTS} one file may be carried in; split it into several migrations`);
    }
    parts.forEach((part, i) => files.push([filePartKey(file.key, i + 1), part]));
    split.push(`${file.key} ${parts.length}\n`);
  }
  const entries: [string, string][] = [[RUNNER_KEY, runnerScript()], ...planEntries(migrations, options.planPartBudget), ...files];
  if (split.length > 0) entries.push([FILE_PARTS_KEY, split.join('')]);
  return entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
