import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readVendored } from '../lib/vendored';
import { ROOT } from './support/dist';

/** Shannon entropy in bits per character. */
function entropy(s: string): number {
  const counts = new Map<string, number>();
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
  return [...counts.values()].reduce((h, n) => h - (n / s.length) * Math.log2(n / s.length), 0);
}

/** What looks like a credential in a text: each finding as `line N: reason`. */
/** Placeholders that document a credential's place, lowercase names and `Kind/name` references (Kubernetes objects, keys): not credentials. */
const PLACEHOLDER = /^(<[^>]*>|\$\{?[A-Za-z_]+\}?|\$\(.*\)?|%s|\*+|[a-z][a-z0-9_.-]*|[A-Z][A-Za-z]*\/[a-z0-9.-]+|\$\{[^}]+\})$/;

/** What looks like a credential in a file's text: each finding as `line N: reason`. */
export function findSecrets(text: string, yamlFile = false): string[] {
  const findings: string[] = [];
  text.split('\n').forEach((line, i) => {
    const where = `line ${i + 1}`;
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(line)) findings.push(`${where}: private key`);
    const uri = /\b[a-z][a-z0-9+.-]*:\/\/([^\s:/@'"]+):([^\s@/'"]+)@/i.exec(line);
    if (uri && !PLACEHOLDER.test(uri[2])) findings.push(`${where}: password in a URI`);
    // A quoted literal assigned to a credential-like name, or a YAML scalar under such a key.
    const quoted = /\b(password|passwd|secret|token|api[_-]?key)\w*["']?\s*[:=]\s*["']([^"']{8,})["']/i.exec(line);
    const scalar = yamlFile ? /^\s*-?\s*[\w.-]*?(password|passwd|secret|token|api[_-]?key)\w*:\s+([^\s#{}\[\]"']{8,})\s*$/i.exec(line) : null;
    for (const match of [quoted, scalar]) {
      if (match && !PLACEHOLDER.test(match[2]) && entropy(match[2]) > 3) findings.push(`${where}: literal value for ${match[1]}`);
    }
    // Hex digests (entropy <= 4) and npm integrity hashes are not secrets; long random mixed-case text is suspect.
    for (const token of line.match(/[A-Za-z0-9+/_-]{32,}={0,2}/g) ?? []) {
      if (/^sha(256|384|512)-/.test(token) || /^[0-9a-f]+$/.test(token)) continue;
      if (entropy(token) > 4.6 && /[0-9]/.test(token) && /[a-z]/.test(token) && /[A-Z]/.test(token)) findings.push(`${where}: high-entropy string ${token.slice(0, 6)}…`);
    }
  });
  return findings;
}

/** Third-party files pinned by sha256 in vendored.json (test/vendored.test.ts): upstream's text, not ours to scan. */
const vendored = (() => {
  const { files, charts } = readVendored(ROOT);
  const exact = new Set([...files.map((f) => f.path), ...charts.map((c) => c.archive)]);
  const folders = charts.map((c) => `${c.directory}/`);
  return (f: string) => exact.has(f) || folders.some((d) => f.startsWith(d));
})();

/** imports/ is `cdk8s import`'s output for the vendored CRDs (test/imports.test.ts regenerates and compares it): long generated type names, no values. */
const generated = (f: string) => f.startsWith('imports/');

const trackedFiles = () => execFileSync('git', ['ls-files', '-co', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' })
  .split('\n').filter((f) => f && f !== 'package-lock.json' && !f.startsWith('node_modules/') && !vendored(f) && !generated(f));

describe('no secret in the repository or dist/', () => {
  it('finds none in any tracked or new file, dist/ included', () => {
    const files = trackedFiles();
    expect(files.some((f) => f.startsWith('dist/'))).toBe(true);
    const findings = files.flatMap((f) => {
      let text: string;
      try { text = readFileSync(path.join(ROOT, f), 'utf8'); } catch { return []; }
      return findSecrets(text, /\.ya?ml$/.test(f)).map((finding) => `${f} ${finding}`);
    });
    expect(findings).toEqual([]);
  });

  it('would catch a password, a credential URI, a private key and a random token', () => {
    // Fixtures are assembled at run time so that this file itself holds nothing to find.
    // 40 distinct letters and digits: as random-looking as a generated password can be.
    const range = (from: string, n: number) => Array.from({ length: n }, (_, i) => String.fromCharCode(from.charCodeAt(0) + i));
    const alphanumeric = [...range('A', 26), ...range('a', 26), ...range('0', 10)];
    const random = Array.from({ length: 40 }, (_, i) => alphanumeric[(i * 7) % alphanumeric.length]).join('');
    expect(findSecrets(`postgres-password: ${random}`, true)).toContain('line 1: literal value for password');
    expect(findSecrets(`const password = "${random}";`)).toContain('line 1: literal value for password');
    expect(findSecrets(`uri: postgresql://learnflow:${random}@db:5432/learnflow`)).toContain('line 1: password in a URI');
    expect(findSecrets(['-----BEGIN RSA', 'PRIVATE KEY-----'].join(' '))).toEqual(['line 1: private key']);
    expect(findSecrets(`x: ${random}`)).toEqual([`line 1: high-entropy string ${random.slice(0, 6)}…`]);
    // What the repository legitimately holds stays quiet.
    expect(findSecrets('checksum: 3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea')).toEqual([]);
    expect(findSecrets('postgresql://<user>:<password>@host:5432/db')).toEqual([]);
  });
});
