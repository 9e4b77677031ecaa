// The tests' own project: the product's code as it is, with profiles and migrations chosen here
// instead of LearnFlow's. The command line and the Kubernetes tier run against it, so LearnFlow's
// profiles and schema can change without touching them. Each test file that uses a cluster has
// profiles of its own, in namespaces of its own: the files can share one API server.
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import * as path from 'node:path';
import { inject } from 'vitest';
import { LearnflowPostgresProps } from '../../lib/config';
import { Manifest, byComponent, manifests } from './dist';
import { APP_COMMAND, projectCopy, synthProjectOrThrow, writeProfiles } from './project';

/** Three small migrations: a plan of 001, 002, 003. */
export const FIXTURE_MIGRATIONS: Readonly<Record<string, string>> = {
  '001_create_accounts.up.sql': 'CREATE TABLE accounts (id serial PRIMARY KEY, email text NOT NULL UNIQUE);\n',
  '001_create_accounts.down.sql': 'DROP TABLE accounts;\n',
  '002_create_notes.up.sql': 'CREATE TABLE notes (id serial PRIMARY KEY, account_id integer NOT NULL REFERENCES accounts (id), body text NOT NULL);\n',
  '002_create_notes.down.sql': 'DROP TABLE notes;\n',
  '003_add_notes_pinned.up.sql': 'ALTER TABLE notes ADD COLUMN pinned boolean NOT NULL DEFAULT false;\n',
  '003_add_notes_pinned.down.sql': 'ALTER TABLE notes DROP COLUMN pinned;\n',
};
export const FIXTURE_VERSIONS = ['001', '002', '003'];

/** The profiles, by the test file that uses them; namespaces start with `lftest-`. */
export const FIXTURE_PROFILES = {
  // test/cli/deploy.test.ts: a generated Secret on the cluster's default class; a named class with backups.
  'deploy': { namespace: 'lftest-deploy', releaseName: 'db', allowedNamespaces: ['lftest-app'] },
  'deploy-fast-storage': { namespace: 'lftest-deploy-fast', storageSize: '20Gi', storageClass: 'fast-ssd', backup: { enabled: true, storageClass: 'archive-hdd' } },
  // test/cli/status-verify.test.ts: the newer chart, a release name that already contains "postgresql".
  'status': { namespace: 'lftest-status', releaseName: 'learnflow-postgresql', chartVersion: '16.7.27', databaseName: 'app', appUser: 'app_owner' },
  // test/cli/backup-restore.test.ts, test/cli/cli.test.ts: backups, TLS, a user-managed Secret.
  'backups': {
    namespace: 'lftest-backups', releaseName: 'pg', tls: { enabled: true }, credentials: { existingSecret: 'pg-credentials' },
    backup: { enabled: true, schedule: '15 1 * * *', keep: 3 },
  },
  // test/cli/status-verify.test.ts: two read replicas, whose state and lag status shows.
  'replicas': { namespace: 'lftest-replicas', releaseName: 'pg', readReplicas: { count: 2 } },
  // test/cli/status-verify.test.ts: a deployment an Argo CD Application manages (no Helm release).
  'argocd': { namespace: 'lftest-argocd', releaseName: 'pg' },
  // test/cli/pitr-restore.test.ts: point-in-time recovery with an object store.
  'pitr': {
    namespace: 'lftest-pitr', releaseName: 'pg', pitr: { enabled: true },
    objectStore: { bucket: 'lftest-backups', provider: 'Minio', endpoint: 'https://minio.lftest.example:9000', secretName: 'minio-keys' },
  },
  // test/kube/credentials.test.ts: both credential modes, one after the other in one namespace.
  'credentials-generated': { namespace: 'lftest-credentials', releaseName: 'pg', credentials: { generatedPasswordLength: 48 } },
  'credentials-managed': { namespace: 'lftest-credentials', releaseName: 'pg', credentials: { existingSecret: 'pg-credentials' } },
  // test/kube/credentials.test.ts: the same deployment with the pooler and read replicas turned on later.
  'credentials-pooled': { namespace: 'lftest-credentials', releaseName: 'pg', credentials: { generatedPasswordLength: 48 }, pooler: { enabled: true }, readReplicas: { count: 1 } },
  'credentials-managed-replicas': { namespace: 'lftest-credentials', releaseName: 'pg', credentials: { existingSecret: 'pg-credentials' }, readReplicas: { count: 1 } },
} as const satisfies Record<string, LearnflowPostgresProps>;
export type FixtureProfile = keyof typeof FIXTURE_PROFILES;

/** Copies the project with the fixture's profiles and migrations and synthesizes it; returns its root. */
export async function makeFixtureProject(): Promise<string> {
  const dir = projectCopy({ migrations: FIXTURE_MIGRATIONS });
  writeProfiles(dir, FIXTURE_PROFILES);
  await new Promise<void>((resolve, reject) => {
    execFile(process.execPath, APP_COMMAND.slice(1), { cwd: dir }, (error, stdout, stderr) => {
      if (error) reject(new Error(`synth of the fixture project in ${dir} failed: ${error.message}\n${stderr}${stdout}`));
      else resolve();
    });
  });
  return dir;
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** Root of the fixture project test/support/global-setup.ts made for this run. */
    fixtureProject?: string;
  }
}

let ownCopy: string | undefined;

/**
 * Root of the fixture project: the one the run's global setup made, or, for a file run without it,
 * a copy of its own (removed when the process exits).
 */
export function fixtureProject(): string {
  const provided = inject('fixtureProject');
  if (provided) return provided;
  if (!ownCopy) {
    const dir = projectCopy({ migrations: FIXTURE_MIGRATIONS });
    writeProfiles(dir, FIXTURE_PROFILES);
    synthProjectOrThrow(dir);
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    ownCopy = dir;
  }
  return ownCopy;
}

/** The manifests of dist/<profile>/ in the fixture project. */
export function fixtureManifests(profile: FixtureProfile): Manifest[] {
  return manifests(profile, path.join(fixtureProject(), 'dist'));
}

/** The one manifest of dist/<profile>/ of `kind` and component, e.g. the migration Job. */
export function fixtureObject(profile: FixtureProfile, kind: string, component: string): Manifest {
  const found = fixtureManifests(profile).filter(byComponent(kind, component));
  if (found.length !== 1) throw new Error(`expected one ${kind} of ${component} in the fixture's dist/${profile}, found ${found.length}`);
  return found[0];
}
