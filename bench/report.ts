// What the bench ran on, and markdown tables for the console and BENCHMARKS.md.
import { existsSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT } from '../test/support/dist';

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly os: string;
  readonly node: string;
  readonly packages: Record<string, string>;
  readonly date: string;
  readonly loadAtStart: string;
}

export function machine(): Machine {
  const release = existsSync('/etc/os-release') ? /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] : undefined;
  const version = (pkg: string) => {
    try {
      return JSON.parse(readFileSync(path.join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')).version as string;
    } catch {
      return 'not installed';
    }
  };
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism?.() ?? os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${release ?? os.type()} (${os.platform()} ${os.release()}, ${os.arch()})`,
    node: process.version,
    packages: Object.fromEntries(['cdk8s', 'cdk8s-plus-27', 'cdk8s-cli', 'tsx', 'vitest'].map((p) => [p, version(p)])),
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    loadAtStart: loadAverage(),
  };
}

/** 1-, 5- and 15-minute load averages: other work on the machine skews every number. */
export const loadAverage = (): string => os.loadavg().map((l) => l.toFixed(2)).join(' / ');

/** A markdown table; cells are used as given. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

export interface Target {
  readonly what: string;
  readonly goal: string;
  readonly measured: string;
  /** undefined: not measured (e.g. dbmate missing). */
  readonly pass: boolean | undefined;
}

export const verdict = (pass: boolean | undefined): string => (pass === undefined ? 'SKIPPED' : pass ? 'PASS' : 'FAIL');
