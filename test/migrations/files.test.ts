import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { compareVersions } from '../../lib/migrations/versions';
import {
  MigrationFileError,
  MigrationSourceEntry,
  IRREVERSIBLE_MARKER,
  NO_TRANSACTION_HEADER,
  loadMigrations,
  parseMigrations,
  scanSql,
  statementsOf,
} from '../../lib/migrations/files';
import { runForm } from '../../lib/migrations/run-form';
import { statementText } from '../../lib/migrations/sql-scanner';

const UP = 'CREATE TABLE a (id INTEGER);\n';
const DOWN = 'DROP TABLE a;\n';

const file = (p: string, content: string | Uint8Array): MigrationSourceEntry => ({
  path: p,
  bytes: typeof content === 'string' ? Buffer.from(content, 'utf8') : content,
});

/** A complete flat migration, with `up` as its up file. */
const flat = (base: string, up = UP, down = DOWN) => [file(`${base}.up.sql`, up), file(`${base}.down.sql`, down)];

const problemsOf = (entries: MigrationSourceEntry[]) => parseMigrations(entries).problems;

/** Problems of a listing holding one migration whose up file is `sql`. */
const upProblems = (sql: string) => problemsOf(flat('001_a', sql));
/** Problems of a listing holding one migration whose down file is `sql`. */
const downProblems = (sql: string) => problemsOf(flat('001_a', UP, sql));

const valid = (entries: MigrationSourceEntry[]) => {
  const result = parseMigrations(entries);
  expect(result.problems).toEqual([]);
  return result.migrations;
};

describe('layouts', () => {
  it('reads the data model layout NNN_name.up.sql / NNN_name.down.sql', () => {
    const [migration] = valid(flat('001_create_users'));
    expect(migration).toEqual({
      version: '001',
      name: 'create_users',
      transactional: true,
      reversible: true,
      up: expect.objectContaining({ key: '001_create_users.up.sql', source: 'migrations/001_create_users.up.sql', sql: UP }),
      down: expect.objectContaining({ key: '001_create_users.down.sql', source: 'migrations/001_create_users.down.sql', sql: DOWN }),
    });
  });

  it('reads the research note layout NNN_name/up.sql and gives it the same flat keys', () => {
    const [migration] = valid([file('001_create_users/up.sql', UP), file('001_create_users/down.sql', DOWN)]);
    expect(migration.up.key).toBe('001_create_users.up.sql');
    expect(migration.down.key).toBe('001_create_users.down.sql');
    expect(migration.up.source).toBe('migrations/001_create_users/up.sql');
    expect(migration.down.source).toBe('migrations/001_create_users/down.sql');
  });

  it('accepts both layouts in one folder, ordered by version', () => {
    const migrations = valid([
      file('002_b/up.sql', UP),
      file('002_b/down.sql', DOWN),
      ...flat('001_a'),
      ...flat('003_c'),
    ]);
    expect(migrations.map((m) => `${m.version}_${m.name}`)).toEqual(['001_a', '002_b', '003_c']);
    expect(migrations.map((m) => m.up.key)).toEqual(['001_a.up.sql', '002_b.up.sql', '003_c.up.sql']);
  });

  it('allows README.md and .gitkeep beside the migrations', () => {
    expect(valid([...flat('001_a'), file('README.md', '# notes\n'), file('.gitkeep', '')])).toHaveLength(1);
  });

  it('prefixes sources and messages with the directory option', () => {
    const result = parseMigrations([...flat('001_a'), file('x.txt', '')], { directory: 'db/migrations/' });
    expect(result.migrations[0].up.source).toBe('db/migrations/001_a.up.sql');
    expect(result.problems[0]).toMatch(/^db\/migrations\/x\.txt: /);
  });

  it('returns no migrations and no problems for an empty folder', () => {
    expect(parseMigrations([])).toEqual({ migrations: [], problems: [] });
  });
});

describe('ordering', () => {
  it('puts 010 after 009', () => {
    const migrations = valid([...flat('010_j'), ...flat('009_i'), ...flat('001_a')]);
    expect(migrations.map((m) => m.version)).toEqual(['001', '009', '010']);
  });

  it('sorts numerically, so 1000 comes after 999', () => {
    const migrations = valid([...flat('1000_later'), ...flat('999_earlier')]);
    expect(migrations.map((m) => m.version)).toEqual(['999', '1000']);
  });

  it('compares versions by value: leading zeros, and 18 digits beyond what a double holds', () => {
    const versions = ['900719925474099300', '0010', '900719925474099299', '999', '009', '000011'];
    expect([...versions].sort(compareVersions)).toEqual(['009', '0010', '000011', '999', '900719925474099299', '900719925474099300']);
    expect(compareVersions('010', '10')).toBe(0);
  });
});

