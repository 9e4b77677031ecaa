/**
 * Keys of the credentials Secret. The chart (auth.secretKeys), the migration Job and the
 * applications all read these; a user-managed secret must provide the first two.
 */
export const CREDENTIAL_KEYS = {
  /** Password of the `postgres` superuser (chart's adminPasswordKey default). */
  adminPassword: 'postgres-password',
  /** Password of the application user (chart's userPasswordKey default). */
  password: 'password',
  /** Ready-to-use `postgresql://user:password@host:port/database` for applications (generated secrets). */
  uri: 'uri',
  /** Password of the replication user (chart's replicationPasswordKey default): with read replicas. */
  replicationPassword: 'replication-password',
  /** Password of the pooler's lookup role (PgBouncer's auth_user): with the pooler. */
  poolerPassword: 'pooler-password',
  /** The application's connection string through the pooler (generated secrets, with the pooler). */
  pooledUri: 'pooled-uri',
} as const;

/**
 * The password keys a deployment's Secret holds: the two always, the replication user's with
 * read replicas and the pooler's lookup role's with the pooler. The bootstrap generates them or,
 * for a user-managed Secret, requires them.
 */
export function passwordKeys(config: { readonly readReplicas?: unknown; readonly pooler?: unknown }): string[] {
  return [
    CREDENTIAL_KEYS.adminPassword,
    CREDENTIAL_KEYS.password,
    ...(config.readReplicas ? [CREDENTIAL_KEYS.replicationPassword] : []),
    ...(config.pooler ? [CREDENTIAL_KEYS.poolerPassword] : []),
  ];
}

/** The shortest password accepted in a user-managed secret. */
export const MIN_SUPPLIED_PASSWORD_LENGTH = 16;
