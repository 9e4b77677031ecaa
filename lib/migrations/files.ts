import { hash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Migration, MigrationFile } from './types';
import { compareVersions } from './versions';

/**
 * Reading the `migrations/` folder into checked {@link Migration}s.
 *
 * The contract (also in `migrations/README.md`):
 * - `NNN_name.up.sql` + `NNN_name.down.sql`, or a folder `NNN_name/` holding `up.sql` + `down.sql`;
 *   both layouts may be mixed, a version is used once across both;
 * - `README.md` and `.gitkeep` may sit beside them; nothing else is ignored;
 * - files are UTF-8 without BOM, LF line endings, plain SQL (no psql backslash commands) and
 *   never control transactions themselves: the runner wraps each file in one;
 * - an up file whose first line is exactly {@link NO_TRANSACTION_HEADER} runs outside a
 *   transaction and must be safe to re-run.
 *
 * {@link parseMigrations} is the pure core (an in-memory listing in, migrations and problems
 * out); {@link loadMigrations} reads a directory and throws {@link MigrationFileError}.
 */

/** First line of an up file that must run outside a transaction (e.g. CREATE INDEX CONCURRENTLY). */
export const NO_TRANSACTION_HEADER = '-- learnflow:no-transaction';

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
  const walk = (absoluteDir: string, relativeDir: string): number => {
    let files = 0;
    const listing = fs.readdirSync(absoluteDir, { withFileTypes: true }).sort((a, b) => compareStrings(a.name, b.name));
    for (const dirent of listing) {
      const name = dirent.name;
      const relative = relativeDir === '' ? name : `${relativeDir}/${name}`;
      const full = path.join(absoluteDir, name);
      const shownPath = joinSource(directory, relative);
      // The listing already knows plain files and folders; only links (followed) need a stat.
      let entryStat: Pick<fs.Stats, 'isFile' | 'isDirectory'> = dirent;
      if (!dirent.isFile() && !dirent.isDirectory()) {
        try {
          entryStat = fs.statSync(full);
        } catch (error) {
          problems.push({ file: shownPath, line: 0, text: `${shownPath}: cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)} (regular files and folders)` });
          continue;
        }
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
 * The statements of a migration file as psql would send them: the scan the checks already
 * made for files this module read, a new one for any other.
 */
export function statementsOf(file: MigrationFile): readonly SqlStatement[] {
  return scanned.get(file) ?? scanSql(file.sql).statements;
}

const scanned = new WeakMap<MigrationFile, readonly SqlStatement[]>();

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

type Direction = 'up' | 'down';

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
const ALLOWED_EXTRAS = new Set(['README.md', '.gitkeep']);

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
        report(file, 'unexpected file (NNN_name.up.sql, NNN_name.down.sql, NNN_name/ folders, README.md and .gitkeep)');
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

    const files = {} as Record<Direction, { file: MigrationFile; transactional: boolean }>;
    for (const direction of ['up', 'down'] as const) {
      const entry = unit[direction];
      if (!entry) continue;
      const file = source(entry.path);
      const checked = checkContent(entry.bytes, direction, (text, line) => report(file, text, line));
      const migrationFile: MigrationFile = { key: `${unit.version}_${unit.name}.${direction}.sql`, source: file, sql: checked.sql, sha256: sha256Hex(entry.bytes) };
      scanned.set(migrationFile, checked.statements);
      files[direction] = { file: migrationFile, transactional: checked.transactional };
    }
    if (valid && files.up && files.down) {
      migrations.push({
        migration: { version: unit.version, name: unit.name, up: files.up.file, down: files.down.file, transactional: files.up.transactional },
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
  return { migrations: migrations.map((m) => m.migration), problems };
}

// ---------------------------------------------------------------------------------------------
// Content: encoding, line endings, directives, statements

const BOM = [0xef, 0xbb, 0xbf];
const DIRECTIVE = /^--\s*learnflow:/i;

/**
 * Statements that open, end or split a transaction, by first keyword, with the word that must
 * follow when the keyword alone is ambiguous (`PREPARE name AS …` is fine). The runner owns
 * transactions.
 */
const TRANSACTION_CONTROL = new Map<string, string | undefined>([
  ['BEGIN', undefined],
  ['START', 'TRANSACTION'],
  ['COMMIT', undefined],
  ['END', undefined],
  ['ROLLBACK', undefined],
  ['ABORT', undefined],
  ['SAVEPOINT', undefined],
  ['RELEASE', undefined],
  ['PREPARE', 'TRANSACTION'],
]);

/** CREATE statements whose objects support IF NOT EXISTS, checked in no-transaction files. */
const CREATE_IF_NOT_EXISTS = new Set(['INDEX', 'TABLE', 'SCHEMA', 'SEQUENCE', 'EXTENSION']);
const CREATE_MODIFIERS = new Set(['UNIQUE', 'GLOBAL', 'LOCAL', 'TEMP', 'TEMPORARY', 'UNLOGGED']);
const TWO_WORD_OBJECTS = new Set(['MATERIALIZED', 'FOREIGN', 'EVENT', 'TEXT', 'ACCESS', 'USER', 'OPERATOR']);

interface CheckedContent {
  readonly sql: string;
  readonly transactional: boolean;
  readonly statements: readonly SqlStatement[];
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const LENIENT_UTF8 = new TextDecoder('utf-8', { ignoreBOM: true });

function checkContent(bytes: Uint8Array, direction: Direction, report: (text: string, line?: number) => void): CheckedContent {
  const hasBom = bytes.length >= 3 && BOM.every((b, i) => bytes[i] === b);
  if (hasBom) report('starts with a byte order mark (UTF-8 without BOM)');

  let sql: string;
  try {
    sql = STRICT_UTF8.decode(bytes);
  } catch {
    report('is not valid UTF-8 (UTF-8 text)');
    sql = LENIENT_UTF8.decode(bytes);
  }
  const text = hasBom ? sql.slice(1) : sql;

  const cr = text.indexOf('\r');
  if (cr >= 0) {
    const kind = text[cr + 1] === '\n' ? 'CRLF' : 'CR';
    report(`${kind} line ending (LF line endings only)`, lineLocator(text)(cr));
  }

  const scan = scanSql(text);
  for (const problem of scan.unterminated) report(`${problem.message} (close every quote, comment and dollar quote)`, problem.line);
  for (const meta of scan.metaCommands) {
    report(`psql meta-command ${meta.command} (plain SQL only; backslash commands are not run)`, meta.line);
  }
  if (scan.statements.length === 0) {
    report('no SQL statements (at least one statement; whitespace and comments alone are not a migration)');
  }

  let transactional = true;
  for (const comment of scan.lineComments) {
    if (!DIRECTIVE.test(comment.text)) continue;
    if (comment.text !== NO_TRANSACTION_HEADER) {
      report(`unknown directive '${comment.text}' (only '${NO_TRANSACTION_HEADER}', as the first line of an up file)`, comment.line);
    } else if (direction === 'down') {
      report(`'${NO_TRANSACTION_HEADER}' in a down file (only as the first line of an up file; down files always run in a transaction)`, comment.line);
    } else if (comment.line !== 1) {
      report(`'${NO_TRANSACTION_HEADER}' below the first line (only as the first line of an up file)`, comment.line);
    } else {
      transactional = false;
    }
  }

  for (const statement of scan.statements) {
    const words = statement.words;
    const control = transactionControl(statement);
    if (control) {
      report(`transaction control statement ${control} (none: the runner wraps each file in a transaction, or runs it in autocommit under '${NO_TRANSACTION_HEADER}')`, statement.line);
    }
    const outside = needsNoTransaction(statement);
    if (outside && transactional) {
      report(
        direction === 'up'
          ? `${outside} cannot run inside a transaction (start the up file with '${NO_TRANSACTION_HEADER}')`
          : `${outside} cannot run inside a transaction (down files always run in one; use the form without CONCURRENTLY)`,
        statement.line,
      );
    }
    if (!transactional && statement.keyword === 'CREATE') {
      const object = words.slice(1).find((w) => !CREATE_MODIFIERS.has(w) && w !== 'CONCURRENTLY');
      if (object && CREATE_IF_NOT_EXISTS.has(object) && !containsRun(words, ['IF', 'NOT', 'EXISTS'])) {
        report(`CREATE ${object} without IF NOT EXISTS in a no-transaction file (no-transaction files must be safe to re-run: CREATE ${object} IF NOT EXISTS)`, statement.line);
      }
    }
    if (!transactional && statement.keyword === 'DROP' && words[1] !== 'OWNED' && !containsRun(words, ['IF', 'EXISTS'])) {
      const object = TWO_WORD_OBJECTS.has(words[1] ?? '') ? words.slice(1, 3).join(' ') : (words[1] ?? '');
      report(`DROP ${object} without IF EXISTS in a no-transaction file (no-transaction files must be safe to re-run: DROP ${object} IF EXISTS)`, statement.line);
    }
  }

  return { sql, transactional, statements: scan.statements };
}

function transactionControl(statement: SqlStatement): string | undefined {
  const keyword = statement.keyword;
  if (keyword === undefined || !TRANSACTION_CONTROL.has(keyword)) return undefined;
  const next = TRANSACTION_CONTROL.get(keyword);
  if (next === undefined) return keyword;
  return statement.words[1] === next ? `${keyword} ${next}` : undefined;
}

/** Describes a statement PostgreSQL refuses inside a transaction block, if it is one. */
function needsNoTransaction(statement: SqlStatement): string | undefined {
  const [first, second] = statement.words;
  if (statement.keyword === undefined) return undefined;
  if (first === 'VACUUM') return 'VACUUM';
  if (first === 'ALTER' && second === 'SYSTEM') return 'ALTER SYSTEM';
  if ((first === 'CREATE' || first === 'DROP') && (second === 'DATABASE' || second === 'TABLESPACE')) return `${first} ${second}`;
  if (first === 'REINDEX' && (second === 'DATABASE' || second === 'SYSTEM')) return `REINDEX ${second}`;
  if (first === 'CREATE' || first === 'DROP' || first === 'REINDEX' || first === 'ALTER') {
    const at = statement.words.indexOf('CONCURRENTLY');
    if (at > 0) return at <= 3 ? statement.words.slice(0, at + 1).join(' ') : `${first} … CONCURRENTLY`;
  }
  return undefined;
}

function containsRun(words: readonly string[], run: readonly string[]): boolean {
  for (let i = 0; i + run.length <= words.length; i++) {
    if (run.every((w, j) => words[i + j] === w)) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// SQL lexer: just enough of psql's to split statements the way psql sends them

/** One statement as psql would send it to the server. */
export interface SqlStatement {
  /** 1-based line of the statement's first token. */
  readonly line: number;
  /** The statement's first token, upper-cased, when it is a bare word (`BEGIN`, `CREATE`). */
  readonly keyword: string | undefined;
  /** Bare words (keywords and unquoted identifiers) outside parentheses, upper-cased, in order. */
  readonly words: readonly string[];
  /** Source text from the first token up to, not including, the terminating `;`. */
  readonly text: string;
}

export interface SqlScan {
  readonly statements: readonly SqlStatement[];
  /** `--` comments outside strings and bodies, e.g. the no-transaction header; trailing CR removed. */
  readonly lineComments: readonly { readonly line: number; readonly text: string }[];
  /** Backslash commands outside strings and bodies, e.g. `\i`, `\set`, `\gset`. */
  readonly metaCommands: readonly { readonly line: number; readonly command: string }[];
  /** Strings, quoted identifiers, dollar quotes or block comments never closed. */
  readonly unterminated: readonly { readonly line: number; readonly message: string }[];
}

const IDENT_START = /[A-Za-z_\u0080-\uffff]/;
// Sticky patterns: each consumes a whole token at lastIndex, faster than testing character by character.
const WORD = /[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*/y;
const NUMBER = /[0-9][0-9A-Za-z_.]*/y;
const DOLLAR_TAG = /\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y;
const WHITESPACE = new Set([' ', '\t', '\n', '\r', '\f', '\v']);

/**
 * Splits SQL into statements the way psql does: `;` ends a statement outside comments (`--`,
 * nested `/* *\/`), strings (`'…'`, `E'…'` with backslash escapes, `U&'…'`), quoted identifiers,
 * dollar-quoted bodies (`$$…$$`, `$tag$…$tag$`), parentheses, and the `BEGIN ATOMIC … END` body of
 * `CREATE [OR REPLACE] FUNCTION|PROCEDURE`.
 */
export function scanSql(sql: string): SqlScan {
  const statements: SqlStatement[] = [];
  const lineComments: { line: number; text: string }[] = [];
  const metaCommands: { line: number; command: string }[] = [];
  const unterminated: { line: number; message: string }[] = [];
  const lineAt = lineLocator(sql);
  const n = sql.length;

  let start = -1;
  let keyword: string | undefined;
  let words: string[] = [];
  let parenDepth = 0;
  let beginDepth = 0;
  const finish = (end: number) => {
    if (start >= 0) {
      const text = sql.slice(start, end).trimEnd();
      statements.push({ line: lineAt(start), keyword, words, text });
    }
    start = -1;
    keyword = undefined;
    words = [];
    parenDepth = 0;
    beginDepth = 0;
  };
  /** Returns the index after a quoted token opening at `open`. */
  const quoted = (open: number, backslashEscapes: boolean): number => {
    const quote = sql[open];
    for (let j = open + 1; j < n; j++) {
      const c = sql[j];
      if (backslashEscapes && c === '\\') {
        j++;
      } else if (c === quote) {
        if (sql[j + 1] !== quote) return j + 1;
        j++;
      }
    }
    unterminated.push({ line: lineAt(open), message: quote === '"' ? 'unterminated quoted identifier' : 'unterminated string literal' });
    return n;
  };
  /** psql keeps `;` inside the BEGIN ATOMIC body of CREATE FUNCTION/PROCEDURE. */
  const routine = () =>
    words[0] === 'CREATE' &&
    (words[1] === 'FUNCTION' || words[1] === 'PROCEDURE' ||
      (words[1] === 'OR' && words[2] === 'REPLACE' && (words[3] === 'FUNCTION' || words[3] === 'PROCEDURE')));

  let i = 0;
  while (i < n) {
    const c = sql[i];
    const next = sql[i + 1];
    if (WHITESPACE.has(c)) {
      while (i < n && WHITESPACE.has(sql[i])) i++;
    } else if (c === '-' && next === '-') {
      const eol = sql.indexOf('\n', i);
      const end = eol < 0 ? n : eol;
      lineComments.push({ line: lineAt(i), text: sql.slice(i, end).replace(/\r$/, '') });
      i = end;
    } else if (c === '/' && next === '*') {
      let depth = 1;
      let j = i + 2;
      while (j < n && depth > 0) {
        if (sql[j] === '/' && sql[j + 1] === '*') { depth++; j += 2; }
        else if (sql[j] === '*' && sql[j + 1] === '/') { depth--; j += 2; }
        else j++;
      }
      if (depth > 0) unterminated.push({ line: lineAt(i), message: 'unterminated /* comment' });
      i = j;
    } else if (c === '\\') {
      const command = /\\[^\s\\]*/y;
      command.lastIndex = i;
      metaCommands.push({ line: lineAt(i), command: command.exec(sql)![0].slice(0, 40) });
      const eol = sql.indexOf('\n', i);
      i = eol < 0 ? n : eol;
    } else if (c === ';') {
      if (parenDepth === 0 && beginDepth === 0) finish(i);
      i++;
    } else {
      if (start < 0) start = i;
      if (c === "'" || c === '"') {
        i = quoted(i, false);
      } else if (c === '$') {
        DOLLAR_TAG.lastIndex = i;
        const tag = DOLLAR_TAG.exec(sql)?.[0];
        if (tag === undefined) {
          i++;
        } else {
          const close = sql.indexOf(tag, i + tag.length);
          if (close < 0) unterminated.push({ line: lineAt(i), message: `unterminated dollar-quoted string ${tag}` });
          i = close < 0 ? n : close + tag.length;
        }
      } else if (IDENT_START.test(c)) {
        WORD.lastIndex = i;
        WORD.test(sql);
        const j = WORD.lastIndex;
        const after = sql[j];
        const letter = j === i + 1 ? c.toUpperCase() : '';
        if (after === "'" && (letter === 'E' || letter === 'B' || letter === 'X' || letter === 'N')) {
          i = quoted(j, letter === 'E');
        } else if (letter === 'U' && after === '&' && (sql[j + 1] === "'" || sql[j + 1] === '"')) {
          i = quoted(j + 1, false);
        } else {
          // Words inside parentheses (column lists, VALUES rows) are neither keywords nor kept.
          if (start === i || parenDepth === 0) {
            const word = sql.slice(i, j).toUpperCase();
            if (start === i) keyword = word;
            if (parenDepth === 0) {
              words.push(word);
              if (routine()) {
                if (word === 'BEGIN') beginDepth++;
                else if (word === 'CASE' && beginDepth > 0) beginDepth++;
                else if (word === 'END' && beginDepth > 0) beginDepth--;
              }
            }
          }
          i = j;
        }
      } else if (c >= '0' && c <= '9') {
        NUMBER.lastIndex = i;
        NUMBER.test(sql);
        i = NUMBER.lastIndex;
      } else {
        if (c === '(' || c === '[') parenDepth++;
        else if ((c === ')' || c === ']') && parenDepth > 0) parenDepth--;
        i++;
      }
    }
  }
  finish(n);
  return { statements, lineComments, metaCommands, unterminated };
}

// ---------------------------------------------------------------------------------------------
// Helpers

function lineLocator(text: string): (offset: number) => number {
  const starts = [0];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return (offset) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
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
