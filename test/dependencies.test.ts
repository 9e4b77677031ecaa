// What runs for users (the synth, the command line, their launchers) may use only Node.js and
// the packages under "dependencies": an install without dev dependencies must still work. The
// files that run are those the entry points import, followed module by module; the test-time
// checks of migrations/ (lint and grammar, with their dev dependencies) are not among them.
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support/dist';

/** What users run: the synth (main.ts through scripts/synth.cjs), the command line (bin/, lib/cli/main.ts). */
const ENTRY_POINTS = ['main.ts', 'scripts/synth.cjs', 'scripts/compile.cjs', 'bin/learnflow-postgres', 'lib/cli/main.ts'];

/** Bare and relative specifiers a file imports or requires. */
function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from\s+|require\(\s*|import\(\s*)'([^']+)'/g)].map((m) => m[1]);
}

/** The project files a relative specifier of `from` names, if any. */
function resolveRelative(from: string, specifier: string): string | undefined {
  const base = path.resolve(path.dirname(from), specifier);
  return [base, `${base}.ts`, `${base}.cjs`, `${base}.js`, path.join(base, 'index.ts')].find((f) => existsSync(f) && !f.endsWith(path.sep));
}

/** Every project file reachable from the entry points. */
function runtimeFiles(): string[] {
  const seen = new Set<string>();
  const queue = ENTRY_POINTS.map((f) => path.join(ROOT, f));
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const specifier of specifiers(file).filter((s) => s.startsWith('.'))) {
      const target = resolveRelative(file, specifier);
      if (target && /\.(ts|cjs|js)$/.test(target)) queue.push(target);
    }
  }
  return [...seen];
}

/** Package names among a file's specifiers. */
function packagesUsed(file: string): string[] {
  return specifiers(file)
    .filter((s) => !s.startsWith('.') && !s.startsWith('node:') && !builtinModules.includes(s))
    .map((s) => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]));
}

describe('runtime dependencies', () => {
  it('the synth and the command line use only packages listed under dependencies', () => {
    const manifest = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    const runtime = new Set(Object.keys(manifest.dependencies));
    const files = runtimeFiles();
    const relative = files.map((f) => path.relative(ROOT, f));
    expect(relative).toEqual(expect.arrayContaining([...ENTRY_POINTS, 'lib/synth.ts', 'lib/migrations/files.ts', 'lib/migrations/bundle.ts']));
    // The migrations check's modules need squawk and libpg-query (dev dependencies): never at synth time.
    expect(relative).not.toContain('lib/migrations/lint.ts');
    expect(relative).not.toContain('lib/migrations/grammar.ts');
    const misplaced = files.flatMap((f) => packagesUsed(f).filter((p) => !runtime.has(p)).map((p) => `${path.relative(ROOT, f)}: ${p}`));
    expect(misplaced).toEqual([]);
  });
});
