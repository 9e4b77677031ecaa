// The README's operator commands, run verbatim against a real API server with dist/ applied as
// the README says, and the Argo CD Application validated against its CRD by the server. The
// README's examples use the default names (namespace and release `postgres`) with backups on:
// the test renders such a profile itself, so LearnFlow's own profiles may change freely. On the
// shared API server, where no other file uses the namespace `postgres`.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse } from 'yaml';
import { LearnflowPostgresProps } from '../../lib/config';
import { PROFILES, PROFILE_NAMES } from '../../lib/profiles';
import { ROOT } from '../support/dist';
import { Kube, describeKube, kubeBinaries, useSharedKube } from '../support/kube';
import { ProjectVariant, synthesizeVariant } from '../support/kube-dist';

/**
 * The command of a README shell block that mentions `marker`: its line joined with its `\`
 * continuations and `|` pipelines, exactly as a person would paste it.
 */
function readmeCommand(marker: string): string {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
  const commands = blocks.flatMap((b) => b.replace(/\\\n\s*/g, ' ').replace(/\n\s*\|/g, ' |').split('\n'));
  const found = commands.filter((c) => c.includes(marker));
  if (found.length !== 1) throw new Error(`README: expected one command with '${marker}', found ${found.length}`);
  return found[0];
}

/** Runs a README command in sh with our kubectl first on PATH, as the admin. */
function sh(kube: Kube, command: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const bin = path.dirname(kubeBinaries().kubectl);
  return new Promise((resolve) => {
    execFile('sh', ['-c', command], { env: { PATH: `${bin}:${process.env.PATH}`, KUBECONFIG: kube.kubeconfig, HOME: kube.dir }, cwd: ROOT },
      (error, stdout, stderr) => resolve({ code: error ? Number((error as any).code ?? 1) : 0, stdout, stderr }));
  });
}

const REPOSITORY = { repoURL: 'https://git.example.com/platform/learnflow-postgres.git' };
/** The profile the README's examples assume: every default, backups on. */
const EXAMPLE = 'readme-example';

/**
 * The README's example profile and those of lib/profiles.ts, each given a repository URL so that
 * every one renders its Application.
 */
const VARIANT_PROFILES: Record<string, LearnflowPostgresProps> = {
  [EXAMPLE]: { backup: { enabled: true }, argocd: REPOSITORY },
  ...Object.fromEntries(PROFILE_NAMES.map((name) => {
    const props: LearnflowPostgresProps = PROFILES[name];
    return [name, { ...props, argocd: { ...props.argocd, ...REPOSITORY } }];
  })),
};

describeKube('the README\'s operator commands on a real API server', () => {
  let kube: Kube;
  let variant: ProjectVariant;
  useSharedKube((k) => (kube = k));
  beforeAll(async () => {
    variant = await synthesizeVariant({ profiles: VARIANT_PROFILES });
    const apply = await sh(kube, `kubectl apply -f ${variant.dist}/${EXAMPLE}/`);
    expect(apply.stderr).toBe('');
    expect(apply.code).toBe(0);
  });
  afterAll(() => variant?.remove());

  const jobsWith = async (component: string) => JSON.parse(await kube.kubectlOk(['get', 'jobs', '-n', 'postgres', '-l', `app.kubernetes.io/component=${component}`, '-o', 'json'])).items;
  const container = (job: any) => job.spec.template.spec.containers[0];

  it('starts a status report from its template', async () => {
    const run = await sh(kube, readmeCommand('--from=cronjob/postgres-postgresql-migrations-status'));
    expect(run.code).toBe(0);
    const status = (await jobsWith('migrations')).filter((j: any) => j.metadata.name.startsWith('migrations-status-'));
    expect(status).toHaveLength(1);
    expect(container(status[0]).command).toEqual(['sh', '/migrations/runner.sh', 'status']);
  });

  it('starts a rollback to the README\'s target version', async () => {
    const run = await sh(kube, readmeCommand('--from=cronjob/postgres-postgresql-migrations-rollback'));
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const [rollback] = (await jobsWith('migrations')).filter((j: any) => j.metadata.name.startsWith('migrations-rollback-'));
    expect(container(rollback).command).toEqual(['sh', '/migrations/runner.sh', 'rollback']);
    expect(container(rollback).env).toContainEqual({ name: 'MIGRATE_TARGET_VERSION', value: '004' });
    // The copy keeps the template's mount and credentials.
    expect(container(rollback).env).toContainEqual(expect.objectContaining({ name: 'PGPASSFILE' }));
    expect(rollback.spec.template.spec.initContainers.map((c: any) => c.name)).toEqual(['login']);
    expect(rollback.spec.template.spec.volumes.map((v: any) => v.name)).toEqual(expect.arrayContaining(['configmaps', 'database-password', 'database-login']));
  });

  it('starts a restore of the README\'s backup file', async () => {
    const run = await sh(kube, readmeCommand('--from=cronjob/postgres-postgresql-backup-restore'));
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const [restore] = await jobsWith('backup');
    expect(container(restore).env).toContainEqual({ name: 'RESTORE_FILE', value: 'learnflow-20261122T023000Z.dump' });
  });

  it('prunes with the README\'s selector and allowlist without a warning', async () => {
    const run = await sh(kube, readmeCommand('--prune-allowlist=core/v1/ConfigMap').replace('dist/development/', `${variant.dist}/${EXAMPLE}/`));
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
  });

  it('accepts every profile\'s Argo CD Application under the real CRD\'s schema', async () => {
    await kube.kubectlOk(['apply', '--server-side', '-f', path.join(ROOT, 'reference', 'crds', 'argocd-application-crd.yaml')]);
    // The CRD's status appears a moment after it is stored: poll until the API serves the kind.
    for (let i = 0; (await kube.kubectl(['get', 'applications.argoproj.io', '-A'])).code !== 0; i++) {
      if (i > 100) throw new Error('the Application CRD never became served');
      await new Promise((r) => setTimeout(r, 100));
    }
    await kube.kubectlOk(['create', 'namespace', 'argocd']);
    for (const profile of Object.keys(VARIANT_PROFILES)) {
      const file = path.join(variant.dist, profile, 'argocd', 'application.yaml');
      const r = await kube.kubectl(['apply', '--server-side', '--field-manager=learnflow', '-f', file]);
      expect(r.stderr, profile).toBe('');
      expect(r.code, profile).toBe(0);
      const stored = JSON.parse(await kube.kubectlOk(['get', 'application', `learnflow-postgres-${profile}`, '-n', 'argocd', '-o', 'json']));
      expect(stored.spec.sources).toEqual(parse(readFileSync(file, 'utf8')).spec.sources);
    }
    // The schema is really checked: a misspelt field is refused.
    const bad = readFileSync(path.join(variant.dist, EXAMPLE, 'argocd', 'application.yaml'), 'utf8').replace('syncPolicy:', 'syncPolicyy:');
    const r = await kube.kubectl(['apply', '--server-side', '--field-manager=learnflow', '-f', '-'], { input: bad });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/syncPolicyy/);
  });
});
