import * as fs from 'node:fs';
import * as path from 'node:path';
import { MigrationSourceEntry, parseMigrations } from './files';
import { formatGrammarError, grammarErrors } from './grammar';
import { formatFinding, lintMigrations } from './lint';
import { RELEASED_FILE, splitReleased } from './released';
import type { Migration } from './types';

/**
 * The pull-request check of `migrations/` (npm test runs it; so does `npm run migrations --
 * check`): the migrations not yet released (released.ts) must pass the synth's file rules,
 * parse with PostgreSQL's grammar (grammar.ts) and pass the lock-safety lint (lint.ts).
 * Released migrations cost one read and hash each; only pending ones are read, parsed and linted.
 */

export interface MigrationCheck {
  /** Versions judged: every migration not released. */
  readonly pending: readonly string[];
  /** Released migrations, unchanged since their release (not judged again). */
  readonly released: number;
  /** Every problem, each as `file[:line:column]: what is wrong` with what to do; empty when the check passes. */
  readonly problems: readonly string[];
}

export interface CheckOptions {
  /** The project root; messages name files relative to it. @default process.cwd() */
  readonly root?: string;
  /** The migrations folder, relative to the root. @default 'migrations' */
  readonly directory?: string;
}

export async function checkMigrations(options: CheckOptions = {}): Promise<MigrationCheck> {
  const root = path.resolve(options.root ?? process.cwd());
  const directory = options.directory ?? 'migrations';
  const dir = path.join(root, directory);
  const split = splitReleased(dir, directory);
  const entries: MigrationSourceEntry[] = split.pending.flatMap((m) => [m.up, m.down].map((p) => ({ path: p, bytes: fs.readFileSync(path.join(dir, p)) })));
  const parsed = parseMigrations(entries, { directory });
  const migrations: Migration[] = parsed.migrations;
  const [grammar, findings] = await Promise.all([
    grammarErrors(migrations.flatMap((m) => [m.up, m.down])),
    lintMigrations(migrations),
  ]);
  return {
    pending: split.pending.map((m) => m.version),
    released: split.released,
    problems: [...split.problems, ...parsed.problems, ...grammar.map(formatGrammarError), ...findings.map(formatFinding)],
  };
}

/** The check's report, for a person: what was judged, then every problem. */
export function formatCheck(check: MigrationCheck, directory = 'migrations'): string {
  const judged = `${check.pending.length} pending migration(s) checked${check.pending.length ? ` (${check.pending.join(', ')})` : ''}, ` +
    `${check.released} released one(s) left alone (${directory}/${RELEASED_FILE})`;
  if (check.problems.length === 0) return `learnflow-migrations: ${judged}: no problems\n`;
  return `learnflow-migrations: ${judged}: ${check.problems.length} problem(s)\n${check.problems.map((p) => `  - ${p}`).join('\n')}\n`;
}
