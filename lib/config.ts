import { ArgoCdProps } from './argocd';
import { BackupProps } from './backup/backup';
import { ChartVersion, DEFAULT_CHART_VERSION, chartFullname } from './chart';
import { ChartSource, DEFAULT_CHART_SOURCE } from './chart-source';
import { CredentialsProps } from './credentials/credentials';
import { DEFAULT_KUBECTL_IMAGE } from './images';
import { DEFAULT_KUBERNETES_VERSION, KubernetesVersion } from './kubernetes';
import { RUNNER } from './migrations/runner-contract';
import { ObjectStoreProps, PITR_DEFAULTS, PitrProps } from './pitr/props';
import { PoolerConfig, PoolerProps, ReadReplicasConfig, ReadReplicasProps, resolvePooler, resolveReadReplicas } from './pooling/props';

/** The usual storage class of each platform. */
export const STORAGE_CLASS_PRESETS = {
  minikube: 'standard',
  aks: 'default',
  gke: 'standard-rwo',
  eks: 'gp3',
} as const;
export type StorageClassPreset = keyof typeof STORAGE_CLASS_PRESETS;

export const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer'] as const;
export type ServiceType = (typeof SERVICE_TYPES)[number];

/** CPU, memory and local disk as Kubernetes quantities, e.g. `{ cpu: '500m', memory: '512Mi' }`. */
export interface ResourceAmounts {
  readonly cpu?: string;
  readonly memory?: string;
  /**
   * Local disk: logs, and the chart's emptyDir for /tmp and the configuration.
   * @default the chart presets' amounts: request '50Mi', limit '2Gi' (whenever resources are set)
   */
  readonly ephemeralStorage?: string;
}

/** The database container's ephemeral storage when `resources` is set and says none: the chart presets' amounts. */
export const DEFAULT_EPHEMERAL_STORAGE = { requests: '50Mi', limits: '2Gi' } as const;

export interface ResourceProps {
  /** @default none: the chart's `resourcesPreset` applies */
  readonly requests?: ResourceAmounts;
  /** @default none: the chart's `resourcesPreset` applies */
  readonly limits?: ResourceAmounts;
}

/** An image, split the way Bitnami values take it. */
export interface ImageProps {
  /** @default 'docker.io' */
  readonly registry?: string;
  /** @default 'bitnamilegacy/postgresql' (Bitnami's frozen, still pullable copy) */
  readonly repository?: string;
  /** @default the pinned chart's own tag, e.g. '16.4.0-debian-12-r14' for 15.5.38 */
  readonly tag?: string;
}

export const ISSUER_KINDS = ['Issuer', 'ClusterIssuer'] as const;

/** A cert-manager issuer: it signs the server's certificate and its CA is what clients verify. */
export interface CertificateIssuerProps {
  /** Name of the Issuer (in the deployment's namespace) or ClusterIssuer. */
  readonly name: string;
  /** @default 'Issuer' (as cert-manager defaults it) */
  readonly kind?: (typeof ISSUER_KINDS)[number];
  /** API group of the issuer, for an external one such as 'awspca.cert-manager.io'. @default 'cert-manager.io' */
  readonly group?: string;
}

export interface TlsProps {
  /** Serve TLS. @default false */
  readonly enabled?: boolean;
  /**
   * Secret (type kubernetes.io/tls: tls.crt, tls.key, ca.crt) with the server certificate; with
   * `issuer`, the Secret cert-manager writes.
   * @default with `issuer`, `<fullname>-tls`; without, none: the chart generates a self-signed certificate
   */
  readonly certificatesSecret?: string;
  /**
   * A cert-manager issuer (needs TLS): a Certificate for the database Service's names is
   * rendered, its Secret handed to the chart, and our Jobs verify the server against its CA
   * (sslmode=verify-full). The issuer must write `ca.crt` (CA, Vault, AWS Private CA, ...).
   * @default none
   */
  readonly issuer?: CertificateIssuerProps;
  /** More names for that certificate, e.g. the LoadBalancer's DNS name (needs `issuer`). @default [] */
  readonly extraDnsNames?: readonly string[];
}

/**
 * NodeLocal DNSCache's usual link-local address: a DaemonSet on the host network answers there,
 * so no pod or namespace selector matches it.
 */
export const NODE_LOCAL_DNS_ADDRESS = '169.254.20.10';

