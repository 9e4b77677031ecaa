/**
 * Wall time per phase of a synth, summed over the profiles: what LEARNFLOW_SYNTH_TIMINGS=1
 * prints and the bench reads, to see where a slow synth spends its time.
 */
export class PhaseTimings {
  private readonly phases = new Map<string, number>();

  /** Runs `step` and adds its wall time to `phase`, also when it throws. */
  measure<T>(phase: SynthPhase, step: () => T): T {
    const started = performance.now();
    try {
      return step();
    } finally {
      this.add(phase, performance.now() - started);
    }
  }

  add(phase: SynthPhase, ms: number): void {
    this.phases.set(phase, (this.phases.get(phase) ?? 0) + ms);
  }

  /** One line per phase in the order they first ran, `  12.3 ms  phase`, for stderr. */
  format(): string {
    return [...this.phases].map(([phase, ms]) => `${ms.toFixed(1).padStart(8)} ms  ${phase}\n`).join('');
  }
}

/** The phases and times {@link PhaseTimings.format} wrote, read back from a synth's stderr. */
export function parsePhaseTimings(text: string): Map<string, number> {
  return new Map([...text.matchAll(/^ +(\d+\.\d) ms {2}(.+)$/gm)].map(([, ms, phase]) => [phase, Number(ms)]));
}

/** The phases of a synth, in the order they run. */
export const SYNTH_PHASES = [
  'start-up: Node.js, the libraries and our modules',
  'reading and checking migrations/',
  'building the constructs',
  'cdk8s synthesis (Chart.toJson)',
  'YAML',
  'Argo CD Application',
  'Helm values',
  'writing and swapping dist/',
] as const;

export type SynthPhase = (typeof SYNTH_PHASES)[number];
