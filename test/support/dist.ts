// Reads the synthesized manifests: tests look at the artifact users apply, not at constructs.
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';

export const ROOT = path.resolve(__dirname, '..', '..');
export const DIST = path.join(ROOT, 'dist');

export type Manifest = Record<string, any> & {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; [field: string]: any };
};

/** Every manifest `kubectl apply -f dist/<profile>/` would apply, in file order. */
export function manifests(profile: string, dist = DIST): Manifest[] {
  const dir = path.join(dist, profile);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .flatMap((f) => parseAllDocuments(readFileSync(path.join(dir, f), 'utf8')).map((d) => d.toJS() as Manifest))
    .filter((m) => m !== null);
}

export function findOne(profile: string, predicate: (m: Manifest) => boolean, what: string): Manifest {
  const found = manifests(profile).filter(predicate);
  if (found.length !== 1) throw new Error(`expected one ${what} in dist/${profile}, found ${found.length}`);
  return found[0];
}

export const byComponent = (kind: string, component: string) => (m: Manifest) =>
  m.kind === kind && m.metadata.labels?.['app.kubernetes.io/component'] === component;
