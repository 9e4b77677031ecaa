import { hash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckedContent, Direction, checkContent } from './content';
import { RELEASED_FILE, parseReleased, releasedDrift } from './released';
import { SqlScan, SqlStatement, scanSql } from './sql-scanner';
import type { Migration, MigrationFile } from './types';
import { compareVersions } from './versions';

export { IRREVERSIBLE_MARKER, NO_TRANSACTION_HEADER } from './content';
export { scanSql } from './sql-scanner';
export type { SqlScan, SqlStatement } from './sql-scanner';

/**
 * Reading the `migrations/` folder into checked {@link Migration}s: the folder's naming rules
 * (also in `migrations/README.md`); what a file may hold is content.ts, how it splits into
 * statements sql-scanner.ts.
 * - `NNN_name.up.sql` + `NNN_name.down.sql`, or a folder `NNN_name/` holding `up.sql` + `down.sql`;
 *   both layouts may be mixed, a version is used once across both;
 * - `README.md`, `.gitkeep` and `released.tsv` (released.ts) may sit beside them; nothing else is ignored;
 * - regular files and folders only: a symbolic link is followed only when it stays inside the
 *   folder and leads to a regular file (the synth embeds what it reads into the Job).
 *
 * {@link parseMigrations} is the pure core (an in-memory listing in, migrations and problems
 * out); {@link loadMigrations} reads a directory and throws {@link MigrationFileError}.
 */

