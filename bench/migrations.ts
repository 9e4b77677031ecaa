// The migration runner against its floor (plain psql, all files in one transaction) and its
// peer (dbmate), on one throwaway PostgreSQL, a fresh database per run, the same files.
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { migrationBundle } from '../lib/migrations/bundle';
import { loadMigrations } from '../lib/migrations/files';
import { prepareDistJob } from '../test/support/dist-job';
import { Pg } from '../test/support/postgres';
import { distMigrationJobIn } from '../test/support/project';
import { Dbmate, writeDbmateMigrations } from './dbmate';
import { Command, Sample, Variant, sampleInterleaved, timeCommand } from './measure';

export type Tool = 'runner' | 'psql' | 'dbmate';

/** A migration set to apply: a synthesized project copy (its dist/ Job and its migrations/). */
export interface MigrationSet {
  readonly id: string;
  /** How tables and reports name it, e.g. 'real schema (migrations/)'. */
  readonly label: string;
  readonly project: string;
  /**
   * The copy's dist/ has no Job (its synth failed): run the runner on the bundle that
   * lib/migrations/bundle.ts renders for these migrations, with the first set's Job otherwise.
   */
  readonly bundleFromLib?: boolean;
}

export interface RunnerCase {
  readonly id: string;
  readonly label: string;
  readonly samples: Map<Tool, Sample>;
}

interface Prepared {
  readonly id: string;
  readonly label: string;
  readonly count: number;
  readonly command: Record<Tool, (db: string) => Command>;
  /** Tables the set creates, counted after each run as a correctness check. */
  expectedTables?: number;
}

/**
 * Measures, for each set, a fresh apply by each tool; for `noopSet`, a re-run of each tool on a
 * database it has already migrated (psql has no notion of "already applied").
 */
export function benchMigrations(options: {
  readonly pg: Pg;
  readonly work: string;
  readonly sets: readonly MigrationSet[];
  readonly noopSet: string;
  readonly dbmate: Dbmate;
  readonly runs: (set: string) => number;
  readonly profile: string;
}): RunnerCase[] {
  const { pg, work, dbmate } = options;
  const password = randomBytes(18).toString('hex');
  const firstJob = distMigrationJobIn(path.join(options.sets[0].project, 'dist'), options.profile);
  const appUser = firstJob.env.PGUSER;
  pg.psql('postgres', `CREATE ROLE ${appUser} LOGIN PASSWORD '${password}'`);
  const fileCopy = Number(pg.psql('postgres', 'SHOW server_version_num')) >= 150000 ? ' STRATEGY FILE_COPY' : '';
  let databases = 0;
  const createDatabase = () => {
    const name = `bench_${++databases}`;
    pg.psql('postgres', `CREATE DATABASE ${name} OWNER ${appUser}${fileCopy}`);
    return name;
  };
  const dropDatabase = (name: string) => pg.psql('postgres', `DROP DATABASE ${name}`);
  const libpq = (db: string) => ({
    PATH: pg.env().PATH,
    PGHOST: pg.host,
    PGPORT: String(pg.port),
    PGUSER: appUser,
    PGPASSWORD: password,
    PGDATABASE: db,
    PGSSLMODE: 'disable',
  });

  const prepared = new Map<string, Prepared>();
  for (const set of options.sets) {
    const dir = path.join(work, `runner-${set.id}`);
    mkdirSync(dir, { recursive: true });
    // The runner: the Job from the copy's dist/, its ConfigMaps laid out like the kubelet's mount.
    const migrations = loadMigrations(path.join(set.project, 'migrations'), { root: set.project });
    const job = set.bundleFromLib ? { ...firstJob, files: migrationBundle(migrations) } : distMigrationJobIn(path.join(set.project, 'dist'), options.profile);
    const mount = prepareDistJob(job, dir, libpq('postgres'));
    // The floor and the peer: the same up files, in the same order.
    const all = path.join(dir, 'all.sql');
    writeFileSync(all, migrations.map((m) => m.up.sql).join('\n'));
    const dbmateDir = path.join(dir, 'dbmate');
    writeDbmateMigrations(dbmateDir, migrations);
    prepared.set(set.id, {
      id: set.id,
      label: set.label,
      count: migrations.length,
      command: {
        runner: (db) => ({ cmd: 'sh', args: [path.join(mount.dir, 'runner.sh'), ...mount.args], cwd: dir, env: { ...mount.env, ...libpq(db) } }),
        psql: (db) => ({ cmd: path.join(pg.bindir, 'psql'), args: ['-X', '-1', '-v', 'ON_ERROR_STOP=1', '-f', all], cwd: dir, env: libpq(db) }),
        dbmate: (db) => ({
          cmd: dbmate.bin ?? 'dbmate',
          args: ['--no-dump-schema', '--migrations-dir', dbmateDir, 'migrate'],
          cwd: dir,
          env: { PATH: pg.env().PATH, DATABASE_URL: `postgres://${appUser}:${password}@${pg.host}:${pg.port}/${db}?sslmode=disable` },
        }),
      },
    });
  }

  const tools: Tool[] = dbmate.bin ? ['runner', 'psql', 'dbmate'] : ['runner', 'psql'];
  /** The set's tables exist, and the tool recorded every migration. */
  const verify = (set: Prepared, tool: Tool, db: string) => {
    const tables = Number(pg.psql(db, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename NOT IN ('applied_migrations', 'schema_migrations')`));
    set.expectedTables ??= tables;
    const recorded = tool === 'psql' ? set.count : Number(pg.psql(db, `SELECT count(*) FROM ${tool === 'runner' ? 'applied_migrations' : 'schema_migrations'}`));
    if (tables !== set.expectedTables || tables === 0 || recorded !== set.count) {
      throw new Error(`${tool} on set ${set.id}: ${tables} tables (expected ${set.expectedTables}), ${recorded} of ${set.count} migrations recorded`);
    }
  };

  /** One tool on a fresh database; `warm` runs it once before the timed run (the no-op case). */
  const variant = (set: Prepared, tool: Tool, warm: boolean): Variant => {
    let db = '';
    return {
      id: tool,
      prepare: () => {
        db = createDatabase();
        if (warm) timeCommand(set.command[tool](db));
      },
      run: () => timeCommand(set.command[tool](db)),
      cleanup: () => {
        try {
          verify(set, tool, db);
        } finally {
          dropDatabase(db);
        }
      },
    };
  };
  const fresh = (set: Prepared): Variant[] => tools.map((tool) => variant(set, tool, false));
  const noop = (set: Prepared): Variant[] => tools.filter((tool) => tool !== 'psql').map((tool) => variant(set, tool, true));

  const cases: RunnerCase[] = [];
  for (const set of prepared.values()) {
    cases.push({ id: `fresh-${set.id}`, label: `fresh apply: ${set.label}`, samples: sampleInterleaved(fresh(set), options.runs(set.id)) as Map<Tool, Sample> });
  }
  const noopSet = prepared.get(options.noopSet)!;
  cases.push({ id: `noop-${noopSet.id}`, label: `re-run, all applied: ${noopSet.label}`, samples: sampleInterleaved(noop(noopSet), options.runs(noopSet.id)) as Map<Tool, Sample> });
  return cases;
}
