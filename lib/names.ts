import { createHash } from 'node:crypto';
import { chartFullname } from './chart';

/** `app.kubernetes.io/part-of` of everything this project renders (not of the chart's objects). */
export const PART_OF = 'learnflow-postgres';

/** Pods carrying this label may reach the database through the NetworkPolicy. */
export const DATABASE_CLIENT_LABEL = 'learnflow.io/database-client';
/** Pods carrying this label may reach the object store through the NetworkPolicy. */
export const OBJECT_STORE_CLIENT_LABEL = 'learnflow.io/object-store-client';

export type Component = 'credentials' | 'migrations' | 'verification' | 'backup' | 'network-policy' | 'namespace' | 'tls' | 'pooler' | 'pooler-auth';

/** The recommended `app.kubernetes.io/*` labels for one of our objects. */
export function standardLabels(releaseName: string, component: Component): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'learnflow-postgres',
    'app.kubernetes.io/instance': releaseName,
    'app.kubernetes.io/component': component,
    'app.kubernetes.io/part-of': PART_OF,
    'app.kubernetes.io/managed-by': 'cdk8s',
  };
}

/** First `length` hex characters of the SHA-256 of the parts, for content-addressed names. */
export function contentHash(parts: readonly string[], length = 10): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(`${part.length}:${part}`);
  return hash.digest('hex').slice(0, length);
}

/** `<chart fullname>-<suffix>`, cut to Kubernetes' 63-character name limit from the left part. */
export function resourceName(releaseName: string, suffix: string): string {
  const base = chartFullname(releaseName);
  return `${base.slice(0, 63 - suffix.length - 1).replace(/-+$/, '')}-${suffix}`;
}
