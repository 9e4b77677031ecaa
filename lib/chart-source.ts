/**
 * Where the Bitnami PostgreSQL chart comes from (a profile's `chartSource`): this repository's
 * vendored copy (charts/, checked against vendored.json), Bitnami's OCI registry, or a mirror of
 * it. One ChartLocation per deployment; the helm command of the values file, the CLI's deploy and
 * the Argo CD Application are all derived from it, so they cannot disagree.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { ChartVersion } from './chart';
import { VENDORED_RECORD, VendoredRecord, checksumProblem, readVendored, vendoredChart } from './vendored';

/** The chart's name, in every registry and in vendored.json. */
export const CHART_NAME = 'postgresql';

/** Bitnami's OCI repository (frozen since 2025: it publishes no new chart versions). */
export const BITNAMI_CHART_REPOSITORY = 'oci://registry-1.docker.io/bitnamicharts';

/**
 * - `repository`: the archive vendored in charts/ (helm) or its unpacked folder by Git path
 *   (Argo CD); needs no registry at all, so it works air-gapped.
 * - `bitnami`: Bitnami's OCI registry.
 * - `mirror`: the OCI repository of `chartMirror`, holding the same `postgresql` chart.
 */
export const CHART_SOURCES = ['repository', 'bitnami', 'mirror'] as const;
export type ChartSource = (typeof CHART_SOURCES)[number];
export const DEFAULT_CHART_SOURCE: ChartSource = 'repository';

/** `oci://host[:port][/path]`, the repository that holds `postgresql` (not the chart's own URL). */
const OCI_REPOSITORY = /^oci:\/\/[a-zA-Z0-9.-]+(:[0-9]+)?(\/[a-z0-9._-]+)*$/;

/** The rule of `chartMirror`, for lib/validation.ts. */
export function chartMirrorProblems(field: string, value: string): string[] {
  if (!OCI_REPOSITORY.test(value)) {
    return [`${field}: '${value}' is not an OCI repository (oci://host[:port]/path, e.g. oci://harbor.example.com/bitnamicharts)`];
  }
  if (value.endsWith(`/${CHART_NAME}`)) {
    return [`${field}: '${value}' names the chart itself (give the repository that holds ${CHART_NAME}: ${value.slice(0, -CHART_NAME.length - 1)})`];
  }
  return [];
}

/** Where helm and Argo CD find the chart of one deployment. */
export interface ChartLocation {
  readonly source: ChartSource;
  readonly version: ChartVersion;
  /**
   * What `helm upgrade --install <release> <chart>` takes: the archive's path from the repository
   * root (`charts/postgresql-15.5.38.tgz`), or the chart's `oci://` URL.
   */
  readonly helmChart: string;
  /** `--version <v>` for a registry; none for the archive, whose file pins it (helm ignores it there). */
  readonly helmVersionArgs: readonly string[];
  /** The vendored copy (`repository` only): archive and unpacked folder, from the repository root. */
  readonly vendored?: { readonly archive: string; readonly sha256: string; readonly directory: string };
  /** The OCI repository without `oci://` (registries only), as Argo CD's Helm source takes it. */
  readonly ociRepository?: string;
}

/** Reads vendored.json under `root`, or undefined when it is missing or unreadable. */
function readRecord(root: string): VendoredRecord | undefined {
  try {
    return readVendored(root);
  } catch {
    return undefined;
  }
}

export interface ChartSourceSettings {
  readonly chartSource: ChartSource;
  readonly chartMirror?: string;
  readonly chartVersion: ChartVersion;
  /** An Argo CD Application is rendered: it reads the vendored chart from its unpacked folder. */
  readonly argocd: boolean;
}

/**
 * The chart location of `settings` in the project at `root`, or every reason it cannot be used,
 * each naming the prop to change. For `repository`, the archive must exist and match the sha256
 * vendored.json records (and, for Argo CD, its unpacked folder must be there).
 */
export function resolveChartLocation(settings: ChartSourceSettings, root: string): { location?: ChartLocation; problems: string[] } {
  const { chartSource: source, chartVersion: version } = settings;
  if (source !== 'repository') {
    const repository = source === 'bitnami' ? BITNAMI_CHART_REPOSITORY : settings.chartMirror;
    if (repository === undefined) return { problems: ['chartMirror: required with chartSource mirror (the OCI repository holding postgresql, e.g. oci://harbor.example.com/bitnamicharts)'] };
    return {
      location: {
        source, version, helmChart: `${repository}/${CHART_NAME}`, helmVersionArgs: ['--version', version],
        ociRepository: repository.replace(/^oci:\/\//, ''),
      },
      problems: [],
    };
  }
  const record = readRecord(root);
  const chart = record && vendoredChart(record, CHART_NAME, version);
  if (!chart) {
    return {
      problems: [`chartVersion: '${version}' has no vendored chart (${VENDORED_RECORD} records ${record ? record.charts.map((c) => c.version).join(', ') || 'none' : 'nothing: it is missing'}), ` +
        `and chartSource repository installs from charts/ (vendor it with its record, or set chartSource to bitnami or mirror)`],
    };
  }
  const problems: string[] = [];
  const archive = checksumProblem(root, chart.archive, chart.sha256);
  if (archive) problems.push(`chartSource: repository needs the vendored archive, but ${archive} (restore it: git checkout -- ${chart.archive})`);
  if (settings.argocd && !existsSync(path.join(root, chart.directory, 'Chart.yaml'))) {
    problems.push(`chartSource: repository with Argo CD needs the unpacked chart ${chart.directory}/ (Argo CD reads a chart from a Git path, not an archive), and it is missing (restore it: git checkout -- ${chart.directory})`);
  }
  if (problems.length > 0) return { problems };
  return {
    location: {
      source, version, helmChart: chart.archive, helmVersionArgs: [],
      vendored: { archive: chart.archive, sha256: chart.sha256, directory: chart.directory },
    },
    problems: [],
  };
}

/** The values file's comment naming the chart (`# chart: postgresql 15.5.38 from …`); the CLI reads it back to refuse a stale dist/. */
export const CHART_LINE_PREFIX = 'chart: postgresql ';

/** `helm upgrade --install …` of `location` as a person runs it from the repository root. */
export function helmUpgradeArgs(location: ChartLocation, release: string, namespace: string, valuesFile: string, chart = location.helmChart): string[] {
  return ['upgrade', '--install', release, chart, ...location.helmVersionArgs, '--namespace', namespace, '-f', valuesFile];
}
