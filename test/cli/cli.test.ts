// The command line itself, where no cluster is needed: usage and its exit codes, --dry-run with
// nothing to contact, dist/ checks, and the small pure rules (quoting, env, apply summary). It
// runs in the fixture project (test/support/fixture-project.ts); the checkout's own profiles are
// only checked to be rendered and current.
import { spawnSync } from 'node:child_process';
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
import { parseMigrations } from '../../lib/migrations/files';
import { encodedSize } from '../../lib/migrations/layout';
import { PROFILE_NAMES } from '../../lib/profiles';
import { ROOT } from '../support/dist';
import { FIXTURE_MIGRATIONS, FIXTURE_PROFILES, FIXTURE_VERSIONS, FixtureProfile, fixtureProject } from '../support/fixture-project';
import { cli, fixtureTarget } from './support';

/** The fixture's profile with generated credentials; one with a named class and backups; one with backups, TLS and a managed Secret. */
const [PLAIN, FAST, BACKUPS] = [fixtureTarget('deploy'), fixtureTarget('deploy-fast-storage'), fixtureTarget('backups')];
const fixtureTargetOf = (profile: FixtureProfile, root = fixtureProject()) => loadTarget(profile, root, FIXTURE_PROFILES);

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
    [['deploy', '--profile', 'deploy', '--force'], "Unknown option '--force'", 'Usage: learnflow-postgres deploy'],
    [['deploy'], '--profile is required', 'Usage: learnflow-postgres deploy'],
    [['deploy', '--profile', 'deploy', '--upgrade', '--skip-existing'], '--upgrade and --skip-existing exclude each other', 'Usage: learnflow-postgres deploy'],
    [['deploy', '--profile', 'deploy', '--timeout', '1m'], "--timeout: '1m' is not a whole number of seconds", 'Usage: learnflow-postgres deploy'],
    [['restore', '--profile', 'backups'], 'restore needs the <file> to restore', 'Usage: learnflow-postgres restore'],
    [['status', '--profile', 'deploy', 'extra'], 'Unexpected argument', 'Usage: learnflow-postgres status'],
  ])('%j exits 1 with the problem and the usage', async (args, problem, usage) => {
    const r = await cli(args, nothing);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(problem);
    expect(r.stderr).toContain(usage);
  });

  it('--version prints the version, the chart versions and the supported Kubernetes (exit 0)', async () => {
    const r = await cli(['--version'], nothing);
    expect(r.code).toBe(0);
    const { version } = JSON.parse(readFileSync(path.join(fixtureProject(), 'package.json'), 'utf8'));
    expect(r.stdout).toBe(`learnflow-postgres ${version} (Bitnami PostgreSQL chart 15.5.38, 16.7.27; Kubernetes 1.28-1.31)\n`);
  });

  it('--namespace other than the one dist/ is rendered for is exit 1, naming both and the fix', async () => {
    const r = await cli(['deploy', '--profile', PLAIN.profile, '--namespace', 'elsewhere', '--dry-run'], nothing);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`--namespace elsewhere: dist/${PLAIN.profile}/ is rendered for namespace ${PLAIN.namespace}`);
    expect(r.stderr).toContain(`set namespace: 'elsewhere' in profile '${PLAIN.profile}' of lib/profiles.ts`);
    expect((await cli(['deploy', '--profile', PLAIN.profile, '-n', PLAIN.namespace, '--dry-run'], nothing)).code).toBe(0);
  });

  it('status --json prints one JSON object for any failure, an unknown profile too', async () => {
    const r = await cli(['status', '--profile', 'staging', '--json'], nothing);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({ profile: 'staging', exit_code: 1, error: "unknown profile 'staging'" });
  });

  it('names the profiles when given an unknown one', async () => {
    const r = await cli(['status', '--profile', 'staging'], nothing);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("unknown profile 'staging'");
    expect(r.stderr).toContain(`use one of: ${Object.keys(FIXTURE_PROFILES).join(', ')}`);
  });
});

describe('--dry-run contacts nothing', () => {
  it('deploy prints its plan with neither kubectl nor helm on PATH and no cluster', async () => {
    const r = await cli(['deploy', '--profile', FAST.profile, '--dry-run', '--timeout', '42'], nothing);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`helm ${FAST.helmUpgrade.join(' ')}`);
    const { storageSize, storageClass, backup } = FAST.config;
    expect(r.stdout).toContain(`data volume (${storageSize}) needs StorageClass ${storageClass}; backup volume (${backup.storageSize}) needs StorageClass ${backup.storageClass}; else exit 6`);
    expect(r.stdout).toContain('polling every second for up to 42s');
  });

  it('--context goes to every kubectl (--context) and helm (--kube-context) command it prints', async () => {
    const r = await cli(['deploy', '--profile', PLAIN.profile, '--dry-run', '--context', 'prod-eu'], nothing);
    expect(r.code, r.stderr).toBe(0);
    const commands = r.stdout.split('\n').filter((l) => /^(kubectl|helm) /.test(l));
    expect(commands.length).toBeGreaterThan(8);
    for (const line of commands) expect(line, line).toMatch(/^kubectl --context prod-eu |^helm .* --kube-context prod-eu( |$)/);
    expect(r.stdout).toContain(`helm ${PLAIN.helmUpgrade.join(' ')} --kube-context prod-eu`);
  });

  it('backup and restore print theirs the same way', async () => {
    expect((await cli(['backup', '--profile', BACKUPS.profile, '--dry-run'], nothing)).code).toBe(0);
    expect((await cli(['restore', '--profile', BACKUPS.profile, 'learnflow-x.dump', '--dry-run'], nothing)).code).toBe(0);
  });
});

