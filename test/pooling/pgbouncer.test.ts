// PgBouncer as dist/ renders it (test/support/pooler.ts), Debian's pgbouncer against a real
// PostgreSQL: clients log in as the database's own users through the lookup role the setup Job
// creates; more clients than max_connections all get through the pooler while direct
// connections are refused; a wrong password is refused; transaction pooling does not hand one
// client's session state to the next.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LearnflowPostgresProps } from '../../lib/config';
import { renderManifests } from '../support/dist-job';
import { Pg, startPostgres } from '../support/postgres';
import { RunningPooler, runPoolerAuthJob, startPooler } from '../support/pooler';
import { describeWithTools, requireTool } from '../support/tools';
import { FIXTURE_MIGRATIONS } from '../support/variants';

const MAX_CONNECTIONS = 20;
const APP_USER = 'learnflow';
const appPassword = randomBytes(18).toString('hex');
const poolerPassword = randomBytes(18).toString('hex');

/** psql once, as `user` with `password`, at `port` (the pooler's or the database's). */
function psql(pg: Pg, port: number, sql: string, password = appPassword, user = APP_USER): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(path.join(pg.bindir, 'psql'), ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-c', sql], {
      env: { PATH: pg.env().PATH, PGHOST: pg.host, PGPORT: String(port), PGUSER: user, PGPASSWORD: password, PGDATABASE: 'learnflow', PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '60' },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => resolve({ code: code ?? -1, out: out.trim(), err }));
  });
}

describeWithTools('PgBouncer, as rendered, in front of a real PostgreSQL', ['pgbouncer'], () => {
  let pg: Pg;
  const poolers: RunningPooler[] = [];
  /** One pooler at a time: the server connections counted are its own. */
  const start = async (pooler: LearnflowPostgresProps['pooler']) => {
    for (const old of poolers.splice(0)) await old.stop();
    const all = renderManifests(FIXTURE_MIGRATIONS, { allowedNamespaces: ['learnflow'], pooler });
    const p = await startPooler(all, pg, poolerPassword, requireTool('pgbouncer'));
    poolers.push(p);
    return p;
  };

  beforeAll(async () => {
    pg = await startPostgres({ settings: { max_connections: String(MAX_CONNECTIONS) } });
    pg.psql('postgres', `CREATE ROLE ${APP_USER} LOGIN PASSWORD '${appPassword}'; CREATE DATABASE learnflow OWNER ${APP_USER};`);
    const all = renderManifests(FIXTURE_MIGRATIONS, { pooler: { enabled: true } });
    const job = await runPoolerAuthJob(all, pg, { 'postgres-password': pg.password, 'pooler-password': poolerPassword });
    expect(job.stderr).toBe('');
    expect(job.code).toBe(0);
  });
  afterAll(async () => {
    for (const p of poolers) await p.stop();
    await pg?.stop();
  });

  it('sets up a lookup role that sees no superuser, and runs again without a change', async () => {
    const all = renderManifests(FIXTURE_MIGRATIONS, { pooler: { enabled: true } });
    const again = await runPoolerAuthJob(all, pg, { 'postgres-password': pg.password, 'pooler-password': poolerPassword });
    expect(again.code).toBe(0);
    expect(pg.psql('postgres', "SELECT rolsuper, rolreplication, rolcreaterole FROM pg_roles WHERE rolname = 'pgbouncer_auth'")).toBe('f|f|f');
    const lookup = (name: string) => psql(pg, pg.port, `SELECT coalesce(uname, '-') FROM pgbouncer.user_lookup('${name}')`, poolerPassword, 'pgbouncer_auth');
    expect((await lookup(APP_USER)).out).toBe(APP_USER);
    expect((await lookup('postgres')).out).toBe('-');
    // Nobody else may call it.
    expect((await psql(pg, pg.port, `SELECT * FROM pgbouncer.user_lookup('${APP_USER}')`)).err).toContain('permission denied');
  });

  it('lets the application user in with its own password and refuses a wrong one', async () => {
    const pooler = await start({ enabled: true, defaultPoolSize: 5 });
    const ok = await psql(pg, pooler.port, 'SELECT current_user');
    expect(ok.err).toBe('');
    expect(ok.out).toBe(APP_USER);
    const wrong = await psql(pg, pooler.port, 'SELECT 1', 'not-the-password');
    expect(wrong.code).not.toBe(0);
    expect(wrong.err).toMatch(/password authentication failed|SASL authentication failed/);
    // The superuser is not let through the pooler, even with its password.
    const superuser = await psql(pg, pooler.port, 'SELECT 1', pg.password, 'postgres');
    expect(superuser.code).not.toBe(0);
  });

  it(`completes ${3 * MAX_CONNECTIONS} concurrent clients through the pooler while direct connections are refused`, async () => {
    const pooler = await start({ enabled: true, defaultPoolSize: 8 });
    const since = pg.psql('postgres', 'SELECT now()');
    const clients = 3 * MAX_CONNECTIONS;
    const work = 'SELECT pg_sleep(0.5), 1';
    const pooled = await Promise.all(Array.from({ length: clients }, () => psql(pg, pooler.port, work)));
    expect(pooled.filter((r) => r.code !== 0).map((r) => r.err)).toEqual([]);
    // The pooler used no more server connections than its pool.
    expect(Number(pg.psql('postgres', `SELECT count(*) FROM pg_stat_activity WHERE usename = '${APP_USER}' AND backend_start >= '${since}'`))).toBeLessThanOrEqual(8);
    const direct = await Promise.all(Array.from({ length: clients }, () => psql(pg, pg.port, work)));
    const refused = direct.filter((r) => r.code !== 0);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) expect(r.err).toMatch(/too many clients|remaining connection slots are reserved/);
  });

  it('does not hand one client\'s session state to the next in transaction pooling', async () => {
    // One server connection: every client gets the same one, so anything left on it would show.
    const pooler = await start({ enabled: true, defaultPoolSize: 1 });
    expect(pooler.ini).toContain('pool_mode = transaction');
    const first = await psql(pg, pooler.port, "SET search_path TO leaked; SET statement_timeout = '1s'; CREATE TEMP TABLE mine (id int); PREPARE p AS SELECT 1; SELECT pg_backend_pid()");
    expect(first.code).toBe(0);
    const second = await psql(pg, pooler.port, "SELECT pg_backend_pid() || ' ' || current_setting('search_path') || ' ' || current_setting('statement_timeout') || ' ' || (to_regclass('pg_temp.mine') IS NULL) || ' ' || (SELECT count(*) FROM pg_prepared_statements)");
    const [pid, ...state] = second.out.split(' ');
    expect(pid).toBe(first.out.split('\n').at(-1));
    expect(state.join(' ')).toBe('"$user", public 0 true 0');
  });
});
