/**
 * Facts about the Bitnami PostgreSQL chart, checked against the chart's own values.yaml
 * (copied with provenance in reference/bitnami-postgresql/). Nothing here is a guess:
 * test/chart.test.ts proves each image tag and every rendered key against those files.
 */

/** Where `helm` pulls the chart from. The chart's old HTTP repository is frozen. */
export const CHART_OCI_URL = 'oci://registry-1.docker.io/bitnamicharts/postgresql';

export interface ImageRef {
  readonly registry: string;
  readonly repository: string;
  readonly tag: string;
}

export interface ChartRelease {
  /** PostgreSQL version the chart's default image ships. */
  readonly postgresqlVersion: string;
  /** The chart's default tags; the repositories are Bitnami's frozen `bitnamilegacy` copies. */
  readonly images: { readonly postgresql: ImageRef; readonly osShell: ImageRef; readonly exporter: ImageRef };
  /**
   * Charts from 2025 on refuse images outside `bitnami/` unless
   * `global.security.allowInsecureImages` is true; older charts do not know the key.
   */
  readonly hasAllowInsecureImages: boolean;
}

// Bitnami removed its versioned tags from docker.io/bitnami in 2025 (bitnami/containers#83267);
// the same tags stay pullable, frozen, from docker.io/bitnamilegacy.
const legacy = (name: string, tag: string): ImageRef => ({ registry: 'docker.io', repository: `bitnamilegacy/${name}`, tag });

export const CHART_RELEASES = {
  /** The last 15.x chart: the default pin. */
  '15.5.38': {
    postgresqlVersion: '16.4.0',
    images: {
      postgresql: legacy('postgresql', '16.4.0-debian-12-r14'),
      osShell: legacy('os-shell', '12-debian-12-r30'),
      exporter: legacy('postgres-exporter', '0.15.0-debian-12-r43'),
    },
    hasAllowInsecureImages: false,
  },
  /** The last chart Bitnami published to its OCI registry. */
  '16.7.27': {
    postgresqlVersion: '17.6.0',
    images: {
      postgresql: legacy('postgresql', '17.6.0-debian-12-r4'),
      osShell: legacy('os-shell', '12-debian-12-r51'),
      exporter: legacy('postgres-exporter', '0.17.1-debian-12-r16'),
    },
    hasAllowInsecureImages: true,
  },
} as const satisfies Record<string, ChartRelease>;

export type ChartVersion = keyof typeof CHART_RELEASES;
export const SUPPORTED_CHART_VERSIONS = Object.keys(CHART_RELEASES) as ChartVersion[];
export const DEFAULT_CHART_VERSION: ChartVersion = '15.5.38';

export function isChartVersion(version: string): version is ChartVersion {
  return Object.prototype.hasOwnProperty.call(CHART_RELEASES, version);
}

/**
 * The chart's `common.names.fullname`: the release name alone when it already contains the
 * chart name, else `<release>-postgresql`; at most 63 characters, no trailing dash.
 */
export function chartFullname(releaseName: string): string {
  const full = releaseName.includes('postgresql') ? releaseName : `${releaseName}-postgresql`;
  return full.slice(0, 63).replace(/-+$/, '');
}

/** Names and labels of what the chart creates for a release, standalone or with read replicas. */
export interface ChartObjects {
  /** The primary's ClusterIP (or LoadBalancer) Service, also its StatefulSet's name. */
  readonly service: string;
  readonly headlessService: string;
  readonly statefulSet: string;
  readonly pod: string;
  /** The claim the StatefulSet's `data` volumeClaimTemplate creates for pod 0. */
  readonly dataClaim: string;
  /** Labels on the primary pod, for selectors and `kubectl wait -l`. */
  readonly podLabels: Readonly<Record<string, string>>;
  /** Labels every database pod of the release has, the primary's and the replicas'. */
  readonly databasePodLabels: Readonly<Record<string, string>>;
  /** With read replicas (`architecture: replication`): their Services, StatefulSet and pods. */
  readonly read?: {
    readonly service: string;
    readonly headlessService: string;
    readonly statefulSet: string;
    /** `<statefulSet>-0`, `-1`, ... */
    readonly pods: readonly string[];
    readonly podLabels: Readonly<Record<string, string>>;
  };
}

/**
 * The chart's names (templates/_helpers.tpl): with `architecture: replication` the primary's
 * objects are `<fullname>-primary` (primary.name) and the replicas' `<fullname>-read`
 * (readReplicas.name); standalone, the primary's are `<fullname>`.
 */
export function chartObjects(releaseName: string, readReplicas = 0): ChartObjects {
  const fullname = chartFullname(releaseName);
  const name = (suffix: string) => `${fullname}-${suffix}`.slice(0, 63).replace(/-+$/, '');
  const primary = readReplicas > 0 ? name('primary') : fullname;
  const databasePodLabels = { 'app.kubernetes.io/name': 'postgresql', 'app.kubernetes.io/instance': releaseName };
  const read = name('read');
  return {
    service: primary,
    headlessService: `${primary}-hl`.slice(0, 63).replace(/-+$/, ''),
    statefulSet: primary,
    pod: `${primary}-0`,
    dataClaim: `data-${primary}-0`,
    podLabels: { ...databasePodLabels, 'app.kubernetes.io/component': 'primary' },
    databasePodLabels,
    ...(readReplicas > 0 ? {
      read: {
        service: read,
        headlessService: `${read}-hl`.slice(0, 63).replace(/-+$/, ''),
        statefulSet: read,
        pods: Array.from({ length: readReplicas }, (_, i) => `${read}-${i}`),
        podLabels: { ...databasePodLabels, 'app.kubernetes.io/component': 'read' },
      },
    } : {}),
  };
}
