// Once per `vitest run`, for the test files that need them: the fixture project
// (test/support/fixture-project.ts) and one API server the Kubernetes and command-line tests
// share, each file in namespaces of its own (test/support/kube.ts useSharedKube). Starting one
// server instead of one per file saves several seconds of CPU per file on the 2-core CI machine.
import { rmSync } from 'node:fs';
import * as path from 'node:path';
import type { TestProject } from 'vitest/node';
import { makeFixtureProject } from './fixture-project';
import { Kube, kubeAvailable, kubeInfo, startKube } from './kube';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // The files this run selected (the command line's file filters, if any).
  const filters = (project.vitest as { filenamePattern?: string[] }).filenamePattern;
  const { testFiles } = await project.globTestFiles(filters);
  const under = (dir: string) => testFiles.some((f) => f.includes(`${path.sep}test${path.sep}${dir}${path.sep}`));
  const needsCluster = (under('kube') || under('cli')) && kubeAvailable().ok;
  const [kube, fixture] = await Promise.all([
    needsCluster ? startKube() : undefined,
    under('kube') || under('cli') ? makeFixtureProject() : undefined,
  ]);
  if (kube) project.provide('kube', kubeInfo(kube));
  if (fixture) project.provide('fixtureProject', fixture);
  return async () => {
    await (kube as Kube | undefined)?.stop();
    if (fixture) rmSync(fixture, { recursive: true, force: true });
  };
}
