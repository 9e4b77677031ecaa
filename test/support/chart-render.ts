// The chart tier's inputs: every profile and every prop variant (./variants.ts), each rendered as
// a deployment of its own (dist/ manifests, the values file) AND the real Bitnami chart rendered
// by the real helm (`helm template` of the vendored archive with that values file). Renders are
// made once per `vitest run` by test/support/global-setup.ts and shared by every file (a file run
// alone renders what it asks for itself).
//
//   const cases = await chartCases();              // every case, rendered
//   const c = await chartCase('profile:production');
//   c.dist, c.chart, c.all                         // manifests: ours, the chart's, both
//
// Each case lives in a namespace of its own (`lfchart-<n>`), so all of them can be applied to one
// API server. Cross-reference helpers for these manifests are in ./chart-refs.ts.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { inject } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { DeploymentConfig, LearnflowPostgresProps, resolveConfig } from '../../lib/config';
import { CHART_NAME } from '../../lib/chart-source';
import { PROFILES } from '../../lib/profiles';
import { renderProfile } from '../../lib/synth';
import { readVendored, vendoredChart } from '../../lib/vendored';
import { ROOT, Manifest } from './dist';
import { helmEnv, runToolOk } from './tools';
import { FIXTURE_MIGRATIONS, VARIANTS } from './variants';

/** One deployment the chart tier checks: a profile of lib/profiles.ts or a snapshot variant. */
export interface ChartCaseSpec {
  /** `profile:<name>` or `variant:<name>`. */
  readonly name: string;
  /** The props as rendered: the profile's or variant's, in the case's own namespace. */
  readonly props: LearnflowPostgresProps;
}

export interface RenderedChartCase extends ChartCaseSpec {
  readonly config: DeploymentConfig;
  readonly namespace: string;
  readonly release: string;
  /** learnflow-postgres.yaml of the case, as the synth writes it. */
  readonly distYaml: string;
  /** helm/postgresql-values.yaml of the case. */
  readonly valuesYaml: string;
  /** The values as an object (what the chart receives). */
  readonly values: Record<string, any>;
  /** `helm template` of the vendored chart with those values. */
  readonly chartYaml: string;
  readonly dist: Manifest[];
  readonly chart: Manifest[];
  /** dist/ then the chart: everything a deployment holds. */
  readonly all: Manifest[];
}

/** Namespaces of the chart tier start with this; each case gets `<prefix><n>`. */
export const CHART_NAMESPACE_PREFIX = 'lfchart-';

/** Every profile and every snapshot variant, each in a namespace of its own. */
export function chartCaseSpecs(): ChartCaseSpec[] {
  const named: [string, LearnflowPostgresProps][] = [
    ...Object.entries<LearnflowPostgresProps>(PROFILES).map(([n, p]) => [`profile:${n}`, p] as [string, LearnflowPostgresProps]),
    ...Object.entries(VARIANTS).map(([n, p]) => [`variant:${n}`, p] as [string, LearnflowPostgresProps]),
  ];
  return named.map(([name, props], i) => ({ name, props: { ...props, namespace: `${CHART_NAMESPACE_PREFIX}${i + 1}` } }));
}

/** The vendored chart folder of `version` (the unpacked copy; helm renders it like the archive). */
export function vendoredChartDir(version: string): string {
  const chart = vendoredChart(readVendored(ROOT), CHART_NAME, version);
  if (!chart) throw new Error(`vendored.json records no chart ${CHART_NAME} ${version}`);
  return path.join(ROOT, chart.directory);
}

const objects = (yaml: string): Manifest[] =>
  parseAllDocuments(yaml).map((d) => d.toJS() as Manifest).filter((m) => m !== null && typeof m === 'object' && typeof m.kind === 'string');

/** `helm template` of the vendored chart for `config` with the values in `valuesFile`, as text. */
export function helmTemplate(config: DeploymentConfig, valuesFile: string, helmHome: string, extra: readonly string[] = []): Promise<string> {
  return runToolOk('helm', [
    'template', config.releaseName, path.join(ROOT, `charts/${CHART_NAME}-${config.chartVersion}.tgz`),
    '--namespace', config.namespace, '--kube-version', `${config.kubernetesVersion}.0`, '-f', valuesFile, ...extra,
  ], { env: helmEnv(helmHome) });
}

/** `helm template` of the vendored chart for `props` with `valuesYaml` (e.g. a values file the synth wrote), as manifests. */
export async function renderChart(props: LearnflowPostgresProps, valuesYaml: string): Promise<Manifest[]> {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'learnflow-chart-'));
  try {
    const valuesFile = path.join(scratch, 'values.yaml');
    writeFileSync(valuesFile, valuesYaml);
    return objects(await helmTemplate(resolveConfig(props), valuesFile, path.join(scratch, 'helm')));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Renders one case: dist/ and the values in process, the chart with helm; files go to `dir`. */
async function renderCase(spec: ChartCaseSpec, dir: string): Promise<void> {
  const slug = spec.name.replace(/[^a-z0-9.-]+/gi, '_');
  const files = renderProfile(slug, spec.props, FIXTURE_MIGRATIONS);
  const valuesFile = path.join(dir, `${slug}.values.yaml`);
  writeFileSync(valuesFile, files.get('helm/postgresql-values.yaml')!);
  writeFileSync(path.join(dir, `${slug}.dist.yaml`), files.get('learnflow-postgres.yaml')!);
  writeFileSync(path.join(dir, `${slug}.chart.yaml`), await helmTemplate(resolveConfig(spec.props), valuesFile, path.join(dir, 'helm')));
}

/** Renders every case into `dir` (a few at a time: helm is a process each). */
export async function renderChartCases(dir: string, specs = chartCaseSpecs()): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const queue = [...specs];
  await Promise.all([1, 2].map(async () => {
    for (let spec = queue.shift(); spec; spec = queue.shift()) await renderCase(spec, dir);
  }));
}

function readCase(spec: ChartCaseSpec, dir: string): RenderedChartCase {
  const slug = spec.name.replace(/[^a-z0-9.-]+/gi, '_');
  const read = (what: string) => readFileSync(path.join(dir, `${slug}.${what}.yaml`), 'utf8');
  const config = resolveConfig(spec.props);
  const [distYaml, valuesYaml, chartYaml] = [read('dist'), read('values'), read('chart')];
  const dist = objects(distYaml);
  const chart = objects(chartYaml);
  return {
    ...spec, config, namespace: config.namespace, release: config.releaseName,
    distYaml, valuesYaml, values: parse(valuesYaml), chartYaml, dist, chart, all: [...dist, ...chart],
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** Folder of the chart renders test/support/global-setup.ts made for this run. */
    chartRenders?: string;
  }
}

let own: Promise<string> | undefined;

/** The run's renders (global setup), or renders of this file's own for a file run alone. */
function rendersDir(): Promise<string> {
  const provided = inject('chartRenders');
  if (provided && existsSync(provided)) return Promise.resolve(provided);
  own ??= (async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'learnflow-chart-renders-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    await renderChartCases(dir);
    return dir;
  })();
  return own;
}

/** Every case, rendered. */
export async function chartCases(): Promise<RenderedChartCase[]> {
  const dir = await rendersDir();
  return chartCaseSpecs().map((spec) => readCase(spec, dir));
}

/** One case by name (`profile:production`, `variant:backups`). */
export async function chartCase(name: string): Promise<RenderedChartCase> {
  const found = (await chartCases()).find((c) => c.name === name);
  if (!found) throw new Error(`no chart case ${name} (cases: ${chartCaseSpecs().map((c) => c.name).join(', ')})`);
  return found;
}
