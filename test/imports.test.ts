// imports/ is what `cdk8s import` generates from the CRD in reference/crds/: never hand-edited.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { expect, it } from 'vitest';
import { ROOT } from './support/dist';

it('imports/ is exactly what `npm run cdk8s:import` generates', () => {
  const out = mkdtempSync(path.join(tmpdir(), 'learnflow-imports-'));
  try {
    execFileSync(path.join(ROOT, 'node_modules', '.bin', 'cdk8s'),
      ['import', 'argocd:=reference/crds/argocd-application-crd.yaml', '--output', out], { cwd: ROOT, stdio: 'pipe' });
    const files = readdirSync(out).sort();
    expect(files).toEqual(readdirSync(path.join(ROOT, 'imports')).sort());
    for (const f of files) expect(readFileSync(path.join(ROOT, 'imports', f), 'utf8'), f).toBe(readFileSync(path.join(out, f), 'utf8'));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
