import { Chart } from 'cdk8s';
import { Construct } from 'constructs';
import { Application } from '../imports/argocd-argoproj.io';
import { CHART_OCI_URL, chartFullname } from './chart';
import { DeploymentConfig } from './config';
import { PART_OF } from './names';

/** Where Argo CD finds this repository. */
export interface ArgoCdProps {
  /** Git URL of this repository, as Argo CD knows it. */
  readonly repoURL: string;
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

export interface ArgoApplicationProps {
  readonly profile: string;
  readonly config: DeploymentConfig;
  readonly argocd: ArgoCdProps;
}

/**
 * One Argo CD Application per profile with three sources: the pinned Bitnami chart from its
 * OCI registry with our values file, this repository's dist/<profile>/ manifests, and this
 * repository again as `$values`. One sync, ordered by sync waves (lib/sync-waves.ts).
 */
export class ArgoApplicationChart extends Chart {
  constructor(scope: Construct, id: string, props: ArgoApplicationProps) {
    super(scope, id, { disableResourceNameHashes: true });
    const { config, argocd, profile } = props;
    const revision = argocd.targetRevision ?? 'main';
    const registry = CHART_OCI_URL.replace(/^oci:\/\//, '').replace(/\/postgresql$/, '');
    new Application(this, 'application', {
      metadata: {
        name: `learnflow-postgres-${profile}`,
        namespace: argocd.namespace ?? 'argocd',
        labels: { 'app.kubernetes.io/part-of': PART_OF, 'app.kubernetes.io/instance': config.releaseName },
      },
      spec: {
        project: argocd.project ?? 'default',
        destination: { server: argocd.destinationServer ?? 'https://kubernetes.default.svc', namespace: config.namespace },
        sources: [
          {
            // An OCI Helm repository: registered in Argo CD with enableOCI, no oci:// prefix here.
            repoUrl: registry,
            chart: 'postgresql',
            targetRevision: config.chartVersion,
            helm: { releaseName: config.releaseName, valueFiles: [`$values/dist/${profile}/helm/postgresql-values.yaml`] },
          },
          // Only the top level: helm/ holds the values, argocd/ this Application.
          { repoUrl: argocd.repoURL, targetRevision: revision, path: `dist/${profile}`, directory: { recurse: false } },
          { repoUrl: argocd.repoURL, targetRevision: revision, ref: 'values' },
        ],
        ...(config.tls.enabled && !config.tls.certificatesSecret ? {
          // The chart generates its self-signed certificate anew at every render: keep the first one.
          ignoreDifferences: [{ kind: 'Secret', name: `${chartFullname(config.releaseName)}-crt`, jsonPointers: ['/data'] }],
        } : {}),
        syncPolicy: {
          ...(argocd.automated ?? true ? { automated: { prune: true, selfHeal: true } } : {}),
          syncOptions: ['RespectIgnoreDifferences=true', 'PruneLast=true'],
        },
      },
    });
  }
}
