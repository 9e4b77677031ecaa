// The GitOps tier: Argo CD v3.6.1 (its repo-server and application controller) syncing every
// profile's Application exactly as the synth renders it, from a Git repository holding this
// project, against the test API server (test/support/gitops.ts). Pods never run here:
// test/support/cluster-standin.ts runs each Job's command as rendered against a real PostgreSQL
// and writes the status the Job controller would; every outcome below is the product's own.
//
// The profiles are LearnFlow's (lib/profiles.ts), each in a namespace of its own, with the tests'
// migrations; all of them go through each step together (one commit serves every profile).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chartFullname } from '../../lib/chart';
import { DeploymentConfig, resolveConfig } from '../../lib/config';
import { PROFILES, PROFILE_NAMES, ProfileName } from '../../lib/profiles';
import { ClusterStandIn, PodRun, startClusterStandIn } from '../support/cluster-standin';
import { Manifest, manifests } from '../support/dist';
import { FIXTURE_MIGRATIONS } from '../support/fixture-project';
import { ArgoApps, GitopsTier, gitopsNamespace, gitopsSettings, startGitopsTier, syncedHealthy } from '../support/gitops';
import { Pg, startPostgres } from '../support/postgres';
import { describeWithTools } from '../support/tools';

const NEW_MIGRATION = {
  '004_add_accounts_name.up.sql': 'ALTER TABLE accounts ADD COLUMN display_name text;\n',
  '004_add_accounts_name.down.sql': 'ALTER TABLE accounts DROP COLUMN display_name;\n',
};
/** The first statement works, the second cannot: the file is rolled back as a whole. */
const BROKEN_MIGRATION = {
  '005_archive_notes.up.sql': 'ALTER TABLE notes ADD COLUMN archived boolean NOT NULL DEFAULT false;\nUPDATE note SET archived = true WHERE pinned;\n',
  '005_archive_notes.down.sql': 'ALTER TABLE notes DROP COLUMN archived;\n',
};
const FIXED_MIGRATION = {
  '005_archive_notes.up.sql': 'ALTER TABLE notes ADD COLUMN archived boolean NOT NULL DEFAULT false;\nUPDATE notes SET archived = true WHERE pinned;\n',
  '005_archive_notes.down.sql': 'ALTER TABLE notes DROP COLUMN archived;\n',
};

/**
 * A chart source and a certificate no LearnFlow profile uses today, for the first sync and the
 * refreshes only: development's props with the chart from a registry (chartSource mirror, the
 * local registry) and TLS with the certificate the chart generates at every render.
 */
const EXTRA = 'development-mirror-tls';

interface Deployment {
  readonly profile: string;
  /** Only for the first sync and the refreshes (EXTRA). */
  readonly extra: boolean;
  readonly app: string;
  readonly ns: string;
  readonly config: DeploymentConfig;
  readonly pg: Pg;
  readonly standIn: ClusterStandIn;
}

/** Every profile; LEARNFLOW_GITOPS_PROFILES=production (comma-separated) narrows a local run. */
const PROFILES_UNDER_TEST = process.env.LEARNFLOW_GITOPS_PROFILES ? (process.env.LEARNFLOW_GITOPS_PROFILES.split(',') as ProfileName[]) : PROFILE_NAMES;
const WAVE = (m: Manifest) => Number(m.metadata.annotations?.['argocd.argoproj.io/sync-wave'] ?? 0);
const component = (m: Manifest) => m.metadata.labels?.['app.kubernetes.io/component'];

