// The security scanners the field uses, over what users apply: kube-score and checkov read every
// profile's dist/ manifests together with the real chart's render of its values (helm template).
// Every finding must be one of the accepted ones in test/support/scanner-findings.ts, each
// explained in the README (Security scanners); a new finding fails here, and so does an accepted
// one that no longer occurs (the list must not keep excuses for what is fixed).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { PROFILES, PROFILE_NAMES } from '../lib/profiles';
import { renderChart } from './support/chart-render';
import { DIST, ROOT } from './support/dist';
import { ACCEPTED_FINDINGS, Finding, findingKey, isAccepted } from './support/scanner-findings';
import { describeWithTools, runTool } from './support/tools';

/** A job's or ConfigMap's content hash in its name (`-<hash>`, `-<hash>-N`): findings name the object without it. */
const stable = (name: string) => name.replace(/-[0-9a-f]{10}(?=-\d+$|$)/, '-<hash>');

interface KubeScoreObject {
  type_meta: { kind: string };
  object_meta: { name: string };
  checks: { check: { id: string }; grade: number; skipped: boolean; comments: { summary: string }[] | null }[];
}

/** kube-score's findings: every check graded below OK (10) and not skipped. */
function kubeScoreFindings(report: KubeScoreObject[]): Finding[] {
  return report.flatMap((o) => o.checks
    .filter((c) => !c.skipped && c.grade < 10)
    .map((c): Finding => ({ tool: 'kube-score', check: c.check.id, object: `${o.type_meta.kind}/${stable(o.object_meta.name)}` })));
}

interface CheckovReport {
  check_type: string;
  results: { failed_checks: { check_id: string; resource: string }[]; passed_checks: unknown[] };
}

/** checkov's failed checks; its resource is `Kind.namespace.name`. */
function checkovFindings(report: CheckovReport): Finding[] {
  return report.results.failed_checks.map((f): Finding => {
    const [kind, , ...name] = f.resource.split('.');
    return { tool: 'checkov', check: f.check_id, object: `${kind}/${stable(name.join('.'))}` };
  });
}

describeWithTools('security scanners over dist/ and the chart\'s render of every profile', ['helm', 'kube-score', 'checkov'], () => {
  let dir: string;
  const found = new Map<string, Finding[]>();

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'learnflow-scan-'));
    await Promise.all(PROFILE_NAMES.map(async (profile) => {
      const chart = await renderChart(PROFILES[profile], readFileSync(path.join(DIST, profile, 'helm', 'postgresql-values.yaml'), 'utf8'));
      const folder = path.join(dir, profile);
      const files = [path.join(DIST, profile, 'learnflow-postgres.yaml'), path.join(folder, 'chart.yaml')];
      rmSync(folder, { recursive: true, force: true });
      mkdirSync(folder);
      // YAML 1.1, as the Go scanners read it: strings such as 'yes' stay quoted.
      writeFileSync(files[1], chart.map((m) => stringify(m, { version: '1.1' })).join('---\n'));
      writeFileSync(path.join(folder, 'learnflow-postgres.yaml'), readFileSync(files[0], 'utf8'));
      const score = await runTool('kube-score', ['score', '--output-format', 'json', ...files]);
      // Exit 1: findings at CRITICAL; anything else, or no report, is kube-score failing.
      if (![0, 1].includes(score.code) || !score.stdout.trim()) throw new Error(`kube-score exited ${score.code}: ${score.stderr}`);
      const checkov = await runTool('checkov', ['--framework', 'kubernetes', '--directory', folder, '--output', 'json', '--quiet', '--compact'], {
        env: { BC_SKIP_MAPPING: 'TRUE', CHECKOV_RUN_SCA_PACKAGE_SCAN_V2: 'false' },
        timeoutMs: 240_000,
      });
      if (![0, 1].includes(checkov.code) || !checkov.stdout.trim()) throw new Error(`checkov exited ${checkov.code}: ${checkov.stderr}`);
      const parsed = JSON.parse(checkov.stdout) as CheckovReport | CheckovReport[];
      const reports = Array.isArray(parsed) ? parsed : [parsed];
      found.set(profile, [...kubeScoreFindings(JSON.parse(score.stdout)), ...reports.flatMap(checkovFindings)]);
    }));
  }, 300_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.each(PROFILE_NAMES)('finds nothing new in %s', (profile) => {
    const findings = found.get(profile)!;
    expect(findings.length).toBeGreaterThan(0);
    expect(findings.filter((f) => !isAccepted(f)).map(findingKey)).toEqual([]);
  });

  it('keeps no accepted finding that no profile has any more', () => {
    const all = [...found.values()].flat();
    expect(ACCEPTED_FINDINGS.filter((a) => !all.some((f) => isAccepted(f, [a]))).map((a) => `${a.tool} ${a.check} ${a.objects}`)).toEqual([]);
  });

  it('explains every accepted finding in the README', () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### Security scanners'));
    for (const a of ACCEPTED_FINDINGS) expect(section, a.check).toContain(`\`${a.check}\``);
  });
});

describe('scanner findings', () => {
  it('names objects without their content hash', () => {
    expect(stable('postgres-postgresql-migrate-0123456789')).toBe('postgres-postgresql-migrate-<hash>');
    expect(stable('postgres-postgresql-migrations-0123456789-2')).toBe('postgres-postgresql-migrations-<hash>-2');
    expect(stable('postgres-postgresql-dump')).toBe('postgres-postgresql-dump');
  });
});
