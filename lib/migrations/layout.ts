/**
 * Splits the migration files across ConfigMaps. One object may hold 1 MiB, and client-side
 * `kubectl apply` copies the whole object into an annotation limited to 256 KiB; each
 * ConfigMap stays under both with room for metadata. The Job mounts them as one directory.
 */

/** Budget for one ConfigMap's data, measured as the JSON `kubectl apply` stores. */
export const CONFIGMAP_DATA_BUDGET = 200 * 1024;

export class ConfigMapLayoutError extends Error {}

/**
 * Characters that Go's encoding/json (kubectl, in the last-applied annotation) writes as a
 * six-byte `\uXXXX` escape, with the bytes that adds over what JSON.stringify writes: `<`, `>`
 * and `&` (1 byte there), U+2028 and U+2029 (3 bytes, unescaped), `\b` and `\f` (`\b`, `\f`
 * there and since Go 1.22; `\u0008`, `\u000c` before).
 */
const GO_EXTRA_BYTES: Readonly<Record<string, number>> = { '<': 5, '>': 5, '&': 5, '\u2028': 3, '\u2029': 3, '\b': 4, '\f': 4 };
const GO_ESCAPED = /[<>&\u2028\u2029\b\f]/g;

/** Size of an entry in the last-applied-configuration annotation, JSON-encoded as Go does it. */
export function encodedSize(key: string, value: string): number {
  return encodedTextSize(key) + encodedTextSize(value) + 6; // "key":"value",
}

/** Bytes of `text` inside a JSON string as Go encodes it, without the quotes; sizes of concatenated texts add up. */
export function encodedTextSize(text: string): number {
  let size = Buffer.byteLength(JSON.stringify(text)) - 2;
  GO_ESCAPED.lastIndex = 0;
  for (let match = GO_ESCAPED.exec(text); match; match = GO_ESCAPED.exec(text)) size += GO_EXTRA_BYTES[match[0]];
  return size;
}

/**
 * Cuts `text` into consecutive parts whose JSON-encoded sizes ({@link encodedTextSize}) are at
 * most `maxBytes` each, at line ends where a line fits, else between characters (never inside
 * a surrogate pair): joined again, they are `text` byte for byte.
 */
export function splitText(text: string, maxBytes: number): string[] {
  if (maxBytes < 12) throw new RangeError(`splitText: ${maxBytes} bytes per part is too few`);
  const parts: string[] = [];
  let part = '';
  let size = 0;
  const flush = () => {
    if (part !== '') parts.push(part);
    part = '';
    size = 0;
  };
  for (const line of text.split(/(?<=\n)/)) {
    const lineSize = encodedTextSize(line);
    if (size + lineSize <= maxBytes) {
      part += line;
      size += lineSize;
      continue;
    }
    flush();
    if (lineSize <= maxBytes) {
      part = line;
      size = lineSize;
      continue;
    }
    // A line too long for a part: pieces of maxBytes / 6 code units always fit (no code unit
    // encodes to more than six bytes), packed like lines.
    const step = Math.floor(maxBytes / 6);
    for (let at = 0; at < line.length;) {
      let end = Math.min(at + step, line.length);
      if (end < line.length && /[\ud800-\udbff]/.test(line[end - 1])) end--;
      const piece = line.slice(at, end);
      const pieceSize = encodedTextSize(piece);
      if (size + pieceSize > maxBytes) flush();
      part += piece;
      size += pieceSize;
      at = end;
    }
  }
  flush();
  return parts;
}

export interface ConfigMapLayoutOptions {
  /** Most bytes of data per ConfigMap, measured by {@link encodedSize}. @default CONFIGMAP_DATA_BUDGET */
  readonly budget?: number;
  /** How an error names an entry, e.g. its source file. @default the key */
  readonly describe?: (key: string) => string;
}

/**
 * Groups entries in the given order into as few ConfigMaps as fit the budget, keeping order
 * stable so that adding a migration changes only the last group's content. An entry is never
 * split: one larger than the budget fails, with every such entry named.
 */
export function splitIntoConfigMaps(entries: readonly (readonly [string, string])[], options: ConfigMapLayoutOptions = {}): Record<string, string>[] {
  const budget = options.budget ?? CONFIGMAP_DATA_BUDGET;
  const describe = options.describe ?? ((key: string) => key);
  const groups: Record<string, string>[] = [];
  const tooLarge: string[] = [];
  let current: Record<string, string> = {};
  let size = 0;
  for (const [key, value] of entries) {
    const entrySize = encodedSize(key, value);
    if (entrySize > budget) {
      tooLarge.push(`${describe(key)}: ${entrySize} bytes once JSON-encoded as kubectl apply stores it, more than one ConfigMap may carry ` +
        `(${budget} bytes, under client-side kubectl apply's 256 KiB annotation limit); larger migration files are carried in parts (bundle.ts)`);
      continue;
    }
    if (size + entrySize > budget && size > 0) {
      groups.push(current);
      current = {};
      size = 0;
    }
    current[key] = value;
    size += entrySize;
  }
  if (tooLarge.length > 0) throw new ConfigMapLayoutError(tooLarge.join('\n'));
  if (size > 0) groups.push(current);
  return groups;
}
