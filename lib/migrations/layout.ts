/**
 * Splits the migration files across ConfigMaps. One object may hold 1 MiB, and client-side
 * `kubectl apply` copies the whole object into an annotation limited to 256 KiB; each
 * ConfigMap stays under both with room for metadata. The Job mounts them as one directory.
 */

/** Budget for one ConfigMap's data, measured as the JSON `kubectl apply` stores. */
export const CONFIGMAP_DATA_BUDGET = 200 * 1024;

export class ConfigMapLayoutError extends Error {}

/** Size of an entry in the last-applied-configuration annotation (JSON-escaped). */
export function encodedSize(key: string, value: string): number {
  return Buffer.byteLength(JSON.stringify(key) + ':' + JSON.stringify(value) + ',');
}

/**
 * Groups entries in the given order into as few ConfigMaps as fit the budget, keeping order
 * stable so that adding a migration changes only the last group's content.
 */
export function splitIntoConfigMaps(entries: readonly (readonly [string, string])[], budget = CONFIGMAP_DATA_BUDGET): Record<string, string>[] {
  const groups: Record<string, string>[] = [];
  let current: Record<string, string> = {};
  let size = 0;
  for (const [key, value] of entries) {
    const entrySize = encodedSize(key, value);
    if (entrySize > budget) {
      throw new ConfigMapLayoutError(
        `${key}: ${entrySize} bytes once encoded, more than one ConfigMap may carry (${budget} bytes, under client-side kubectl apply's 256 KiB annotation limit); split it into several migrations`,
      );
    }
    if (size + entrySize > budget && size > 0) {
      groups.push(current);
      current = {};
      size = 0;
    }
    current[key] = value;
    size += entrySize;
  }
  if (size > 0) groups.push(current);
  return groups;
}
