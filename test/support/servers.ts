// Servers the test tiers start from the tools of ./tools.ts, each on a free loopback port with its
// state in a temp dir, stopped (and the dir removed) by stop():
//
//   startS3()          rclone serve s3: a real S3-compatible object store over a local folder
//   startOciRegistry() CNCF distribution: a real OCI registry, for `helm push` and `oci://` charts
//   startRedis()       Debian's redis-server (Argo CD's cache)
//
// startServer() is the shared part: start, wait until ready, retry when a port was taken between
// freePort() and the start.
import { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { get, spawnLogged, stopProcess, tail, waitFor } from './kube';
import { freePort } from './ports';
import { requireTool, runToolOk } from './tools';

export interface StartedServer {
  readonly child: ChildProcess;
  readonly port: number;
  /** Where its output goes. */
  readonly log: string;
}

export interface ServerSpec {
  /** For messages and the log's file name. */
  readonly name: string;
  readonly command: string;
  /** The arguments for a server listening on 127.0.0.1:`port`. */
  args(port: number): string[];
  /** The folder for the log. */
  readonly dir: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Resolves true once the server on `port` answers. */
  ready(port: number): Promise<boolean>;
  /** @default 30_000 */
  readonly readyTimeoutMs?: number;
}

/** Starts a server on a free loopback port and waits until it is ready; tries another port up to twice. */
export async function startServer(spec: ServerSpec): Promise<StartedServer> {
  const log = path.join(spec.dir, `${spec.name}.log`);
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const child = spawnLogged(spec.command, spec.args(port), log, spec.env);
    try {
      await waitFor(spec.name, child, log, spec.readyTimeoutMs ?? 30_000, () => spec.ready(port));
      return { child, port, log };
    } catch (e) {
      await stopProcess(child);
      if (attempt >= 3 || !/address already in use|bind: |Address in use/i.test(tail(log, 20))) throw e;
    }
  }
}

/** Calls `start` with a new temp dir for a server's state; removes the dir if the start fails. */
export async function inServerDir<T>(prefix: string, start: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `learnflow-${prefix}-`));
  try {
    return await start(dir);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/** A stop() that ends the server and removes its dir. */
export const stopAndRemove = (server: StartedServer, dir: string) => async (): Promise<void> => {
  await stopProcess(server.child);
  rmSync(dir, { recursive: true, force: true });
};

// --- S3 (rclone serve s3) ----------------------------------------------------------------------

export interface S3Server {
  /** http://127.0.0.1:<port> */
  readonly endpoint: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** The folder served: each subfolder is a bucket, each file an object. */
  readonly root: string;
  /** rclone's on-the-fly remote for this server, e.g. `${s3.remote}bucket/key` for rclone copyto. */
  readonly remote: string;
  /** Creates a bucket (a folder under root). */
  createBucket(name: string): void;
  /** Runs our rclone as a client of this server (no config file); resolves with stdout, rejects on failure. */
  rclone(args: readonly string[]): Promise<string>;
  stop(): Promise<void>;
}

export interface StartS3Options {
  /** Buckets to create before the server starts. @default [] */
  readonly buckets?: readonly string[];
}

/** `rclone serve s3` over a temp folder, with a static key pair (test-only, random per start). */
export async function startS3(options: StartS3Options = {}): Promise<S3Server> {
  const rclone = requireTool('rclone');
  return inServerDir('s3', async (dir) => {
    const root = path.join(dir, 'data');
    const createBucket = (name: string) => mkdirSync(path.join(root, name), { recursive: true });
    mkdirSync(root);
    options.buckets?.forEach(createBucket);
    const accessKeyId = `test${randomBytes(8).toString('hex')}`;
    const secretAccessKey = randomBytes(24).toString('hex');
    // An empty config file of its own: rclone would otherwise read ~/.config/rclone/rclone.conf.
    const config = path.join(dir, 'rclone.conf');
    writeFileSync(config, '');
    const server = await startServer({
      name: 'rclone-s3',
      command: rclone,
      args: (port) => ['serve', 's3', '--addr', `127.0.0.1:${port}`, '--auth-key', `${accessKeyId},${secretAccessKey}`, root],
      dir,
      env: { ...process.env, RCLONE_CONFIG: config },
      ready: async (port) => (await get(`http://127.0.0.1:${port}/`))[0] > 0,
    });
    const endpoint = `http://127.0.0.1:${server.port}`;
    return {
      endpoint,
      accessKeyId,
      secretAccessKey,
      root,
      remote: `:s3,provider=Other,endpoint='${endpoint}',access_key_id=${accessKeyId},secret_access_key=${secretAccessKey}:`,
      createBucket,
      rclone: (args) => runToolOk('rclone', args, { env: { RCLONE_CONFIG: config } }),
      stop: stopAndRemove(server, dir),
    };
  });
}

// --- OCI registry (CNCF distribution) ----------------------------------------------------------

export interface OciRegistry {
  /** 127.0.0.1:<port>, as in `oci://127.0.0.1:<port>/charts` (plain HTTP: helm needs --plain-http). */
  readonly host: string;
  readonly dir: string;
  stop(): Promise<void>;
}

/** A local OCI registry (distribution's `registry serve`) storing in a temp folder, plain HTTP, no auth. */
export async function startOciRegistry(): Promise<OciRegistry> {
  const registry = requireTool('registry');
  return inServerDir('registry', async (dir) => {
    const server = await startServer({
      name: 'registry',
      command: registry,
      args: (port) => {
        const config = path.join(dir, `config-${port}.yml`);
        writeFileSync(config, [
          'version: 0.1',
          'log: { level: warn }',
          `storage: { filesystem: { rootdirectory: ${JSON.stringify(path.join(dir, 'data'))} }, delete: { enabled: true } }`,
          `http: { addr: "127.0.0.1:${port}", secret: test-only-not-a-secret }`,
          '',
        ].join('\n'));
        return ['serve', config];
      },
      dir,
      ready: async (port) => (await get(`http://127.0.0.1:${port}/v2/`))[0] === 200,
    });
    return { host: `127.0.0.1:${server.port}`, dir, stop: stopAndRemove(server, dir) };
  });
}

// --- redis ---------------------------------------------------------------------------------------

export interface Redis {
  /** 127.0.0.1:<port>, as Argo CD's --redis takes it. */
  readonly address: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** Sends one inline command and resolves with the first reply line. */
export function redisCommand(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    socket.setTimeout(2_000, () => socket.destroy(new Error('redis: timeout')));
    socket.on('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (d) => {
      reply += d.toString('utf8');
      if (reply.includes('\r\n')) {
        socket.end();
        resolve(reply.split('\r\n')[0]);
      }
    });
    socket.on('error', reject);
  });
}

/** redis-server on loopback, in memory only (no RDB, no AOF). */
export async function startRedis(): Promise<Redis> {
  const redis = requireTool('redis');
  return inServerDir('redis', async (dir) => {
    const server = await startServer({
      name: 'redis',
      command: redis,
      args: (port) => ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
      dir,
      ready: async (port) => (await redisCommand(port, 'PING')) === '+PONG',
    });
    return { address: `127.0.0.1:${server.port}`, port: server.port, stop: stopAndRemove(server, dir) };
  });
}