/** Facts about the cluster the policies need: its own networks and where pods resolve names. */
export interface ClusterProps {
  /**
   * The cluster's pod networks (CIDR), e.g. ['10.244.0.0/16']: left out of every client network
   * that covers them, so that no pod is admitted as an outside client. Required with `allowedCidrs`.
   * @default none
   */
  readonly podCidrs?: readonly string[];
  /**
   * The cluster's Service networks (CIDR), e.g. ['10.96.0.0/12']: left out of the client networks
   * too, and DNS may reach them (the kube-dns Service's address, which NodeLocal DNSCache answers
   * on in kube-proxy's iptables mode). Required with `allowedCidrs`. @default none
   */
  readonly serviceCidrs?: readonly string[];
  /** Addresses of a node-local DNS cache pods may query. @default ['169.254.20.10'] (NodeLocal DNSCache) */
  readonly nodeLocalDnsAddresses?: readonly string[];
  /** The cluster's DNS domain: the certificate names `<service>.<namespace>.svc.<domain>`. @default 'cluster.local' */
  readonly domain?: string;
}

export interface MigrationProps {
  /** Seconds to wait for PostgreSQL before giving up with exit code 8 (2 to 86400). @default 300 */
  readonly waitForDatabaseSeconds?: number;
  /** Seconds to wait for another runner's lock before giving up with exit code 4 (1 to 86400). @default 120 */
  readonly lockWaitSeconds?: number;
  /** PostgreSQL `statement_timeout` for each migration statement (ms, s, min, h or d; at most 2147483647 ms). @default '15min' */
  readonly statementTimeout?: string;
  /** PostgreSQL `lock_timeout` for each migration statement; past it the Job retries (exit 4). @default '10s' */
  readonly lockTimeout?: string;
  /** Pod retries after exit codes 4 and 8 (exit 7 fails at once). @default 6 */
  readonly backoffLimit?: number;
}

/** One typed description of a LearnFlow PostgreSQL deployment. */
export interface LearnflowPostgresProps {
  /** Namespace for the database and everything rendered here. @default 'postgres' */
  readonly namespace?: string;
  /** Helm release name of the Bitnami chart. @default 'postgres' */
  readonly releaseName?: string;
  /** Database created on first start and migrated. @default 'learnflow' */
  readonly databaseName?: string;
  /** Owner of the database: migrations and applications connect as this user. @default 'learnflow' */
  readonly appUser?: string;
  /** Bitnami chart version: '15.5.38' (PostgreSQL 16.4) or '16.7.27' (PostgreSQL 17.6). @default '15.5.38' */
  readonly chartVersion?: ChartVersion;
  /**
   * Where the chart comes from: 'repository' (the archive vendored in charts/, checked against
   * vendored.json; Argo CD reads its unpacked folder by Git path; works air-gapped), 'bitnami'
   * (Bitnami's OCI registry, which publishes no new versions) or 'mirror' (`chartMirror`).
   * @default 'repository'
   */
  readonly chartSource?: ChartSource;
  /** OCI repository holding the chart for chartSource 'mirror', e.g. 'oci://harbor.example.com/bitnamicharts'. @default none */
  readonly chartMirror?: string;
  /** Kubernetes minor version of the target cluster: '1.28' to '1.31'; others are refused. @default '1.31' */
  readonly kubernetesVersion?: KubernetesVersion;
  /**
   * Registry for every image (database, os-shell, migration and bootstrap Jobs),
   * for a mirror. @default each image's own registry ('docker.io')
   */
  readonly imageRegistry?: string;
  /** The PostgreSQL image; the migration Job runs the same image. @default the chart's tag from bitnamilegacy */
  readonly image?: ImageProps;
  /** Image with `kubectl` and `sh` for the credentials bootstrap Job. @default docker.io/bitnamilegacy/kubectl:1.33.4 */
  readonly kubectlImage?: ImageProps;
  /** Size of the data volume. @default '8Gi' */
  readonly storageSize?: string;
  /** Storage class of the data volume. @default none: the cluster's default class */
  readonly storageClass?: string;
  /** Storage class by platform (STORAGE_CLASS_PRESETS); conflicts with `storageClass`. @default none */
  readonly storageClassPreset?: StorageClassPreset;
  /** CPU and memory of the database container. @default none: the chart's 'nano' preset */
  readonly resources?: ResourceProps;
  /** Type of the database Service. @default 'ClusterIP' */
  readonly serviceType?: ServiceType;
  /** Service port. @default 5432 */
  readonly port?: number;
  /** Node port when `serviceType` is NodePort or LoadBalancer (30000-32767). @default assigned by Kubernetes */
  readonly nodePort?: number;
  readonly tls?: TlsProps;
  /** Namespaces whose pods may connect (matched by `kubernetes.io/metadata.name`). @default [] */
  readonly allowedNamespaces?: readonly string[];
  /**
   * Client networks (CIDR) that may connect from outside the cluster, through a LoadBalancer
   * or NodePort; also the LoadBalancer's `loadBalancerSourceRanges`. Needs `cluster.podCidrs`
   * and `cluster.serviceCidrs`, which the policy leaves out of them. @default []
   */
  readonly allowedCidrs?: readonly string[];
  readonly cluster?: ClusterProps;
  readonly credentials?: CredentialsProps;
  readonly migrations?: MigrationProps;
  readonly backup?: BackupProps;
  /** Continuous archiving, base backups, point-in-time recovery. @default off */
  readonly pitr?: PitrProps;
  /** Copies of dumps, base backups and WAL in an S3-compatible bucket. @default none */
  readonly objectStore?: ObjectStoreProps;
  /** Renders an Argo CD Application for this deployment. @default none: no Application */
  readonly argocd?: ArgoCdProps;
  /** PgBouncer in front of the primary. @default off */
  readonly pooler?: PoolerProps;
  /** Streaming read replicas (the chart's replication architecture). @default none: standalone */
  readonly readReplicas?: ReadReplicasProps;
}

