/**
 * Orders migration versions (digit strings, as files.ts accepts them) by their numeric value:
 * leading zeros aside, the longer number is the larger, and equal lengths compare as text.
 * Exact for any length, and cheaper than BigInt in a sort over thousands of migrations.
 */
export function compareVersions(a: string, b: string): number {
  const x = a.replace(LEADING_ZEROS, '');
  const y = b.replace(LEADING_ZEROS, '');
  return x.length - y.length || (x < y ? -1 : x > y ? 1 : 0);
}

const LEADING_ZEROS = /^0+/;