describe('checksums and text', () => {
  it('records the lowercase hex SHA-256 of each file\'s bytes', () => {
    const up = Buffer.from('-- é\nCREATE TABLE a (id INTEGER);\n', 'utf8');
    const [migration] = valid([file('001_a.up.sql', up), file('001_a.down.sql', DOWN)]);
    expect(migration.up.sha256).toBe(createHash('sha256').update(up).digest('hex'));
    expect(migration.down.sha256).toBe(createHash('sha256').update(Buffer.from(DOWN)).digest('hex'));
    expect(migration.up.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('changes the checksum when a single byte changes', () => {
    const [a] = valid(flat('001_a', 'CREATE TABLE a (id INTEGER);\n'));
    const [b] = valid(flat('001_a', 'CREATE TABLE b (id INTEGER);\n'));
    expect(a.up.sha256).not.toBe(b.up.sha256);
  });

  it('keeps the text exactly as read', () => {
    const sql = '-- héllo\n\nCREATE TABLE a (id INTEGER);   \n\n';
    expect(valid(flat('001_a', sql))[0].up.sql).toBe(sql);
  });
});

describe('file and folder names', () => {
  it('rejects a .sql file without .up or .down', () => {
    expect(problemsOf([...flat('001_a'), file('002_x.sql', UP)])).toEqual([
      'migrations/002_x.sql: unexpected file (NNN_name.up.sql, NNN_name.down.sql, NNN_name/ folders, README.md, .gitkeep and released.tsv)',
    ]);
  });

  it('rejects an upper-case .UP.sql suffix', () => {
    expect(problemsOf([...flat('001_a'), file('002_x.UP.sql', UP)])).toEqual([
      'migrations/002_x.UP.sql: unexpected file (NNN_name.up.sql, NNN_name.down.sql, NNN_name/ folders, README.md, .gitkeep and released.tsv)',
    ]);
  });

  it('rejects other files such as notes.txt', () => {
    expect(problemsOf([file('notes.txt', 'x')])).toEqual([
      'migrations/notes.txt: unexpected file (NNN_name.up.sql, NNN_name.down.sql, NNN_name/ folders, README.md, .gitkeep and released.tsv)',
    ]);
  });

  it('rejects hidden files other than .gitkeep', () => {
    expect(problemsOf([file('.DS_Store', 'x')])).toEqual(['migrations/.DS_Store: unexpected hidden file (only .gitkeep among hidden files)']);
  });

  it('rejects a version shorter than 3 digits', () => {
    expect(problemsOf(flat('01_a'))).toEqual([
      "migrations/01_a.up.sql: version '01' is too short (digits only, 3 to 18 of them, e.g. 001)",
    ]);
  });

  it('rejects a version longer than 18 digits, which the runner cannot compare', () => {
    expect(valid(flat(`${'9'.repeat(18)}_last`))[0].version).toBe('999999999999999999');
    expect(problemsOf(flat(`${'1'.repeat(19)}_a`))).toEqual([
      `migrations/${'1'.repeat(19)}_a.up.sql: version '${'1'.repeat(19)}' is too long (digits only, 3 to 18 of them, e.g. 001)`,
    ]);
  });

  it('rejects a version that is not digits', () => {
    expect(problemsOf(flat('v001_a'))).toEqual([
      "migrations/v001_a.up.sql: version 'v001' is not a number (digits only, 3 to 18 of them, e.g. 001)",
    ]);
  });

  it.each(['Create_users', 'create-users', 'create__users', '1st_table', 'users_', 'a.b'])('rejects the name %s', (name) => {
    expect(problemsOf(flat(`001_${name}`))).toEqual([
      `migrations/001_${name}.up.sql: name '${name}' is not lowercase words (a-z and 0-9 words joined by '_', starting with a letter: [a-z][a-z0-9]*(_[a-z0-9]+)*)`,
    ]);
  });

  it('reports a bad name in the folder layout on its up.sql', () => {
    expect(problemsOf([file('001_Users/up.sql', UP), file('001_Users/down.sql', DOWN)])).toEqual([
      "migrations/001_Users/up.sql: name 'Users' is not lowercase words (a-z and 0-9 words joined by '_', starting with a letter: [a-z][a-z0-9]*(_[a-z0-9]+)*)",
    ]);
  });

  it('accepts lowercase words with digits', () => {
    expect(valid(flat('001_add_v2_index'))[0].name).toBe('add_v2_index');
  });

  it('rejects an up file without its down file', () => {
    expect(problemsOf([file('001_a.up.sql', UP)])).toEqual([
      'migrations/001_a.up.sql: has no matching down file (every migration has both: add migrations/001_a.down.sql)',
    ]);
  });

  it('rejects a down file without its up file', () => {
    expect(problemsOf([file('001_a.down.sql', DOWN)])).toEqual([
      'migrations/001_a.down.sql: has no matching up file (every migration has both: add migrations/001_a.up.sql)',
    ]);
  });

  it('rejects a migration folder missing down.sql', () => {
    expect(problemsOf([file('001_a/up.sql', UP)])).toEqual([
      'migrations/001_a/up.sql: has no matching down file (every migration has both: add migrations/001_a/down.sql)',
    ]);
  });

  it('does not pair files across layouts', () => {
    expect(problemsOf([file('001_a.up.sql', UP), file('001_a/down.sql', DOWN)])).toEqual([
      'migrations/001_a.up.sql: has no matching down file (every migration has both: add migrations/001_a.down.sql)',
      "migrations/001_a/down.sql: has no matching up file (every migration has both: add migrations/001_a/up.sql)",
      "migrations/001_a/down.sql: version '001' is already used by migrations/001_a.up.sql (each version number once, across NNN_name.*.sql files and NNN_name/ folders)",
    ]);
  });

  it('rejects other files inside a migration folder', () => {
    expect(problemsOf([file('001_a/up.sql', UP), file('001_a/down.sql', DOWN), file('001_a/notes.md', '')])).toEqual([
      'migrations/001_a/notes.md: unexpected file in a migration folder (only up.sql and down.sql)',
    ]);
  });

  it('rejects a folder that is not NNN_name, once', () => {
    expect(problemsOf([file('fixtures/up.sql', UP), file('fixtures/seed.sql', UP)])).toEqual([
      'migrations/fixtures: unexpected folder (migration folders are named NNN_name and hold up.sql and down.sql)',
    ]);
  });

  it('rejects files nested below a migration folder', () => {
    expect(problemsOf([file('001_a/up.sql', UP), file('001_a/down.sql', DOWN), file('001_a/old/up.sql', UP)])).toEqual([
      'migrations/001_a/old/up.sql: nested too deep (a migration folder NNN_name/ holds only up.sql and down.sql)',
    ]);
  });
});

describe('versions are unique', () => {
  it('rejects the same version in a file and a folder', () => {
    expect(problemsOf([...flat('001_a'), file('001_b/up.sql', UP), file('001_b/down.sql', DOWN)])).toEqual([
      "migrations/001_b/up.sql: version '001' is already used by migrations/001_a.up.sql (each version number once, across NNN_name.*.sql files and NNN_name/ folders)",
    ]);
  });

  it('rejects the same version with two names', () => {
    expect(problemsOf([...flat('002_a'), ...flat('002_b')])).toEqual([
      "migrations/002_b.up.sql: version '002' is already used by migrations/002_a.up.sql (each version number once, across NNN_name.*.sql files and NNN_name/ folders)",
    ]);
  });

  it('compares versions as numbers, so 0001 duplicates 001', () => {
    expect(problemsOf([...flat('001_a'), ...flat('0001_b')])).toEqual([
      "migrations/001_a.up.sql: version '001' is already used by migrations/0001_b.up.sql (each version number once, across NNN_name.*.sql files and NNN_name/ folders)",
    ]);
  });

  it('counts 1 as a duplicate of 001 besides being too short', () => {
    expect(problemsOf([...flat('001_a'), ...flat('1_b')])).toEqual([
      "migrations/1_b.up.sql: version '1' is too short (digits only, 3 to 18 of them, e.g. 001)",
      "migrations/1_b.up.sql: version '1' is already used by migrations/001_a.up.sql (each version number once, across NNN_name.*.sql files and NNN_name/ folders)",
    ]);
  });
});

describe('encoding and line endings', () => {
  it('rejects a byte order mark', () => {
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(UP)]);
    expect(problemsOf([file('001_a.up.sql', bom), file('001_a.down.sql', DOWN)])).toEqual([
      'migrations/001_a.up.sql: starts with a byte order mark (UTF-8 without BOM)',
    ]);
  });

  it('rejects bytes that are not UTF-8', () => {
    const latin1 = Buffer.from('-- caf\xe9\nCREATE TABLE a (id INTEGER);\n', 'latin1');
    expect(problemsOf([file('001_a.up.sql', latin1), file('001_a.down.sql', DOWN)])).toEqual([
      'migrations/001_a.up.sql: is not valid UTF-8 (UTF-8 text)',
    ]);
  });

  it('rejects CRLF line endings, naming the first line', () => {
    expect(upProblems('-- a\nCREATE TABLE a (id INTEGER);\r\nSELECT 1;\r\n')).toEqual([
      'migrations/001_a.up.sql:2: CRLF line ending (LF line endings only)',
    ]);
  });

  it('rejects old Mac CR line endings', () => {
    expect(downProblems('DROP TABLE a;\rSELECT 1;\n')).toEqual(['migrations/001_a.down.sql:1: CR line ending (LF line endings only)']);
  });

  it('rejects an empty file', () => {
    expect(downProblems('')).toEqual([
      "migrations/001_a.down.sql: no SQL statements (at least one statement; whitespace and comments alone are not a migration; a down file that cannot undo its up file starts with '-- learnflow:irreversible <reason>')",
    ]);
  });

  it('rejects a file of whitespace and comments only', () => {
    expect(upProblems('\n  -- nothing yet\n/* still\n nothing */\n;\n')).toEqual([
      'migrations/001_a.up.sql: no SQL statements (at least one statement; whitespace and comments alone are not a migration)',
    ]);
  });
});

describe('psql meta-commands', () => {
  it.each([
    ['\\i other.sql', '\\i'],
    ['\\set ON_ERROR_STOP off', '\\set'],
    ['   \\connect other', '\\connect'],
  ])('rejects %s', (line, command) => {
    expect(upProblems(`${UP}${line}\n`)).toEqual([
      `migrations/001_a.up.sql:2: psql meta-command ${command} (plain SQL only; backslash commands are not run)`,
    ]);
  });

  it('rejects a meta-command after a statement on the same line', () => {
    expect(upProblems('SELECT 1 AS x \\gset\nCREATE TABLE a (id INTEGER);\n')).toEqual([
      'migrations/001_a.up.sql:1: psql meta-command \\gset (plain SQL only; backslash commands are not run)',
    ]);
  });

  it('accepts backslashes in strings, comments and function bodies', () => {
    expect(upProblems([
      "SELECT 'C:\\temp', E'tab\\there';",
      '-- \\i not a command',
      'CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$',
      "\\i inside a body is just text",
      '$$;',
    ].join('\n') + '\n')).toEqual([]);
  });
});

describe('transaction control', () => {
  const rejected = (statement: string, line = 2) =>
    `migrations/001_a.up.sql:${line}: transaction control statement ${statement} (none: the runner wraps each file in a transaction, or runs it in autocommit under '${NO_TRANSACTION_HEADER}')`;

  it('rejects BEGIN and COMMIT around the file', () => {
    expect(upProblems(`BEGIN;\n${UP}COMMIT;\n`)).toEqual([rejected('BEGIN', 1), rejected('COMMIT', 3)]);
  });

  it('rejects lowercase begin;', () => {
    expect(upProblems(`${UP}begin;\n`)).toEqual([rejected('BEGIN')]);
  });

  it('rejects END; at top level', () => {
    expect(upProblems(`${UP}END;\n`)).toEqual([rejected('END')]);
  });

  it.each([
    ['START TRANSACTION ISOLATION LEVEL SERIALIZABLE;', 'START TRANSACTION'],
    ['ROLLBACK;', 'ROLLBACK'],
    ['ABORT;', 'ABORT'],
    ['SAVEPOINT s1;', 'SAVEPOINT'],
    ['RELEASE SAVEPOINT s1;', 'RELEASE'],
    ["PREPARE TRANSACTION 'tx1';", 'PREPARE TRANSACTION'],
    ["COMMIT PREPARED 'tx1';", 'COMMIT'],
  ])('rejects %s', (statement, shown) => {
    expect(upProblems(`${UP}${statement}\n`)).toEqual([rejected(shown)]);
  });

  it('rejects a transaction statement without a final semicolon', () => {
    expect(upProblems(`${UP}COMMIT`)).toEqual([rejected('COMMIT')]);
  });

  it('accepts BEGIN and END inside a DO block', () => {
    expect(upProblems("DO $$\nBEGIN\n  RAISE NOTICE 'hi';\nEND\n$$;\n")).toEqual([]);
  });

  it('accepts a plpgsql body with a tagged dollar quote holding $$ and COMMIT', () => {
    const sql = [
      'CREATE PROCEDURE p() LANGUAGE plpgsql AS $body$',
      'BEGIN',
      "  PERFORM '$$';",
      '  COMMIT;',
      'END;',
      '$body$;',
    ].join('\n');
    expect(upProblems(`${sql}\n`)).toEqual([]);
  });

  it('accepts BEGIN ATOMIC … END bodies of SQL-standard functions, as psql keeps them whole', () => {
    const sql = [
      'CREATE OR REPLACE FUNCTION grade(s INTEGER) RETURNS TEXT LANGUAGE sql',
      'BEGIN ATOMIC',
      "  SELECT CASE WHEN s >= 50 THEN 'pass' ELSE 'fail' END;",
      'END;',
      'SELECT 1;',
    ].join('\n');
    expect(upProblems(`${sql}\n`)).toEqual([]);
    expect(scanSql(sql).statements.map((s) => s.keyword)).toEqual(['CREATE', 'SELECT']);
  });

  it('accepts COMMIT inside a string', () => {
    expect(upProblems("INSERT INTO log (msg) VALUES ('COMMIT; BEGIN;');\n")).toEqual([]);
  });

  it("accepts a quote escaped in an E'' string", () => {
    expect(upProblems("SELECT E'it\\'s; COMMIT';\n")).toEqual([]);
  });

  it('treats a backslash in a standard string as a plain character', () => {
    expect(upProblems("SELECT 'C:\\';\nBEGIN;\n")).toEqual([rejected('BEGIN')]);
  });

  it('accepts COMMIT in -- and nested /* */ comments', () => {
    expect(upProblems(`-- COMMIT;\n/* BEGIN; /* nested; */ COMMIT; */\n${UP}`)).toEqual([]);
  });

  it('accepts "commit" as a quoted identifier', () => {
    expect(upProblems('CREATE TABLE "begin" ("commit" INTEGER);\n')).toEqual([]);
  });

  it('accepts PREPARE of a statement, which is not a transaction', () => {
    expect(upProblems('PREPARE q (INTEGER) AS SELECT $1;\n')).toEqual([]);
  });

  it('rejects an unterminated string, naming where it opens', () => {
    expect(upProblems(`${UP}SELECT 'oops;\n`)).toEqual([
      'migrations/001_a.up.sql:2: unterminated string literal (close every quote, comment and dollar quote)',
    ]);
  });

  it('rejects an unterminated dollar quote', () => {
    expect(upProblems(`${UP}DO $x$ BEGIN NULL; END $$;\n`)).toEqual([
      'migrations/001_a.up.sql:2: unterminated dollar-quoted string $x$ (close every quote, comment and dollar quote)',
    ]);
  });
});

describe('the no-transaction header', () => {
  const notx = (body: string) => `${NO_TRANSACTION_HEADER}\n${body}`;

  it('marks the migration as not transactional', () => {
    const [migration] = valid(flat('001_a', notx('CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_a ON a (id);\n'), 'DROP INDEX IF EXISTS idx_a;\n'));
    expect(migration.transactional).toBe(false);
  });

  it('accepts the README example that drops a leftover INVALID index before creating it', () => {
    const readme = fs.readFileSync(path.resolve(__dirname, '../../migrations/README.md'), 'utf8');
    const example = /```sql\n(-- learnflow:no-transaction\nDROP[^`]*)```/.exec(readme)![1];
    expect(valid(flat('007_index_score', example))[0].transactional).toBe(false);
  });

  it('asks for the header when a transactional file creates an index concurrently', () => {
    expect(upProblems(`${UP}CREATE UNIQUE INDEX CONCURRENTLY idx_a ON a (id);\n`)).toEqual([
      `migrations/001_a.up.sql:2: CREATE UNIQUE INDEX CONCURRENTLY cannot run inside a transaction (start the up file with '${NO_TRANSACTION_HEADER}')`,
    ]);
  });

  it('rejects statements that cannot run in a transaction in a down file', () => {
    expect(downProblems('DROP INDEX CONCURRENTLY IF EXISTS idx_a;\nVACUUM a;\n')).toEqual([
      'migrations/001_a.down.sql:1: DROP INDEX CONCURRENTLY cannot run inside a transaction (down files always run in one; use the form without CONCURRENTLY)',
      'migrations/001_a.down.sql:2: VACUUM cannot run inside a transaction (down files always run in one; use the form without CONCURRENTLY)',
    ]);
  });

  it('accepts REFRESH MATERIALIZED VIEW CONCURRENTLY in a transaction', () => {
    expect(upProblems('REFRESH MATERIALIZED VIEW CONCURRENTLY mv;\n')).toEqual([]);
  });

  it('requires IF NOT EXISTS on CREATE INDEX in a no-transaction file', () => {
    expect(upProblems(notx('CREATE INDEX CONCURRENTLY idx_a ON a (id);\n'))).toEqual([
      'migrations/001_a.up.sql:2: CREATE INDEX without IF NOT EXISTS in a no-transaction file (no-transaction files must be safe to re-run: CREATE INDEX IF NOT EXISTS)',
    ]);
  });

  it('requires IF EXISTS on DROP in a no-transaction file', () => {
    expect(upProblems(notx('DROP INDEX CONCURRENTLY idx_old;\nDROP MATERIALIZED VIEW mv;\n'))).toEqual([
      'migrations/001_a.up.sql:2: DROP INDEX without IF EXISTS in a no-transaction file (no-transaction files must be safe to re-run: DROP INDEX IF EXISTS)',
      'migrations/001_a.up.sql:3: DROP MATERIALIZED VIEW without IF EXISTS in a no-transaction file (no-transaction files must be safe to re-run: DROP MATERIALIZED VIEW IF EXISTS)',
    ]);
  });

  it('rejects the header below the first line', () => {
    expect(upProblems(`-- why\n${NO_TRANSACTION_HEADER}\n${UP}`)).toEqual([
      `migrations/001_a.up.sql:2: '${NO_TRANSACTION_HEADER}' below the first line (only as the first line of an up file)`,
    ]);
  });

  it('rejects the header in a down file', () => {
    expect(downProblems(notx(DOWN))).toEqual([
      `migrations/001_a.down.sql:1: '${NO_TRANSACTION_HEADER}' in a down file (only as the first line of an up file; down files always run in a transaction)`,
    ]);
  });

  it.each(['-- learnflow:no-transactions', '-- learnflow:notx', '--learnflow:no-transaction', '-- LearnFlow:no-transaction'])(
    'rejects the unknown directive %s',
    (directive) => {
      expect(upProblems(`${directive}\n${UP}`)).toEqual([
        `migrations/001_a.up.sql:1: unknown directive '${directive}' (only '${NO_TRANSACTION_HEADER}' as the first line of an up file, or '-- learnflow:irreversible <reason>' as the first line of a down file)`,
      ]);
    },
  );

  it('rejects a header with nothing after it', () => {
    expect(upProblems(`${NO_TRANSACTION_HEADER}\n`)).toEqual([
      'migrations/001_a.up.sql: no SQL statements (at least one statement; whitespace and comments alone are not a migration)',
    ]);
  });

  it('ignores the directive text inside a string', () => {
    expect(valid(flat('001_a', `SELECT '${NO_TRANSACTION_HEADER}';\n`))[0].transactional).toBe(true);
  });
});

describe('every problem at once', () => {
  it('reports all problems of all files, grouped by file, whole-file problems before line problems', () => {
    const result = parseMigrations([
      file('001_a.up.sql', 'BEGIN;\nCREATE TABLE a (id INTEGER);\r\nCOMMIT;\n'),
      file('001_a.down.sql', '\\i drop.sql\n'),
      file('002_B.up.sql', UP),
      file('003_c/up.sql', UP),
      file('notes.txt', ''),
    ]);
    expect(result.problems).toEqual([
      "migrations/001_a.down.sql: no SQL statements (at least one statement; whitespace and comments alone are not a migration; a down file that cannot undo its up file starts with '-- learnflow:irreversible <reason>')",
      "migrations/001_a.down.sql:1: psql meta-command \\i (plain SQL only; backslash commands are not run)",
      `migrations/001_a.up.sql:1: transaction control statement BEGIN (none: the runner wraps each file in a transaction, or runs it in autocommit under '${NO_TRANSACTION_HEADER}')`,
      'migrations/001_a.up.sql:2: CRLF line ending (LF line endings only)',
      `migrations/001_a.up.sql:3: transaction control statement COMMIT (none: the runner wraps each file in a transaction, or runs it in autocommit under '${NO_TRANSACTION_HEADER}')`,
      "migrations/002_B.up.sql: name 'B' is not lowercase words (a-z and 0-9 words joined by '_', starting with a letter: [a-z][a-z0-9]*(_[a-z0-9]+)*)",
      'migrations/002_B.up.sql: has no matching down file (every migration has both: add migrations/002_B.down.sql)',
      'migrations/003_c/up.sql: has no matching down file (every migration has both: add migrations/003_c/down.sql)',
      'migrations/notes.txt: unexpected file (NNN_name.up.sql, NNN_name.down.sql, NNN_name/ folders, README.md, .gitkeep and released.tsv)',
    ]);
  });
});

describe('scanSql', () => {
  it('splits statements and reports the line each starts on', () => {
    const scan = scanSql('-- header\nCREATE TABLE a (\n  id INTEGER\n);\n\nINSERT INTO a VALUES (1); SELECT 1\n');
    expect(scan.statements.map((s) => [s.line, s.keyword])).toEqual([[2, 'CREATE'], [6, 'INSERT'], [6, 'SELECT']]);
    expect(scan.statements[0].text).toBe('CREATE TABLE a (\n  id INTEGER\n)');
  });

  it('does not take $1 or an identifier ending in $ for a dollar quote', () => {
    const scan = scanSql('PREPARE q AS SELECT $1; SELECT a$b$ FROM t; COMMIT;');
    expect(scan.statements.map((s) => s.keyword)).toEqual(['PREPARE', 'SELECT', 'COMMIT']);
  });

  it('keeps words inside parentheses out of the statement words', () => {
    expect(scanSql('CREATE INDEX i ON t ((lower(a)));').statements[0].words).toEqual(['CREATE', 'INDEX', 'I', 'ON', 'T']);
  });

  it('gives the statements of a checked file without scanning it again, and scans any other file', () => {
    const [migration] = valid(flat('001_a'));
    expect(statementsOf(migration.up)).toEqual(scanSql(migration.up.sql).statements);
    expect(statementsOf(migration.up)).toBe(statementsOf(migration.up));
    const other = { ...migration.up, sql: 'SELECT 1; SELECT 2;' };
    expect(statementsOf(other).map((s) => s.text)).toEqual(['SELECT 1', 'SELECT 2']);
  });
});

describe('COPY … FROM STDIN with inline data, as pg_dump writes it', () => {
  const DUMP = [
    'CREATE TABLE t (id integer, name text);',
    'COPY public.t (id, name) FROM stdin;',
    "1\to'brien",
    '2\t\\N',
    '3\tback\\\\slash; -- not a comment',
    '\\.',
    'SELECT 1;',
    '',
  ].join('\n');

  it('takes the data lines, up to the line holding only \\., as part of the COPY statement', () => {
    const scan = scanSql(DUMP);
    expect(scan.statements.map((s) => [s.line, s.keyword])).toEqual([[1, 'CREATE'], [2, 'COPY'], [7, 'SELECT']]);
    const copy = scan.statements[1];
    expect(DUMP.slice(copy.copyData!.start, copy.copyData!.end)).toBe("1\to'brien\n2\t\\N\n3\tback\\\\slash; -- not a comment\n\\.\n");
    expect(scan.metaCommands).toEqual([]);
    expect(scan.lineComments).toEqual([]);
    expect(upProblems(DUMP)).toEqual([]);
  });

  it('hands the grammar the statements with the data blanked, lines kept', () => {
    const text = statementText(DUMP, scanSql(DUMP));
    expect(text.split('\n')).toEqual(['CREATE TABLE t (id integer, name text);', 'COPY public.t (id, name) FROM stdin;', '', '', '', '', 'SELECT 1;', '']);
  });

  it("puts the data after the COPY's \\gexec line in the runner's copy, byte for byte", () => {
    const [migration] = valid(flat('001_a', DUMP));
    const lines = runForm(migration.up).split('\n');
    expect(lines.slice(1, 6)).toEqual([
      'SELECT :lf_if $lf2$COPY public.t (id, name) FROM stdin $lf2$ :lf_else \\gexec',
      "1\to'brien", '2\t\\N', '3\tback\\\\slash; -- not a comment', '\\.',
    ]);
    expect(lines[6]).toMatch(/^SELECT :lf_if \$lf3\$SELECT 1 \$lf3\$ :lf_else \\gexec$/);
  });

  it('refuses data without its closing \\. line, naming the COPY', () => {
    expect(upProblems('COPY t FROM stdin;\n1\ta\nSELECT 1;\n')).toEqual([
      'migrations/001_a.up.sql:1: COPY … FROM STDIN without the line \\. that ends its data (pg_dump ends the rows with a line holding only \\.)',
    ]);
  });

  it('refuses text after the COPY on its line: psql would run it after the data', () => {
    expect(upProblems('COPY t FROM stdin; SELECT 2;\n1\ta\n\\.\n')).toEqual([
      "migrations/001_a.up.sql:1: text after COPY … FROM STDIN's ';' on its line (the inline data starts on the next line; put 'SELECT 2;' after the data's closing \\. line)",
    ]);
  });

  it('refuses binary COPY data, which cannot be written inline', () => {
    expect(upProblems("COPY t FROM stdin WITH (FORMAT binary);\n\\.\n")).toEqual([
      'migrations/001_a.up.sql:1: COPY … FROM STDIN in binary format (inline data is text: pg_dump\'s default text format, or CSV)',
    ]);
  });

  it('still refuses backslash lines outside COPY data, and leaves COPY … TO STDOUT and FROM a file alone', () => {
    expect(upProblems("COPY t TO STDOUT;\n\\.\n")).toEqual(['migrations/001_a.up.sql:2: psql meta-command \\. (plain SQL only; backslash commands are not run)']);
    expect(scanSql("COPY t FROM '/tmp/x';\nSELECT 1;\n").statements.map((s) => s.copyData)).toEqual([undefined, undefined]);
  });
});

describe("pg_dump's \\restrict and \\unrestrict lines", () => {
  const DUMPED = '--\n-- PostgreSQL database dump\n--\n\n\\restrict Abc123\n\nCREATE TABLE t (id integer);\n\n\\unrestrict Abc123\n';

  it('are accepted between statements and become comments in the runner\'s copy', () => {
    expect(upProblems(DUMPED)).toEqual([]);
    const [migration] = valid(flat('001_a', DUMPED));
    const lines = runForm(migration.up).split('\n');
    expect(lines[4]).toBe('-- \\restrict Abc123');
    expect(lines[8]).toBe('-- \\unrestrict Abc123');
    expect(statementText(DUMPED, scanSql(DUMPED)).split('\n')[4]).toBe('');
  });

  it('are refused anywhere else, like any backslash command', () => {
    expect(upProblems('CREATE TABLE t (id integer) \\restrict Abc123\n;\n')).toEqual([
      'migrations/001_a.up.sql:1: psql meta-command \\restrict (plain SQL only; backslash commands are not run)',
    ]);
    expect(upProblems('\\restrict not-a-key!\nCREATE TABLE t (id integer);\n')).toEqual([
      'migrations/001_a.up.sql:1: psql meta-command \\restrict (plain SQL only; backslash commands are not run)',
    ]);
  });
});

describe('the irreversible marker', () => {
  const IRREVERSIBLE = `${IRREVERSIBLE_MARKER} the dropped column's data is gone\n`;

  it('marks a migration whose down file holds only the marker and a reason as not reversible', () => {
    const [migration] = valid(flat('001_a', UP, IRREVERSIBLE));
    expect(migration.reversible).toBe(false);
    expect(valid(flat('001_a'))[0].reversible).toBe(true);
  });

  it('is refused without a reason, below the first line, in an up file, or above statements', () => {
    expect(downProblems(`${IRREVERSIBLE_MARKER}\n`)).toEqual([
      `migrations/001_a.down.sql:1: '${IRREVERSIBLE_MARKER}' without a reason (say why it cannot be undone: '${IRREVERSIBLE_MARKER} the dropped column's data is gone')`,
    ]);
    expect(downProblems(`-- note\n${IRREVERSIBLE}`)).toEqual([
      `migrations/001_a.down.sql: no SQL statements (at least one statement; whitespace and comments alone are not a migration; a down file that cannot undo its up file starts with '${IRREVERSIBLE_MARKER} <reason>')`,
      `migrations/001_a.down.sql:2: '${IRREVERSIBLE_MARKER}' below the first line (only as the first line of the down file)`,
    ]);
    expect(upProblems(`${IRREVERSIBLE}${UP}`)).toEqual([
      `migrations/001_a.up.sql:1: '${IRREVERSIBLE_MARKER}' in an up file (only as the first line of a down file that cannot undo its up file)`,
    ]);
    expect(downProblems(`${IRREVERSIBLE}${DOWN}`)).toEqual([
      `migrations/001_a.down.sql:2: statements in a down file marked '${IRREVERSIBLE_MARKER}' (rollback never runs it: remove the statements, or the marker if they undo the up file)`,
    ]);
  });
});

describe('loadMigrations', () => {
  const temporary: string[] = [];
  afterEach(() => {
    for (const dir of temporary.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });
  const project = (files: Record<string, string | Buffer | null>) => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'learnflow-migrations-'));
    temporary.push(root);
    fs.mkdirSync(path.join(root, 'migrations'));
    for (const [relative, content] of Object.entries(files)) {
      const full = path.join(root, 'migrations', relative);
      if (content === null) {
        fs.mkdirSync(full, { recursive: true });
      } else {
        fs.mkdirSync(path.dirname(full), { recursive: true });
        fs.writeFileSync(full, content);
      }
    }
    return root;
  };

  it('reads both layouts from disk with sources relative to the root', () => {
    const root = project({ '001_a.up.sql': UP, '001_a.down.sql': DOWN, '002_b/up.sql': UP, '002_b/down.sql': DOWN, 'README.md': '#\n' });
    const migrations = loadMigrations('migrations', { root });
    expect(migrations.map((m) => [m.up.key, m.up.source, m.down.source])).toEqual([
      ['001_a.up.sql', 'migrations/001_a.up.sql', 'migrations/001_a.down.sql'],
      ['002_b.up.sql', 'migrations/002_b/up.sql', 'migrations/002_b/down.sql'],
    ]);
    expect(loadMigrations(path.join(root, 'migrations'), { root })).toEqual(migrations);
  });

  it('throws a MigrationFileError listing every problem, one per line', () => {
    const root = project({ '001_a.up.sql': `BEGIN;\n${UP}`, '.DS_Store': 'x' });
    let error: unknown;
    try {
      loadMigrations('migrations', { root });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(MigrationFileError);
    const problems = (error as MigrationFileError).problems;
    expect(problems).toEqual([
      'migrations/.DS_Store: unexpected hidden file (only .gitkeep among hidden files)',
      'migrations/001_a.up.sql: has no matching down file (every migration has both: add migrations/001_a.down.sql)',
      `migrations/001_a.up.sql:1: transaction control statement BEGIN (none: the runner wraps each file in a transaction, or runs it in autocommit under '${NO_TRANSACTION_HEADER}')`,
    ]);
    const lines = (error as Error).message.split('\n');
    expect(lines[0]).toBe('migration files: 3 problem(s)');
    expect(lines.slice(1)).toEqual(problems.map((p) => `  - ${p}`));
  });

  it('rejects an empty migration folder', () => {
    const root = project({ '001_a.up.sql': UP, '001_a.down.sql': DOWN, '002_b': null });
    expect(() => loadMigrations('migrations', { root })).toThrow(
      'migrations/002_b: empty folder (a migration folder NNN_name/ holds up.sql and down.sql)',
    );
  });

  it('follows a symbolic link to a regular file inside the folder', () => {
    const root = project({ '001_a.up.sql': UP, '001_a.down.sql': DOWN, '002_b.up.sql': UP });
    fs.symlinkSync('001_a.down.sql', path.join(root, 'migrations', '002_b.down.sql'));
    fs.mkdirSync(path.join(root, 'migrations', '003_c'));
    fs.writeFileSync(path.join(root, 'migrations', '003_c', 'up.sql'), UP);
    fs.symlinkSync(path.join('..', '001_a.down.sql'), path.join(root, 'migrations', '003_c', 'down.sql'));
    const migrations = loadMigrations('migrations', { root });
    expect(migrations.map((m) => m.down.source)).toEqual(['migrations/001_a.down.sql', 'migrations/002_b.down.sql', 'migrations/003_c/down.sql']);
    expect(migrations[2].down.sql).toBe(DOWN);
  });

  it('refuses links that leave the folder or lead to a folder, naming each, and embeds nothing from outside', () => {
    const root = project({ '001_a.up.sql': UP, '001_a.down.sql': DOWN });
    const elsewhere = path.join(root, 'shared');
    fs.mkdirSync(path.join(elsewhere, '002_b'), { recursive: true });
    fs.writeFileSync(path.join(elsewhere, '002_b', 'up.sql'), UP);
    fs.writeFileSync(path.join(elsewhere, '002_b', 'down.sql'), DOWN);
    fs.writeFileSync(path.join(elsewhere, 'secret.txt'), 'password=hunter2\n');
    fs.symlinkSync(path.join(elsewhere, '002_b'), path.join(root, 'migrations', '002_b'));
    fs.symlinkSync(path.join(elsewhere, 'secret.txt'), path.join(root, 'migrations', '003_c.up.sql'));
    fs.symlinkSync('/etc/hostname', path.join(root, 'migrations', '003_c.down.sql'));
    fs.symlinkSync('.', path.join(root, 'migrations', '004_d'));
    let problems: readonly string[] = [];
    try {
      loadMigrations('migrations', { root });
    } catch (error) {
      problems = (error as MigrationFileError).problems;
    }
    expect(problems).toEqual([
      expect.stringMatching(/^migrations\/002_b: symbolic link leaves the migrations folder \(to .*shared\/002_b\)/),
      expect.stringMatching(/^migrations\/003_c\.down\.sql: symbolic link leaves the migrations folder \(to \/etc\/hostname\)/),
      expect.stringMatching(/^migrations\/003_c\.up\.sql: symbolic link leaves the migrations folder \(to .*secret\.txt\); the synth embeds what it reads into the Job, so copy the file in instead$/),
      expect.stringMatching(/^migrations\/004_d: symbolic link leaves the migrations folder/),
    ]);
    expect(problems.join('\n')).not.toContain('hunter2');
  });

  it('names a dangling link and anything that is neither a file nor a folder', () => {
    const root = project({ '001_a.up.sql': UP });
    fs.symlinkSync(path.join(root, 'nowhere.sql'), path.join(root, 'migrations', '001_a.down.sql'));
    execFileSync('mkfifo', [path.join(root, 'migrations', '002_b.up.sql')]);
    expect(() => loadMigrations('migrations', { root })).toThrow(
      [
        'migrations/001_a.down.sql: symbolic link cannot be followed: ENOENT (regular files, or links to them inside the folder)',
        'migrations/001_a.up.sql: has no matching down file (every migration has both: add migrations/001_a.down.sql)',
        'migrations/002_b.up.sql: not a regular file (regular files and folders)',
      ].map((p) => `  - ${p}`).join('\n'),
    );
  });

  it('rejects a missing folder', () => {
    const root = project({});
    expect(() => loadMigrations('db', { root })).toThrow('db: folder not found (a folder of NNN_name.up.sql and NNN_name.down.sql files)');
  });

  it("loads this repository's migrations/ without a problem, every up file of it", () => {
    const root = path.resolve(__dirname, '../..');
    const migrations = loadMigrations('migrations', { root });
    const upFiles = fs.readdirSync(path.join(root, 'migrations'), { recursive: true, encoding: 'utf8' })
      .map((f) => f.replace(/\\/g, '/')).filter((f) => /(^|\/|\.)up\.sql$/.test(f)).map((f) => `migrations/${f}`).sort();
    expect(migrations.map((m) => m.up.source).sort()).toEqual(upFiles);
    expect(migrations.length).toBeGreaterThan(0);
  });
});
