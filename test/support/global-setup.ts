// Once per `vitest run`, for the test files that need them: the fixture project
// (test/support/fixture-project.ts), the chart tier's helm renders (test/support/chart-render.ts)
// and one API server the Kubernetes, chart and command-line tests share, each file in namespaces of its own (test/support/kube.ts useSharedKube). Starting one
// server instead of one per file saves several seconds of CPU per file on the 2-core CI machine.
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestProject } from 'vitest/node';
import { renderChartCases } from './chart-render';
import { makeFixtureProject } from './fixture-project';
import { Kube, kubeAvailable, kubeInfo, startKube } from './kube';
import { missingTools } from './tools';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // The files this run selected (the command line's file filters, if any).
  const filters = (project.vitest as { filenamePattern?: string[] }).filenamePattern;
  const { testFiles } = await project.globTestFiles(filters);
  const under = (dir: string) => testFiles.some((f) => f.includes(`${path.sep}test${path.sep}${dir}${path.sep}`));
  const needsCluster = (under('kube') || under('cli') || under('chart')) && kubeAvailable().ok;
  // The chart tier's renders (test/support/chart-render.ts): one helm template per case for every file.
  const renders = under('chart') && !missingTools(['helm']) ? mkdtempSync(path.join(os.tmpdir(), 'learnflow-chart-renders-')) : undefined;
  const [kube, fixture] = await Promise.all([
    needsCluster ? startKube() : undefined,
    under('kube') || under('cli') ? makeFixtureProject() : undefined,
    renders ? renderChartCases(renders) : undefined,
  ]);
  if (kube) project.provide('kube', kubeInfo(kube));
  if (fixture) project.provide('fixtureProject', fixture);
  if (renders) project.provide('chartRenders', renders);
  return async () => {
    await (kube as Kube | undefined)?.stop();
    if (fixture) rmSync(fixture, { recursive: true, force: true });
    if (renders) rmSync(renders, { recursive: true, force: true });
  };
}
