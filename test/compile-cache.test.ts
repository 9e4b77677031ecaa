// The compiled copy of the sources (scripts/compile.cjs) is shared by every copy of the project
// that links the same node_modules: test projects, the CI walkthroughs' clone, a user's worktrees.
// A command running from one compilation must never lose it to another copy's compile (the
// command line loads its modules lazily: a removed folder fails in the middle of a command).
import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const { compiledProject, KEEP, UNUSED_MS } = createRequire(__filename)('../scripts/compile.cjs') as {
  compiledProject(root: string): string;
  KEEP: number;
  UNUSED_MS: number;
};

const work = mkdtempSync(path.join(tmpdir(), 'learnflow-compile-'));
const modules = path.join(work, 'node_modules');
mkdirSync(modules);
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A project copy `name` whose sources differ from every other's, linking the shared node_modules. */
function copy(name: string): string {
  const root = path.join(work, name);
  mkdirSync(path.join(root, 'lib'), { recursive: true });
  writeFileSync(path.join(root, 'main.ts'), `export const copy: string = ${JSON.stringify(name)};\n`);
  writeFileSync(path.join(root, 'lib', 'command.ts'), 'export const lazy = (): number => 1;\n');
  symlinkSync(modules, path.join(root, 'node_modules'));
  return root;
}

const cached = (): string[] => readdirSync(path.join(modules, '.cache', 'learnflow-postgres')).sort();

describe('the compiled copy of the sources shared between copies of the project', () => {
  it('keeps a compilation in use while more than KEEP other copies compile, and removes those unused for UNUSED_MS', () => {
    const running = compiledProject(copy('running'));
    const others = Array.from({ length: KEEP + 3 }, (_, i) => compiledProject(copy(`other-${i}`)));
    // Every compilation was used moments ago: none may go, although there are more than KEEP.
    expect(cached()).toEqual([running, ...others].map((dir) => path.basename(dir)).sort());
    expect(readdirSync(path.join(running, 'lib'))).toEqual(['command.js']);

    // The running one is used again (another command of that copy); the others fall out of use.
    const past = new Date(Date.now() - UNUSED_MS - 60_000);
    for (const dir of others) utimesSync(dir, past, past);
    expect(compiledProject(path.join(work, 'running'))).toBe(running);
    const fresh = compiledProject(copy('fresh'));
    // Besides the one just compiled, the KEEP most recently used stay: the running one first.
    expect(cached()).toHaveLength(1 + KEEP);
    expect(cached()).toEqual(expect.arrayContaining([path.basename(running), path.basename(fresh)]));
  });
});