describe('dist/ as the source of truth', () => {
  /** dist/ of the fixture's profile PLAIN alone, in a folder of its own. */
  const profileCopy = (name: string) => {
    const root = mkdtempSync(path.join(scratch, `${name}-`));
    cpSync(path.join(fixtureProject(), 'dist', PLAIN.profile), path.join(root, 'dist', PLAIN.profile), { recursive: true });
    // The vendored chart the profile installs (chartSource repository).
    for (const entry of ['charts', 'vendored.json']) cpSync(path.join(fixtureProject(), entry), path.join(root, entry), { recursive: true });
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
    const t = fixtureTargetOf(PLAIN.profile);
    // Paths are shown relative to the working directory when inside it, the fixture is not.
    expect(t).toMatchObject({
      namespace: PLAIN.namespace, release: PLAIN.release, chartVersion: PLAIN.chartVersion, distDir: path.join(fixtureProject(), 'dist', PLAIN.profile),
      valuesFile: path.join(fixtureProject(), PLAIN.valuesFile), credentialsSecret: `${PLAIN.chart.service}-credentials`, connectionString: PLAIN.connection,
      jobs: PLAIN.jobs,
    });
    expect(t.jobs.migrations).toMatch(new RegExp(`^${PLAIN.chart.service}-migrate-[0-9a-f]{10}$`));
    expect(t.migrationPlan.map((m) => m.version)).toEqual(FIXTURE_VERSIONS);
    expect(fixtureTargetOf(BACKUPS.profile)).toMatchObject({ connectionString: BACKUPS.connection, credentialsSecret: 'pg-credentials' });
    expect(BACKUPS.connection).toMatch(/\?sslmode=require$/);
  });

  it('a missing dist/<profile> is exit 1 telling to run npm run synth', () => {
    const e = error(() => fixtureTargetOf(PLAIN.profile, mkdtempSync(path.join(scratch, 'empty-'))));
    expect(e.code).toBe(1);
    expect(e.message).toContain(`dist/${PLAIN.profile}/learnflow-postgres.yaml not found`);
    expect(e.next[0]).toMatch(/^npm run synth/);
  });

  it('a dist/ rendered for other settings is refused as stale', () => {
    const root = profileCopy('stale');
    const values = path.join(root, 'dist', PLAIN.profile, 'helm', 'postgresql-values.yaml');
    const other = PLAIN.chartVersion === '16.7.27' ? '15.5.38' : '16.7.27';
    writeFileSync(values, readFileSync(values, 'utf8').replace(`# chart: postgresql ${PLAIN.chartVersion} `, `# chart: postgresql ${other} `));
    const e = error(() => fixtureTargetOf(PLAIN.profile, root));
    expect(e.code).toBe(1);
    expect(e.message).toContain(`is stale: its values file is for chart ${other} from repository, not ${PLAIN.chartVersion} from repository`);
  });

  it('a vendored archive that no longer matches vendored.json is refused, naming the file and the checksums', () => {
    const root = profileCopy('tampered');
    const archive = path.join(root, 'charts', `postgresql-${PLAIN.chartVersion}.tgz`);
    writeFileSync(archive, Buffer.concat([readFileSync(archive), Buffer.from('x')]));
    const e = error(() => fixtureTargetOf(PLAIN.profile, root));
    expect(e.code).toBe(1);
    expect(e.message).toMatch(new RegExp(`chartSource: repository needs the vendored archive, but charts/postgresql-${PLAIN.chartVersion.replace(/\./g, '\\.')}\\.tgz: sha256 is [0-9a-f]{64}, vendored\\.json records [0-9a-f]{64}`));
  });

  it('reads every part of a plan split into parts, as plan.parts lists them', () => {
    const root = profileCopy('split-plan');
    const file = path.join(root, 'dist', PLAIN.profile, 'learnflow-postgres.yaml');
    const docs = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS());
    const configMap = docs.find((d) => d.kind === 'ConfigMap' && PLAN_KEY in (d.data ?? {}));
    // The synth's own splitter, with a budget of about one line per part.
    const { migrations } = parseMigrations(Object.entries(FIXTURE_MIGRATIONS).map(([p, text]) => ({ path: p, bytes: Buffer.from(text) })));
    const parts = planEntries(migrations, encodedSize(PLAN_KEY, renderPlan(migrations.slice(0, 1))));
    expect(parts.length).toBeGreaterThan(3);
    expect(parts[0]).toEqual([PLAN_PARTS_KEY, parts.slice(1).map(([key]) => `${key}\n`).join('')]);
    Object.assign(configMap.data, Object.fromEntries(parts));
    writeFileSync(file, docs.map((d) => stringify(d)).join('---\n'));
    expect(fixtureTargetOf(PLAIN.profile, root).migrationPlan.map((m) => `${m.version}_${m.name}`)).toEqual(migrations.map((m) => `${m.version}_${m.name}`));
  });

  it.each(PROFILE_NAMES)('the checkout\'s own dist/%s is rendered and current', (profile) => {
    expect(() => loadTarget(profile, ROOT)).not.toThrow();
  });
});

describe('start-up', () => {
  it('loads no cdk8s (a third of a second per command): only yaml besides Node.js (and esbuild when it compiles)', () => {
    const script = `
      const { compiledProject } = require(${JSON.stringify(path.join(ROOT, 'scripts', 'compile.cjs'))});
      require(require('node:path').join(compiledProject(${JSON.stringify(ROOT)}), 'lib', 'cli', 'main.js'));
      const packages = Object.keys(require.cache).filter((f) => f.includes('/node_modules/') && !f.includes('/node_modules/.cache/'))
        .map((f) => f.split('/node_modules/').pop().split('/')[0]);
      process.stdout.write(JSON.stringify([...new Set(packages)].sort()));`;
    const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).filter((p: string) => p !== 'esbuild')).toEqual(['yaml']);
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
