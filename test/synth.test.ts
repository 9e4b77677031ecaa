import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIST, ROOT } from './support/dist';
import { LearnflowPostgresProps } from '../lib/config';
import { PROFILES, PROFILE_NAMES } from '../lib/profiles';
import { APP_COMMAND, CDK8S_ENV, cdk8sCli, projectCopy, synthProject } from './support/project';
import { SYNTH_PHASES, parsePhaseTimings } from '../lib/timings';
import { loadMigrations } from '../lib/migrations/files';
import { RELEASED_FILE, renderReleased } from '../lib/migrations/released';

/** Every file below `dir` with its bytes, relative paths sorted. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (sub: string) => {
    for (const entry of readdirSync(path.join(dir, sub)).sort()) {
      const rel = path.join(sub, entry);
      if (statSync(path.join(dir, rel)).isDirectory()) walk(rel);
      else out[rel] = readFileSync(path.join(dir, rel), 'latin1');
    }
  };
  walk('');
  return out;
}

const synth = synthProject;

/** Every file and folder below `dir` with its permission bits, e.g. `development/helm` → `755`. */
function modes(dir: string): Record<string, string> {
  const out: Record<string, string> = { '.': (statSync(dir).mode & 0o777).toString(8) };
  for (const rel of readdirSync(dir, { recursive: true, encoding: 'utf8' })) out[rel] = (statSync(path.join(dir, rel)).mode & 0o777).toString(8);
  return out;
}

