// The pooler as dist/ renders it, run here: its init container writes the auth_file from the
// credentials Secret's key (runPod, as the kubelet would lay the pod out), its setup Job creates
// the lookup role on a real PostgreSQL as the superuser, and Debian's PgBouncer runs the rendered
// pgbouncer.ini with only the pod's paths and the database's address mapped onto this machine.
import { ChildProcess, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Manifest } from './dist';
import { runPod } from './dist-job';
import { RunnerResult } from './runner-harness';
import { freePort } from './ports';
import { Pg, asServerUser } from './postgres';

export interface RunningPooler {
  readonly port: number;
  /** The configuration file PgBouncer runs with here (its paths mapped). */
  readonly iniFile: string;
  /** The rendered pgbouncer.ini as PgBouncer ran it here. */
  readonly ini: string;
  readonly log: () => string;
  stop(): Promise<void>;
}

const find = (all: readonly Manifest[], kind: string, suffix: string) => {
  const m = all.find((x) => x.kind === kind && x.metadata.name.endsWith(suffix));
  if (!m) throw new Error(`no ${kind} *${suffix} rendered`);
  return m;
};

/** Runs the pooler's setup Job (pooler-auth.sh, as the superuser) against `pg`. */
export async function runPoolerAuthJob(all: readonly Manifest[], pg: Pg, secret: Record<string, string>): Promise<RunnerResult> {
  const job = all.find((m) => m.kind === 'Job' && /-pooler-auth-[0-9a-f]{10}$/.test(m.metadata.name));
  if (!job) throw new Error('no pooler-auth Job rendered');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'learnflow-pooler-auth-'));
  try {
    const secretName = job.spec.template.spec.volumes.find((v: any) => v.secret).secret.secretName;
    const pod = await runPod(all, job, dir, {
      secrets: { [secretName]: secret },
      env: { PATH: pg.env().PATH, PGHOST: pg.host, PGPORT: String(pg.port), PGSSLMODE: 'disable', TMPDIR: dir },
    });
    return pod.main ?? pod.init.at(-1)!;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface PoolerOptions {
  /** Changes the rendered pgbouncer.ini before PgBouncer reads it: for diagnostics only (the bench), never a test of what ships. */
  readonly adjustIni?: (ini: string) => string;
}

/**
 * Starts PgBouncer with the rendered Deployment's configuration, in front of `pg`. The pod's
 * init container writes the auth_file from `poolerPassword`. `bin`: PgBouncer (toolPath('pgbouncer')).
 */
export async function startPooler(all: readonly Manifest[], pg: Pg, poolerPassword: string, bin: string, options: PoolerOptions = {}): Promise<RunningPooler> {
  const deployment = find(all, 'Deployment', '-pooler');
  const spec = deployment.spec.template.spec;
  const main = spec.containers[0];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'learnflow-pooler-'));
  const secretName = spec.volumes.find((v: any) => v.secret).secret.secretName;
  // The init container exactly as rendered; the long-running PgBouncer is started below.
  const initOnly = { ...deployment, spec: { ...deployment.spec, template: { ...deployment.spec.template, spec: { ...spec, containers: [{ name: 'none', command: ['true'] }] } } } };
  const pod = await runPod(all, initOnly, dir, { secrets: { [secretName]: { 'pooler-password': poolerPassword } } });
  const login = pod.init[0];
  if (login.code !== 0) throw new Error(`the pooler's login init container failed (${login.code}): ${login.stderr}`);

  // The pod's mounts mapped onto the directories runPod laid out, as it maps commands.
  const mounts: [string, string][] = main.volumeMounts.map((m: any) => [m.mountPath, path.join(dir, `volume-${m.name}`)]);
  const onMount = (text: string) => mounts.reduce((t, [from, to]) => t.split(`${from}/`).join(`${to}/`), text);
  const [command, iniPath] = main.command as string[];
  if (command !== 'pgbouncer') throw new Error(`unexpected pooler command ${main.command.join(' ')}`);
  const port = await freePort();
  const rendered = readFileSync(onMount(iniPath), 'utf8');
  const ini = onMount(rendered)
    .replace(/^(\S+ = host=)\S+ port=\d+/m, `$1${pg.host} port=${pg.port}`)
    .replace(/^listen_addr = .*$/m, 'listen_addr = 127.0.0.1')
    .replace(/^listen_port = .*$/m, `listen_port = ${port}`)
    // Here only: PgBouncer's own pid, to stop it (as root it runs under runuser, which does not pass signals on).
    .replace(/^\[pgbouncer\]$/m, `[pgbouncer]\npidfile = ${path.join(dir, 'pgbouncer.pid')}`);
  const iniFile = path.join(dir, 'pgbouncer.ini');
  writeFileSync(iniFile, options.adjustIni ? options.adjustIni(ini) : ini);
  const server = asServerUser();
  if (server) for (const p of [dir, ...walk(dir)]) chownSync(p, server.uid, server.gid);

  const logFile = path.join(dir, 'pgbouncer.log');
  const [cmd, args] = server ? server.wrap(bin, [iniFile]) : [bin, [iniFile]];
  const out: string[] = [];
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d) => out.push(String(d)));
  child.stderr!.on('data', (d) => out.push(String(d)));
  const log = () => out.join('');
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`pgbouncer exited with ${child.exitCode}:\n${log()}`);
    if (await listening(port)) break;
    if (Date.now() > deadline) throw new Error(`pgbouncer did not listen on ${port} within 30 s:\n${log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  void logFile;
  return {
    port,
    iniFile,
    ini: rendered,
    log,
    stop: async () => {
      const pidFile = path.join(dir, 'pgbouncer.pid');
      const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : undefined;
      const alive = () => {
        if (pid === undefined) return child.exitCode === null;
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      const signal = (name: NodeJS.Signals) => (pid === undefined ? child.kill(name) : alive() && process.kill(pid, name));
      signal('SIGINT');
      for (const deadline = Date.now() + 5000; alive() && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 50));
      if (alive()) signal('SIGKILL');
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? [p, ...walk(p)] : [p];
  });
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = require('node:net').connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}
