import { ArgoCdProps } from './argocd';
import { LearnflowPostgresProps } from './config';

/**
 * Where Argo CD reads this repository. Set `repoURL` to its Git URL (e.g.
 * 'https://github.com/acme/learnflow-postgres.git') to render dist/<profile>/argocd/application.yaml;
 * until then no Application is rendered and the synth says so.
 */
const ARGOCD: ArgoCdProps = {
  targetRevision: 'main',
  project: 'default',
};

/**
 * The deployments this repository renders, one folder each under dist/. Each is a
 * LearnflowPostgresProps (lib/config.ts): add an entry to render another folder.
 */
export const PROFILES = {
  /** 8Gi on the cluster's default class, the chart's resource presets, ClusterIP, a Secret generated in the cluster. */
  development: {
    allowedNamespaces: ['learnflow'],
    argocd: ARGOCD,
  },
  /** 20Gi on gp3 (EKS), sized resources, a LoadBalancer for the VPC and the VPN, TLS from cert-manager, a user-managed Secret, nightly backups. */
  production: {
    storageSize: '20Gi',
    storageClassPreset: 'eks',
    resources: {
      requests: { cpu: '500m', memory: '512Mi' },
      limits: { cpu: '2000m', memory: '2Gi' },
    },
    serviceType: 'LoadBalancer',
    // Clients outside the cluster: the VPC (application servers beside the cluster) and the VPN.
    allowedCidrs: ['10.20.0.0/16', '10.8.0.0/21'],
    // EKS with the VPC CNI: pods take addresses of the VPC's private subnets (10.20.0.0/18, left
    // out of the client networks), Services come from 172.20.0.0/16 (EKS's range for a VPC in 10/8).
    cluster: { podCidrs: ['10.20.0.0/18'], serviceCidrs: ['172.20.0.0/16'] },
    // The certificate from the cluster's private CA (a cert-manager ClusterIssuer you run): our Jobs verify it.
    tls: { enabled: true, issuer: { kind: 'ClusterIssuer', name: 'learnflow-internal-ca' } },
    credentials: { existingSecret: 'postgres-credentials' },
    allowedNamespaces: ['learnflow'],
    // Nightly pg_dump at 02:30, two weeks kept; every WAL segment archived (at most a minute of
    // commits at risk), a base backup every night at 03:30, a week of them kept.
    backup: { enabled: true, schedule: '30 2 * * *', keep: 14 },
    pitr: { enabled: true, archiveTimeoutSeconds: 60, baseBackupSchedule: '30 3 * * *', baseBackupKeep: 7, storageSize: '60Gi' },
    // Copies off the cluster: create the bucket and the Secret postgres-object-store first (README: Point-in-time recovery).
    objectStore: { bucket: 'learnflow-postgres-backups', region: 'eu-west-1', secretName: 'postgres-object-store' },
    argocd: ARGOCD,
  },
} as const satisfies Record<string, LearnflowPostgresProps>;

export type ProfileName = keyof typeof PROFILES;
export const PROFILE_NAMES = Object.keys(PROFILES) as ProfileName[];

export function isProfileName(name: string): name is ProfileName {
  return Object.prototype.hasOwnProperty.call(PROFILES, name);
}
