import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Migration } from './types';
import { compareVersions } from './versions';

/**
 * Which migrations are released: `migrations/released.tsv`, committed, lists every migration
 * that has shipped (version, name and the SHA-256 of its up file, as the runner records it).
 * The lint and the grammar check judge only the others, found by name: a released migration is
 * never judged again (by a newer squawk, or a rule turned on later), and the check's cost follows
 * what is new, not the history. The synth refuses a released migration edited or removed, as
 * the runner would in the cluster. `npm run migrations -- release` writes the file.
 */

/** File name of the baseline, inside the migrations folder. */
export const RELEASED_FILE = 'released.tsv';

export interface ReleasedMigration {
  readonly version: string;
  readonly name: string;
  /** SHA-256 of the up file's bytes. */
  readonly sha256: string;
}

/** One migration of the folder by its name alone: what a listing shows without reading a file. */
export interface ListedMigration {
  readonly version: string;
  readonly name: string;
  /** Paths inside the migrations folder of its up and down file, in whichever layout it uses. */
  readonly up: string;
  readonly down: string;
}

const HEADER = [
  '# Released migrations: the lint and the grammar check (npm test) do not judge these again.',
  '# Written by `npm run migrations -- release` (README, Migrations); one line each:',
  '# version, name, sha256 of the up file. Never edit a released migration: add a new one.',
];
const DIGITS = /^[0-9]+$/;
const NAME = /^[a-z][a-z0-9_]*$/;
const HEX = /^[0-9a-f]+$/;

/** Reads `released.tsv`'s text; `shown` names the file in messages. */
export function parseReleased(text: string, shown: string): { released: ReleasedMigration[]; problems: string[] } {
  const released: ReleasedMigration[] = [];
  const problems: string[] = [];
  text.split('\n').forEach((line, i) => {
    if (line === '' || line.startsWith('#')) return;
    // Split, then check each field: cheaper than one pattern over the line, for thousands of lines.
    const [version, name, sha256, extra] = line.split('\t');
    if (extra === undefined && sha256?.length === 64 && DIGITS.test(version) && NAME.test(name) && HEX.test(sha256)) released.push({ version, name, sha256 });
    else problems.push(`${shown}:${i + 1}: not 'version<TAB>name<TAB>sha256' (rewrite it with npm run migrations -- release)`);
  });
  return { released, problems };
}

/** Reads `migrations/released.tsv`; none when the file does not exist (nothing released yet). */
export function readReleased(migrationsDir: string, shown = 'migrations'): { released: ReleasedMigration[]; problems: string[] } {
  const file = path.join(migrationsDir, RELEASED_FILE);
  if (!fs.existsSync(file)) return { released: [], problems: [] };
  return parseReleased(fs.readFileSync(file, 'utf8'), `${shown}/${RELEASED_FILE}`);
}

/**
 * What the synth checks against `released.tsv` (files.ts, with the hashes it computes anyway):
 * every released migration still there, its up file unchanged. A database that applied a
 * migration refuses a changed up file, and one that is gone, so the synth refuses them first.
 */
export function releasedDrift(released: readonly ReleasedMigration[], migrations: readonly Migration[], shown: string): string[] {
  const byId = new Map(migrations.map((m) => [`${m.version}_${m.name}`, m]));
  return released.flatMap((entry) => {
    const migration = byId.get(`${entry.version}_${entry.name}`);
    if (!migration) return [missing(entry, shown)];
    if (migration.up.sha256 === entry.sha256) return [];
    return [`${migration.up.source}: changed after its release (${RELEASED_FILE} records sha256 ${entry.sha256}, the file has ${migration.up.sha256}); ` +
      'a database that applied it refuses the change: restore the file and add a new migration'];
  });
}

const missing = (entry: ReleasedMigration, shown: string) =>
  `${shown}/${RELEASED_FILE}: released migration ${entry.version}_${entry.name} is not in ${shown}/ ` +
  '(restore it; if it was rolled back everywhere and removed on purpose, run npm run migrations -- release)';

/** The text of `released.tsv` for these migrations. */
export function renderReleased(migrations: readonly Pick<Migration, 'version' | 'name' | 'up'>[]): string {
  const lines = [...migrations]
    .sort((a, b) => compareVersions(a.version, b.version))
    .map((m) => `${m.version}\t${m.name}\t${m.up.sha256}`);
  return [...HEADER, ...lines, ''].join('\n');
}

const FLAT = /^([0-9]+)_([a-z][a-z0-9_]*)\.(up|down)\.sql$/;
const FOLDER = /^([0-9]+)_([a-z][a-z0-9_]*)$/;

/**
 * The migrations of the folder as its listing names them (file names and folder names only;
 * nothing is read). Names the synth would refuse are left out: the synth reports them.
 */
export function listMigrations(migrationsDir: string): ListedMigration[] {
  return migrationsNamed(fs.readdirSync(migrationsDir));
}

/** The migrations among these names of the folder's entries (see {@link listMigrations}). */
function migrationsNamed(names: readonly string[]): ListedMigration[] {
  const found = new Map<string, { version: string; name: string; up?: string; down?: string }>();
  const unit = (version: string, name: string) => {
    const id = `${version}_${name}`;
    let entry = found.get(id);
    if (!entry) found.set(id, (entry = { version, name }));
    return entry;
  };
  // Names alone tell the layouts apart (a folder's name has no .sql); the synth checks the rest.
  for (const name of names) {
    const flat = FLAT.exec(name);
    const folder = flat ? null : FOLDER.exec(name);
    if (flat) unit(flat[1], flat[2])[flat[3] as 'up' | 'down'] = name;
    else if (folder) {
      const entry = unit(folder[1], folder[2]);
      entry.up = `${name}/up.sql`;
      entry.down = `${name}/down.sql`;
    }
  }
  return [...found.values()]
    .filter((m): m is ListedMigration => m.up !== undefined && m.down !== undefined)
    .sort((a, b) => compareVersions(a.version, b.version));
}

export interface ReleaseSplit {
  /** Migrations not in the baseline: the ones to judge. */
  readonly pending: ListedMigration[];
  /** How many listed migrations the baseline releases. */
  readonly released: number;
  /** A malformed baseline line, or a released migration that is gone, each with what to do. */
  readonly problems: string[];
}

/**
 * Splits the folder's migrations into released and pending ones by their names: one listing and
 * one small read, whatever the history. Whether a released file changed is the synth's check
 * ({@link releasedDrift}), made with the hashes it computes anyway.
 */
export function splitReleased(migrationsDir: string, shown = 'migrations'): ReleaseSplit {
  const { released, problems } = readReleased(migrationsDir, shown);
  const releasedIds = new Set(released.map((r) => `${r.version}_${r.name}`));
  // The names of released migrations are only counted: pending ones are read from the rest.
  const present = new Set<string>();
  const others: string[] = [];
  for (const name of fs.readdirSync(migrationsDir)) {
    const id = name.endsWith('.up.sql') ? name.slice(0, -7) : name.endsWith('.down.sql') ? name.slice(0, -9) : name;
    if (releasedIds.has(id)) present.add(id);
    else others.push(name);
  }
  for (const entry of released) {
    if (!present.has(`${entry.version}_${entry.name}`)) problems.push(missing(entry, shown));
  }
  return { pending: migrationsNamed(others), released: present.size, problems };
}
