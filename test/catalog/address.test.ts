import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  addressInside,
  cidrBounds,
  cidrContains,
  cidrCovers,
  cidrsOverlap,
  formatAddress,
  parseAddress,
  parseCidr,
} from '../../src/catalog/address.ts';

describe('address model (catalog/address.ts)', () => {
  it.each([
    ['198.51.100.7/24', { family: 4, address: '198.51.100.0', prefix: 24, text: '198.51.100.0/24' }],
    ['203.0.113.5', { family: 4, address: '203.0.113.5', prefix: 32, text: '203.0.113.5' }],
    ['2001:db8::1/32', { family: 6, address: '2001:db8::', prefix: 32, text: '2001:db8::/32' }],
    [' 2001:DB8:0:0::5 ', { family: 6, address: '2001:db8::5', prefix: 128, text: '2001:db8::5' }],
    ['0.0.0.0/0', { family: 4, address: '0.0.0.0', prefix: 0, text: '0.0.0.0/0' }],
  ])('parseCidr(%j) is canonical', (text, parsed) => {
    expect(parseCidr(text)).toEqual(parsed);
  });

  it.each(['198.51.100.0/33', '2001:db8::/129', 'example.org', '135', '1.2.3.4/x', '1.2.3.4/24/8', ''])(
    'parseCidr(%j) throws',
    (text) => {
      expect(() => parseCidr(text)).toThrow(/not an address or CIDR block/);
    },
  );

  it('containment: inside, at both ends, outside, and never across families', () => {
    const net = parseCidr('198.51.100.0/24');
    expect(cidrContains(net, '198.51.100.0')).toBe(true);
    expect(cidrContains(net, '198.51.100.255')).toBe(true);
    expect(cidrContains(net, '198.51.101.0')).toBe(false);
    expect(cidrContains(net, '::ffff:198.51.100.1')).toBe(false);
    expect(cidrContains(parseCidr('::/0'), '198.51.100.1')).toBe(false);
    expect(cidrContains(net, 'not an address')).toBe(false);
  });

  it('blocks cover and overlap by their bounds', () => {
    const wide = parseCidr('2001:db8::/32');
    const narrow = parseCidr('2001:db8:5::/48');
    expect(cidrCovers(wide, narrow)).toBe(true);
    expect(cidrCovers(narrow, wide)).toBe(false);
    expect(cidrsOverlap(narrow, wide)).toBe(true);
    expect(cidrsOverlap(parseCidr('198.51.100.0/25'), parseCidr('198.51.100.128/25'))).toBe(false);
    expect(cidrsOverlap(parseCidr('0.0.0.0/0'), parseCidr('::/0'))).toBe(false);
  });

  it('bounds are computed once per CIDR object', () => {
    const net = parseCidr('203.0.113.0/26');
    expect(cidrBounds(net)).toBe(cidrBounds(net));
    expect(cidrBounds(net)).toMatchObject({ family: 4, first: 0xcb007100n, last: 0xcb00713fn });
  });

  it('addressInside counts from the network address', () => {
    expect(addressInside(parseCidr('203.0.113.64/26'), 5)).toBe('203.0.113.69');
    expect(addressInside(parseCidr('2001:db8:1::/64'), 1)).toBe('2001:db8:1::1');
  });

  it('the fast parser and ipaddr agree, and formatting round-trips', () => {
    expect(parseAddress('::ffff:192.0.2.1')).toEqual({ family: 6, value: 0xffffc0000201n });
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (text) => {
        const parsed = parseAddress(text);
        expect(parsed).not.toBeNull();
        if (!parsed) return;
        const again = parseAddress(formatAddress(parsed.family, parsed.value));
        expect(again).toEqual(parsed);
      }),
    );
  });

  it('every address is in each of its own prefixes', () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.integer({ min: 0, max: 32 }), (address, prefix) => {
        expect(cidrContains(parseCidr(`${address}/${prefix}`), address)).toBe(true);
      }),
    );
  });
});
