import { Chart } from 'cdk8s';
import { Construct } from 'constructs';
import { Application } from '../imports/argocd-argoproj.io';
import { chartFullname } from './chart';
import { CHART_NAME, ChartLocation } from './chart-source';
import { PART_OF } from './names';

/** Where Argo CD finds this repository. */
export interface ArgoCdProps {
  /**
   * Git URL of this repository, as Argo CD knows it.
   * @default none: no Application is rendered (the synth says so)
   */
  readonly repoURL?: string;
  /** Branch, tag or commit Argo CD syncs. @default 'main' */
  readonly targetRevision?: string;
  /** Argo CD project. @default 'default' */
  readonly project?: string;
  /** Namespace of Argo CD itself. @default 'argocd' */
  readonly namespace?: string;
  /** Cluster to deploy to. @default 'https://kubernetes.default.svc' (where Argo CD runs) */
  readonly destinationServer?: string;
  /** Sync automatically, pruning and self-healing. @default true */
  readonly automated?: boolean;
}

export interface ArgoApplicationProps extends ArgoCdProps {
  /** Git URL of this repository, as Argo CD knows it. */
  readonly repoURL: string;
  /** The profile: the Application is `learnflow-postgres-<profile>` and syncs dist/<profile>/. */
  readonly profile: string;
  /** Namespace the deployment lives in. */
  readonly destinationNamespace: string;
  /** Helm release name of the Bitnami chart. */
  readonly releaseName: string;
  /** Where the chart comes from (the profile's chartSource): a Git path of this repository, or an OCI registry. */
  readonly chart: ChartLocation;
  /**
   * The chart generates its TLS certificate (TLS on, no `certificatesSecret`): it renders a new
   * one every time, so the Application ignores that Secret's data once created.
   * @default false
   */
  readonly chartGeneratedCertificate?: boolean;
}

/**
 * One Argo CD Application per profile with three sources: the pinned Bitnami chart with our values
 * file (the vendored, unpacked chart by Git path of this repository, or an OCI registry), this
 * repository's dist/<profile>/ manifests, and this repository again as `$values`. One sync,
 * ordered by sync waves (lib/sync-waves.ts).
 */
export class ArgoApplicationChart extends Chart {
  constructor(scope: Construct, id: string, props: ArgoApplicationProps) {
    super(scope, id, { disableResourceNameHashes: true });
    const { profile, repoURL } = props;
    const revision = props.targetRevision ?? 'main';
    const helm = { releaseName: props.releaseName, valueFiles: [`$values/dist/${profile}/helm/postgresql-values.yaml`] };
    const { chart } = props;
    const chartSource = chart.vendored
      // The unpacked copy: Argo CD reads charts from a Git path, not from an archive.
      ? { repoUrl: repoURL, targetRevision: revision, path: chart.vendored.directory, helm }
      // An OCI Helm repository: registered in Argo CD with enableOCI, no oci:// prefix here.
      : { repoUrl: chart.ociRepository!, chart: CHART_NAME, targetRevision: chart.version, helm };
    new Application(this, 'application', {
      metadata: {
        name: `learnflow-postgres-${profile}`,
        namespace: props.namespace ?? 'argocd',
        labels: { 'app.kubernetes.io/part-of': PART_OF, 'app.kubernetes.io/instance': props.releaseName },
      },
      spec: {
        project: props.project ?? 'default',
        destination: { server: props.destinationServer ?? 'https://kubernetes.default.svc', namespace: props.destinationNamespace },
        sources: [
          chartSource,
          // Only the top level: helm/ holds the values, argocd/ this Application.
          { repoUrl: repoURL, targetRevision: revision, path: `dist/${profile}`, directory: { recurse: false } },
          { repoUrl: repoURL, targetRevision: revision, ref: 'values' },
        ],
        ...(props.chartGeneratedCertificate ? {
          // The chart generates its self-signed certificate anew at every render: keep the first one.
          ignoreDifferences: [{ kind: 'Secret', name: `${chartFullname(props.releaseName)}-crt`, jsonPointers: ['/data'] }],
        } : {}),
        syncPolicy: {
          ...(props.automated ?? true ? {
            automated: { prune: true, selfHeal: true },
            // Argo CD's own defaults, written out, plus refresh: a fix committed while a failed sync
            // is being retried (a broken migration) is what the next retry syncs.
            retry: { limit: 5, backoff: { duration: '5s', factor: 2, maxDuration: '3m' }, refresh: true },
          } : {}),
          syncOptions: ['RespectIgnoreDifferences=true', 'PruneLast=true'],
        },
      },
    });
  }
}
