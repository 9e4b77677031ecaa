// Generated migration sets for scale tests and the bench: valid under lib/migrations/files.ts,
// deterministic (same arguments, same bytes), and shaped like real schema work.
// Each set maps a path inside migrations/ to its content.

export type MigrationFiles = Record<string, string>;

/** Bytes of every file of a set (what the synth reads). */
export function totalBytes(files: Readonly<MigrationFiles>): number {
  return Object.values(files).reduce((sum, text) => sum + Buffer.byteLength(text), 0);
}

export interface LargeSetOptions {
  /** Number of migrations. @default 200 */
  readonly count?: number;
  /** Bytes of SQL across all files, at least. @default 5.25 MiB */
  readonly minBytes?: number;
}

/**
 * Big migrations: each creates a content table with constraints and seeds it with one long
 * multi-row INSERT, so that the set weighs at least `minBytes`.
 */
export function largeMigrationSet(options: LargeSetOptions = {}): MigrationFiles {
  const count = options.count ?? 200;
  const perFile = Math.ceil((options.minBytes ?? 5.25 * 1024 * 1024) / count);
  const random = seeded(20_240_101);
  const files: MigrationFiles = {};
  for (let i = 1; i <= count; i++) {
    const version = String(i).padStart(3, '0');
    const table = `content_${version}`;
    const head = [
      `-- ${table}: lesson content batch ${i}, seeded for the catalogue (generated for scale tests).`,
      `CREATE TABLE ${table} (`,
      '    id          integer      NOT NULL,',
      '    slug        varchar(120) NOT NULL,',
      '    title       text         NOT NULL,',
      '    body        text         NOT NULL,',
      "    difficulty  varchar(20)  NOT NULL DEFAULT 'beginner',",
      '    minutes     integer      NOT NULL,',
      '    created_at  timestamptz  NOT NULL DEFAULT now(),',
      `    CONSTRAINT ${table}_pkey PRIMARY KEY (id),`,
      `    CONSTRAINT ${table}_slug_key UNIQUE (slug),`,
      `    CONSTRAINT ${table}_difficulty_check CHECK (difficulty IN ('beginner', 'intermediate', 'advanced')),`,
      `    CONSTRAINT ${table}_minutes_check CHECK (minutes > 0 AND minutes <= 600)`,
      ');',
      '',
      `INSERT INTO ${table} (id, slug, title, body, difficulty, minutes) VALUES`,
    ].join('\n');
    const rows: string[] = [];
    let size = Buffer.byteLength(head) + 2;
    for (let id = 1; size < perFile; id++) {
      const title = sentence(random, 3 + Math.floor(random() * 4));
      const row = `    (${id}, '${table}-${id}', '${quote(title)}', '${quote(sentence(random, 12 + Math.floor(random() * 12)))}', ` +
        `'${DIFFICULTIES[id % 3]}', ${5 + Math.floor(random() * 120)})`;
      rows.push(row);
      size += Buffer.byteLength(row) + 2;
    }
    files[`${version}_create_${table}.up.sql`] = `${head}\n${rows.join(',\n')};\n`;
    files[`${version}_create_${table}.down.sql`] = `DROP TABLE ${table};\n`;
  }
  return files;
}

/**
 * Small migrations in groups of four, the everyday kind: create a table, add a column, index
 * it, seed two rows. Versions are zero-padded to four digits (0001 … 1000).
 */
export function smallMigrationSet(count = 1000): MigrationFiles {
  const width = Math.max(3, String(count).length);
  const files: MigrationFiles = {};
  for (let i = 1; i <= count; i++) {
    const version = String(i).padStart(width, '0');
    const table = `feature_${Math.floor((i - 1) / 4)}`;
    const [name, up, down] = [
      [`create_${table}`, `CREATE TABLE ${table} (\n    id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n    name text NOT NULL\n);\n`, `DROP TABLE ${table};\n`],
      [`add_${table}_enabled`, `ALTER TABLE ${table} ADD COLUMN enabled boolean NOT NULL DEFAULT false;\n`, `ALTER TABLE ${table} DROP COLUMN enabled;\n`],
      [`index_${table}_name`, `CREATE INDEX idx_${table}_name ON ${table} (name);\n`, `DROP INDEX idx_${table}_name;\n`],
      [`seed_${table}`, `INSERT INTO ${table} (name, enabled) VALUES ('alpha', true), ('beta', false);\n`, `DELETE FROM ${table};\n`],
    ][(i - 1) % 4];
    files[`${version}_${name}.up.sql`] = `-- ${version}: ${name.replace(/_/g, ' ')}\n${up}`;
    files[`${version}_${name}.down.sql`] = down;
  }
  return files;
}

const DIFFICULTIES = ['beginner', 'intermediate', 'advanced'];
const WORDS = (
  'loop variable function recursion list dictionary tuple string slice index class object method ' +
  'module import exception test assert generator iterator closure decorator comprehension lambda ' +
  "file path json request response database query join schema migration learner's teacher's hint"
).split(' ');

function sentence(random: () => number, words: number): string {
  const out: string[] = [];
  for (let i = 0; i < words; i++) out.push(WORDS[Math.floor(random() * WORDS.length)]);
  const text = out.join(' ');
  return text[0].toUpperCase() + text.slice(1);
}

const quote = (text: string) => text.replace(/'/g, "''");

/** mulberry32: a small deterministic PRNG, so generated sets are byte-identical across runs. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
