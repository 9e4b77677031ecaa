// The command line itself, where no cluster is needed: usage and its exit codes, --dry-run with
// nothing to contact, dist/ checks, and the small pure rules (quoting, env, apply summary).
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { summarizeApply } from '../../lib/cli/commands/deploy';
import { withEnv } from '../../lib/cli/commands/backup';
import { commandLine, shellQuote } from '../../lib/cli/exec';
import { CliError } from '../../lib/cli/exit-codes';
import { loadTarget } from '../../lib/cli/target';
import { PLAN_KEY, PLAN_PARTS_KEY, planEntries, renderPlan } from '../../lib/migrations/bundle';
import { loadMigrations } from '../../lib/migrations/files';
import { encodedSize } from '../../lib/migrations/layout';
import { DIST, ROOT } from '../support/dist';
import { cli } from './support';

const scratch = mkdtempSync(path.join(os.tmpdir(), 'learnflow-cli-unit-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** No kubectl, no helm, no cluster: PATH is empty and KUBECONFIG points nowhere. */
const nothing = { kubeconfig: path.join(scratch, 'absent.kubeconfig'), path: [], home: scratch };

describe('usage', () => {
  it('prints the overview and exits 1 without a command, 0 with --help', async () => {
    const bare = await cli([], nothing);
    expect(bare.code).toBe(1);
    expect(bare.stdout).toContain('Usage: learnflow-postgres <command> --profile <profile> [options]');
    const help = await cli(['--help'], nothing);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Exit codes: 0 success, 1 general error, 2 Kubernetes not accessible, 3 Helm not installed,');
  });

  it.each(['deploy', 'status', 'verify', 'backup', 'restore'])('%s --help prints its own usage (exit 0)', async (command) => {
    const r = await cli([command, '--help'], nothing);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Usage: learnflow-postgres ${command} --profile <p>`));
  });

  it.each([
    [['frobnicate'], "unknown command 'frobnicate'", 'Usage: learnflow-postgres <command>'],
    [['deploy', '--profile', 'development', '--force'], "Unknown option '--force'", 'Usage: learnflow-postgres deploy'],
    [['deploy'], '--profile is required', 'Usage: learnflow-postgres deploy'],
    [['deploy', '--profile', 'development', '--upgrade', '--skip-existing'], '--upgrade and --skip-existing exclude each other', 'Usage: learnflow-postgres deploy'],
    [['deploy', '--profile', 'development', '--timeout', '1m'], "--timeout: '1m' is not a whole number of seconds", 'Usage: learnflow-postgres deploy'],
    [['restore', '--profile', 'production'], 'restore needs the <file> to restore', 'Usage: learnflow-postgres restore'],
    [['status', '--profile', 'development', 'extra'], 'Unexpected argument', 'Usage: learnflow-postgres status'],
  ])('%j exits 1 with the problem and the usage', async (args, problem, usage) => {
    const r = await cli(args, nothing);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(problem);
    expect(r.stderr).toContain(usage);
  });

  it('names the profiles when given an unknown one', async () => {
    const r = await cli(['status', '--profile', 'staging'], nothing);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("unknown profile 'staging'");
    expect(r.stderr).toContain('use one of: development, production');
  });
});

describe('--dry-run contacts nothing', () => {
  it('deploy prints its plan with neither kubectl nor helm on PATH and no cluster', async () => {
    const r = await cli(['deploy', '--profile', 'production', '--dry-run', '--timeout', '42'], nothing);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('helm upgrade --install postgres oci://registry-1.docker.io/bitnamicharts/postgresql --version 15.5.38 --namespace postgres -f dist/production/helm/postgresql-values.yaml');
    expect(r.stdout).toContain('data volume (20Gi) needs StorageClass gp3; backup volume (20Gi) needs StorageClass gp3; else exit 6');
    expect(r.stdout).toContain('polling every second for up to 42s');
  });

  it('backup and restore print theirs the same way', async () => {
    expect((await cli(['backup', '--profile', 'production', '--dry-run'], nothing)).code).toBe(0);
    expect((await cli(['restore', '--profile', 'production', 'learnflow-x.dump', '--dry-run'], nothing)).code).toBe(0);
  });
});

describe('dist/ as the source of truth', () => {
  const profileCopy = (name: string) => {
    const root = mkdtempSync(path.join(scratch, `${name}-`));
    cpSync(path.join(DIST, 'development'), path.join(root, 'dist', 'development'), { recursive: true });
    return root;
  };
  const error = (fn: () => unknown): CliError => {
    try {
      fn();
    } catch (e) {
      if (e instanceof CliError) return e;
      throw e;
    }
    throw new Error('no CliError');
  };

  it('derives names, Jobs, plan and connection from dist/ and lib/', () => {
    const t = loadTarget('development');
    expect(t).toMatchObject({
      namespace: 'postgres', release: 'postgres', chartVersion: '15.5.38', distDir: 'dist/development',
      valuesFile: 'dist/development/helm/postgresql-values.yaml', credentialsSecret: 'postgres-postgresql-credentials',
      connectionString: 'postgresql://learnflow@postgres-postgresql.postgres.svc:5432/learnflow',
    });
    expect(t.jobs.migrations).toMatch(/^postgres-postgresql-migrate-[0-9a-f]{10}$/);
    expect(t.migrationPlan.map((m) => m.version)).toEqual(['001', '002', '003', '004', '005', '006']);
    expect(loadTarget('production').connectionString).toBe('postgresql://learnflow@postgres-postgresql.postgres.svc:5432/learnflow?sslmode=require');
  });

  it('a missing dist/<profile> is exit 1 telling to run npm run synth', () => {
    const e = error(() => loadTarget('development', mkdtempSync(path.join(scratch, 'empty-'))));
    expect(e.code).toBe(1);
    expect(e.message).toMatch(/dist\/development\/learnflow-postgres\.yaml not found/);
    expect(e.next[0]).toMatch(/^npm run synth/);
  });

  it('a dist/ rendered for other settings is refused as stale', () => {
    const root = profileCopy('stale');
    const values = path.join(root, 'dist', 'development', 'helm', 'postgresql-values.yaml');
    writeFileSync(values, readFileSync(values, 'utf8').replace('--version 15.5.38', '--version 16.7.27'));
    const e = error(() => loadTarget('development', root));
    expect(e.code).toBe(1);
    expect(e.message).toContain('is stale: its values file is for chart 16.7.27');
  });

  it('reads every part of a plan split into parts, as plan.parts lists them', () => {
    const root = profileCopy('split-plan');
    const file = path.join(root, 'dist', 'development', 'learnflow-postgres.yaml');
    const docs = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS());
    const configMap = docs.find((d) => d.kind === 'ConfigMap' && PLAN_KEY in (d.data ?? {}));
    // The synth's own splitter, with a budget of about two lines per part.
    const migrations = loadMigrations('migrations', { root: ROOT });
    const parts = planEntries(migrations, encodedSize(PLAN_KEY, renderPlan(migrations.slice(0, 2))));
    expect(parts.length).toBeGreaterThan(3);
    expect(parts[0]).toEqual([PLAN_PARTS_KEY, parts.slice(1).map(([key]) => `${key}\n`).join('')]);
    Object.assign(configMap.data, Object.fromEntries(parts));
    writeFileSync(file, docs.map((d) => stringify(d)).join('---\n'));
    expect(loadTarget('development', root).migrationPlan.map((m) => `${m.version}_${m.name}`)).toEqual(migrations.map((m) => `${m.version}_${m.name}`));
  });

  it('the checkout\'s own dist/ is current for both profiles', () => {
    expect(() => loadTarget('development', ROOT)).not.toThrow();
    expect(() => loadTarget('production', ROOT)).not.toThrow();
  });
});

describe('small rules', () => {
  it('quotes for POSIX sh only what needs it', () => {
    expect(shellQuote('dist/development/')).toBe('dist/development/');
    expect(shellQuote('--from=cronjob/x')).toBe('--from=cronjob/x');
    expect(shellQuote('jsonpath={.data}')).toBe(`'jsonpath={.data}'`);
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(shellQuote('')).toBe("''");
    expect(commandLine('kubectl', ['get', 'pods', '-l', 'job-name=<job>'])).toBe("kubectl get pods -l 'job-name=<job>'");
  });

  it('sets an env variable on every container, replacing an existing one (kubectl set env)', () => {
    const job = { metadata: { name: 'j' }, spec: { template: { spec: { containers: [{ name: 'a', env: [{ name: 'RESTORE_FILE', value: 'old' }, { name: 'X', value: '1' }] }, { name: 'b' }] } } } };
    const out = withEnv(job, 'RESTORE_FILE', 'new.dump') as any;
    expect(out.spec.template.spec.containers[0].env).toEqual([{ name: 'X', value: '1' }, { name: 'RESTORE_FILE', value: 'new.dump' }]);
    expect(out.spec.template.spec.containers[1].env).toEqual([{ name: 'RESTORE_FILE', value: 'new.dump' }]);
    expect(job.spec.template.spec.containers[0].env?.[0].value).toBe('old'); // the input is left alone
  });

  it('summarizes kubectl apply: changes listed, unchanged counted', () => {
    expect(summarizeApply('namespace/postgres unchanged\njob.batch/x created\nconfigmap/y configured\n')).toBe(
      'job.batch/x created\nconfigmap/y configured\n3 objects: 2 created or configured, 1 unchanged');
  });
});
