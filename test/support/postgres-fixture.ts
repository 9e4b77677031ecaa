// Per-file fixture around startPostgres() (kept apart from it: the bench runs outside vitest).
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { Pg, startPostgres } from './postgres';
export interface PostgresFixture {
  /** A new database for one test, owned by the application user when the fixture has one. */
  freshDatabase(): string;
}

/**
 * One throwaway server for the test file (started before its tests, removed after them), a
 * scratch folder, and optionally the application user that owns each fresh database, as the
 * Bitnami chart sets it up. `ready` hands the server and the folder to the file's variables.
 */
export function usePostgres(
  name: string,
  ready: (pg: Pg, tmp: string) => void,
  options: { appUser?: { name: string; password: string } } = {},
): PostgresFixture {
  let pg: Pg | undefined;
  let tmp: string | undefined;
  let databases = 0;
  beforeAll(async () => {
    pg = await startPostgres();
    tmp = mkdtempSync(path.join(os.tmpdir(), `learnflow-${name}-`));
    if (options.appUser) pg.psql('postgres', `CREATE ROLE ${options.appUser.name} LOGIN PASSWORD '${options.appUser.password}'`);
    ready(pg, tmp);
  });
  afterAll(async () => {
    await pg?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });
  return {
    freshDatabase() {
      const db = `${name}_${++databases}`;
      if (options.appUser) pg!.psql('postgres', `CREATE DATABASE ${db} OWNER ${options.appUser.name}`);
      else pg!.createDatabase(db);
      return db;
    },
  };
}
