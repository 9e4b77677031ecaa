/**
 * The one SQL lexer of the project: it splits a migration file into the statements the runner
 * sends to PostgreSQL, one by one, exactly as written (lib/migrations/run-form.ts). psql never
 * splits or reads migration text in the Job, so this split is the only one there is; its rules
 * are PostgreSQL's with standard_conforming_strings on, which the runner enforces at run time.
 */

/** One statement, as the runner sends it. */
export interface SqlStatement {
  /** 1-based line of the statement's first token. */
  readonly line: number;
  /** The statement's first token, upper-cased, when it is a bare word (`BEGIN`, `CREATE`). */
  readonly keyword: string | undefined;
  /** Bare words (keywords and unquoted identifiers) outside parentheses, upper-cased, in order. */
  readonly words: readonly string[];
  /** Source text from the first token up to, not including, the terminating `;`, trailing whitespace removed. */
  readonly text: string;
  /** Offset of the first token in the scanned text. */
  readonly start: number;
  /** Offset of the terminating `;`, or the text's length when the statement runs to the end. */
  readonly end: number;
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
 * Splits SQL into statements: `;` ends a statement outside comments (`--`, nested `/* *\/`),
 * strings (`'…'`, `E'…'` with backslash escapes, `U&'…'`), quoted identifiers, dollar-quoted
 * bodies (`$$…$$`, `$tag$…$tag$`), parentheses, and the `BEGIN ATOMIC … END` body of
 * `CREATE [OR REPLACE] FUNCTION|PROCEDURE`. A routine merely named `begin` opens no body.
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
      statements.push({ line: lineAt(start), keyword, words, text, start, end });
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
  /** PostgreSQL keeps `;` inside the BEGIN ATOMIC body of CREATE FUNCTION/PROCEDURE. */
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
              if (beginDepth > 0 && word === 'CASE') beginDepth++;
              else if (beginDepth > 0 && word === 'END') beginDepth--;
              else if (word === 'ATOMIC' && words[words.length - 1] === 'BEGIN' && routine()) beginDepth++;
              words.push(word);
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

/** Maps an offset of `text` to its 1-based line. */
export function lineLocator(text: string): (offset: number) => number {
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
