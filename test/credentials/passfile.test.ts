// The login of our Jobs (lib/credentials/passfile.sh, rendered with its contract): the password
// file it writes is what a real libpq accepts, for any password a Secret can hold on one line.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { passfileScript, PASSFILE } from '../../lib/credentials/passfile-contract';
import { exitCodes } from '../../lib/script-contract';
import { runCommand } from '../support/dist-job';
import { Pg } from '../support/postgres';
import { usePostgres } from '../support/postgres-fixture';

const EXIT = exitCodes(PASSFILE);
let pg: Pg;
let dir: string;
usePostgres('passfile', (server, tmp) => {
  pg = server;
  dir = tmp;
});

/** Runs the login as the init container does, with `password` as the Secret's key holds it. */
async function login(password: string, user = 'postgres') {
  const at = mkdtempSync(path.join(dir, 'login-'));
  writeFileSync(path.join(at, 'password'), password, { mode: 0o440 });
  const env = { PGHOST: pg.host, PGPORT: String(pg.port), PGDATABASE: 'postgres', PGUSER: user, PASSWORD_FILE: path.join(at, 'password'), PGPASSFILE: path.join(at, 'pgpass') };
  const result = await runCommand(['/bin/sh', '-c', passfileScript(), 'login'], env);
  return { result, env };
}

/** psql with the password file only, as the Job's container runs it. */
const psqlWith = (env: Record<string, string>) => execFileSync(path.join(pg.bindir, 'psql'), ['-XAtqc', 'SELECT current_user', '-w'], {
  encoding: 'utf8', env: { PATH: process.env.PATH, PGHOST: env.PGHOST, PGPORT: env.PGPORT, PGDATABASE: env.PGDATABASE, PGUSER: env.PGUSER, PGPASSFILE: env.PGPASSFILE, PGSSLMODE: 'disable' },
}).trim();

describe('the login init container', () => {
  it.each([
    ['letters and digits', 'Abc123def456ghi789jkl012'],
    ['colons and backslashes, which the file escapes', 'a:b\\c::d\\\\e:'],
    ['quotes, spaces, $ and #', `it's "quoted" $HOME #not-a-comment`],
  ])('writes a password file libpq logs in with: %s', async (_what, password) => {
    pg.psql('postgres', `DROP ROLE IF EXISTS tricky; CREATE ROLE tricky LOGIN PASSWORD '${password.replace(/'/g, "''")}'`);
    const { result, env } = await login(password, 'tricky');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(EXIT.ok);
    expect(statSync(env.PGPASSFILE).mode & 0o777).toBe(0o600);
    expect(psqlWith(env)).toBe('tricky');
  });

  it("drops the value's trailing line breaks, as the database image does when it reads the same key", async () => {
    const { result, env } = await login(`${pg.password}\n`);
    expect(result.code).toBe(EXIT.ok);
    expect(psqlWith(env)).toBe('postgres');
  });

  it.each([
    ['an empty key', '', /the password file .* is empty/],
    ['a line break inside', 'one\ntwo', /holds a line break, which a libpq password file cannot hold/],
  ])('refuses %s with exit 1, naming the fix', async (_what, password, message) => {
    const { result } = await login(password);
    expect(result.code).toBe(EXIT.refused);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toContain('fix the credentials Secret');
  });
});
