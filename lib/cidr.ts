/**
 * IPv4 and IPv6 networks as NetworkPolicies compare them: which address lies in which range,
 * which range lies inside another. Kubernetes accepts an `except` entry only inside its `cidr`.
 */

export interface Network {
  readonly family: 4 | 6;
  /** The address as a number (128 bits for IPv6). */
  readonly address: bigint;
  readonly prefix: number;
}

const BITS = { 4: 32, 6: 128 } as const;

/** The number of an IPv4 or IPv6 address (IPv6 in hexadecimal groups, `::` allowed), or undefined. */
export function parseAddress(text: string): { family: 4 | 6; address: bigint } | undefined {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4) {
    const octets = v4.slice(1, 5).map(Number);
    if (octets.some((o, i) => o > 255 || (v4[i + 1].length > 1 && v4[i + 1].startsWith('0')))) return undefined;
    return { family: 4, address: octets.reduce((n, o) => (n << 8n) | BigInt(o), 0n) };
  }
  if (!/^[0-9a-f:]+$/i.test(text) || text.split('::').length > 2) return undefined;
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const missing = 8 - left.length - right.length;
  if (tail === undefined ? missing !== 0 : missing < 1) return undefined;
  const all = [...left, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...right];
  if (all.some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) return undefined;
  return { family: 6, address: all.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n) };
}

/** `a.b.c.d/n` or `x:y::/n` as a network, or undefined when it is not one. */
export function parseCidr(text: string): Network | undefined {
  const match = /^([^/]+)\/(\d{1,3})$/.exec(text);
  const parsed = match ? parseAddress(match[1]) : undefined;
  if (!match || !parsed) return undefined;
  const prefix = Number(match[2]);
  return prefix <= BITS[parsed.family] ? { ...parsed, prefix } : undefined;
}

/** The mask of the network's prefix. */
const mask = (family: 4 | 6, prefix: number): bigint => {
  const bits = BITS[family];
  return ((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - prefix)) - 1n);
};

/** True when no address bit past the prefix is set (`10.0.0.0/8`, not `10.1.2.3/8`). */
export function isCanonical(network: Network): boolean {
  return (network.address & ~mask(network.family, network.prefix)) === 0n;
}

/** The network with the bits past its prefix cleared, as text: `10.1.2.3/8` → `10.0.0.0/8`. */
export function canonicalCidr(network: Network): string {
  return formatCidr({ ...network, address: network.address & mask(network.family, network.prefix) });
}

/** True when `inner` lies within `outer` (equal counts). */
export function contains(outer: Network, inner: Network): boolean {
  return outer.family === inner.family && inner.prefix >= outer.prefix
    && (inner.address & mask(outer.family, outer.prefix)) === (outer.address & mask(outer.family, outer.prefix));
}

/** True when `address` lies within `network`. */
export function containsAddress(network: Network, address: { family: 4 | 6; address: bigint }): boolean {
  return contains(network, { ...address, prefix: BITS[address.family] });
}

/** The network as text, IPv6 in full lowercase groups with the longest run of zero groups as `::`. */
export function formatCidr(network: Network): string {
  return `${formatAddress(network)}/${network.prefix}`;
}

export function formatAddress({ family, address }: { family: 4 | 6; address: bigint }): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((address >> s) & 255n)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => Number((address >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = { at: -1, length: 1 };
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.length) best = { at: i, length: j - i };
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.at < 0) return hex.join(':');
  return `${hex.slice(0, best.at).join(':')}::${hex.slice(best.at + best.length).join(':')}`;
}

/** The address `offset` places into `network` (0: the network's own address). */
export function addressIn(network: Network, offset: bigint): { family: 4 | 6; address: bigint } {
  return { family: network.family, address: (network.address & mask(network.family, network.prefix)) + offset };
}