/** Every prop with its default applied: what the renderers read. */
export interface DeploymentConfig {
  readonly namespace: string;
  readonly releaseName: string;
  readonly databaseName: string;
  readonly appUser: string;
  readonly chartVersion: ChartVersion;
  readonly chartSource: ChartSource;
  readonly chartMirror?: string;
  readonly kubernetesVersion: KubernetesVersion;
  readonly imageRegistry?: string;
  readonly image: ImageProps;
  readonly kubectlImage: Required<ImageProps>;
  readonly storageSize: string;
  readonly storageClass?: string;
  readonly resources: ResourceProps;
  readonly serviceType: ServiceType;
  readonly port: number;
  readonly nodePort?: number;
  readonly tls: {
    readonly enabled: boolean;
    /** The Secret with the server's certificate: the user's, or the one cert-manager writes for `issuer`. */
    readonly certificatesSecret?: string;
    readonly issuer?: Required<CertificateIssuerProps>;
    readonly extraDnsNames: readonly string[];
  };
  readonly allowedNamespaces: readonly string[];
  readonly allowedCidrs: readonly string[];
  readonly cluster: Required<ClusterProps>;
  readonly credentials: { readonly existingSecret?: string; readonly generatedPasswordLength: number };
  readonly migrations: Required<MigrationProps>;
  readonly argocd?: ArgoCdProps;
  readonly backup: { readonly enabled: boolean; readonly schedule: string; readonly keep: number; readonly storageSize: string; readonly storageClass?: string };
  readonly pitr: { readonly enabled: boolean; readonly archiveTimeoutSeconds: number; readonly baseBackupSchedule: string; readonly baseBackupKeep: number };
  /** The volume the dumps, the archive and the base backups share; present when either is on. */
  readonly backupVolume?: { readonly size: string; readonly storageClass?: string };
  readonly objectStore?: {
    readonly bucket: string; readonly prefix: string; readonly provider: string; readonly endpoint?: string; readonly region?: string;
    readonly secretName: string; readonly uploadIntervalSeconds: number; readonly keep: number; readonly image: ImageProps;
  };
  /** Present when the pooler is enabled. */
  readonly pooler?: PoolerConfig;
  /** Present when there are read replicas. */
  readonly readReplicas?: ReadReplicasConfig;
}

/** The runner's defaults, from its contract (lib/migrations/runner-contract.ts). */
export const MIGRATION_DEFAULTS: Required<MigrationProps> = {
  waitForDatabaseSeconds: Number(RUNNER.knobs.dbWaitSeconds.default),
  lockWaitSeconds: Number(RUNNER.knobs.lockWaitSeconds.default),
  statementTimeout: RUNNER.knobs.statementTimeout.default,
  lockTimeout: RUNNER.knobs.lockTimeout.default,
  backoffLimit: 6,
};

