import { describe, expect, it } from 'vitest';
import { addressIn, canonicalCidr, contains, containsAddress, formatAddress, formatCidr, isCanonical, parseAddress, parseCidr } from '../lib/cidr';

describe('networks (lib/cidr.ts)', () => {
  it('reads IPv4 and IPv6 networks and refuses what is not one', () => {
    expect(formatCidr(parseCidr('10.20.0.0/16')!)).toBe('10.20.0.0/16');
    expect(formatCidr(parseCidr('FD00:10:244::/56')!)).toBe('fd00:10:244::/56');
    expect(formatCidr(parseCidr('2001:db8:0:0:1:0:0:1/128')!)).toBe('2001:db8::1:0:0:1/128');
    for (const bad of ['10.0.0.0/33', '10.0.0/8', '256.0.0.0/8', '010.0.0.0/8', 'fd00::/129', '1::2::3/64', '::ffff:10.0.0.0/104', '1:2:3:4:5:6:7:8:9/64', 'x/8']) {
      expect(parseCidr(bad), bad).toBeUndefined();
    }
    expect(parseAddress('::')).toEqual({ family: 6, address: 0n });
  });

  it('knows which network lies inside which, and where an address falls', () => {
    const net = (c: string) => parseCidr(c)!;
    expect(contains(net('10.0.0.0/8'), net('10.244.0.0/16'))).toBe(true);
    expect(contains(net('10.244.0.0/16'), net('10.0.0.0/8'))).toBe(false);
    expect(contains(net('10.0.0.0/8'), net('10.0.0.0/8'))).toBe(true);
    expect(contains(net('fd00::/8'), net('fd00:10:244::/56'))).toBe(true);
    expect(contains(net('0.0.0.0/0'), net('fd00::/8'))).toBe(false);
    expect(containsAddress(net('10.20.0.0/18'), parseAddress('10.20.63.255')!)).toBe(true);
    expect(containsAddress(net('10.20.0.0/18'), parseAddress('10.20.64.0')!)).toBe(false);
    expect(formatAddress(addressIn(net('fd00:10:244::/56'), 200n))).toBe('fd00:10:244::c8');
  });

  it('tells a network from an address with a prefix', () => {
    expect(isCanonical(parseCidr('10.0.0.0/8')!)).toBe(true);
    expect(isCanonical(parseCidr('10.1.2.3/8')!)).toBe(false);
    expect(canonicalCidr(parseCidr('10.1.2.3/8')!)).toBe('10.0.0.0/8');
    expect(canonicalCidr(parseCidr('fd00::1/64')!)).toBe('fd00::/64');
  });
});
