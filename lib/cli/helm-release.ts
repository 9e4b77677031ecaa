// The Helm release as `deploy` and `verify` read it: the newest entry of `helm history`, which
// names the chart the release runs (`helm status -o json` does not: its JSON has no chart).
import { RunResult } from './exec';

export interface ReleaseRecord {
  /** `deployed`, `failed`, `pending-upgrade`, …; `unknown status` when helm's output was not understood. */
  readonly status: string;
  readonly revision?: number;
  /** `postgresql-15.5.38`. */
  readonly chart?: string;
}

/** helm's answer when the release does not exist (in that namespace). */
export const releaseNotFound = (result: RunResult): boolean => result.code !== 0 && /release: not found/.test(result.stderr);

/** The newest revision from `helm history <release> --max 1 -o json`. */
export function parseRelease(stdout: string): ReleaseRecord {
  let entries: any;
  try {
    entries = JSON.parse(stdout);
  } catch {
    // an older helm or a plugin wrapper: the release exists, details unknown
  }
  const newest = Array.isArray(entries) ? entries.at(-1) : undefined;
  return {
    status: typeof newest?.status === 'string' ? newest.status : 'unknown status',
    revision: typeof newest?.revision === 'number' ? newest.revision : undefined,
    chart: typeof newest?.chart === 'string' ? newest.chart : undefined,
  };
}

/** `deployed, revision 3, chart postgresql-15.5.38`. */
export function describeRelease(record: ReleaseRecord): string {
  return [record.status, record.revision !== undefined ? `revision ${record.revision}` : undefined, record.chart ? `chart ${record.chart}` : undefined]
    .filter(Boolean).join(', ');
}
