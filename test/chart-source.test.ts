// Where the chart comes from (a profile's chartSource): what each choice makes of the helm command,
// and every way the vendored chart can be unusable, refused naming the prop before anything is
// written. The synth runs once in a copy of the project to prove dist/ is left as it was.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ChartSourceSettings, helmUpgradeArgs, resolveChartLocation } from '../lib/chart-source';
import { profileChartLocation } from '../lib/synth';
import { ValidationError } from '../lib/validation';
import { ROOT } from './support/dist';
import { projectCopy, synthProject } from './support/project';

const scratch = mkdtempSync(path.join(os.tmpdir(), 'learnflow-chart-source-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A folder with this checkout's charts/ and vendored.json, to break. */
function vendoredCopy(): string {
  const root = mkdtempSync(path.join(scratch, 'root-'));
  for (const entry of ['charts', 'vendored.json']) cpSync(path.join(ROOT, entry), path.join(root, entry), { recursive: true });
  return root;
}

const settings = (over: Partial<ChartSourceSettings> = {}): ChartSourceSettings => ({ chartSource: 'repository', chartVersion: '15.5.38', argocd: false, ...over });

describe('chart sources', () => {
  it('repository: the vendored archive, no --version (the file pins it; helm ignores it for a local chart)', () => {
    const { location, problems } = resolveChartLocation(settings(), ROOT);
    expect(problems).toEqual([]);
    expect(helmUpgradeArgs(location!, 'pg', 'db', 'values.yaml')).toEqual(['upgrade', '--install', 'pg', 'charts/postgresql-15.5.38.tgz', '--namespace', 'db', '-f', 'values.yaml']);
    expect(location!.vendored).toMatchObject({ archive: 'charts/postgresql-15.5.38.tgz', directory: 'charts/postgresql-15.5.38' });
  });

  it('bitnami and mirror: the chart in that OCI repository at the pinned version', () => {
    const bitnami = resolveChartLocation(settings({ chartSource: 'bitnami', chartVersion: '16.7.27' }), ROOT).location!;
    expect(helmUpgradeArgs(bitnami, 'pg', 'db', 'v.yaml').slice(3, 6)).toEqual(['oci://registry-1.docker.io/bitnamicharts/postgresql', '--version', '16.7.27']);
    const mirror = resolveChartLocation(settings({ chartSource: 'mirror', chartMirror: 'oci://127.0.0.1:5000/charts' }), ROOT).location!;
    expect(mirror).toMatchObject({ helmChart: 'oci://127.0.0.1:5000/charts/postgresql', ociRepository: '127.0.0.1:5000/charts', helmVersionArgs: ['--version', '15.5.38'] });
  });

  it('refuses an archive that no longer matches vendored.json, naming the prop, the file and both checksums', () => {
    const root = vendoredCopy();
    const archive = path.join(root, 'charts', 'postgresql-15.5.38.tgz');
    writeFileSync(archive, Buffer.concat([readFileSync(archive), Buffer.from('\n')]));
    const { location, problems } = resolveChartLocation(settings(), root);
    expect(location).toBeUndefined();
    expect(problems).toEqual([expect.stringMatching(/^chartSource: repository needs the vendored archive, but charts\/postgresql-15\.5\.38\.tgz: sha256 is [0-9a-f]{64}, vendored\.json records 2fedc9b4/)]);
  });

  it('refuses a missing archive, and with Argo CD a missing unpacked folder (the Git path it reads)', () => {
    const root = vendoredCopy();
    rmSync(path.join(root, 'charts', 'postgresql-16.7.27.tgz'));
    rmSync(path.join(root, 'charts', 'postgresql-16.7.27'), { recursive: true });
    const { problems } = resolveChartLocation(settings({ chartVersion: '16.7.27', argocd: true }), root);
    expect(problems).toEqual([
      expect.stringMatching(/^chartSource: repository needs the vendored archive, but charts\/postgresql-16\.7\.27\.tgz: missing \(vendored\.json records it/),
      expect.stringMatching(/^chartSource: repository with Argo CD needs the unpacked chart charts\/postgresql-16\.7\.27\/ \(Argo CD reads a chart from a Git path/),
    ]);
    // Without Argo CD the folder is not needed; a registry source needs neither.
    expect(resolveChartLocation(settings({ chartSource: 'bitnami', chartVersion: '16.7.27', argocd: true }), root).problems).toEqual([]);
  });

  it('refuses a chartVersion that vendored.json does not record, naming chartVersion and the way out', () => {
    const root = vendoredCopy();
    const record = JSON.parse(readFileSync(path.join(root, 'vendored.json'), 'utf8'));
    record.charts = record.charts.filter((c: { version: string }) => c.version !== '16.7.27');
    writeFileSync(path.join(root, 'vendored.json'), JSON.stringify(record));
    expect(resolveChartLocation(settings({ chartVersion: '16.7.27' }), root).problems).toEqual([
      "chartVersion: '16.7.27' has no vendored chart (vendored.json records 15.5.38), and chartSource repository installs from charts/ (vendor it with its record, or set chartSource to bitnami or mirror)",
    ]);
  });

  it('reports chart source problems with the props\' own, under the profile\'s name', () => {
    const root = vendoredCopy();
    rmSync(path.join(root, 'charts', 'postgresql-15.5.38.tgz'));
    let error: unknown;
    try {
      profileChartLocation('staging', { port: 0 }, root, ['port: 0 is out of range (a whole number from 1 to 65535)']);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).subject).toBe("profile 'staging' (lib/profiles.ts)");
    expect((error as ValidationError).problems.map((p) => p.split(':')[0])).toEqual(['port', 'chartSource']);
  });
});

/** Every file below `dir` with its bytes. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rel of readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort()) {
    if (statSync(path.join(dir, rel)).isFile()) out[rel] = readFileSync(path.join(dir, rel), 'latin1');
  }
  return out;
}

describe('the synth with a broken vendored chart', () => {
  it('fails (exit 1) naming chartSource and the archive, and leaves dist/ exactly as it was', () => {
    const project = projectCopy();
    try {
      expect(synthProject(project).status).toBe(0);
      const dist = path.join(project, 'dist');
      const before = tree(dist);
      const archive = path.join(project, 'charts', 'postgresql-15.5.38.tgz');
      writeFileSync(archive, 'not the chart');
      const run = synthProject(project);
      expect(run.status, run.stderr).toBe(1);
      expect(run.stderr).toContain('synth failed, dist/ was left as it was');
      expect(run.stderr).toMatch(/- chartSource: repository needs the vendored archive, but charts\/postgresql-15\.5\.38\.tgz: sha256 is [0-9a-f]{64}, vendored\.json records/);
      expect(tree(dist)).toEqual(before);
    } finally {
      rmSync(project, { recursive: true, force: true });
    }
  });
});
