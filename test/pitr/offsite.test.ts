// Copies off the cluster through a real S3-compatible server (rclone serve s3 on loopback), with
// the off-site script run the way rclone's image runs it (BusyBox's sh and tools, rclone): the
// upload pass of the database pod's sidecar, retention in the bucket, uploads killed midway,
// objects that must never be replaced, the Secret missing or wrong, and a restore after the
// cluster's volumes are gone: fetch from the bucket into an empty volume, then recover.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { OFFSITE, OBJECT_STORE_SECRET_KEYS, PITR_RESTORE } from '../../lib/pitr/contracts';
import { exitCodes } from '../../lib/script-contract';
import { PitrServer, PitrWorkspace, ownForServer, pitrWorkspace, queryDataDir, rcloneImagePath, renderedArtifacts, spawnAsServer, startPitrServer } from '../support/pitr';
import { S3Server, startS3 } from '../support/servers';
import { describeWithTools, requireTool } from '../support/tools';

const EXIT = exitCodes(OFFSITE);
const RESTORE_EXIT = exitCodes(PITR_RESTORE);
const BUCKET = 'learnflow-backups';
const PREFIX = 'production/postgres';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describeWithTools('off-site copies through an S3-compatible server', ['rclone', 'busybox'], () => {
  let tmp: string;
  let s3: S3Server;
  let ws: PitrWorkspace;
  let primary: PitrServer;
  let imagePath: string;
  let secretDir: string;
  const bucketDir = () => path.join(s3.root, BUCKET, PREFIX);

  /** The environment the manifests give the sidecar and the fetch: the props' bucket and endpoint, the Secret's mount. */
  const offsiteEnv = (overrides: Record<string, string> = {}): Record<string, string> => ({
    PATH: imagePath,
    OFFSITE_BUCKET: BUCKET,
    OFFSITE_PREFIX: PREFIX,
    OFFSITE_PROVIDER: 'Other',
    OFFSITE_ENDPOINT: s3.endpoint,
    OFFSITE_REGION: 'us-east-1',
    OFFSITE_SECRET_NAME: 'postgres-object-store',
    OFFSITE_NAMESPACE: 'postgres',
    OFFSITE_SECRET_DIR: secretDir,
    ...overrides,
  });
  const offsite = (command: string, overrides: Record<string, string> = {}, backupDir = ws.backupDir) =>
    ws.run('offsite.sh', [command], { ...offsiteEnv(overrides), LEARNFLOW_BACKUP_DIR: backupDir });
  const writeSecret = (dir: string, keys: Record<string, string>) => {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    for (const [k, v] of Object.entries(keys)) writeFileSync(path.join(dir, k), v);
    ownForServer(dir);
  };
  const goodKeys = () => ({ [OBJECT_STORE_SECRET_KEYS.accessKeyId]: s3.accessKeyId, [OBJECT_STORE_SECRET_KEYS.secretAccessKey]: s3.secretAccessKey });
  /** Every finished file of the volume, relative, sorted. */
  const finished = (dir: string): string[] => {
    const out: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (e.name.startsWith('.')) continue;
        if (e.isDirectory()) walk(path.join(d, e.name));
        else out.push(path.relative(dir, path.join(d, e.name)));
      }
    };
    if (existsSync(dir)) walk(dir);
    return out.sort();
  };

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'learnflow-offsite-'));
    ownForServer(tmp);
    s3 = await startS3({ buckets: [BUCKET] });
    imagePath = rcloneImagePath(tmp, requireTool('busybox'), requireTool('rclone'));
    secretDir = path.join(tmp, 'secret');
    writeSecret(secretDir, goodKeys());
    ws = pitrWorkspace(path.join(tmp, 'ws'), renderedArtifacts(60));
    primary = await startPitrServer(ws, 'primary');
    primary.psql('CREATE TABLE events (id int PRIMARY KEY)');
    primary.psql('INSERT INTO events SELECT generate_series(1, 100)');
    expect((await ws.run('basebackup.sh', [], primary.env())).code).toBe(0);
    primary.psql('INSERT INTO events SELECT generate_series(101, 200)');
    primary.psql('SELECT pg_switch_wal()');
    await sleep(1000);
  }, 120_000);
  afterAll(async () => {
    try { primary?.crash(); } catch { /* stopped */ }
    await s3?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('uploads every finished file of the backup volume, byte for byte, and nothing in progress', async () => {
    writeFileSync(path.join(ws.backupDir, 'wal', '.000000010000000000000099.gz.partial'), 'in progress');
    const pass = await offsite('upload');
    expect(pass.stderr).toBe('');
    expect(pass.code).toBe(EXIT.ok);
    expect(finished(bucketDir())).toEqual(finished(ws.backupDir));
    for (const file of finished(ws.backupDir)) {
      expect(readFileSync(path.join(bucketDir(), file)).equals(readFileSync(path.join(ws.backupDir, file))), file).toBe(true);
    }
    expect(finished(bucketDir())).toContain('SYSTEM_IDENTIFIER');
    expect(finished(bucketDir()).some((f) => /^base\/\d{8}T\d{6}Z\/backup\.info$/.test(f))).toBe(true);
  });

  it('never leaves a partial object under its final name when an upload is killed, and the next pass completes it', async () => {
    const dump = path.join(ws.backupDir, 'dumps', 'learnflow-20261203T023000Z.dump');
    mkdirSync(path.dirname(dump), { recursive: true });
    writeFileSync(dump, randomBytes(8 * 1024 * 1024));
    ownForServer(path.dirname(dump));
    const slow = spawnAsServer('sh', [path.join(ws.scriptsDir, 'offsite.sh'), 'upload'], { ...offsiteEnv({ RCLONE_BWLIMIT: '1M' }), LEARNFLOW_BACKUP_DIR: ws.backupDir, TMPDIR: tmp });
    await sleep(2500);
    process.kill(-slow.pid!, 'SIGKILL');
    await sleep(300);
    const object = path.join(bucketDir(), 'dumps', path.basename(dump));
    expect(existsSync(object) ? readFileSync(object).length : 'absent').toBe('absent');
    const pass = await offsite('upload');
    expect(pass.code, pass.stderr).toBe(EXIT.ok);
    expect(readFileSync(object).equals(readFileSync(dump))).toBe(true);
  }, 60_000);

  it('never replaces an object in the bucket that differs from the volume\'s copy', async () => {
    const [segment] = finished(ws.backupDir).filter((f) => /^wal\/[0-9A-F]{24}\.gz$/.test(f));
    const original = readFileSync(path.join(bucketDir(), segment));
    const local = path.join(ws.backupDir, segment);
    const kept = readFileSync(local);
    writeFileSync(local, Buffer.concat([kept, Buffer.from('tampered')]));
    try {
      const pass = await offsite('upload');
      expect(pass.code).toBe(EXIT.refused);
      expect(pass.stderr).toContain('refusing to replace an object');
      expect(readFileSync(path.join(bucketDir(), segment)).equals(original)).toBe(true);
    } finally {
      writeFileSync(local, kept);
    }
  });

  it('refuses to upload into a prefix that holds another database system\'s archive', async () => {
    const other = path.join(tmp, 'other-volume');
    mkdirSync(path.join(other, 'wal'), { recursive: true });
    writeFileSync(path.join(other, 'SYSTEM_IDENTIFIER'), '7000000000000000001\n');
    writeFileSync(path.join(other, 'wal', '000000010000000000000001.gz'), 'other');
    ownForServer(other);
    const before = finished(bucketDir());
    const pass = await offsite('upload', {}, other);
    expect(pass.code).toBe(EXIT.refused);
    expect(pass.stderr).toMatch(/holds the archive of database system \d+, this one is 7000000000000000001: nothing uploaded/);
    expect(finished(bucketDir())).toEqual(before);
  });

  it('names the Secret, the missing key and the command to create it; refused keys are named too', async () => {
    const bad = path.join(tmp, 'bad-secret');
    const missing = await offsite('upload', { OFFSITE_SECRET_DIR: path.join(tmp, 'no-such-secret') });
    expect(missing.code).toBe(EXIT.refused);
    expect(missing.stderr).toContain('the object store Secret postgres-object-store is missing');
    expect(missing.stderr).toContain('kubectl -n postgres create secret generic postgres-object-store --from-literal=access-key-id=<access key id> --from-literal=secret-access-key=<secret access key>');

    writeSecret(bad, { [OBJECT_STORE_SECRET_KEYS.accessKeyId]: s3.accessKeyId });
    const noKey = await offsite('upload', { OFFSITE_SECRET_DIR: bad });
    expect(noKey.code).toBe(EXIT.refused);
    expect(noKey.stderr).toContain("has no key 'secret-access-key'");

    writeSecret(bad, { ...goodKeys(), [OBJECT_STORE_SECRET_KEYS.secretAccessKey]: `${s3.secretAccessKey}\n` });
    // A trailing newline is what `echo` adds; `$(cat)` drops it, so this one works.
    expect((await offsite('upload', { OFFSITE_SECRET_DIR: bad })).code).toBe(EXIT.ok);

    writeSecret(bad, { ...goodKeys(), [OBJECT_STORE_SECRET_KEYS.secretAccessKey]: 'not-the-key' });
    const wrong = await offsite('upload', { OFFSITE_SECRET_DIR: bad });
    expect(wrong.code).toBe(EXIT.refused);
    expect(wrong.stderr).toContain('the object store refused the credentials of Secret postgres-object-store');
  });

  it('keeps the newest base backups in the bucket and the WAL they need, by the bucket\'s own content', async () => {
    primary.psql('INSERT INTO events SELECT generate_series(201, 300)');
    expect((await ws.run('basebackup.sh', [], primary.env())).code).toBe(0);
    primary.psql('SELECT pg_switch_wal()');
    await sleep(1000);
    const pass = await offsite('upload', { OFFSITE_KEEP: '1' });
    expect(pass.code, pass.stderr).toBe(EXIT.ok);
    const bases = readdirSync(path.join(bucketDir(), 'base'));
    expect(bases).toHaveLength(1);
    expect(readdirSync(path.join(ws.backupDir, 'base'))).toHaveLength(2);
    const first = /start_wal=(\w+)/.exec(readFileSync(path.join(bucketDir(), 'base', bases[0], 'backup.info'), 'utf8'))![1];
    const wal = readdirSync(path.join(bucketDir(), 'wal')).filter((f) => /^[0-9A-F]{24}/.test(f));
    expect(wal.length).toBeGreaterThan(0);
    expect(wal.every((f) => f.slice(8, 24) >= first.slice(8, 24))).toBe(true);
    expect(pass.stdout).toMatch(/removed base\/\d{8}T\d{6}Z from the bucket \(keeping the newest 1 base backups\)/);
  });

  it('restores when the cluster\'s volumes are gone: fetch from the bucket into an empty volume, then recover to the latest state', async () => {
    const rows = primary.psql('SELECT count(*), sum(id) FROM events');
    await offsite('upload', { OFFSITE_KEEP: '1' });
    primary.crash();
    const newVolume = path.join(tmp, 'new-cluster', 'backups');
    mkdirSync(newVolume, { recursive: true });
    ownForServer(path.dirname(newVolume));

    const fromVolume = await offsite('fetch', { RESTORE_TARGET: 'latest' }, newVolume);
    expect(fromVolume.code).toBe(EXIT.ok);
    expect(fromVolume.stdout).toContain('RESTORE_SOURCE=volume: the restore reads the archive on the backup volume, nothing to fetch');
    expect((await offsite('fetch', { RESTORE_TARGET: 'latest', RESTORE_SOURCE: 's3' }, newVolume)).stderr).toContain("RESTORE_SOURCE: 's3' is not 'volume'");
    const noSecret = await offsite('fetch', { RESTORE_TARGET: 'latest', RESTORE_SOURCE: 'offsite', OFFSITE_SECRET_DIR: path.join(tmp, 'no-such-secret') }, newVolume);
    expect(noSecret.code).toBe(EXIT.refused);
    expect(noSecret.stderr).toContain('the object store Secret postgres-object-store is missing');
    expect(readdirSync(newVolume)).toEqual([]);
    const badTarget = await offsite('fetch', { RESTORE_TARGET: 'tomorrow', RESTORE_SOURCE: 'offsite' }, newVolume);
    expect(badTarget.code).toBe(EXIT.refused);
    expect(readdirSync(newVolume)).toEqual([]);
    const tooOld = await offsite('fetch', { RESTORE_TARGET: '2020-01-01T00:00:00Z', RESTORE_SOURCE: 'offsite' }, newVolume);
    expect(tooOld.code).toBe(EXIT.refused);
    expect(tooOld.stderr).toContain('is before the end of the oldest base backup in the bucket');
    expect(readdirSync(newVolume)).toEqual([]);

    const fetched = await offsite('fetch', { RESTORE_TARGET: 'latest', RESTORE_SOURCE: 'offsite' }, newVolume);
    expect(fetched.code, fetched.stderr).toBe(EXIT.ok);
    const data = path.join(tmp, 'new-cluster', 'data');
    const restore = await ws.run('restore.sh', [], { RESTORE_TARGET: 'latest', LEARNFLOW_BACKUP_DIR: newVolume, PGDATA: data });
    expect(restore.code, restore.stderr).toBe(RESTORE_EXIT.ok);
    expect(await queryDataDir(ws, data, 'SELECT count(*), sum(id) FROM events')).toBe(rows);
  }, 120_000);
});