/** Raised with every problem found, each as `file: what is wrong (what is allowed)`. */
export class MigrationFileError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`migration files: ${problems.length} problem(s)\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'MigrationFileError';
  }
}

/** One file of an in-memory listing of the migrations folder. */
export interface MigrationSourceEntry {
  /** Path inside the migrations folder, `/`-separated: `001_a.up.sql` or `001_a/up.sql`. */
  readonly path: string;
  /** The file's bytes, exactly as stored. */
  readonly bytes: Uint8Array;
}

export interface ParseMigrationsOptions {
  /**
   * The migrations folder relative to the project root; prefixes every `source` and message.
   * Empty means the root itself.
   * @default 'migrations'
   */
  readonly directory?: string;
}

export interface ParsedMigrations {
  /**
   * Every migration whose up and down file both exist and whose version and name are valid,
   * sorted by version number. Only to be used when `problems` is empty.
   */
  readonly migrations: Migration[];
  /** Every problem found, each as `file: what is wrong (what is allowed)`, grouped by file. */
  readonly problems: string[];
}

export interface LoadMigrationsOptions {
  /**
   * Project root: a relative `dir` is resolved against it, and `source` paths and messages are
   * relative to it.
   * @default process.cwd()
   */
  readonly root?: string;
}

/**
 * Reads and checks the migrations in `dir`.
 * @throws MigrationFileError listing every problem when anything is wrong.
 */
export function loadMigrations(dir: string, options: LoadMigrationsOptions = {}): Migration[] {
  const root = path.resolve(options.root ?? process.cwd());
  const absolute = path.resolve(root, dir);
  const directory = toPosix(path.relative(root, absolute));
  const shown = directory === '' ? '.' : directory;

  let stat: fs.Stats;
  try {
    stat = fs.statSync(absolute);
  } catch {
    throw new MigrationFileError([`${shown}: folder not found (a folder of NNN_name.up.sql and NNN_name.down.sql files)`]);
  }
  if (!stat.isDirectory()) {
    throw new MigrationFileError([`${shown}: not a folder (a folder of NNN_name.up.sql and NNN_name.down.sql files)`]);
  }

  const entries: MigrationSourceEntry[] = [];
  const problems: Problem[] = [];
  const realRoot = fs.realpathSync(absolute);
  const walk = (absoluteDir: string, relativeDir: string): number => {
    let files = 0;
    const listing = fs.readdirSync(absoluteDir, { withFileTypes: true }).sort((a, b) => compareStrings(a.name, b.name));
    for (const dirent of listing) {
      const name = dirent.name;
      const relative = relativeDir === '' ? name : `${relativeDir}/${name}`;
      const full = path.join(absoluteDir, name);
      const shownPath = joinSource(directory, relative);
      // The listing already knows plain files and folders; only links need a closer look.
      let entryStat: Pick<fs.Stats, 'isFile' | 'isDirectory'> = dirent;
      if (dirent.isSymbolicLink()) {
        const link = checkLink(full, realRoot);
        if (typeof link === 'string') {
          problems.push({ file: shownPath, line: 0, text: `${shownPath}: ${link}` });
          continue;
        }
        entryStat = link;
      } else if (!dirent.isFile() && !dirent.isDirectory()) {
        problems.push({ file: shownPath, line: 0, text: `${shownPath}: not a regular file (regular files and folders)` });
        continue;
      }
      if (entryStat.isDirectory()) {
        const inside = walk(full, relative);
        if (inside === 0) {
          problems.push({ file: shownPath, line: 0, text: `${shownPath}: empty folder (a migration folder NNN_name/ holds up.sql and down.sql)` });
        }
        files += inside;
      } else if (entryStat.isFile()) {
        entries.push({ path: relative, bytes: fs.readFileSync(full) });
        files += 1;
      } else {
        problems.push({ file: shownPath, line: 0, text: `${shownPath}: not a regular file (regular files and folders)` });
      }
    }
    return files;
  };
  walk(absolute, '');

  const parsed = parseEntries(entries, directory);
  const all = sortProblems([...problems, ...parsed.problems]);
  if (all.length > 0) throw new MigrationFileError(all);
  return parsed.migrations;
}

/**
 * Checks an in-memory listing of the migrations folder. Pure: no disk, no clock.
 * Returns every problem at once rather than throwing.
 */
export function parseMigrations(entries: readonly MigrationSourceEntry[], options: ParseMigrationsOptions = {}): ParsedMigrations {
  const parsed = parseEntries(entries, trimSlashes(options.directory ?? 'migrations'));
  return { migrations: parsed.migrations, problems: sortProblems(parsed.problems) };
}

/**
 * The statements of a migration file as the runner sends them: the scan the checks already
 * made for files this module read, a new one for any other.
 */
export function statementsOf(file: MigrationFile): readonly SqlStatement[] {
  return scanOf(file).statements;
}

/** The whole scan of a migration file (statements, comments, backslash lines), made once. */
export function scanOf(file: MigrationFile): SqlScan {
  let scan = scanned.get(file);
  if (scan === undefined) {
    scan = scanSql(file.sql);
    scanned.set(file, scan);
  }
  return scan;
}

const scanned = new WeakMap<MigrationFile, SqlScan>();

/** Lowercase hex SHA-256 of `bytes`. */
export function sha256Hex(bytes: Uint8Array): string {
  return hash('sha256', bytes, 'hex');
}

// ---------------------------------------------------------------------------------------------
// Listing: names, layouts, pairs, versions

interface Problem {
  /** Path the problem is about, for grouping. */
  readonly file: string;
  /** 1-based line, 0 for the whole file. */
  readonly line: number;
  readonly text: string;
}

/** One migration as found in the listing, in either layout. */
interface Unit {
  readonly layout: 'file' | 'folder';
  readonly version: string;
  readonly name: string;
  up?: MigrationSourceEntry;
  down?: MigrationSourceEntry;
}

/** At least 3 digits; at most 18 so that the runner's shell arithmetic can compare versions. */
const VERSION = /^[0-9]{3,18}$/;
const VERSION_RULE = 'digits only, 3 to 18 of them, e.g. 001';
const DIGITS = /^[0-9]+$/;
const NAME = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;
const FLAT_FILE = /^([^_]+)_(.+)\.(up|down)\.sql$/;
const FOLDER = /^([^_]+)_(.+)$/;
/** Beside migrations: notes, an empty folder's placeholder, and the list of released migrations (released.ts). */
const ALLOWED_EXTRAS = new Set(['README.md', '.gitkeep', RELEASED_FILE]);
const STRICT_TEXT = new TextDecoder('utf-8');

function parseEntries(entries: readonly MigrationSourceEntry[], directory: string): { migrations: Migration[]; problems: Problem[] } {
  const problems: Problem[] = [];
  const report = (file: string, text: string, line = 0) => problems.push({ file, line, text: `${line > 0 ? `${file}:${line}` : file}: ${text}` });
  const source = (relative: string) => joinSource(directory, relative);

  const units = new Map<string, Unit>();
  const unitFor = (layout: Unit['layout'], version: string, name: string): Unit => {
    const id = `${layout}/${version}_${name}`;
    let unit = units.get(id);
    if (!unit) {
      unit = { layout, version, name };
      units.set(id, unit);
    }
    return unit;
  };
  const badFolders = new Set<string>();

  const sorted = [...entries].sort((a, b) => compareStrings(a.path, b.path));
  for (const entry of sorted) {
    const parts = entry.path.split('/');
    const file = source(entry.path);
    if (parts.length === 1) {
      const name = parts[0];
      if (ALLOWED_EXTRAS.has(name)) continue;
      const match = FLAT_FILE.exec(name);
      if (name.startsWith('.')) {
        report(file, 'unexpected hidden file (only .gitkeep among hidden files)');
      } else if (!match) {
        report(file, 'unexpected file (NNN_name.up.sql, NNN_name.down.sql, NNN_name/ folders, README.md, .gitkeep and released.tsv)');
      } else {
        const direction = match[3] as Direction;
        const unit = unitFor('file', match[1], match[2]);
        unit[direction] = entry;
      }
    } else if (parts.length === 2) {
      const [folderName, name] = parts;
      const folder = source(folderName);
      const match = FOLDER.exec(folderName);
      if (!match) {
        if (!badFolders.has(folderName)) {
          badFolders.add(folderName);
          report(folder, 'unexpected folder (migration folders are named NNN_name and hold up.sql and down.sql)');
        }
      } else if (name !== 'up.sql' && name !== 'down.sql') {
        report(file, 'unexpected file in a migration folder (only up.sql and down.sql)');
      } else {
        const direction = name === 'up.sql' ? 'up' : 'down';
        const unit = unitFor('folder', match[1], match[2]);
        unit[direction] = entry;
      }
    } else {
      report(file, 'nested too deep (a migration folder NNN_name/ holds only up.sql and down.sql)');
    }
  }

  const pathOf = (unit: Unit, direction: Direction) =>
    unit.layout === 'file' ? source(`${unit.version}_${unit.name}.${direction}.sql`) : source(`${unit.version}_${unit.name}/${direction}.sql`);
  /** Where problems about a whole migration are reported: its up file, else its down file. */
  const labelOf = (unit: Unit) => pathOf(unit, unit.up ? 'up' : 'down');

  const migrations: { migration: Migration; label: string }[] = [];
  const byNumber = new Map<bigint, Unit[]>();
  for (const unit of units.values()) {
    const label = labelOf(unit);
    let valid = true;
    if (!DIGITS.test(unit.version)) {
      report(label, `version '${unit.version}' is not a number (${VERSION_RULE})`);
      valid = false;
    } else {
      if (!VERSION.test(unit.version)) {
        report(label, `version '${unit.version}' is too ${unit.version.length < 3 ? 'short' : 'long'} (${VERSION_RULE})`);
        valid = false;
      }
      const number = BigInt(unit.version);
      byNumber.set(number, [...(byNumber.get(number) ?? []), unit]);
    }
    if (!NAME.test(unit.name)) {
      report(label, `name '${unit.name}' is not lowercase words (a-z and 0-9 words joined by '_', starting with a letter: [a-z][a-z0-9]*(_[a-z0-9]+)*)`);
      valid = false;
    }
    for (const [missing, present] of [['up', 'down'], ['down', 'up']] as const) {
      if (!unit[missing] && unit[present]) {
        report(pathOf(unit, present), `has no matching ${missing} file (every migration has both: add ${pathOf(unit, missing)})`);
      }
    }

    const files = {} as Record<Direction, { file: MigrationFile; transactional: boolean; reversible: boolean }>;
    for (const direction of ['up', 'down'] as const) {
      const entry = unit[direction];
      if (!entry) continue;
      const file = source(entry.path);
      const checked: CheckedContent = checkContent(entry.bytes, direction, (text, line) => report(file, text, line));
      const migrationFile: MigrationFile = { key: `${unit.version}_${unit.name}.${direction}.sql`, source: file, sql: checked.sql, sha256: sha256Hex(entry.bytes) };
      scanned.set(migrationFile, checked.scan);
      files[direction] = { file: migrationFile, transactional: checked.transactional, reversible: checked.reversible };
    }
    if (valid && files.up && files.down) {
      migrations.push({
        migration: {
          version: unit.version, name: unit.name, up: files.up.file, down: files.down.file,
          transactional: files.up.transactional, reversible: files.down.reversible,
        },
        label,
      });
    }
  }

  for (const group of byNumber.values()) {
    if (group.length < 2) continue;
    const labelled = group
      .map((unit) => ({ unit, label: labelOf(unit) }))
      .sort((a, b) => compareStrings(a.label, b.label));
    const [first, ...rest] = labelled;
    for (const { unit, label } of rest) {
      report(label, `version '${unit.version}' is already used by ${first.label} (each version number once, across NNN_name.*.sql files and NNN_name/ folders)`);
    }
  }

  migrations.sort((a, b) => compareVersions(a.migration.version, b.migration.version) || compareStrings(a.label, b.label));
  const sortedMigrations = migrations.map((m) => m.migration);
  const released = entries.find((e) => e.path === RELEASED_FILE);
  if (released) {
    const shown = source(RELEASED_FILE);
    const baseline = parseReleased(STRICT_TEXT.decode(released.bytes), shown);
    for (const text of [...baseline.problems, ...releasedDrift(baseline.released, sortedMigrations, directory || '.')]) {
      const file = /^[^:]+/.exec(text)![0];
      problems.push({ file, line: 0, text });
    }
  }
  return { migrations: sortedMigrations, problems };
}

// ---------------------------------------------------------------------------------------------
// Helpers

/**
 * A link inside the migrations folder: its target's stat when it resolves to a regular file
 * inside the folder, else what is wrong with it. The synth embeds what it reads into the Job,
 * so a link must not carry a file from elsewhere (or a whole folder) into it.
 */
function checkLink(link: string, realRoot: string): fs.Stats | string {
  let target: string;
  let stat: fs.Stats;
  try {
    target = fs.realpathSync(link);
    stat = fs.statSync(target);
  } catch (error) {
    return `symbolic link cannot be followed: ${(error as NodeJS.ErrnoException).code ?? String(error)} (regular files, or links to them inside the folder)`;
  }
  const inside = path.relative(realRoot, target);
  if (inside === '' || inside.startsWith('..') || path.isAbsolute(inside)) {
    return `symbolic link leaves the migrations folder (to ${target}); the synth embeds what it reads into the Job, so copy the file in instead`;
  }
  if (!stat.isFile()) return `symbolic link to a folder (regular files, or links to them inside the folder)`;
  return stat;
}

function joinSource(directory: string, relative: string): string {
  return directory === '' || directory === '.' ? relative : `${directory}/${relative}`;
}

function trimSlashes(directory: string): string {
  return directory.replace(/\\/g, '/').replace(/^\.\/+/, '').replace(/\/+$/, '');
}

function toPosix(p: string): string {
  return p.split(path.sep).join('/');
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sortProblems(problems: readonly Problem[]): string[] {
  return [...problems]
    .sort((a, b) => compareStrings(a.file, b.file) || a.line - b.line)
    .map((p) => p.text);
}
