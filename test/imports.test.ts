// imports/ is what `cdk8s import` generates from the CRD in reference/crds/: never hand-edited.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { expect, it } from 'vitest';
import { ROOT } from './support/dist';
import { cdk8sCli } from './support/project';

it('imports/ is exactly what `npm run cdk8s:import` generates', () => {
  const script: string = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts['cdk8s:import'];
  const [command, ...args] = script.split(/\s+/);
  expect(command).toBe('cdk8s');
  const out = mkdtempSync(path.join(tmpdir(), 'learnflow-imports-'));
  try {
    const run = cdk8sCli(ROOT, [...args.filter((a) => a !== '--output' && a !== 'imports/'), '--output', out]);
    expect(run.status, run.stderr).toBe(0);
    const files = readdirSync(out).sort();
    expect(files).toEqual(readdirSync(path.join(ROOT, 'imports')).sort());
    for (const f of files) expect(readFileSync(path.join(ROOT, 'imports', f), 'utf8'), f).toBe(readFileSync(path.join(out, f), 'utf8'));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
