import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync, existsSync, cpSync } from 'node:fs';
import * as path from 'node:path';
import { App, Yaml } from 'cdk8s';
import { ArgoApplicationChart } from './argocd';
import { CHART_LINE_PREFIX, ChartLocation, helmUpgradeArgs, resolveChartLocation } from './chart-source';
import { LearnflowPostgresProps, resolveConfig } from './config';
import { LearnflowPostgresChart } from './learnflow-postgres';
import { ManifestYaml } from './manifest-yaml';
import { loadMigrations } from './migrations/files';
import { Migration } from './migrations/types';
import { PROFILES, PROFILE_NAMES, ProfileName, isProfileName } from './profiles';
import { PhaseTimings } from './timings';
import { ValidationError } from './validation';

export interface SynthOptions {
  /** Project root: migrations/ is read from here. */
  readonly root: string;
  /** Where the result goes; replaced only when every profile synthesized. */
  readonly outdir: string;
  /** Only this profile (LEARNFLOW_PROFILE); the other profiles' folders are left as they are. */
  readonly profile?: string;
  /** Receives the wall time of each phase (LEARNFLOW_SYNTH_TIMINGS=1). */
  readonly timings?: PhaseTimings;
}

export interface SynthResult {
  /** The profiles written. */
  readonly profiles: ProfileName[];
  /** Profiles with Argo CD props but no `argocd.repoURL`: no Application was rendered for them. */
  readonly withoutApplication: ProfileName[];
}

/**
 * Renders every profile into a staging folder, then swaps it into place: a failure leaves the
 * output exactly as it was, and a success leaves no stale file behind.
 */
