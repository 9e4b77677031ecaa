import { SqlScan, SqlStatement, lineLocator, scanSql } from './sql-scanner';

/**
 * The rules for what one migration file may hold: UTF-8 text without BOM and with LF line
 * endings, no control characters, plain SQL statements (no psql backslash commands, no
 * transaction control, nothing that changes how PostgreSQL reads the statements after it), and
 * the no-transaction header with its re-run rules. The folder's naming rules are in files.ts.
 */

/** First line of an up file that must run outside a transaction (e.g. CREATE INDEX CONCURRENTLY). */
export const NO_TRANSACTION_HEADER = '-- learnflow:no-transaction';

/**
 * First line of a down file that cannot undo its up file (dropped data, a lossy type change),
 * followed by the reason: `-- learnflow:irreversible the dropped column's data is gone`. Such a
 * down file holds no statements, and the runner's rollback refuses to pass it.
 */
export const IRREVERSIBLE_MARKER = '-- learnflow:irreversible';

export type Direction = 'up' | 'down';

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

export interface CheckedContent {
  readonly sql: string;
  readonly transactional: boolean;
  /** False for a down file that starts with {@link IRREVERSIBLE_MARKER}. */
  readonly reversible: boolean;
  readonly scan: SqlScan;
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const LENIENT_UTF8 = new TextDecoder('utf-8', { ignoreBOM: true });

/** Checks one file's bytes; `report` receives each problem with its line (none for the whole file). */
export function checkContent(bytes: Uint8Array, direction: Direction, report: (text: string, line?: number) => void): CheckedContent {
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

  const control = CONTROL.exec(text);
  if (control) {
    const code = control[0].charCodeAt(0);
    report(`control character U+${code.toString(16).toUpperCase().padStart(4, '0')}${code === 0 ? ' (NUL)' : ''} (none besides tab and line feed: write it as an escape, e.g. E'\\x${code.toString(16).padStart(2, '0')}' or chr(${code}))`, lineLocator(text)(control.index));
  }

  const scan = scanSql(text);
  for (const problem of scan.unterminated) report(`${problem.message} (close every quote, comment and dollar quote)`, problem.line);
  for (const meta of scan.metaCommands) {
    if (meta.dumpRestriction) continue;
    report(`psql meta-command ${meta.command} (plain SQL only; backslash commands are not run)`, meta.line);
  }
  for (const problem of scan.copyProblems) report(problem.message, problem.line);

  let transactional = true;
  let reversible = true;
  for (const comment of scan.lineComments) {
    if (!DIRECTIVE.test(comment.text)) continue;
    if (comment.text.startsWith(`${IRREVERSIBLE_MARKER} `) || comment.text === IRREVERSIBLE_MARKER) {
      const reason = comment.text.slice(IRREVERSIBLE_MARKER.length).trim();
      if (direction === 'up') {
        report(`'${IRREVERSIBLE_MARKER}' in an up file (only as the first line of a down file that cannot undo its up file)`, comment.line);
      } else if (comment.line !== 1) {
        report(`'${IRREVERSIBLE_MARKER}' below the first line (only as the first line of the down file)`, comment.line);
      } else {
        if (reason === '') report(`'${IRREVERSIBLE_MARKER}' without a reason (say why it cannot be undone: '${IRREVERSIBLE_MARKER} the dropped column's data is gone')`, comment.line);
        reversible = false;
      }
    } else if (comment.text !== NO_TRANSACTION_HEADER) {
      report(`unknown directive '${comment.text}' (only '${NO_TRANSACTION_HEADER}' as the first line of an up file, or '${IRREVERSIBLE_MARKER} <reason>' as the first line of a down file)`, comment.line);
    } else if (direction === 'down') {
      report(`'${NO_TRANSACTION_HEADER}' in a down file (only as the first line of an up file; down files always run in a transaction)`, comment.line);
    } else if (comment.line !== 1) {
      report(`'${NO_TRANSACTION_HEADER}' below the first line (only as the first line of an up file)`, comment.line);
    } else {
      transactional = false;
    }
  }
  if (!reversible && scan.statements.length > 0) {
    report(`statements in a down file marked '${IRREVERSIBLE_MARKER}' (rollback never runs it: remove the statements, or the marker if they undo the up file)`, scan.statements[0].line);
  } else if (reversible && scan.statements.length === 0) {
    report(`no SQL statements (at least one statement; whitespace and comments alone are not a migration${direction === 'down' ? `; a down file that cannot undo its up file starts with '${IRREVERSIBLE_MARKER} <reason>'` : ''})`);
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
    const lexing = changesLexing(statement);
    if (lexing) {
      report(`${lexing} changes how SQL is read (the runner sends each statement to PostgreSQL as this file splits with standard_conforming_strings on and UTF-8 text; write E'…' strings for backslash escapes)`, statement.line);
    }
    if (statement.copyData && BINARY_COPY.test(statement.text)) {
      report(`COPY … FROM STDIN in binary format (inline data is text: pg_dump's default text format, or CSV)`, statement.line);
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

  return { sql, transactional, reversible, scan };
}

const BINARY_COPY = /\bBINARY\b|\bFORMAT\s+['"]?binary\b/i;

// Control characters other than tab, line feed, vertical tab, form feed (SQL whitespace) and CR (reported as a line ending).
const CONTROL = /[\u0000-\u0008\u000e-\u001f\u007f]/;

const SET_LEXING = /^SET\s+(?:SESSION\s+|LOCAL\s+)?(standard_conforming_strings|client_encoding|names)\b\s*(?:=|\bTO\b)?\s*(.*)$/is;
const SET_CONFIG_LEXING = /\bset_config\s*\(\s*'(standard_conforming_strings|client_encoding)'\s*,\s*'([^']*)'/i;
const HARMLESS: Readonly<Record<string, RegExp>> = {
  standard_conforming_strings: /^(on|true|yes|1|default)$/i,
  client_encoding: /^(utf-?8|unicode|default)$/i,
  names: /^(utf-?8|unicode|default)$/i,
};

/**
 * `SET standard_conforming_strings = off`, `SET client_encoding = 'LATIN1'` and their
 * set_config() forms, as written: PostgreSQL would then read the statements after it otherwise
 * than this file's split. The runner also refuses, at run time, any statement sent while
 * either setting differs (a name built at run time escapes this check, not that one).
 */
function changesLexing(statement: SqlStatement): string | undefined {
  const set = statement.keyword === 'SET' ? SET_LEXING.exec(statement.text) : null;
  const call = set ? null : SET_CONFIG_LEXING.exec(statement.text);
  const [name, raw] = set ? [set[1].toLowerCase(), set[2]] : call ? [call[1].toLowerCase(), call[2]] : [];
  if (name === undefined || raw === undefined) return undefined;
  const value = raw.trim().replace(/^'(.*)'$/s, '$1');
  if (HARMLESS[name].test(value)) return undefined;
  return set ? `SET ${name === 'names' ? 'NAMES' : name} = ${value}` : `set_config('${name}', '${value}', …)`;
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