describeWithTools('Argo CD syncing dist/ (the GitOps tier)', ['argocd', 'redis', 'helm', 'registry'], () => {
  let tier: GitopsTier;
  let apps: ArgoApps;
  const deployments: Deployment[] = [];
  /** dist/<profile>'s manifests as committed now. */
  const dist = (d: Deployment) => manifests(d.profile, path.join(tier.repo.dir, 'dist'));
  const job = (d: Deployment, name: string) => dist(d).find((m) => m.kind === 'Job' && component(m) === name)!;
  const live = async (d: Deployment, kind: string, name: string) => {
    const r = await tier.kube.kubectl(['get', kind, name, '-n', d.ns, '-o', 'json']);
    return r.code === 0 ? JSON.parse(r.stdout) : undefined;
  };
  /** No garbage collector here: a pruned object may keep its foreground-deletion finalizer. */
  const goneOrDeleting = (o: any) => o === undefined || o.metadata.deletionTimestamp !== undefined;
  /** The whole application database, schema and rows, as pg_dump writes it. */
  const dump = (d: Deployment) => execFileSync(path.join(d.pg.bindir, 'pg_dump'), ['--no-owner'], { env: d.standIn.adminEnv(d.config.databaseName), encoding: 'utf8' })
    .replace(/^\\(un)?restrict .*$/gm, ''); // a random key per run (pg_dump 15.14+)
  const runsOf = (d: Deployment, name: string) => d.standIn.runs.filter((r) => r.job === name);
  const each = (fn: (d: Deployment) => Promise<void>, withExtra = false) => Promise.all(deployments.filter((d) => withExtra || !d.extra).map(async (d) => {
    try {
      await fn(d);
    } catch (e) {
      const runs = d.standIn.runs.slice(-6).map((r) => `${r.job}#${r.attempt} exit ${r.code}`).join(', ');
      (e as Error).message = `profile ${d.profile}: ${(e as Error).message}\n  stand-in: ${d.standIn.activity()}; last pod runs: ${runs}`;
      throw e;
    }
  }));

  beforeAll(async () => {
    tier = await startGitopsTier(PROFILES_UNDER_TEST, {
      extraProfiles: (url, registry) => ({
        [EXTRA]: { ...PROFILES.development, ...gitopsSettings(EXTRA, PROFILES.development, url, registry), chartSource: 'mirror', chartMirror: `oci://${registry}/bitnamicharts`, tls: { enabled: true } },
      }),
    });
    apps = new ArgoApps(tier.kube, tier.argocd.namespace);
    console.log(`GitOps tier start-up (API server, Argo CD, registry, Git repository): ${tier.startupMs} ms`);
    for (const profile of [...PROFILES_UNDER_TEST, EXTRA]) {
      const pg = await startPostgres();
      const ns = gitopsNamespace(profile);
      deployments.push({ profile, extra: profile === EXTRA, app: `learnflow-postgres-${profile}`, ns, config: resolveConfig(tier.profiles[profile]), pg, standIn: startClusterStandIn(tier.kube, ns, pg) });
    }
  }, 400_000);
  afterAll(async () => {
    for (const d of deployments) {
      await d.standIn.stop();
      await d.pg.stop();
    }
    await tier?.stop();
  });

  it('renders every profile\'s Application with its chart source: the vendored chart by Git path, or the registry', () => {
    for (const d of deployments) {
      const app = parse(readFileSync(tier.repo.applicationFile(d.profile), 'utf8'));
      const [chart, manifestsSource, values] = app.spec.sources;
      expect(manifestsSource).toMatchObject({ repoURL: tier.repo.url, path: `dist/${d.profile}` });
      expect(values).toMatchObject({ repoURL: tier.repo.url, ref: 'values' });
      if (d.config.chartSource === 'repository') expect(chart).toMatchObject({ repoURL: tier.repo.url, path: `charts/postgresql-${d.config.chartVersion}` });
      else expect(chart).toMatchObject({ repoURL: `${tier.registry.host}/bitnamicharts`, chart: 'postgresql', targetRevision: d.config.chartVersion });
    }
  });

  it('first sync: wave by wave to Synced and Healthy; a missing user-managed Secret fails the credentials Job, and creating it as the README says recovers', async () => {
    const revision = execFileSync('git', ['-C', tier.repo.dir, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    await each(async (d) => {
      await tier.kube.kubectlOk(['apply', '-f', tier.repo.applicationFile(d.profile)]);
      const credentials = job(d, 'credentials').metadata.name;
      const supplied = d.config.credentials.existingSecret;
      if (supplied) {
        // Production's Secret is the user's: forgotten, the bootstrap fails (exit 1) and nothing of wave 0 starts.
        const failed = await apps.until(d.app, 'Degraded by the credentials Job', (s) => s.health?.status === 'Degraded');
        expect(failed.status.health.message).toContain(`batch/Job:${d.ns}/${credentials}`);
        expect(runsOf(d, credentials)[0].code).toBe(1);
        expect(runsOf(d, credentials)[0].stderr).toContain(`secret ${d.ns}/${supplied} not found`);
        const liveJob = await live(d, 'job', credentials);
        expect(liveJob.status.conditions.find((c: any) => c.type === 'Failed')).toMatchObject({ status: 'True', reason: 'PodFailurePolicy' });
        expect(await live(d, 'statefulset', chartFullname(d.config.releaseName))).toBeUndefined();
        // The README's fix: create the Secret. The failed Job keeps its name and spec, yet the next
        // attempt of the sync runs it again (Force=true,Replace=true re-creates it).
        const random = () => randomBytes(24).toString('hex'); // openssl rand -hex 24
        await tier.kube.kubectlOk(['-n', d.ns, 'create', 'secret', 'generic', supplied,
          `--from-literal=postgres-password=${random()}`, `--from-literal=password=${random()}`]);
      }
      await apps.until(d.app, 'Synced and Healthy', syncedHealthy(revision), 600_000);
      const last = runsOf(d, credentials).at(-1)!;
      expect(last.code, last.stderr).toBe(0);
      if (supplied) expect(runsOf(d, credentials).length).toBeGreaterThanOrEqual(2);

      // Each wave started only once the one before it was healthy.
      const sts = `StatefulSet/${chartFullname(d.config.releaseName)}`;
      const [migrate, verify] = [job(d, 'migrations'), job(d, 'verification')].map((j) => j.metadata.name);
      expect(WAVE(job(d, 'credentials'))).toBeLessThan(0);
      expect(last.seen[sts]).toBeUndefined();
      const migration = runsOf(d, migrate);
      expect(migration).toHaveLength(1);
      expect(migration[0].seen).toMatchObject({ [`Job/${credentials}`]: 'Complete', [sts]: 'ready 1' });
      expect(migration[0].seen[`Job/${verify}`]).toBeUndefined();
      const verification = runsOf(d, verify);
      expect(verification).toHaveLength(1);
      expect(verification[0].seen).toMatchObject({ [`Job/${migrate}`]: 'Complete' });
      expect(verification[0].code, verification[0].stderr).toBe(0);
      expect(d.standIn.psql(d.config.databaseName, 'SELECT count(*) FROM information_schema.tables WHERE table_name IN (\'accounts\', \'notes\')').trim()).toBe('2');
    }, true);
  }, 900_000);

  it('a second refresh finds nothing OutOfSync and runs nothing; the chart\'s regenerated certificate stays ignored', async () => {
    await each(async (d) => {
      const before = await apps.get(d.app);
      const runs = d.standIn.runs.length;
      const certificate = `${chartFullname(d.config.releaseName)}-crt`;
      const certBefore = await live(d, 'secret', certificate);
      for (let i = 0; i < 2; i++) {
        const after = await apps.refresh(d.app, 'hard');
        expect(after.status.sync.status).toBe('Synced');
        expect(after.status.resources.filter((r: any) => r.status !== 'Synced')).toEqual([]);
        expect(after.status.health.status).toBe('Healthy');
        expect(after.status.operationState.startedAt).toBe(before.status.operationState.startedAt);
      }
      expect(d.standIn.runs.length).toBe(runs);
      if (d.config.tls.enabled && !d.config.tls.certificatesSecret) {
        // The chart renders a new certificate every time; the live one is still the first.
        expect(certBefore).toBeDefined();
        expect((await live(d, 'secret', certificate)).data).toEqual(certBefore.data);
      } else {
        expect(before.spec.ignoreDifferences).toBeUndefined();
      }
      if (d.config.tls.issuer) {
        // cert-manager's Certificate is tracked and Synced; the Secret it writes (and renews) is not Argo CD's to compare.
        const tracked = (await apps.get(d.app)).status.resources;
        expect(tracked.find((r: any) => r.kind === 'Certificate')).toMatchObject({ status: 'Synced' });
        expect(tracked.filter((r: any) => r.kind === 'Secret' && r.name === d.config.tls.certificatesSecret)).toEqual([]);
      }
    }, true);
    // The extra profile has shown what it is for: its Application goes (its objects stay, unsynced).
    await tier.kube.kubectlOk(['delete', 'application', `learnflow-postgres-${EXTRA}`, '-n', tier.argocd.namespace]);
  }, 600_000);

  it('a new migration committed: a new Job and ConfigMaps sync and apply it, the old set is pruned, the generated Secret survives', async () => {
    const old = new Map(deployments.map((d) => [d.profile, dist(d).filter((m) => m.kind === 'Job' || m.kind === 'ConfigMap')]));
    const secrets = new Map<string, any>();
    for (const d of deployments) secrets.set(d.profile, await live(d, 'secret', d.config.credentials.existingSecret ?? `${chartFullname(d.config.releaseName)}-credentials`));
    const revision = tier.repo.commitMigrations({ ...FIXTURE_MIGRATIONS, ...NEW_MIGRATION }, 'Add accounts.display_name');
    await each(async (d) => {
      await apps.refresh(d.app);
      const done = await apps.until(d.app, 'Synced and Healthy on the new migration', syncedHealthy(revision), 600_000);
      const migrate = job(d, 'migrations').metadata.name;
      expect(runsOf(d, migrate)).toHaveLength(1);
      expect(runsOf(d, migrate)[0].stdout).toContain('004');
      expect(d.standIn.psql(d.config.databaseName, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'accounts' AND column_name = 'display_name'")).toBe('1');
      const current = new Set(dist(d).map((m) => `${m.kind}/${m.metadata.name}`));
      const replaced = old.get(d.profile)!.filter((m) => !current.has(`${m.kind}/${m.metadata.name}`));
      expect(replaced.map((m) => m.kind).sort()).toEqual(expect.arrayContaining(['ConfigMap', 'Job', 'Job']));
      for (const m of replaced) expect(goneOrDeleting(await live(d, m.kind, m.metadata.name)), `${m.kind}/${m.metadata.name}`).toBe(true);
      expect(done.status.resources.filter((r: any) => r.requiresPruning)).toEqual([]);
      const secret = await live(d, 'secret', secrets.get(d.profile).metadata.name);
      expect(secret.metadata.deletionTimestamp).toBeUndefined();
      expect(secret.data).toEqual(secrets.get(d.profile).data);
    });
  }, 900_000);

  it('a broken migration committed: Degraded at wave 1, the verification Job never created, the database unchanged', async () => {
    const before = new Map(deployments.map((d) => [d.profile, dump(d)]));
    tier.repo.commitMigrations({ ...FIXTURE_MIGRATIONS, ...NEW_MIGRATION, ...BROKEN_MIGRATION }, 'Archive notes (broken)');
    await each(async (d) => {
      await apps.refresh(d.app);
      const migrate = job(d, 'migrations');
      const verify = job(d, 'verification').metadata.name;
      const degraded = await apps.until(d.app, 'Degraded by the migration Job', (s) => s.health?.status === 'Degraded');
      expect(degraded.status.health.message).toContain(`batch/Job:${d.ns}/${migrate.metadata.name}`);
      expect(WAVE(migrate)).toBe(1);
      const [run] = runsOf(d, migrate.metadata.name);
      expect(run.code).toBe(7);
      expect(run.stderr).toContain('005_archive_notes.up.sql');
      expect((await live(d, 'job', migrate.metadata.name)).status.conditions.find((c: any) => c.type === 'Failed')).toMatchObject({ status: 'True', reason: 'PodFailurePolicy' });
      expect(degraded.status.resources.find((r: any) => r.name === verify)).toMatchObject({ status: 'OutOfSync' });
      expect(await live(d, 'job', verify)).toBeUndefined();
      expect(runsOf(d, verify)).toEqual([]);
      expect(dump(d)).toBe(before.get(d.profile));
    });
  }, 900_000);

  it('the migration fixed and committed: the next sync applies it and is Synced and Healthy again', async () => {
    const revision = tier.repo.commitMigrations({ ...FIXTURE_MIGRATIONS, ...NEW_MIGRATION, ...FIXED_MIGRATION }, 'Archive notes (fixed)');
    await each(async (d) => {
      await apps.refresh(d.app);
      await apps.until(d.app, 'Synced and Healthy on the fixed migration', syncedHealthy(revision), 600_000);
      expect(d.standIn.psql(d.config.databaseName, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'notes' AND column_name = 'archived'")).toBe('1');
      const verification = runsOf(d, job(d, 'verification').metadata.name);
      expect(verification.map((r: PodRun) => r.code)).toEqual([0]);
    });
  }, 900_000);
}, { kube: true });
