/**
 * The record of every file this repository holds from elsewhere (`vendored.json` at the root):
 * the Bitnami chart archives with their unpacked copies, the chart's reference values, the CRDs.
 * The synth checks a chart archive against it before using it; test/vendored.test.ts checks all.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

/** The file beside `package.json` that records what was vendored. */
export const VENDORED_RECORD = 'vendored.json';

/** Where a vendored file came from. */
export interface VendoredUpstream {
  /** e.g. `github.com/bitnami/charts` */
  readonly repository: string;
  /** Path inside that repository. */
  readonly path: string;
  readonly commit?: string;
  readonly date?: string;
  readonly version?: string;
}

/** One vendored file, by its path from the repository root. */
export interface VendoredFile {
  readonly path: string;
  readonly sha256: string;
  /** SPDX identifier. */
  readonly license: string;
  /** The SOURCE.md that tells its story. */
  readonly provenance: string;
  readonly upstream: VendoredUpstream;
}

/** A packaged Helm chart, kept both as its archive and unpacked (Argo CD reads charts from a Git path). */
export interface VendoredChart {
  readonly name: string;
  readonly version: string;
  readonly appVersion: string;
  /** The `helm package` archive, e.g. `charts/postgresql-15.5.38.tgz`. */
  readonly archive: string;
  /** sha256 of the archive. */
  readonly sha256: string;
  /** The archive's content, unpacked, byte for byte (its top folder stripped). */
  readonly directory: string;
  readonly license: string;
  readonly licenseFile: string;
  readonly provenance: string;
  readonly upstream: VendoredUpstream;
  /** Subcharts packaged inside the archive under `charts/`. */
  readonly dependencies: readonly (VendoredUpstream & { readonly name: string; readonly version: string })[];
}

export interface VendoredRecord {
  readonly charts: readonly VendoredChart[];
  readonly files: readonly VendoredFile[];
}

/** Reads `vendored.json` under `root`. */
export function readVendored(root: string): VendoredRecord {
  const file = path.join(root, VENDORED_RECORD);
  const record = JSON.parse(readFileSync(file, 'utf8')) as VendoredRecord;
  if (!Array.isArray(record.charts) || !Array.isArray(record.files)) {
    throw new Error(`${file}: expected "charts" and "files" arrays`);
  }
  return record;
}

/** The vendored chart `name` at `version`, or undefined. */
export function vendoredChart(record: VendoredRecord, name: string, version: string): VendoredChart | undefined {
  return record.charts.find((c) => c.name === name && c.version === version);
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Checks that `relativePath` under `root` exists and has the recorded sha256. Returns the problem
 * as one sentence naming the file, or undefined when it matches.
 */
export function checksumProblem(root: string, relativePath: string, expected: string): string | undefined {
  let data: Buffer;
  try {
    data = readFileSync(path.join(root, relativePath));
  } catch {
    return `${relativePath}: missing (${VENDORED_RECORD} records it with sha256 ${expected})`;
  }
  const actual = sha256(data);
  return actual === expected ? undefined : `${relativePath}: sha256 is ${actual}, ${VENDORED_RECORD} records ${expected}`;
}
