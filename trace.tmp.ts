import { spawnSync } from 'node:child_process';
import { mkdtempSync, chmodSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startPostgres } from './test/support/postgres';
import { distMigrationJob, prepareDistJob } from './test/support/dist-job';

(async () => {
  const pg = await startPostgres();
  try {
    const parent = mkdtempSync(path.join(os.tmpdir(), 'trace-'));
    chmodSync(parent, 0o777);
    const env = (db: string) => ({ PATH: `${pg.bindir}:/usr/bin:/bin`, PGHOST: pg.host, PGPORT: String(pg.port), PGDATABASE: db, PGUSER: pg.user, PGPASSWORD: pg.password, PGSSLMODE: 'disable' });
    const times: Record<string, number[]> = { runner: [], psql: [] };
    const all = path.join(parent, 'all.sql');
    require('node:fs').writeFileSync(all, require('node:fs').readdirSync('migrations').filter((f: string) => f.endsWith('.up.sql')).sort().map((f: string) => readFileSync(path.join('migrations', f), 'utf8')).join('\n'));
    for (let i = 0; i < 12; i++) {
      const db = `t${i}`; pg.createDatabase(db);
      const job = prepareDistJob(distMigrationJob('development'), parent, env(db));
      const traced = i === 0;
      const args = traced ? ['strace', '-f', '-tt', '-qq', '-e', 'trace=execve,exit_group,connect', '-o', path.join(parent, 'trace'), 'sh', path.join(job.dir, 'runner.sh'), ...job.args] : ['sh', path.join(job.dir, 'runner.sh'), ...job.args];
      let t = process.hrtime.bigint();
      const r = spawnSync(args[0], args.slice(1), { env: job.env, encoding: 'utf8' });
      if (!traced) times.runner.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (r.status !== 0) console.log(r.stderr);
      const db2 = `p${i}`; pg.createDatabase(db2);
      t = process.hrtime.bigint();
      spawnSync('psql', ['-X', '-q', '-1', '-v', 'ON_ERROR_STOP=1', '-f', all], { env: env(db2), encoding: 'utf8' });
      times.psql.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1].toFixed(1);
    console.log('runner', med(times.runner), 'psql', med(times.psql));
    console.log(readFileSync(path.join(parent, 'trace'), 'utf8').split('\n').filter((l) => /execve|exit_group|connect\(/.test(l)).map((l) => l.slice(0, 140)).join('\n'));
  } finally {
    await pg.stop();
  }
})();
