import { scanOf } from './files';
import { SqlScan } from './sql-scanner';
import { MigrationFile } from './types';

/**
 * The runner's copy of a migration file: the file with each statement, as sql-scanner.ts
 * splits it, wrapped so that psql sends it to PostgreSQL exactly as written and reads none of
 * it. A statement becomes
 *
 *     SELECT :lf_if $lf3$<statement> $lf3$ :lf_else \gexec
 *
 * psql lexes only the wrapper: a dollar-quoted literal, whose content no psql rule touches
 * (variables such as :'DBNAME', backslash commands, standard_conforming_strings). PostgreSQL
 * hands the literal back and `\gexec` sends it as one query. `lf_if`/`lf_else` (set by
 * runner.sh) turn the literal into an error instead when standard_conforming_strings is off or
 * client_encoding is not UTF8, the only settings under which PostgreSQL would read the
 * statement otherwise than this split. Every tag is unique in the file and absent from its
 * statement; a space before each closing tag keeps it whole even in a multi-byte client
 * encoding a migration might set. Comments and blank lines between statements stay where they
 * are, and each `\gexec` sits on the line that held the statement's `;` (text after it
 * continues after psql's `\\` separator), so psql's line numbers are the file's.
 *
 * The inline data of a `COPY … FROM STDIN` follows its `\gexec` line as written, up to its `\.`
 * line: psql sends the COPY, then reads the data from this copy as pg_dump's own output would
 * be read. pg_dump's `\restrict` / `\unrestrict` lines become comments: they only stop psql
 * from running backslash commands, which no migration text reaches anyway.
 */
export function runForm(file: MigrationFile): string {
  let form = forms.get(file);
  if (form === undefined) {
    form = render(file.sql, scanOf(file));
    forms.set(file, form);
  }
  return form;
}

const forms = new WeakMap<MigrationFile, string>();

/** The last line of every runner's copy, for a person who opens one in the cluster. */
export const RUN_FORM_NOTE = "-- learnflow-migrate's copy of this file: each statement goes to PostgreSQL as written (SELECT ... \\gexec), never read by psql.";

function render(sql: string, scan: SqlScan): string {
  const parts: string[] = [];
  const restrictions = scan.metaCommands.filter((m) => m.dumpRestriction).map((m) => m.start);
  /** The text between statements, as written but for pg_dump's restriction lines. */
  const between = (from: number, to: number) => {
    let text = '';
    for (const at of restrictions.filter((r) => r >= from && r < to)) {
      text += `${sql.slice(from, at)}-- `;
      from = at;
    }
    return text + sql.slice(from, to);
  };
  let at = 0;
  scan.statements.forEach((statement, index) => {
    parts.push(between(at, statement.start));
    const tag = uniqueTag(statement.text, index + 1);
    parts.push(`SELECT :lf_if ${tag}${statement.text} ${tag} :lf_else \\gexec`);
    const textEnd = statement.start + statement.text.length;
    const gap = sql.slice(textEnd, statement.end); // whitespace between the statement and its ';'
    parts.push(gap);
    at = Math.min(statement.end + 1, sql.length);
    if (!gap.includes('\n')) {
      const eol = sql.indexOf('\n', at);
      if (sql.slice(at, eol < 0 ? sql.length : eol).trim() !== '') parts.push(' \\\\');
    }
  });
  parts.push(between(at, sql.length));
  const body = parts.join('');
  return `${body}${body.endsWith('\n') || body === '' ? '' : '\n'}${RUN_FORM_NOTE}\n`;
}

function uniqueTag(text: string, index: number): string {
  let tag = `$lf${index}$`;
  while (text.includes(tag)) tag = `${tag.slice(0, -1)}_$`;
  return tag;
}
