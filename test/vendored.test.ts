// What the repository holds from elsewhere is exactly what vendored.json records: the chart
// archives and reference files by sha256, each chart's unpacked folder (the Git path Argo CD
// reads) file for file against its archive, and nothing unrecorded beside them.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SUPPORTED_CHART_VERSIONS } from '../lib/chart';
import { checksumProblem, readVendored, vendoredChart } from '../lib/vendored';
import { ROOT } from './support/dist';

const record = readVendored(ROOT);
const scratch = mkdtempSync(path.join(tmpdir(), 'learnflow-vendored-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Every file under `dir`, as paths relative to it, sorted. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() || e.isSymbolicLink())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

describe('vendored files', () => {
  it.each(record.files.map((f) => [f.path, f] as const))('%s matches its recorded sha256', (_, file) => {
    expect(checksumProblem(ROOT, file.path, file.sha256)).toBeUndefined();
  });

  it.each(record.charts.map((c) => [c.archive, c] as const))('%s matches its recorded sha256', (_, chart) => {
    expect(checksumProblem(ROOT, chart.archive, chart.sha256)).toBeUndefined();
  });

  it('names a license and a provenance document that exist for every entry', () => {
    const documents = [...record.files.map((f) => f.provenance), ...record.charts.flatMap((c) => [c.provenance, c.licenseFile])];
    expect(documents.filter((d) => !existsSync(path.join(ROOT, d)))).toEqual([]);
    expect([...record.files, ...record.charts].filter((e) => !/^[A-Za-z0-9.-]+$/.test(e.license))).toEqual([]);
  });

  it('has nothing unrecorded in charts/ or reference/ besides SOURCE.md files', () => {
    const recorded = new Set([...record.files.map((f) => f.path), ...record.charts.map((c) => c.archive)]);
    const chartDirs = record.charts.map((c) => `${c.directory}/`);
    const unrecorded = ['charts', 'reference']
      .flatMap((top) => filesUnder(path.join(ROOT, top)).map((f) => `${top}/${f}`))
      .filter((f) => !recorded.has(f) && !chartDirs.some((d) => f.startsWith(d)) && path.basename(f) !== 'SOURCE.md');
    expect(unrecorded).toEqual([]);
  });

  it('reports a changed byte and a missing file, naming the file', () => {
    const file = record.files[0];
    cpSync(path.join(ROOT, file.path), path.join(scratch, 'copy'));
    expect(checksumProblem(scratch, 'copy', file.sha256)).toBeUndefined();
    writeFileSync(path.join(scratch, 'copy'), Buffer.concat([readFileSync(path.join(scratch, 'copy')), Buffer.from(' ')]));
    expect(checksumProblem(scratch, 'copy', file.sha256)).toMatch(/^copy: sha256 is [0-9a-f]{64}, vendored\.json records /);
    expect(checksumProblem(scratch, 'absent.tgz', file.sha256)).toMatch(/^absent\.tgz: missing \(vendored\.json records it/);
  });
});

describe('vendored charts', () => {
  it('include every chart version the constructs support', () => {
    expect(SUPPORTED_CHART_VERSIONS.filter((v) => !vendoredChart(record, 'postgresql', v))).toEqual([]);
  });

  describe.each(record.charts.map((c) => [`${c.name} ${c.version}`, c] as const))('%s', (_, chart) => {
    it('has an unpacked folder identical, file for file, to its archive', () => {
      const unpacked = mkdtempSync(path.join(scratch, 'chart-'));
      execFileSync('tar', ['-xzf', path.join(ROOT, chart.archive), '-C', unpacked]);
      // A `helm package` archive holds one top folder named after the chart.
      expect(readdirSync(unpacked)).toEqual([chart.name]);
      const fromArchive = path.join(unpacked, chart.name);
      const inRepo = path.join(ROOT, chart.directory);
      const files = filesUnder(fromArchive);
      expect(filesUnder(inRepo)).toEqual(files);
      const differing = files.filter((f) => !readFileSync(path.join(inRepo, f)).equals(readFileSync(path.join(fromArchive, f))));
      expect(differing).toEqual([]);
    });

    it('declares the recorded name, version, appVersion and packaged dependencies', () => {
      const meta = parse(readFileSync(path.join(ROOT, chart.directory, 'Chart.yaml'), 'utf8'));
      expect({ name: meta.name, version: meta.version, appVersion: String(meta.appVersion) })
        .toEqual({ name: chart.name, version: chart.version, appVersion: chart.appVersion });
      for (const dep of chart.dependencies) {
        const sub = parse(readFileSync(path.join(ROOT, chart.directory, 'charts', dep.name, 'Chart.yaml'), 'utf8'));
        expect({ name: sub.name, version: sub.version }).toEqual({ name: dep.name, version: dep.version });
      }
    });

    const referenceValues = path.join(ROOT, 'reference', 'bitnami-postgresql', `values-${chart.version}.yaml`);
    it.runIf(existsSync(referenceValues))('ships the values.yaml that reference/bitnami-postgresql/ holds for it', () => {
      expect(readFileSync(path.join(ROOT, chart.directory, 'values.yaml'), 'utf8')).toBe(readFileSync(referenceValues, 'utf8'));
    });
  });
});
