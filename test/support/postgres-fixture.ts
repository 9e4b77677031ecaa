// Per-file fixture around startPostgres() (kept apart from it: the bench runs outside vitest).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { Pg, connectionEnv, startPostgres } from './postgres';

export interface PostgresFixture {
  /** A new database for one test, owned by the application user when the fixture has one. */
  freshDatabase(): string;
  /** The libpq variables (PGHOST, PGPASSWORD, ...) that log a Job's command into `db` as the application user. */
  appConnection(db: string): Record<string, string>;
}

/**
 * One throwaway server for the test file (started before its tests, removed after them), a
 * scratch folder, and optionally the application user (with a random password) that owns each
 * fresh database, as the Bitnami chart sets it up. `ready` hands the server and the folder to
 * the file's variables.
 */
export function usePostgres(name: string, ready: (pg: Pg, tmp: string) => void, options: { appUser?: string } = {}): PostgresFixture {
  const appUser = options.appUser;
  const appPassword = randomBytes(18).toString('hex');
  let pg: Pg | undefined;
  let tmp: string | undefined;
  let databases = 0;
  beforeAll(async () => {
    pg = await startPostgres();
    tmp = mkdtempSync(path.join(os.tmpdir(), `learnflow-${name}-`));
    if (appUser) pg.psql('postgres', `CREATE ROLE ${appUser} LOGIN PASSWORD '${appPassword}'`);
    ready(pg, tmp);
  });
  afterAll(async () => {
    await pg?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });
  return {
    freshDatabase() {
      const db = `${name}_${++databases}`;
      if (appUser) pg!.psql('postgres', `CREATE DATABASE ${db} OWNER ${appUser}`);
      else pg!.createDatabase(db);
      return db;
    },
    appConnection(db) {
      if (!appUser) throw new Error(`usePostgres('${name}') has no application user`);
      return connectionEnv(pg!, db, appPassword);
    },
  };
}
