// How the migration files are spread over ConfigMaps, measured the way client-side kubectl
// apply stores them: Go's encoding/json in the last-applied-configuration annotation.
import { describe, expect, it } from 'vitest';
import { CONFIGMAP_DATA_BUDGET, ConfigMapLayoutError, encodedSize, splitIntoConfigMaps } from '../../lib/migrations/layout';

/**
 * The bytes Go's json.Marshal (HTML escaping on, as kubectl uses it; Go before 1.22) writes for
 * `"key":"value",`, built character by character from the same rules.
 */
function goEncodedSize(key: string, value: string): number {
  const go = (text: string) =>
    `"${[...text].map((c) => (/[<>&\u2028\u2029\b\f]/.test(c) ? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}` : JSON.stringify(c).slice(1, -1))).join('')}"`;
  return Buffer.byteLength(`${go(key)}:${go(value)},`);
}

describe('encodedSize', () => {
  it('counts plain SQL as JSON.stringify writes it', () => {
    const sql = "CREATE TABLE users (\n\tid integer, name text DEFAULT 'a \"b\" \\\\ c'\n);\n";
    expect(encodedSize('001_users.up.sql', sql)).toBe(Buffer.byteLength(`${JSON.stringify('001_users.up.sql')}:${JSON.stringify(sql)},`));
  });

  it('counts <, > and & as the six-byte \\u escapes kubectl writes', () => {
    const html = "INSERT INTO pages VALUES ('<p>Fish & chips</p>');\n";
    expect(encodedSize('001_pages.up.sql', html)).toBe(goEncodedSize('001_pages.up.sql', html));
    expect(encodedSize('k', '<>&')).toBe(encodedSize('k', 'abc') + 3 * 5);
  });

  it('counts U+2028, U+2029, backspace and form feed as six bytes each, and multi-byte text by its UTF-8 bytes', () => {
    const text = 'line\u2028separator\u2029paragraph\b\f café ✓ 😀';
    expect(encodedSize('k', text)).toBe(goEncodedSize('k', text));
  });

  it('keeps a file full of HTML under the annotation limit once split', () => {
    // 60,000 '<' are 60 KB on disk and in JSON.stringify, but 360 KB in the annotation.
    const html = '<'.repeat(60_000);
    expect(encodedSize('f', html)).toBeGreaterThan(CONFIGMAP_DATA_BUDGET);
    expect(() => splitIntoConfigMaps([['001_html.up.sql', html]])).toThrow(ConfigMapLayoutError);
  });
});

describe('splitIntoConfigMaps', () => {
  it('fills ConfigMaps in order, each within the budget', () => {
    const entries: [string, string][] = Array.from({ length: 10 }, (_, i) => [`${i}.sql`, 'x'.repeat(300)]);
    const groups = splitIntoConfigMaps(entries, { budget: 1000 });
    expect(groups.map((g) => Object.keys(g))).toEqual([['0.sql', '1.sql', '2.sql'], ['3.sql', '4.sql', '5.sql'], ['6.sql', '7.sql', '8.sql'], ['9.sql']]);
    for (const group of groups) {
      expect(Object.entries(group).reduce((sum, [k, v]) => sum + encodedSize(k, v), 0)).toBeLessThanOrEqual(1000);
    }
  });

  it('names every entry too large for one ConfigMap, by its source (the bundle never hands it one: it splits large files first)', () => {
    const entries: [string, string][] = [['001_a.up.sql', 'x'.repeat(2000)], ['002_b.up.sql', 'ok'], ['003_c.down.sql', '&'.repeat(200)]];
    const sources: Record<string, string> = { '001_a.up.sql': 'migrations/001_a/up.sql', '003_c.down.sql': 'migrations/003_c.down.sql' };
    let error: unknown;
    try {
      splitIntoConfigMaps(entries, { budget: 1000, describe: (key) => sources[key] ?? key });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigMapLayoutError);
    const lines = (error as Error).message.split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^migrations\/001_a\/up\.sql: 2\d{3} bytes once JSON-encoded as kubectl apply stores it, more than one ConfigMap may carry \(1000 bytes/);
    expect(lines[0]).toContain('larger migration files are carried in parts');
    expect(lines[1]).toMatch(/^migrations\/003_c\.down\.sql: 12\d\d bytes/);
  });
});