describe('synthesis', () => {
  let project: string;
  /** The first synth of the copy, run under umask 022 as most shells have it. */
  let first: { stderr: string; modes: Record<string, string> };
  beforeAll(() => {
    project = projectCopy();
    const run = spawnSync('sh', ['-c', 'umask 022 && exec "$0" "$@"', process.execPath, ...APP_COMMAND.slice(1)], { cwd: project, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    first = { stderr: run.stderr, modes: modes(path.join(project, 'dist')) };
  });
  afterAll(() => rmSync(project, { recursive: true, force: true }));

  it('leaves dist/ as readable as mkdir makes folders (umask 022: 0755 and 0644), not a private staging folder', () => {
    expect(first.modes['.']).toBe('755');
    for (const [rel, mode] of Object.entries(first.modes)) {
      expect(mode, rel).toBe(statSync(path.join(project, 'dist', rel)).isDirectory() ? '755' : '644');
    }
  });

  it('names the profiles whose Argo CD props have no repoURL, for which no Application is rendered', () => {
    const without = PROFILE_NAMES.filter((name) => {
      const props: LearnflowPostgresProps = PROFILES[name];
      return props.argocd !== undefined && props.argocd.repoURL === undefined;
    });
    const notice = `no Argo CD Application for ${without.join(', ')}: set argocd.repoURL (lib/profiles.ts) to this repository's Git URL`;
    if (without.length > 0) expect(first.stderr).toContain(notice);
    else expect(first.stderr).not.toContain('no Argo CD Application');
    for (const name of PROFILE_NAMES) expect(existsSync(path.join(project, 'dist', name, 'argocd')), name).toBe(!without.includes(name) && PROFILES[name].argocd !== undefined);
  });

  it('matches the committed dist/ byte for byte (dist/ is never stale)', () => {
    expect(tree(path.join(project, 'dist'))).toEqual(tree(DIST));
  });

  it('is deterministic: a second run gives byte-identical output', () => {
    const first = tree(path.join(project, 'dist'));
    expect(synth(project).status).toBe(0);
    expect(tree(path.join(project, 'dist'))).toEqual(first);
  });

  it('writes every profile with its Helm values and manifests', () => {
    const files = Object.keys(tree(path.join(project, 'dist')));
    for (const profile of PROFILE_NAMES) {
      expect(files).toContain(path.join(profile, 'helm', 'postgresql-values.yaml'));
      expect(files).toContain(path.join(profile, 'learnflow-postgres.yaml'));
    }
  });

  it('removes stale files from earlier runs', () => {
    writeFileSync(path.join(project, 'dist', 'development', 'stale.yaml'), 'kind: Stale\n');
    expect(synth(project).status).toBe(0);
    expect(existsSync(path.join(project, 'dist', 'development', 'stale.yaml'))).toBe(false);
  });

  it('synthesizes only LEARNFLOW_PROFILE and leaves the other profiles alone', () => {
    const [only, ...others] = PROFILE_NAMES;
    for (const other of others) writeFileSync(path.join(project, 'dist', other, 'marker'), 'kept');
    writeFileSync(path.join(project, 'dist', only, 'stale.yaml'), 'kind: Stale\n');
    const run = synth(project, { LEARNFLOW_PROFILE: only });
    expect(run.status).toBe(0);
    expect(run.stderr).toContain(`synthesized dist/${only}/\n`);
    expect(existsSync(path.join(project, 'dist', only, 'stale.yaml'))).toBe(false);
    for (const other of others) {
      expect(readFileSync(path.join(project, 'dist', other, 'marker'), 'utf8')).toBe('kept');
      rmSync(path.join(project, 'dist', other, 'marker'));
    }
  });

  it('prints the wall time of every phase with LEARNFLOW_SYNTH_TIMINGS=1, and the same dist/', () => {
    const before = tree(path.join(project, 'dist'));
    const run = synth(project, { LEARNFLOW_SYNTH_TIMINGS: '1' });
    expect(run.status).toBe(0);
    const lines = run.stderr.slice(run.stderr.indexOf('wall time per phase')).split('\n').slice(1).filter(Boolean);
    const timings = parsePhaseTimings(lines.join('\n'));
    expect(lines).toHaveLength(timings.size); // every line is one phase in the format
    // Every phase, the Argo CD Application's where a profile renders one.
    const withApplication = PROFILE_NAMES.some((p) => existsSync(path.join(project, 'dist', p, 'argocd')));
    expect([...timings.keys()].sort()).toEqual(SYNTH_PHASES.filter((p) => withApplication || p !== 'Argo CD Application').sort());
    expect(tree(path.join(project, 'dist'))).toEqual(before);
    expect(synth(project).stderr).not.toContain('wall time per phase');
  });

  it('rejects an unknown LEARNFLOW_PROFILE by name, exit 1, dist/ untouched', () => {
    const before = tree(path.join(project, 'dist'));
    const unknown = 'no-such-profile';
    expect(PROFILE_NAMES).not.toContain(unknown);
    const run = synth(project, { LEARNFLOW_PROFILE: unknown });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`LEARNFLOW_PROFILE: '${unknown}' is not a profile (one of ${PROFILE_NAMES.join(', ')})`);
    expect(tree(path.join(project, 'dist'))).toEqual(before);
  });

  it('fails on a bad migration file with its name and rule, exit 1, dist/ exactly as it was', () => {
    const before = tree(path.join(project, 'dist'));
    // One version after the newest, whatever migrations/ holds.
    const newest = readdirSync(path.join(project, 'migrations')).filter((f) => /^\d+_/.test(f)).sort().at(-1)?.split('_')[0] ?? '000';
    const next = String(Number(newest) + 1).padStart(newest.length, '0');
    const [bad, down] = ['up', 'down'].map((d) => path.join(project, 'migrations', `${next}_bad.${d}.sql`));
    writeFileSync(bad, 'BEGIN;\nCREATE TABLE t (id int);\nCOMMIT;\n');
    writeFileSync(down, 'DROP TABLE t;\n');
    try {
      const run = synth(project);
      expect(run.status).toBe(1);
      expect(run.stderr).toContain('synth failed, dist/ was left as it was');
      expect(run.stderr).toContain(`migrations/${next}_bad.up.sql:1: transaction control statement BEGIN`);
      expect(tree(path.join(project, 'dist'))).toEqual(before);
    } finally {
      rmSync(bad);
      rmSync(down);
    }
  });

  it('fails on a released migration edited after its release, naming it and what to do, exit 1, dist/ exactly as it was', () => {
    const released = path.join(project, 'migrations', RELEASED_FILE);
    const releasedBefore = existsSync(released) ? readFileSync(released, 'utf8') : undefined;
    const migrations = loadMigrations('migrations', { root: project });
    const up = path.join(project, migrations[0].up.source);
    const upBefore = readFileSync(up, 'utf8');
    // Release what is there (a synth of that state is dist/ as it is), then edit the first up file.
    writeFileSync(released, renderReleased(migrations));
    expect(synth(project).status).toBe(0);
    const before = tree(path.join(project, 'dist'));
    writeFileSync(up, `${upBefore}-- reviewed later\n`);
    try {
      const run = synth(project);
      expect(run.status).toBe(1);
      expect(run.stderr).toContain('synth failed, dist/ was left as it was');
      expect(run.stderr).toContain(`${migrations[0].up.source}: changed after its release`);
      expect(run.stderr).toContain('restore the file and add a new migration');
      expect(tree(path.join(project, 'dist'))).toEqual(before);
    } finally {
      writeFileSync(up, upBefore);
      if (releasedBefore === undefined) rmSync(released);
      else writeFileSync(released, releasedBefore);
    }
  });

  it('notices any change to the sources it compiles once and caches (TypeScript or embedded shell)', () => {
    const job = () => readFileSync(path.join(project, 'dist', 'development', 'learnflow-postgres.yaml'), 'utf8');
    const before = job();
    const script = path.join(project, 'lib', 'verification', 'verify.sh');
    const original = readFileSync(script, 'utf8');
    writeFileSync(script, `${original}# a comment only this test adds\n`);
    try {
      expect(synth(project).status).toBe(0);
      expect(job()).toContain('# a comment only this test adds');
    } finally {
      writeFileSync(script, original);
    }
    const names = path.join(project, 'lib', 'names.ts');
    const ts = readFileSync(names, 'utf8');
    writeFileSync(names, ts.replace("'app.kubernetes.io/managed-by': 'cdk8s'", "'app.kubernetes.io/managed-by': 'cdk8s-test'"));
    try {
      expect(synth(project).status).toBe(0);
      expect(job()).toContain('app.kubernetes.io/managed-by: cdk8s-test');
    } finally {
      writeFileSync(names, ts);
    }
    expect(synth(project).status).toBe(0);
    expect(job()).toBe(before);
  });

  it('refuses a misspelt prop in lib/profiles.ts, naming it and the real one, under the cdk8s CLI too (exit 1, dist/ untouched)', () => {
    const profiles = path.join(project, 'lib', 'profiles.ts');
    const original = readFileSync(profiles, 'utf8');
    const profile = PROFILE_NAMES[0];
    // The first prop of the first profile, misspelt by one letter: `npm run synth` does not type-check.
    const typo = original.replace(new RegExp(`(\\n  ${profile}: \\{[^]*?\\n    )(\\w)\\w(\\w+):`), '$1$2$3:');
    expect(typo).not.toBe(original);
    const before = tree(path.join(project, 'dist'));
    writeFileSync(profiles, typo);
    try {
      // `cdk8s synth` runs the app command of cdk8s.yaml, which is also `npm run synth`.
      const run = cdk8sCli(project, ['synth']);
      expect(run.status).toBe(1);
      expect(run.stderr).toMatch(new RegExp(`profile '${profile}' \\(lib/profiles\\.ts\\): 1 problem\\(s\\)\\n  - (\\w+): unknown setting \\(did you mean \\w+\\?\\)`));
      expect(tree(path.join(project, 'dist'))).toEqual(before);
    } finally {
      writeFileSync(profiles, original);
    }
  });

  it.each([
    ['client networks without the cluster\'s own', "{ serviceType: 'LoadBalancer', allowedCidrs: ['10.0.0.0/8'] }", [
      "cluster.podCidrs: required while allowedCidrs is set", "cluster.serviceCidrs: required while allowedCidrs is set",
    ]],
    ['an issuer without TLS', "{ tls: { issuer: { kind: 'ClusterIssuer', name: 'internal-ca' } } }", ['tls.issuer: conflicts with tls.enabled false']],
    ['a certificate Secret named like the chart\'s', "{ tls: { enabled: true, issuer: { name: 'ca' }, certificatesSecret: 'postgres-postgresql-crt' } }", [
      "tls.certificatesSecret: 'postgres-postgresql-crt' is the name of a Secret the chart renders",
    ]],
    ['a replica count, a pool size out of range and a LoadBalancer pooler without client networks',
      "{ readReplicas: { count: 9 }, pooler: { enabled: true, defaultPoolSize: 501, serviceType: 'LoadBalancer' } }", [
        'readReplicas.count: 9 is out of range (a whole number from 1 to 8)',
        'pooler.defaultPoolSize: 501 is out of range (a whole number from 1 to 500)',
        'pooler.serviceType: LoadBalancer while allowedCidrs is empty',
      ]],
  ])('refuses %s in a profile, naming the prop (exit 1, dist/ untouched)', (_what, props, messages) => {
    const profiles = path.join(project, 'lib', 'profiles.ts');
    const original = readFileSync(profiles, 'utf8');
    const marker = '\n} as const satisfies Record<string, LearnflowPostgresProps>;';
    expect(original).toContain(marker);
    const before = tree(path.join(project, 'dist'));
    writeFileSync(profiles, original.replace(marker, `\n  insecure: ${props},${marker}`));
    try {
      const run = synth(project);
      expect(run.status).toBe(1);
      expect(run.stderr).toContain('synth failed, dist/ was left as it was');
      expect(run.stderr).toContain(`profile 'insecure' (lib/profiles.ts): ${messages.length} problem(s)`);
      for (const message of messages) expect(run.stderr).toContain(`  - ${message}`);
      expect(tree(path.join(project, 'dist'))).toEqual(before);
    } finally {
      writeFileSync(profiles, original);
    }
  });

  it('runs under the cdk8s CLI too: `cdk8s synth` fills dist/ and its own output folder, with no upgrade check', () => {
    const out = path.join(project, 'cli-out');
    const run = cdk8sCli(project, ['synth', '--output', out], { CDK8S_OUTDIR: out });
    expect(run.status, run.stderr).toBe(0);
    expect(tree(out)).toEqual(tree(path.join(project, 'dist')));
    // Offline, the CLI's check for a newer version prints a stack trace; the project turns it off
    // where it runs the CLI: CI's environment and the npm scripts.
    expect(run.stderr).not.toMatch(/new version|http error|at /);
    expect(readFileSync(path.join(ROOT, '.ci', 'run'), 'utf8')).toMatch(new RegExp(`^export CDK8S_CHECK_UPGRADE=${CDK8S_ENV.CDK8S_CHECK_UPGRADE}$`, 'm'));
    const scripts: Record<string, string> = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts;
    for (const script of Object.values(scripts).filter((s) => /^cdk8s /.test(s))) expect(script).toContain('--no-check-upgrade');
  });
});
