// Many small migrations, synthesized by the real app in a copy of the project: the number of
// migrations must not be capped by anything but the ConfigMap split.
import { rmSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../lib/config';
import { CONFIGMAP_DATA_BUDGET, encodedSize } from '../../lib/migrations/layout';
import { PROFILES } from '../../lib/profiles';
import { prepareDistJob } from '../support/dist-job';
import { smallMigrationSet } from '../support/generated-migrations';
import { Pg } from '../support/postgres';
import { usePostgres } from '../support/postgres-fixture';
import { distMigrationJobIn, projectCopy, synthProjectOrThrow } from '../support/project';
import { runRunner } from '../support/runner-harness';

const PROFILE = 'development';
const projects: string[] = [];
afterAll(() => {
  for (const dir of projects) rmSync(dir, { recursive: true, force: true });
});

const appUser = resolveConfig(PROFILES[PROFILE]).appUser;
let pg: Pg;
let mounts: string;
const { freshDatabase, appConnection } = usePostgres('many', (server, dir) => {
  pg = server;
  mounts = dir;
}, { appUser });

function synthesized(count: number) {
  const project = projectCopy({ migrations: smallMigrationSet(count) });
  projects.push(project);
  synthProjectOrThrow(project, { LEARNFLOW_PROFILE: PROFILE });
  return distMigrationJobIn(path.join(project, 'dist'), PROFILE);
}

/** The plan's lines: plan.tsv, or every part plan.parts lists, in order. */
function planLines(files: Record<string, string>): string[] {
  const parts = files['plan.parts'] ? files['plan.parts'].trim().split('\n') : ['plan.tsv'];
  return parts.map((part) => files[part]).join('').trim().split('\n');
}

describe('a long migration history', () => {
  it('synthesizes 1,000 migrations into a Job that mounts every file and a plan listing them all', () => {
    const job = synthesized(1000);
    expect(planLines(job.files)).toHaveLength(1000);
    expect(Object.keys(job.files).filter((f) => f.endsWith('.sql'))).toHaveLength(2000);
  });

  it('splits a plan too long for one ConfigMap entry into parts, which the Job reads in order to apply all 2,500', async () => {
    const job = synthesized(2500);
    const parts = job.files['plan.parts'].trim().split('\n');
    expect(parts.length).toBeGreaterThanOrEqual(2);
    expect(parts).toEqual(parts.map((_, i) => (i === 0 ? 'plan.tsv' : `plan-${String(i + 1).padStart(3, '0')}.tsv`)));
    const lines = planLines(job.files);
    expect(lines).toHaveLength(2500);
    expect(lines.map((line) => line.split('\t')[0])).toEqual(Array.from({ length: 2500 }, (_, i) => String(i + 1).padStart(4, '0')));
    for (const cm of job.configMaps) {
      const size = Object.entries(cm.data as Record<string, string>).reduce((sum, [k, v]) => sum + encodedSize(k, v), 0);
      expect(size, cm.metadata.name).toBeLessThanOrEqual(CONFIGMAP_DATA_BUDGET);
    }

    const db = freshDatabase();
    const prepared = prepareDistJob(job, mounts, appConnection(db));
    const first = await runRunner(prepared.dir, prepared.env, prepared.args);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('learnflow-migrate: 2500 applied, 0 already up to date');
    expect(pg.psql(db, 'SELECT count(*) FROM applied_migrations')).toBe('2500');
    const again = await runRunner(prepared.dir, prepared.env, prepared.args);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe('learnflow-migrate: 0 applied, 2500 already up to date\n');
  });
});
