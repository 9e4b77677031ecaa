import { loadModule, parseSync } from 'libpg-query';
import { scanOf } from './files';
import { lineLocator } from './sql-scanner';
import type { MigrationFile } from './types';

/**
 * Syntax errors in the pull request, not in the cluster: every statement of a migration file,
 * exactly as the runner sends it (sql-scanner.ts's split, COPY data aside), is parsed with
 * PostgreSQL's own parser (libpg_query, PostgreSQL's grammar compiled to WebAssembly). The
 * grammar is that of the oldest PostgreSQL a supported chart ships, so a statement that parses
 * here parses on every supported server.
 */

/** The PostgreSQL major version whose grammar libpg-query carries (its version's major). */
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const GRAMMAR_MAJOR: number = Number((require('libpg-query/package.json') as { version: string }).version.split('.')[0]);

/** One statement PostgreSQL's grammar refuses, located in its file. */
export interface GrammarError {
  /** The file's path, as sources name it (`migrations/007_x.up.sql`). */
  readonly file: string;
  /** 1-based line and column (characters) of where the parser stopped. */
  readonly line: number;
  readonly column: number;
  /** PostgreSQL's message, e.g. `syntax error at or near "frm"`. */
  readonly message: string;
}

/** The error as a finding: `file:line:column: message (what to do)`. */
export function formatGrammarError(error: GrammarError): string {
  return `${error.file}:${error.line}:${error.column}: ${error.message} (PostgreSQL ${GRAMMAR_MAJOR}'s grammar refuses this statement, and the server would too: fix it before it reaches the Job)`;
}

let loaded: Promise<void> | undefined;

/** Parses every statement of `files`; returns the statements PostgreSQL's grammar refuses. */
export async function grammarErrors(files: readonly MigrationFile[]): Promise<GrammarError[]> {
  if (files.length === 0) return [];
  await (loaded ??= loadModule());
  const errors: GrammarError[] = [];
  for (const file of files) {
    const lineAt = lineLocator(file.sql);
    for (const statement of scanOf(file).statements) {
      try {
        parseSync(statement.text);
      } catch (error) {
        const details = (error as { sqlDetails?: { cursorPosition?: number } }).sqlDetails;
        const offset = statement.start + Math.min(Math.max(details?.cursorPosition ?? 0, 0), statement.text.length);
        const line = lineAt(offset);
        const lineStart = file.sql.lastIndexOf('\n', offset - 1) + 1;
        errors.push({ file: file.source, line, column: offset - lineStart + 1, message: (error as Error).message });
      }
    }
  }
  return errors;
}