/** Applies the documented defaults. Validation (lib/validation.ts) runs on the props first. */
export function resolveConfig(props: LearnflowPostgresProps): DeploymentConfig {
  const preset = props.storageClassPreset ? STORAGE_CLASS_PRESETS[props.storageClassPreset] : undefined;
  const releaseName = props.releaseName ?? 'postgres';
  return {
    namespace: props.namespace ?? 'postgres',
    releaseName,
    databaseName: props.databaseName ?? 'learnflow',
    appUser: props.appUser ?? 'learnflow',
    chartVersion: props.chartVersion ?? DEFAULT_CHART_VERSION,
    chartSource: props.chartSource ?? DEFAULT_CHART_SOURCE,
    chartMirror: props.chartMirror,
    kubernetesVersion: props.kubernetesVersion ?? DEFAULT_KUBERNETES_VERSION,
    imageRegistry: props.imageRegistry,
    image: props.image ?? {},
    kubectlImage: { ...DEFAULT_KUBECTL_IMAGE, ...props.kubectlImage },
    storageSize: props.storageSize ?? '8Gi',
    storageClass: props.storageClass ?? preset,
    resources: props.resources ?? {},
    serviceType: props.serviceType ?? 'ClusterIP',
    port: props.port ?? 5432,
    nodePort: props.nodePort,
    tls: {
      enabled: props.tls?.enabled ?? false,
      certificatesSecret: props.tls?.certificatesSecret ?? (props.tls?.issuer ? `${chartFullname(releaseName)}-tls` : undefined),
      issuer: props.tls?.issuer ? { kind: 'Issuer', group: 'cert-manager.io', ...props.tls.issuer } : undefined,
      extraDnsNames: props.tls?.extraDnsNames ?? [],
    },
    allowedNamespaces: props.allowedNamespaces ?? [],
    allowedCidrs: props.allowedCidrs ?? [],
    cluster: {
      podCidrs: props.cluster?.podCidrs ?? [],
      serviceCidrs: props.cluster?.serviceCidrs ?? [],
      nodeLocalDnsAddresses: props.cluster?.nodeLocalDnsAddresses ?? [NODE_LOCAL_DNS_ADDRESS],
      domain: props.cluster?.domain ?? 'cluster.local',
    },
    credentials: {
      existingSecret: props.credentials?.existingSecret,
      generatedPasswordLength: props.credentials?.generatedPasswordLength ?? 40,
    },
    migrations: { ...MIGRATION_DEFAULTS, ...props.migrations },
    argocd: props.argocd,
    backup: {
      enabled: props.backup?.enabled ?? false,
      schedule: props.backup?.schedule ?? '@daily',
      keep: props.backup?.keep ?? 7,
      storageSize: props.backup?.storageSize ?? props.storageSize ?? '8Gi',
      storageClass: props.backup?.storageClass ?? props.storageClass ?? preset,
    },
    pitr: {
      enabled: props.pitr?.enabled ?? false,
      archiveTimeoutSeconds: props.pitr?.archiveTimeoutSeconds ?? PITR_DEFAULTS.archiveTimeoutSeconds,
      baseBackupSchedule: props.pitr?.baseBackupSchedule ?? PITR_DEFAULTS.baseBackupSchedule,
      baseBackupKeep: props.pitr?.baseBackupKeep ?? PITR_DEFAULTS.baseBackupKeep,
    },
    ...(props.backup?.enabled || props.pitr?.enabled ? {
      backupVolume: {
        size: props.pitr?.storageSize ?? props.backup?.storageSize ?? props.storageSize ?? '8Gi',
        storageClass: props.pitr?.storageClass ?? props.backup?.storageClass ?? props.storageClass ?? preset,
      },
    } : {}),
    ...(props.objectStore ? {
      objectStore: {
        bucket: props.objectStore.bucket ?? '',
        prefix: props.objectStore.prefix ?? `${props.namespace ?? 'postgres'}/${props.releaseName ?? 'postgres'}`,
        provider: props.objectStore.provider ?? 'AWS',
        endpoint: props.objectStore.endpoint,
        region: props.objectStore.region,
        secretName: props.objectStore.secretName ?? `${chartFullname(props.releaseName ?? 'postgres')}-object-store`,
        uploadIntervalSeconds: props.objectStore.uploadIntervalSeconds ?? PITR_DEFAULTS.uploadIntervalSeconds,
        keep: props.objectStore.keep ?? props.pitr?.baseBackupKeep ?? PITR_DEFAULTS.baseBackupKeep,
        image: props.objectStore.image ?? {},
      },
    } : {}),
    pooler: resolvePooler(props.pooler),
    readReplicas: resolveReadReplicas(props.readReplicas),
  };
}
