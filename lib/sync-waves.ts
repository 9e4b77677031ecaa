/**
 * The order of a first sync, as Argo CD sync waves: a wave starts only when every resource of
 * the waves before it is healthy (a Job: complete; the chart's StatefulSet: ready). kubectl
 * ignores the annotation and applies everything at once; the Jobs then wait by themselves.
 */
export const SYNC_WAVES = {
  namespace: -3,
  /** RBAC and NetworkPolicies, before any pod that needs them. */
  access: -2,
  /** The credentials Secret exists before the database starts. */
  credentials: -1,
  /** The Bitnami chart's resources (no annotation: wave 0). */
  database: 0,
  /** Migrations run once the database is healthy. */
  migrations: 1,
  /** Verification runs last. */
  verification: 2,
} as const;

/** The Argo CD annotation that places a resource in a wave. */
export function syncWave(wave: number): Record<string, string> {
  return { 'argocd.argoproj.io/sync-wave': String(wave) };
}
