// What runs for users (the synth, the command line, their launchers) may use only Node.js and
// the packages under "dependencies": an install without dev dependencies must still work.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support/dist';

const RUNTIME_SOURCES = ['main.ts', 'lib', 'imports', 'scripts', 'bin'];

function sourceFiles(entry: string): string[] {
  const full = path.join(ROOT, entry);
  if (!statSync(full).isDirectory()) return [full];
  return readdirSync(full, { recursive: true, encoding: 'utf8' })
    .map((f) => path.join(full, f))
    .filter((f) => statSync(f).isFile() && (/\.(ts|cjs|js)$/.test(f) || entry === 'bin'));
}

/** Package names a file imports or requires (bare specifiers only). */
function packagesUsed(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:from\s+|require\(\s*|import\(\s*)'([^'.][^']*)'/g)].map((m) => m[1]);
  return specifiers
    .filter((s) => !s.startsWith('node:') && !builtinModules.includes(s))
    .map((s) => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]));
}

describe('runtime dependencies', () => {
  it('the synth and the command line use only packages listed under dependencies', () => {
    const manifest = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    const runtime = new Set(Object.keys(manifest.dependencies));
    const files = RUNTIME_SOURCES.flatMap(sourceFiles);
    expect(files.map((f) => path.relative(ROOT, f))).toEqual(expect.arrayContaining(['main.ts', 'scripts/synth.cjs', 'scripts/compile.cjs', 'bin/learnflow-postgres']));
    const misplaced = files.flatMap((f) => packagesUsed(f).filter((p) => !runtime.has(p)).map((p) => `${path.relative(ROOT, f)}: ${p}`));
    expect(misplaced).toEqual([]);
  });
});
