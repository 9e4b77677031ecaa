import { ImageRef } from '../chart';
import { ImageProps, ServiceType } from '../config';

export const POOL_MODES = ['transaction', 'session', 'statement'] as const;
export type PoolMode = (typeof POOL_MODES)[number];

/**
 * PgBouncer in front of the primary (a deployment's `pooler` props): applications connect to
 * it; our own Jobs keep connecting directly (migrations need a session of their own).
 */
export interface PoolerProps {
  /** Render the pooler. @default false */
  readonly enabled?: boolean;
  /** Pooler pods (1 to 10); with 2 or more a PodDisruptionBudget keeps one up during drains. @default 2 */
  readonly replicas?: number;
  /** When a server connection goes back to the pool: after each transaction, session or statement. @default 'transaction' */
  readonly poolMode?: PoolMode;
  /** Client connections each pooler pod accepts (PgBouncer's max_client_conn, 10 to 100000). @default 1000 */
  readonly maxClientConnections?: number;
  /**
   * Server connections per user and database in each pooler pod (default_pool_size, 1 to 500).
   * Times `replicas`, it must leave room under the database's max_connections. @default 20
   */
  readonly defaultPoolSize?: number;
  /** Type of the pooler's Service. @default 'ClusterIP' */
  readonly serviceType?: ServiceType;
  /** The pooler Service's port. @default 6432 */
  readonly port?: number;
  /** Node port when `serviceType` is NodePort or LoadBalancer (30000-32767). @default assigned by Kubernetes */
  readonly nodePort?: number;
  /** PgBouncer's image, with `sh`. @default docker.io/bitnamilegacy/pgbouncer:1.24.1-debian-12-r10 (imageRegistry applies) */
  readonly image?: ImageProps;
}

/** Streaming read replicas with the chart's replication architecture (a deployment's `readReplicas` props). */
export interface ReadReplicasProps {
  /** Read replicas (1 to 8): the chart's `architecture: replication` with `readReplicas.replicaCount`. */
  readonly count?: number;
  /**
   * The chart's `replication.synchronousCommit`: 'off' (asynchronous), or 'on', 'remote_write',
   * 'remote_apply' (a commit waits for `numSynchronousReplicas` replicas). @default 'off'
   */
  readonly synchronousCommit?: SynchronousCommit;
  /** The chart's `replication.numSynchronousReplicas` (1 to count). @default 1 when synchronous */
  readonly numSynchronousReplicas?: number;
  /** The lag verification allows each replica, in bytes of WAL behind the primary (1 MiB to 64 GiB). @default 16 MiB */
  readonly maxLagBytes?: number;
}

export const SYNCHRONOUS_COMMIT = ['off', 'on', 'remote_write', 'remote_apply'] as const;
export type SynchronousCommit = (typeof SYNCHRONOUS_COMMIT)[number];

/** Bitnami's PgBouncer image, the frozen bitnamilegacy copy (PgBouncer 1.24.1). */
export const DEFAULT_PGBOUNCER_IMAGE: ImageRef = { registry: 'docker.io', repository: 'bitnamilegacy/pgbouncer', tag: '1.24.1-debian-12-r10' };

/** PostgreSQL's max_connections, which the chart leaves at PostgreSQL's default. */
export const DATABASE_MAX_CONNECTIONS = 100;
/** Connections kept out of the poolers' reach: our Jobs, replication, the superuser's reserve. */
export const DIRECT_CONNECTION_RESERVE = 20;

export const POOLER_DEFAULTS = {
  replicas: 2,
  poolMode: 'transaction' as PoolMode,
  maxClientConnections: 1000,
  defaultPoolSize: 20,
  serviceType: 'ClusterIP' as ServiceType,
  port: 6432,
} as const;

export const READ_REPLICA_DEFAULTS = {
  synchronousCommit: 'off' as SynchronousCommit,
  maxLagBytes: 16 * 2 ** 20,
} as const;

export interface PoolerConfig {
  readonly replicas: number;
  readonly poolMode: PoolMode;
  readonly maxClientConnections: number;
  readonly defaultPoolSize: number;
  readonly serviceType: ServiceType;
  readonly port: number;
  readonly nodePort?: number;
  readonly image: ImageProps;
}

export interface ReadReplicasConfig {
  readonly count: number;
  readonly synchronousCommit: SynchronousCommit;
  readonly numSynchronousReplicas: number;
  readonly maxLagBytes: number;
}

export function resolvePooler(props: PoolerProps | undefined): PoolerConfig | undefined {
  if (!props?.enabled) return undefined;
  return {
    replicas: props.replicas ?? POOLER_DEFAULTS.replicas,
    poolMode: props.poolMode ?? POOLER_DEFAULTS.poolMode,
    maxClientConnections: props.maxClientConnections ?? POOLER_DEFAULTS.maxClientConnections,
    defaultPoolSize: props.defaultPoolSize ?? POOLER_DEFAULTS.defaultPoolSize,
    serviceType: props.serviceType ?? POOLER_DEFAULTS.serviceType,
    port: props.port ?? POOLER_DEFAULTS.port,
    nodePort: props.nodePort,
    image: props.image ?? {},
  };
}

export function resolveReadReplicas(props: ReadReplicasProps | undefined): ReadReplicasConfig | undefined {
  if (!props?.count) return undefined;
  const synchronousCommit = props.synchronousCommit ?? READ_REPLICA_DEFAULTS.synchronousCommit;
  return {
    count: props.count,
    synchronousCommit,
    numSynchronousReplicas: synchronousCommit === 'off' ? 0 : props.numSynchronousReplicas ?? 1,
    maxLagBytes: props.maxLagBytes ?? READ_REPLICA_DEFAULTS.maxLagBytes,
  };
}
