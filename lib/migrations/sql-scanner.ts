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
  /**
   * `COPY … FROM STDIN` only: its inline data, as pg_dump writes it, from the line after the
   * statement's `;` through the line holding only `\.` (included, with its line feed).
   */
  readonly copyData?: { readonly start: number; readonly end: number };
}

/** A psql backslash command outside strings and bodies. */
export interface MetaCommand {
  readonly line: number;
  /** The command word, e.g. `\i` (at most 40 characters). */
  readonly command: string;
  /** Offsets of the command and of the end of its line (the line feed excluded). */
  readonly start: number;
  readonly end: number;
  /**
   * pg_dump's `\restrict KEY` or `\unrestrict KEY`, alone on its line between statements: they
   * only stop psql from running other backslash commands, which the runner never does anyway.
   */
  readonly dumpRestriction: boolean;
}

export interface SqlScan {
  readonly statements: readonly SqlStatement[];
  /** `--` comments outside strings and bodies, e.g. the no-transaction header; trailing CR removed. */
  readonly lineComments: readonly { readonly line: number; readonly text: string }[];
  /** `/* … *\/` comments outside strings and bodies, whole, with the line they start on. */
  readonly blockComments: readonly { readonly line: number; readonly text: string }[];
  /** Backslash commands outside strings and bodies, e.g. `\i`, `\set`, `\gset`. */
  readonly metaCommands: readonly MetaCommand[];
  /** Strings, quoted identifiers, dollar quotes or block comments never closed. */
  readonly unterminated: readonly { readonly line: number; readonly message: string }[];
  /** Inline COPY data that psql would not read as the split does: what is wrong, and where. */
  readonly copyProblems: readonly { readonly line: number; readonly message: string }[];
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
 * After `COPY … FROM STDIN;` come data lines up to a line holding only `\.`, as psql reads them
 * (and pg_dump writes them): they belong to the statement, never to the next one.
 */
export function scanSql(sql: string): SqlScan {
  const statements: SqlStatement[] = [];
  const lineComments: { line: number; text: string }[] = [];
  const blockComments: { line: number; text: string }[] = [];
  const metaCommands: MetaCommand[] = [];
  const unterminated: { line: number; message: string }[] = [];
  const copyProblems: { line: number; message: string }[] = [];
  const lineAt = lineLocator(sql);
  const n = sql.length;

  let start = -1;
  let keyword: string | undefined;
  let words: string[] = [];
  let parenDepth = 0;
  let beginDepth = 0;
  /** Where scanning resumes after the statement ending at `end`: after its COPY data, if any. */
  const finish = (end: number): number => {
    let resume = end + 1;
    if (start >= 0) {
      const text = sql.slice(start, end).trimEnd();
      const copyData = keyword === 'COPY' && isCopyFromStdin(words) ? inlineData(end) : undefined;
      if (copyData) resume = copyData.end;
      statements.push({ line: lineAt(start), keyword, words, text, start, end, ...(copyData ? { copyData } : {}) });
    }
    start = -1;
    keyword = undefined;
    words = [];
    parenDepth = 0;
    beginDepth = 0;
    return resume;
  };
  /**
   * The data of the COPY … FROM STDIN whose `;` is at `semicolon`: psql reads it from the next
   * line on, up to a line holding only `\.`. Anything after the `;` on its line would run after
   * the data, so it is refused, as is data without its end line.
   */
  const inlineData = (semicolon: number): { start: number; end: number } | undefined => {
    const eol = sql.indexOf('\n', semicolon);
    const rest = sql.slice(semicolon + 1, eol < 0 ? n : eol);
    if (rest.trim() !== '') {
      copyProblems.push({ line: lineAt(semicolon), message: `text after COPY … FROM STDIN's ';' on its line (the inline data starts on the next line; put '${rest.trim().slice(0, 40)}' after the data's closing \\. line)` });
    }
    const dataStart = eol < 0 ? n : eol + 1;
    for (let at = dataStart; at < n;) {
      const lineEnd = sql.indexOf('\n', at);
      const next = lineEnd < 0 ? n : lineEnd + 1;
      if (sql.slice(at, lineEnd < 0 ? n : lineEnd) === '\\.') return { start: dataStart, end: next };
      at = next;
    }
    copyProblems.push({ line: lineAt(semicolon), message: 'COPY … FROM STDIN without the line \\. that ends its data (pg_dump ends the rows with a line holding only \\.)' });
    return { start: dataStart, end: n };
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
      blockComments.push({ line: lineAt(i), text: sql.slice(i, j) });
      i = j;
    } else if (c === '\\') {
      const command = /\\[^\s\\]*/y;
      command.lastIndex = i;
      const eol = sql.indexOf('\n', i);
      const end = eol < 0 ? n : eol;
      const lineStart = sql.lastIndexOf('\n', i - 1) + 1;
      const dumpRestriction = start < 0 && sql.slice(lineStart, i).trim() === '' && DUMP_RESTRICTION.test(sql.slice(i, end));
      metaCommands.push({ line: lineAt(i), command: command.exec(sql)![0].slice(0, 40), start: i, end, dumpRestriction });
      i = end;
    } else if (c === ';') {
      if (parenDepth === 0 && beginDepth === 0) i = finish(i);
      else i++;
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
  return { statements, lineComments, blockComments, metaCommands, unterminated, copyProblems };
}

/** pg_dump's (15.14, 16.10, 17.6 and later) guard lines around a plain-format dump. */
const DUMP_RESTRICTION = /^\\(?:un)?restrict [A-Za-z0-9]+\s*$/;

/** `COPY … FROM STDIN` (bare words outside parentheses, upper-cased): psql then reads data from its input. */
function isCopyFromStdin(words: readonly string[]): boolean {
  const from = words.indexOf('FROM');
  return from > 0 && words[from + 1] === 'STDIN';
}

/**
 * The text PostgreSQL's grammar reads: `sql` with each COPY's inline data and pg_dump's
 * `\restrict` lines blanked, line feeds kept, so that lines and columns stay the file's.
 */
export function statementText(sql: string, scan: SqlScan): string {
  const blanks: [number, number][] = [
    ...scan.statements.flatMap((s): [number, number][] => (s.copyData ? [[s.copyData.start, s.copyData.end]] : [])),
    ...scan.metaCommands.filter((m) => m.dumpRestriction).map((m): [number, number] => [m.start, m.end]),
  ].sort((a, b) => a[0] - b[0]);
  if (blanks.length === 0) return sql;
  let out = '';
  let at = 0;
  for (const [from, to] of blanks) {
    out += sql.slice(at, from) + sql.slice(from, to).replace(/[^\n]/g, '');
    at = to;
  }
  return out + sql.slice(at);
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
