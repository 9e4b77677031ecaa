// Proven rollbacks (test/support/rollback-proof.ts): every migration of migrations/ applied,
// undone by its down file through the rendered rollback template, the schema compared with
// pg_dump before and after, then applied again; and what the proof says of down files that
// leave objects behind, remove too much, or cannot be undone.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadMigrations } from '../../lib/migrations/files';
import { describeDiff, diffDumps } from '../../lib/migrations/schema-diff';
import { ROOT } from '../support/dist';
import { Pg } from '../support/postgres';
import { usePostgres } from '../support/postgres-fixture';
import { proveRollbacks } from '../support/rollback-proof';
import { migrationSet } from '../support/runner-harness';

let pg: Pg;
let mounts: string;
const { freshDatabase, appConnection } = usePostgres('rollbacks', (server, dir) => {
  pg = server;
  mounts = dir;
}, { appUser: 'learnflow' });

const prove = (set: ReturnType<typeof migrationSet>) => {
  const db = freshDatabase();
  return proveRollbacks(set, { pg, db, connection: appConnection(db), mounts });
};

describe("this repository's migrations/", () => {
  it('each undone exactly by its down file, then applied again (or marked irreversible, and refused)', async () => {
    const migrations = loadMigrations(path.join(ROOT, 'migrations'), { root: ROOT });
    const proof = await prove(migrations);
    expect(proof.problems).toEqual([]);
    expect([...proof.proven, ...proof.irreversible].sort()).toEqual(migrations.map((m) => m.version).sort());
    expect(proof.irreversible).toEqual(migrations.filter((m) => m.reversible === false).map((m) => m.version));
  }, 120_000);
});

describe('a down file that does not undo its up file', () => {
  const base = {
    '001_users.up.sql': 'CREATE TABLE users (id bigint PRIMARY KEY, email text);\n', '001_users.down.sql': 'DROP TABLE users;\n',
  };

  it('fails naming the migration and the objects left behind, and what to do', async () => {
    const proof = await prove(migrationSet({
      ...base,
      '002_profile.up.sql': 'ALTER TABLE users ADD COLUMN bio text;\nCREATE INDEX idx_users_email ON users (email);\nCREATE TABLE badges (id bigint);\n',
      '002_profile.down.sql': 'DROP TABLE badges;\n',
    }));
    expect(proof.proven).toEqual(['001']);
    expect(proof.problems).toEqual([
      'migrations/002_profile.down.sql: does not undo migrations/002_profile.up.sql (pg_dump --schema-only before the up file and after the down file differ): ' +
      'left behind: INDEX public.idx_users_email; changed: TABLE public.users (+ email text,; + bio text; - email text) ' +
      "; make the down file undo what the up file did, in reverse order; if it cannot be undone, make its first line '-- learnflow:irreversible <reason>'",
    ].map((p) => p.replace(' ; ', '; ')));
  });

  it('fails when the down file removes what was there before', async () => {
    const proof = await prove(migrationSet({
      ...base,
      '002_badges.up.sql': 'CREATE TABLE badges (id bigint);\n', '002_badges.down.sql': 'DROP TABLE badges;\nALTER TABLE users DROP COLUMN email;\n',
    }));
    expect(proof.problems[0]).toContain('migrations/002_badges.down.sql: does not undo migrations/002_badges.up.sql');
    expect(proof.problems[0]).toContain('changed: TABLE public.users (+ id bigint NOT NULL; - id bigint NOT NULL,; - email text)');
  });

  it('fails when the up file does not apply again after it, naming why', async () => {
    const proof = await prove(migrationSet({
      ...base,
      '002_admin.up.sql': "INSERT INTO users VALUES (1, 'admin@example.com');\n", '002_admin.down.sql': 'SELECT 1;\n',
    }));
    expect(proof.proven).toEqual(['001']);
    expect(proof.problems).toEqual([expect.stringMatching(/^migrations\/002_admin\.up\.sql: does not apply again after its down file \(exit 7\): .*duplicate key value violates unique constraint "users_pkey".*; make the down file undo/)]);
  });

  it('passes a down file marked irreversible, once the rollback past it refused and changed nothing', async () => {
    const proof = await prove(migrationSet({
      ...base,
      '002_drop_email.up.sql': 'ALTER TABLE users DROP COLUMN email;\n',
      '002_drop_email.down.sql': '-- learnflow:irreversible the email addresses are gone\n',
      '003_badges.up.sql': 'CREATE TABLE badges (id bigint);\n', '003_badges.down.sql': 'DROP TABLE badges;\n',
    }));
    expect(proof).toEqual({ proven: ['001', '003'], irreversible: ['002'], problems: [] });
  });
});

describe('diffDumps', () => {
  const dump = (...objects: [string, string, string][]) =>
    objects.map(([name, type, body]) => `--\n-- Name: ${name}; Type: ${type}; Schema: public; Owner: learnflow\n--\n\n${body}\n`).join('\n');

  it('ignores pg_dump\'s random \\restrict key and its comments, and names each difference', () => {
    const a = `\\restrict AAA\n${dump(['users', 'TABLE', 'CREATE TABLE public.users (\n    id bigint\n);'])}\\unrestrict AAA\n`;
    const b = `\\restrict BBB\n${dump(['users', 'TABLE', 'CREATE TABLE public.users (\n    id bigint\n);'])}\\unrestrict BBB\n`;
    expect(describeDiff(diffDumps(a, b))).toEqual([]);
    const c = dump(['users', 'TABLE', 'CREATE TABLE public.users (\n    id bigint,\n    bio text\n);'], ['users_bio', 'INDEX', 'CREATE INDEX users_bio ON public.users (bio);']);
    expect(describeDiff(diffDumps(a, c))).toEqual([
      'left behind: INDEX public.users_bio',
      'changed: TABLE public.users (+ id bigint,; + bio text; - id bigint)',
    ]);
    expect(describeDiff(diffDumps(c, a))).toEqual([
      'removed, though there before the up file: INDEX public.users_bio',
      'changed: TABLE public.users (+ id bigint; - id bigint,; - bio text)',
    ]);
  });
});
