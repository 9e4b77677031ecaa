// A migration set of more than 5 MiB, synthesized by the real app in a copy of the project and
// applied by the synthesized Job on a real PostgreSQL: the split across ConfigMaps holds up at
// the size where one ConfigMap could never carry it; a single file too large for one ConfigMap is
// carried in parts and applies whole.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../lib/config';
import { CONFIGMAP_DATA_BUDGET } from '../../lib/migrations/layout';
import { FILE_PARTS_KEY } from '../../lib/migrations/runner-contract';
import { PROFILES } from '../../lib/profiles';
import { resourceName } from '../../lib/names';
import { Manifest } from '../support/dist';
import { prepareDistJob } from '../support/dist-job';
import { largeMigrationSet, totalBytes } from '../support/generated-migrations';
import { runForm } from '../../lib/migrations/run-form';
import { Pg } from '../support/postgres';
import { usePostgres } from '../support/postgres-fixture';
import { distMigrationJobIn, projectCopy, synthProjectOrThrow } from '../support/project';
import { migrationSet, runRunner } from '../support/runner-harness';

const PROFILE = 'development';
const MiB = 1024 * 1024;
/** Kubernetes' limit on all annotations of one object together (keys plus values). */
const ANNOTATIONS_LIMIT = 256 * 1024;
/** Kubernetes' limit on one ConfigMap (and, near enough, on any stored object). */
const OBJECT_LIMIT = 1 * MiB;
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

const files = largeMigrationSet();
const migrationCount = Object.keys(files).filter((f) => f.endsWith('.up.sql')).length;
const seededRows = Object.entries(files)
  .filter(([f]) => f.endsWith('.up.sql'))
  .reduce((sum, [, sql]) => sum + sql.split('\n').filter((l) => l.startsWith('    (')).length, 0);

const config = resolveConfig(PROFILES[PROFILE]);
const appUser = config.appUser;
let pg: Pg;
let mounts: string;
const { freshDatabase, appConnection } = usePostgres('scale', (server, dir) => {
  pg = server;
  mounts = dir;
}, { appUser });

let project: string;
let dist: string;
let job: ReturnType<typeof distMigrationJobIn>;
beforeAll(() => {
  project = projectCopy({ migrations: files });
  dist = path.join(project, 'dist');
  synthProjectOrThrow(project);
  job = distMigrationJobIn(dist, PROFILE);
});
afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

/**
 * The JSON `kubectl apply` (client-side) stores in its last-applied annotation: compact, with
 * Go's encoding/json escaping of <, > and & (six bytes each), which JSON.stringify leaves alone.
 */
