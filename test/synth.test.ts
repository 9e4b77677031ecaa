import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIST } from './support/dist';
import { parse } from 'yaml';
import { APP_COMMAND, cdk8sCli, projectCopy, synthProject, writeProfiles } from './support/project';
import { PROFILE_NAMES } from '../lib/profiles';
import { SYNTH_PHASES, parsePhaseTimings } from '../lib/timings';

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

describe('synthesis', () => {
  let project: string;
  beforeAll(() => {
    project = projectCopy();
    expect(synth(project).status).toBe(0);
  });
  afterAll(() => rmSync(project, { recursive: true, force: true }));

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

  it('leaves dist/ as readable as mkdir makes folders (umask 022: 0755), not a private staging folder', () => {
    const run = spawnSync('sh', ['-c', `umask 022 && exec "$0" "$@"`, process.execPath, ...APP_COMMAND.slice(1)], { cwd: project, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const modes = Object.keys(tree(path.join(project, 'dist'))).flatMap((file) => {
      const folders = path.dirname(file).split(path.sep).map((_, i, parts) => parts.slice(0, i + 1).join(path.sep));
      return [...folders, file];
    });
    const mode = (rel: string) => (statSync(path.join(project, 'dist', rel)).mode & 0o777).toString(8);
    expect(mode('.')).toBe('755');
    for (const rel of new Set(modes)) expect(mode(rel), rel).toBe(statSync(path.join(project, 'dist', rel)).isDirectory() ? '755' : '644');
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
      for (const run of [synth(project), cdk8sCli(project, ['synth'])]) {
        expect(run.status).toBe(1);
        expect(run.stderr).toMatch(new RegExp(`profile '${profile}' \\(lib/profiles\\.ts\\): 1 problem\\(s\\)\\n  - (\\w+): unknown setting \\(did you mean \\w+\\?\\)`));
        expect(tree(path.join(project, 'dist'))).toEqual(before);
      }
    } finally {
      writeFileSync(profiles, original);
    }
  });

  it('renders the Argo CD Application of each profile with argocd.repoURL, and names those without one', () => {
    const profiles = path.join(project, 'lib', 'profiles.ts');
    const original = readFileSync(profiles, 'utf8');
    const repoURL = 'https://git.example.com/platform/learnflow-postgres.git';
    writeProfiles(project, { gitops: { argocd: { repoURL } }, unset: { argocd: { targetRevision: 'main' } }, plain: {} });
    try {
      const run = synth(project);
      expect(run.status, run.stderr).toBe(0);
      expect(run.stderr).toContain("no Argo CD Application for unset: set argocd.repoURL (lib/profiles.ts) to this repository's Git URL");
      const application = parse(readFileSync(path.join(project, 'dist', 'gitops', 'argocd', 'application.yaml'), 'utf8'));
      expect(application.spec.sources.slice(1).map((s: { repoURL: string }) => s.repoURL)).toEqual([repoURL, repoURL]);
      expect(existsSync(path.join(project, 'dist', 'unset', 'argocd'))).toBe(false);
      expect(existsSync(path.join(project, 'dist', 'plain', 'argocd'))).toBe(false);
    } finally {
      writeFileSync(profiles, original);
      expect(synth(project).status).toBe(0);
    }
  });

  it('runs under the cdk8s CLI too: `cdk8s synth` fills dist/ and its own output folder, with no upgrade check', () => {
    const out = path.join(project, 'cli-out');
    const run = cdk8sCli(project, ['synth', '--output', out], { CDK8S_OUTDIR: out });
    expect(run.status, run.stderr).toBe(0);
    expect(tree(out)).toEqual(tree(path.join(project, 'dist')));
    // Offline, the CLI's check for a newer version prints a stack trace; the project turns it off.
    expect(run.stderr).not.toMatch(/new version|http error|at /);
  });
});
