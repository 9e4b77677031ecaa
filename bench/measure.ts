// Timing primitives: one command's wall time, medians over interleaved runs, ratios.
import { SpawnSyncOptions, spawnSync } from 'node:child_process';

export interface Command {
  readonly cmd: string;
  readonly args: readonly string[];
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
}

/** Runs `command` to completion and returns its wall time in ms; throws with its output unless it exits 0. */
export function timeCommand(command: Command): number {
  const options: SpawnSyncOptions = {
    cwd: command.cwd,
    env: command.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  };
  const started = process.hrtime.bigint();
  const run = spawnSync(command.cmd, command.args, options);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (run.error) throw run.error;
  if (run.status !== 0) {
    const output = `${run.stderr ?? ''}${run.stdout ?? ''}`.slice(-4000);
    throw new Error(`${command.cmd} ${command.args.join(' ')} (in ${command.cwd ?? process.cwd()}) exited ${run.status ?? run.signal}:\n${output}`);
  }
  return ms;
}

/** One measured variant: `run` returns the wall time of one run in ms; `prepare` runs untimed before each. */
export interface Variant {
  readonly id: string;
  readonly prepare?: () => void;
  readonly run: () => number;
  readonly cleanup?: () => void;
}

export interface Sample {
  readonly id: string;
  readonly runs: number[];
  readonly median: number;
}

/**
 * Runs every variant `runs` times, round-robin (A B C A B C …) so that a slow moment of the
 * machine hits every variant alike, after one untimed warm-up run each (file cache, tsx cache).
 */
export function sampleInterleaved(variants: readonly Variant[], runs: number, warmup = 1): Map<string, Sample> {
  const times = new Map<string, number[]>(variants.map((v) => [v.id, []]));
  for (let round = -warmup; round < runs; round++) {
    for (const variant of variants) {
      variant.prepare?.();
      try {
        const ms = variant.run();
        if (round >= 0) times.get(variant.id)!.push(ms);
      } finally {
        variant.cleanup?.();
      }
    }
  }
  return new Map([...times].map(([id, list]) => [id, { id, runs: list, median: median(list) }]));
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export const formatMs = (ms: number): string => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`);
export const formatRatio = (ratio: number): string => `${ratio.toFixed(2)}×`;