function lastAppliedJson(object: Manifest): string {
  return JSON.stringify(object).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The object as the API server stores it after a client-side apply: with its own JSON in an annotation. */
function appliedObject(object: Manifest): Manifest {
  const annotations = { ...object.metadata.annotations, [LAST_APPLIED]: lastAppliedJson(object) };
  return { ...object, metadata: { ...object.metadata, annotations } };
}

const configMapNames = (): string[] => distMigrationJobIn(dist, PROFILE).configMaps.map((cm) => cm.metadata.name);

describe('a migration set of more than 5 MiB', () => {
  it('is split into many ConfigMaps that the Job mounts as one directory holding every file', () => {
    expect(totalBytes(files)).toBeGreaterThanOrEqual(5 * MiB);
    expect(job.configMaps.length).toBeGreaterThanOrEqual(Math.ceil((5 * MiB) / CONFIGMAP_DATA_BUDGET));
    const projected = job.job.spec.template.spec.volumes.find((v: any) => v.projected).projected;
    expect(projected.sources.map((s: any) => s.configMap.name)).toEqual(job.configMaps.map((cm) => cm.metadata.name));
    for (const cm of job.configMaps) expect(cm.immutable).toBe(true);
    // Every SQL file arrives exactly once, as the runner's copy of it, next to the runner and the plan.
    const keys = job.configMaps.flatMap((cm) => Object.keys(cm.data));
    expect(new Set(keys).size).toBe(keys.length);
    expect(Object.keys(job.files).sort()).toEqual([...Object.keys(files), 'plan.tsv', 'runner.sh'].sort());
    for (const m of migrationSet(files)) {
      for (const file of [m.up, m.down]) expect(job.files[file.key] === runForm(file), file.key).toBe(true);
    }
    expect(job.files['plan.tsv'].trim().split('\n')).toHaveLength(migrationCount);
  });

  it("keeps every ConfigMap under client-side kubectl apply's 256 KiB annotation and the 1 MiB object limit", () => {
    for (const cm of job.configMaps) {
      const applied = appliedObject(cm);
      const annotationBytes = Object.entries(applied.metadata.annotations as Record<string, string>)
        .reduce((sum, [k, v]) => sum + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
      expect(annotationBytes, cm.metadata.name).toBeLessThan(ANNOTATIONS_LIMIT);
      expect(Buffer.byteLength(JSON.stringify(applied)), cm.metadata.name).toBeLessThan(OBJECT_LIMIT);
    }
  });

  it('names its ConfigMaps after the content: the same set gives the same names, one changed file renames them all', () => {
    const names = job.configMaps.map((cm) => cm.metadata.name);
    const [hash] = /-migrations-([0-9a-f]+)-1$/.exec(names[0])?.slice(1) ?? [];
    expect(hash).toBeTruthy();
    expect(names).toEqual(names.map((_, i) => resourceName(config.releaseName, `migrations-${hash}-${i + 1}`)));

    synthProjectOrThrow(project, { LEARNFLOW_PROFILE: PROFILE });
    expect(configMapNames()).toEqual(names);

    const changed = path.join(project, 'migrations', '100_create_content_100.up.sql');
    const original = readFileSync(changed, 'utf8');
    writeFileSync(changed, original + '-- reviewed\n');
    try {
      synthProjectOrThrow(project, { LEARNFLOW_PROFILE: PROFILE });
      const renamed = configMapNames();
      expect(renamed).toHaveLength(names.length);
      const [newHash] = /-migrations-([0-9a-f]+)-1$/.exec(renamed[0])?.slice(1) ?? [];
      expect(newHash).not.toBe(hash);
      expect(renamed).toEqual(names.map((_, i) => resourceName(config.releaseName, `migrations-${newHash}-${i + 1}`)));
    } finally {
      writeFileSync(changed, original);
    }
  });

  it('applies completely through the synthesized Job on a real PostgreSQL', async () => {
    const db = freshDatabase();
    expect(job.env.PGUSER).toBe(appUser);
    const prepared = prepareDistJob(job, mounts, appConnection(db));
    const result = await runRunner(prepared.dir, prepared.env, prepared.args);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`learnflow-migrate: ${migrationCount} applied, 0 already up to date`);
    expect(pg.psql(db, 'SELECT count(*) FROM applied_migrations')).toBe(String(migrationCount));
    const rows = pg.psql(db, `
      SELECT sum((xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I', tablename), false, true, '')))[1]::text::bigint)
        FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'content\\_%'`);
    expect(rows).toBe(String(seededRows));
  });
});

describe('a single migration file too large for one ConfigMap', () => {
  it('is carried in parts by the synth (dist/ as always), and applies whole through the synthesized Job', async () => {
    // 108 KB on disk and to JSON.stringify, but kubectl writes each <, > and & as six bytes: 216 KB.
    const html = `INSERT INTO pages (body) VALUES ('${'<p>Fish &amp; chips</p>'.repeat(4500)}');\n`;
    const copy = projectCopy({
      migrations: {
        '001_create_pages.up.sql': 'CREATE TABLE pages (body text);\n',
        '001_create_pages.down.sql': 'DROP TABLE pages;\n',
        '002_seed_pages/up.sql': html,
        '002_seed_pages/down.sql': 'DELETE FROM pages;\n',
      },
    });
    try {
      synthProjectOrThrow(copy, { LEARNFLOW_PROFILE: PROFILE });
      const parted = distMigrationJobIn(path.join(copy, 'dist'), PROFILE);
      expect(parted.files[FILE_PARTS_KEY]).toBe('002_seed_pages.up.sql 2\n');
      expect(parted.files['002_seed_pages.up.sql']).toBeUndefined();
      for (const cm of parted.configMaps) expect(Buffer.byteLength(lastAppliedJson(cm))).toBeLessThan(ANNOTATIONS_LIMIT);
      const db = freshDatabase();
      const prepared = prepareDistJob(parted, mounts, appConnection(db));
      const result = await runRunner(prepared.dir, prepared.env, prepared.args);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(pg.psql(db, 'SELECT md5(body) FROM pages')).toBe(pg.psql(db, `SELECT md5(${"'" + '<p>Fish &amp; chips</p>'.repeat(4500) + "'"})`));
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });
});
