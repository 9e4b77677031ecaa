// Where a synth's time goes: a staircase of commands that each add one layer (Node, the
// library, our modules, the synth itself, tsx), and a CPU profile of the main thread summed up
// by who owns the code.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { ROOT } from '../test/support/dist';
import { parsePhaseTimings } from '../lib/timings';
import { Command, median } from './measure';
import { APP_COMMAND } from '../test/support/project';

export interface Stair {
  readonly id: string;
  readonly label: string;
  readonly command: Command;
  /** Part of the staircase (each adds to the one before), or an alternative shown beside it. */
  readonly kind: 'layer' | 'alternative';
}

/**
 * The app's layers. Our modules and the synth are measured precompiled (in `precompiled`, a
 * copy after {@link precompile}; a separate copy because with .js files beside the .ts ones
 * tsx would load the .js files), so that tsx's share is the last step alone.
 */
export function stairs(project: string, precompiled: string): Stair[] {
  const node = (...args: string[]): Command => ({ cmd: process.execPath, args, cwd: project });
  const compiled = (...args: string[]): Command => ({ cmd: process.execPath, args, cwd: precompiled });
  return [
    { kind: 'layer', id: 'node', label: 'Node.js alone: `node -e 0`', command: node('-e', '0') },
    { kind: 'layer', id: 'floor', label: "+ the library: `node -e \"require('cdk8s-plus-27')\"` (the floor)", command: node('-e', "require('cdk8s-plus-27')") },
    { kind: 'layer', id: 'modules', label: "+ our modules, precompiled: `node -e \"require('./lib/synth')\"`", command: compiled('-e', "require('./lib/synth')") },
    { kind: 'layer', id: 'precompiled', label: '+ the synth itself, precompiled: `node main.js`', command: compiled('main.js') },
    { kind: 'layer', id: 'app', label: `+ the app's command: \`${APP_COMMAND.join(' ')}\``, command: node(...APP_COMMAND.slice(1)) },
    { kind: 'alternative', id: 'tsx-cjs', label: "the app compiled on the fly by tsx: `node --require tsx/cjs main.ts`", command: node('--require', 'tsx/cjs', 'main.ts') },
    { kind: 'alternative', id: 'tsx-esm', label: "the app with tsx's ESM loader as well: `node --import tsx main.ts`", command: node('--import', 'tsx', 'main.ts') },
    { kind: 'alternative', id: 'tsx', label: "tsx's own start-up: `node --import tsx -e \"require('cdk8s-plus-27')\"`", command: node('--import', 'tsx', '-e', "require('cdk8s-plus-27')") },
  ];
}

/**
 * Transpiles main.ts, lib/ and imports/ of a project copy to CommonJS .js files beside the sources (no
 * bundling), so `node main.js` runs the app without tsx: what precompiling at build time gives.
 */
export function precompile(project: string): void {
  const sources = ['main.ts', ...['lib', 'imports'].filter((dir) => existsSync(path.join(project, dir))).flatMap((dir) => readdirSync(path.join(project, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => path.join(dir, f)))];
  const esbuild = path.join(ROOT, 'node_modules', '.bin', 'esbuild');
  const run = spawnSync(esbuild, [...sources, '--outdir=.', '--outbase=.', '--format=cjs', '--platform=node', '--target=node20', '--log-level=warning'], {
    cwd: project,
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`esbuild failed in ${project}:\n${run.stderr}`);
}

/**
 * Median wall time of each synth phase over `runs` runs of the app command with
 * LEARNFLOW_SYNTH_TIMINGS=1 (lib/timings.ts), in the order the app prints them.
 */
export function phaseTimings(command: Command, runs: number): Map<string, number> {
  const perPhase = new Map<string, number[]>();
  for (let i = 0; i < runs; i++) {
    const run = spawnSync(command.cmd, command.args, { cwd: command.cwd, encoding: 'utf8', env: { ...process.env, LEARNFLOW_SYNTH_TIMINGS: '1' } });
    if (run.status !== 0) throw new Error(`${command.args.join(' ')} with LEARNFLOW_SYNTH_TIMINGS=1 failed:\n${run.stderr}`);
    for (const [phase, ms] of parsePhaseTimings(run.stderr)) perPhase.set(phase, [...(perPhase.get(phase) ?? []), ms]);
  }
  return new Map([...perPhase].map(([phase, values]) => [phase, median(values)]));
}

export interface ProfileShare {
  readonly owner: string;
  readonly ms: number;
  readonly share: number;
}

/** CPU profile of one run of `command` (main thread), self time summed by owner, largest first. */
export function profileByOwner(command: Command, project: string): { totalMs: number; shares: ProfileShare[] } {
  const dir = mkdtempSync(path.join(project, '.cpu-prof-'));
  try {
    const run = spawnSync(command.cmd, ['--cpu-prof', '--cpu-prof-dir', dir, ...command.args], { cwd: command.cwd, encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`profiling ${command.args.join(' ')} failed:\n${run.stderr}`);
    // The main thread's profile is the first one written (tsx's loader thread writes its own).
    const file = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort()[0];
    const profile = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as CpuProfile;
    return summarize(profile, project);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface CpuProfile {
  readonly nodes: { id: number; callFrame: { functionName: string; url: string } }[];
  readonly samples: number[];
  readonly timeDeltas: number[];
}

function summarize(profile: CpuProfile, project: string): { totalMs: number; shares: ProfileShare[] } {
  const ownerOf = new Map(profile.nodes.map((n) => [n.id, owner(n.callFrame, project)]));
  const byOwner = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    total += us;
    const who = ownerOf.get(id) ?? 'other';
    byOwner.set(who, (byOwner.get(who) ?? 0) + us);
  });
  const shares = [...byOwner]
    .map(([who, us]) => ({ owner: who, ms: us / 1000, share: total ? us / total : 0 }))
    .sort((a, b) => b.ms - a.ms);
  return { totalMs: total / 1000, shares };
}

function owner(frame: { functionName: string; url: string }, project: string): string {
  const url = frame.url.replace(/^file:\/\//, '');
  if (url === '') {
    if (frame.functionName === '(garbage collector)') return 'V8: garbage collection';
    if (frame.functionName === '(idle)') return 'idle (waiting on I/O or the loader thread)';
    if (frame.functionName === '(program)') return 'V8: compiling and running outside JS frames';
    return `V8/native: ${frame.functionName || 'anonymous'}`;
  }
  if (url.startsWith('node:')) return 'Node.js internals (module loader, fs, …)';
  // scripts/synth.cjs runs our sources compiled into this cache folder.
  if (url.includes('/node_modules/.cache/learnflow-postgres/')) return 'our code (main.ts, lib/)';
  const inModules = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (inModules) return inModules[1] === 'esbuild' ? 'tsx (esbuild)' : inModules[1];
  if (url.startsWith(project) || url.startsWith(ROOT)) {
    const rel = path.relative(url.startsWith(project) ? project : ROOT, url);
    return rel.startsWith('lib/') || rel === 'main.ts' ? 'our code (main.ts, lib/)' : rel;
  }
  return url;
}
