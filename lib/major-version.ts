/**
 * The major-version guard: a data directory of one PostgreSQL major cannot start on the next, so
 * switching `chartVersion` (15.5.38 ships PostgreSQL 16, 16.7.27 ships 17) over an existing data
 * volume makes the database crash-loop. The major that runs on the volume is read from the
 * chart's StatefulSet (its postgresql image, or its chart label). Checked twice, the same way:
 * the CLI's deploy refuses a different target before it changes anything, and in a sync the
 * credentials Job (wave -1, before the chart's StatefulSet) stops with exit 3
 * (lib/credentials/bootstrap.sh), with the ways through.
 */
import { CHART_RELEASES, isChartVersion } from './chart';
import { DeploymentConfig } from './config';
import { deploymentImages } from './images';

/** The leading number of a PostgreSQL version or a Bitnami image tag (`16.4.0-debian-12-r14` → 16). */
const majorOf = (version: string | undefined): number | undefined => {
  const m = /^(\d+)(\.|$)/.exec(version ?? '');
  return m ? Number(m[1]) : undefined;
};

/** `<chart version>=<major>` of every chart release, space-separated: the bootstrap's CHART_MAJORS. */
export function chartMajors(): string {
  return Object.entries(CHART_RELEASES).map(([version, r]) => `${version}=${majorOf(r.postgresqlVersion)}`).join(' ');
}

/** The major the deployment's database image runs. */
export function targetMajor(config: DeploymentConfig): number {
  return majorOf(deploymentImages(config).postgresql.tag) ?? majorOf(CHART_RELEASES[config.chartVersion].postgresqlVersion)!;
}

/** The StatefulSet fields the guard reads (as the API server returns it). */
export interface StatefulSetView {
  readonly metadata: { readonly labels?: Readonly<Record<string, string>> };
  readonly spec?: { readonly template?: { readonly spec?: { readonly containers?: readonly { readonly name: string; readonly image?: string }[] } } };
}

/** The major that runs on the data volume: the StatefulSet's postgresql image, else its chart's; undefined when unknown. */
export function runningMajor(statefulSet: StatefulSetView): number | undefined {
  const image = statefulSet.spec?.template?.spec?.containers?.find((c) => c.name === 'postgresql')?.image;
  const fromImage = majorOf(image?.slice(image.lastIndexOf(':') + 1));
  if (fromImage !== undefined) return fromImage;
  const chart = /^postgresql-(.+)$/.exec(statefulSet.metadata.labels?.['helm.sh/chart'] ?? '')?.[1];
  return chart && isChartVersion(chart) ? majorOf(CHART_RELEASES[chart].postgresqlVersion) : undefined;
}

export interface MajorVersionRefusal {
  readonly message: string;
  /** The ways through, in order. */
  readonly next: readonly string[];
}

/**
 * Why the deployment must not go on, or undefined: the data claim exists and a StatefulSet runs
 * a different major on it than `config` would.
 */
export function majorVersionRefusal(config: DeploymentConfig, profile: string, observed: { dataClaim?: string; statefulSet?: StatefulSetView }): MajorVersionRefusal | undefined {
  if (!observed.dataClaim || !observed.statefulSet) return undefined;
  const running = runningMajor(observed.statefulSet);
  const target = targetMajor(config);
  if (running === undefined || running === target) return undefined;
  const other = Object.entries(CHART_RELEASES).find(([, r]) => majorOf(r.postgresqlVersion) === running)?.[0];
  return {
    message: `PostgreSQL ${running} runs on the data volume ${observed.dataClaim}, and chart ${config.chartVersion} would start PostgreSQL ${target} on it: ` +
      `a data directory of one major version cannot start on another (the pod would crash-loop). Nothing was changed.`,
    next: [
      `keep the data as it is: set chartVersion back${other ? ` to '${other}'` : ''} in profile '${profile}' (lib/profiles.ts) and run npm run synth`,
      `or move the data across: README "Upgrading PostgreSQL's major version" (a dump with the backup Job, a fresh volume for PostgreSQL ${target}, the restore Job)`,
    ],
  };
}