export function synthesize(options: SynthOptions): SynthResult {
  if (options.profile !== undefined && !isProfileName(options.profile)) {
    throw new ValidationError('LEARNFLOW_PROFILE', [`LEARNFLOW_PROFILE: '${options.profile}' is not a profile (one of ${PROFILE_NAMES.join(', ')})`]);
  }
  const profiles = options.profile ? [options.profile as ProfileName] : PROFILE_NAMES;
  const timings = options.timings ?? new PhaseTimings();
  const migrations = timings.measure('reading and checking migrations/', () =>
    loadMigrations(path.join(options.root, 'migrations'), { root: options.root }));
  const outdir = path.resolve(options.outdir);
  mkdirSync(path.dirname(outdir), { recursive: true });
  const staging = stagingFolder(outdir);
  try {
    const yaml = new ManifestYaml();
    for (const name of profiles) {
      const files = renderProfile(name, PROFILES[name], migrations, { yaml, timings, root: options.root });
      timings.measure('writing and swapping dist/', () => writeFiles(path.join(staging, name), files));
    }
    timings.measure('writing and swapping dist/', () => {
      if (options.profile) {
        if (!existsSync(outdir)) mkdirSync(outdir);
        swap(path.join(staging, options.profile), path.join(outdir, options.profile));
      } else {
        swap(staging, outdir);
      }
    });
    const withoutApplication = profiles.filter((name) => {
      const props: LearnflowPostgresProps = PROFILES[name];
      return props.argocd !== undefined && props.argocd.repoURL === undefined;
    });
    return { profiles, withoutApplication };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

export interface RenderOptions {
  /** Remembers the YAML of manifests other profiles share. @default a cache of its own */
  readonly yaml?: ManifestYaml;
  /** Receives the wall time of each phase. */
  readonly timings?: PhaseTimings;
  /** The project root: the vendored chart (charts/, vendored.json) is read from here. @default this checkout */
  readonly root?: string;
}

/** This checkout, when lib/ runs from its sources (tests); the synth always names its root. */
const SOURCE_ROOT = path.resolve(__dirname, '..');

/**
 * The chart location of a profile, checked against the vendored files under `root`; throws a
 * ValidationError naming the prop with every problem of the props and of the chart source at once.
 */
export function profileChartLocation(name: string, props: LearnflowPostgresProps, root: string, propProblems: readonly string[] = []): ChartLocation {
  const config = resolveConfig(props);
  const { location, problems } = resolveChartLocation({
    chartSource: config.chartSource, chartMirror: config.chartMirror, chartVersion: config.chartVersion,
    argocd: config.argocd?.repoURL !== undefined,
  }, root);
  // A chart source problem that only repeats a prop's own problem (e.g. an unknown version) adds nothing.
  const all = [...propProblems, ...problems.filter((p) => !propProblems.some((q) => q.split(':')[0] === p.split(':')[0]))];
  if (all.length > 0 || !location) throw new ValidationError(`profile '${name}' (lib/profiles.ts)`, all);
  return location;
}

/**
 * Every file of one profile's folder under dist/, path inside it → text: the manifests, the
 * Helm values and, with `argocd.repoURL`, the Argo CD Application. Pure: nothing is written.
 */
export function renderProfile(name: string, props: LearnflowPostgresProps, migrations: readonly Migration[], options: RenderOptions = {}): Map<string, string> {
  const yaml = options.yaml ?? new ManifestYaml();
  const timings = options.timings ?? new PhaseTimings();
  const files = new Map<string, string>();
  // Never synthesized itself: the chart's manifests are turned into text below.
  const app = new App({ outdir: 'dist' });
  let chartLocation: ChartLocation | undefined;
  const chart = timings.measure('building the constructs', () => {
    let built: LearnflowPostgresChart | undefined;
    let propProblems: readonly string[] = [];
    try {
      built = new LearnflowPostgresChart(app, 'learnflow-postgres', { ...props, migrationSet: migrations });
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      propProblems = error.problems;
    }
    chartLocation = profileChartLocation(name, props, options.root ?? SOURCE_ROOT, propProblems);
    return built!;
  });
  // Chart.toJson() is cdk8s's whole synthesis of a chart (dependencies, validation, order), and
  // app.synth() would write it as Yaml.stringify does; turned into text here instead so that
  // manifests the profiles share (the migration ConfigMaps above all) become YAML once.
  const manifests = timings.measure('cdk8s synthesis (Chart.toJson)', () => chart.toJson());
  files.set(`${chart.node.id}.yaml`, timings.measure('YAML', () => yaml.documents(manifests)));
  const { argocd, releaseName, namespace, tls } = chart.config;
  const location = chartLocation!;
  const repoURL = argocd?.repoURL;
  if (argocd && repoURL) {
    timings.measure('Argo CD Application', () => {
      const application = new ArgoApplicationChart(new App({ outdir: 'dist' }), 'application', {
        ...argocd, repoURL, profile: name, destinationNamespace: namespace, releaseName, chart: location,
        chartGeneratedCertificate: tls.enabled && tls.certificatesSecret === undefined,
      });
      files.set('argocd/application.yaml', Yaml.stringify(...application.toJson()));
    });
  }
  timings.measure('Helm values', () => {
    const [upgrade, install, release, source, ...rest] = helmUpgradeArgs(location, releaseName, namespace, `dist/${name}/helm/postgresql-values.yaml`);
    files.set('helm/postgresql-values.yaml', [
      `# Bitnami PostgreSQL values for profile '${name}', generated by learnflow-postgres: do not edit.`,
      `# ${CHART_LINE_PREFIX}${location.version} from ${location.source === 'repository' ? 'this repository' : location.source} (chartSource ${location.source}). From the repository root:`,
      `# helm ${[upgrade, install, release, source].join(' ')} \\`,
      `#   ${rest.join(' ')}`,
      Yaml.stringify(chart.helmValues),
    ].join('\n'));
  });
  return files;
}

/** Writes `files` (path inside `dir` → text) below `dir`. */
function writeFiles(dir: string, files: ReadonlyMap<string, string>): void {
  for (const [file, text] of files) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), text);
  }
}

/**
 * An empty folder beside `outdir`, created like any other folder (mode 0777 less the umask):
 * it becomes dist/ itself, so it must be as readable as one `mkdir` makes (mkdtemp's 0700 is not).
 */
function stagingFolder(outdir: string): string {
  const staging = path.join(path.dirname(outdir), `.${path.basename(outdir)}.staging-${process.pid}-${randomBytes(4).toString('hex')}`);
  mkdirSync(staging);
  return staging;
}

/** Replaces `target` with `source` by renames, so readers never see a half-written folder. */
function swap(source: string, target: string): void {
  const old = `${target}.old-${process.pid}`;
  const hadTarget = existsSync(target);
  if (hadTarget) renameSync(target, old);
  try {
    renameSync(source, target);
  } catch (error) {
    if (hadTarget) renameSync(old, target);
    // Cross-device or busy: copy instead (still after every profile rendered).
    if (!existsSync(target)) cpSync(source, target, { recursive: true });
    else throw error;
  }
  rmSync(old, { recursive: true, force: true });
}

/** Copies the synthesized profiles to a second folder (the cdk8s CLI's output), unless it is dist itself. */
export function mirrorOutput(dist: string, target: string, profiles: readonly ProfileName[]): void {
  if (path.resolve(target) === path.resolve(dist)) return;
  for (const profile of profiles) {
    rmSync(path.join(target, profile), { recursive: true, force: true });
    cpSync(path.join(dist, profile), path.join(target, profile), { recursive: true });
  }
}
