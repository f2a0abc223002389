import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  countTarget,
  expandSpec,
  parseTarget,
  parseTargetList,
  specContains,
  streamTargets,
} from '../../src/scan/targets.ts';
import { CongestionWindow, RateLimiter, RttEstimator } from '../../src/scan/timing.ts';

const take = <T>(it: Iterable<T>, n: number): T[] => {
  const out: T[] = [];
  for (const x of it) {
    if (out.length >= n) break;
    out.push(x);
  }
  return out;
};

describe('parseTarget', () => {
  it.each([
    ['198.51.100.7', 1n, ['198.51.100.7']],
    ['198.51.100.0/30', 4n, ['198.51.100.0', '198.51.100.1', '198.51.100.2', '198.51.100.3']],
    ['198.51.100.9/30', 4n, ['198.51.100.8', '198.51.100.9', '198.51.100.10', '198.51.100.11']],
    ['198.51.100.1-3', 3n, ['198.51.100.1', '198.51.100.2', '198.51.100.3']],
    ['198.51.100-101.1-2', 4n, ['198.51.100.1', '198.51.100.2', '198.51.101.1', '198.51.101.2']],
    ['198.51.100.*', 256n, ['198.51.100.0', '198.51.100.1']],
    ['2001:db8::1', 1n, ['2001:db8::1']],
    ['2001:db8::/126', 4n, ['2001:db8::', '2001:db8::1', '2001:db8::2', '2001:db8::3']],
    ['localhost', 1n, []],
  ] as const)('%s covers %s addresses', (text, count, first) => {
    const spec = parseTarget(text);
    expect(countTarget(spec)).toBe(count);
    expect(take(expandSpec(spec), first.length)).toEqual(first);
  });

  it('streams a /8 and a /64 without materialising them', () => {
    expect(countTarget(parseTarget('10.0.0.0/8'))).toBe(16_777_216n);
    expect(countTarget(parseTarget('2001:db8::/64'))).toBe(2n ** 64n);
    expect(take(expandSpec(parseTarget('2001:db8::/64')), 2)).toEqual(['2001:db8::', '2001:db8::1']);
  });

  it.each([
    ['', /it is empty/],
    ['198.51.100.0/33', /prefix \/33 is longer than 32 bits/],
    ['198.51.100.300', /not a valid IPv4 address/],
    ['198.51.100.5-2', /bad octet range "5-2"/],
    ['bad_host!', /not an address/],
    ['fe80::1%eth0', /scoped/],
    ['example.com/24', /hostname\/prefix/],
  ])('rejects %j', (text, message) => {
    expect(() => parseTarget(text)).toThrow(message);
  });

  it('never crashes: any string parses or throws a TARGET_INVALID error', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        try {
          parseTarget(text);
        } catch (error) {
          expect((error as { code?: string }).code).toBe('TARGET_INVALID');
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('exclusions and target lists', () => {
    expect(specContains(parseTarget('198.51.100.0/24'), '198.51.100.77')).toBe(true);
    expect(specContains(parseTarget('198.51.100.1-10'), '198.51.100.11')).toBe(false);
    expect(
      parseTargetList('# hosts\n198.51.100.1 198.51.100.2\n\n2001:db8::1, 203.0.113.0/30 # lab\n'),
    ).toEqual(['198.51.100.1', '198.51.100.2', '2001:db8::1', '203.0.113.0/30']);
  });

  it('streamTargets resolves names (first address, or all) and skips exclusions', async () => {
    const resolve = () => Promise.resolve(['203.0.113.5', '2001:db8::5']);
    const collect = async (options: { resolveAll?: boolean }) => {
      const out: string[] = [];
      for await (const t of streamTargets([parseTarget('198.51.100.0/30'), parseTarget('web.example')], {
        exclude: [parseTarget('198.51.100.1-2')],
        resolve,
        ...options,
      })) {
        out.push(`${t.address}${t.hostname ? `=${t.hostname}` : ''}`);
      }
      return out;
    };
    expect(await collect({})).toEqual(['198.51.100.0', '198.51.100.3', '203.0.113.5=web.example']);
    expect(await collect({ resolveAll: true })).toContain('2001:db8::5=web.example');
  });
});

describe('timing', () => {
  const template = { initialTimeoutMs: 1000, minTimeoutMs: 100, maxTimeoutMs: 10_000 };
  it('RTT estimator follows RFC 6298 and clamps the timeout', () => {
    const rtt = new RttEstimator(template);
    expect(rtt.timeout()).toBe(1000);
    rtt.sample(40);
    expect(rtt.smoothed).toBe(40);
    expect(rtt.timeout()).toBe(120); // 40 + 4 * 20
    rtt.sample(80);
    expect(rtt.smoothed).toBe(45); // 0.875*40 + 0.125*80
    expect(rtt.variance).toBe(25); // 0.75*20 + 0.25*40
    const fast = new RttEstimator(template);
    fast.sample(0.1);
    expect(fast.timeout()).toBe(100);
  });

  it('congestion window: slow start, linear growth, halving on loss, bounded', () => {
    const cwnd = new CongestionWindow(4, 64);
    for (let i = 0; i < 100; i++) cwnd.onAnswer();
    expect(cwnd.size).toBe(64);
    cwnd.onLoss();
    expect(cwnd.size).toBe(32);
    cwnd.onAnswer();
    expect(cwnd.size).toBe(32); // above the threshold: +1/window per answer
    for (let i = 0; i < 10; i++) cwnd.onLoss();
    expect(cwnd.size).toBe(1);
  });

  it('rate limiter spaces probes', () => {
    const limiter = new RateLimiter(10);
    expect(limiter.delay(0)).toBe(0);
    expect(limiter.delay(0)).toBe(100);
    expect(limiter.delay(50)).toBe(150);
    expect(new RateLimiter(0).delay(0)).toBe(0);
  });
});
