import { describe, expect, it } from 'vitest';
import { rangesOf } from '../../src/catalog/port-set.ts';
import { wrapPorts } from '../../src/cli/commands/verify.ts';
import { expectations, settleRound, summarise, Verdicts, type Question } from '../../src/verify/probes.ts';
import {
  countKey,
  emptyRecords,
  probeKey,
  readRecords,
  recorderInRuleset,
  recorderPassRuleset,
  type Records,
} from '../../src/verify/recorder.ts';

const PEER = '203.0.113.5';
const HOST = '203.0.113.1';

function inbound(ports: [number, number], expected: [number, number][]): Question {
  return {
    where: { zone: 'ext', direction: 'inbound', family: 4, peer: PEER },
    src: PEER,
    dst: HOST,
    protocol: 'tcp',
    ports: [{ from: ports[0], to: ports[1] }],
    expected: expected.map(([from, to]) => ({ from, to })),
  };
}

/** Records as the kernel would leave them when `arrive` arrived and `pass` passed. */
function records(
  q: Question,
  sport: number,
  arrive: number[],
  pass: number[],
): { arrivals: Records; passes: Records } {
  const arrivals = emptyRecords();
  const passes = emptyRecords();
  const exp = rangesOf(
    q.expected.flatMap((r) => Array.from({ length: r.to - r.from + 1 }, (_, i) => r.from + i)),
  );
  for (const p of arrive) {
    if (exp.some((r) => p >= r.from && p <= r.to))
      arrivals.arrivedExpected.add(probeKey(q.src, q.dst, q.protocol, p));
  }
  arrivals.arrivedCount.set(countKey(q.src, q.dst, q.protocol, sport), arrive.length);
  for (const p of pass) passes.passed.add(probeKey(q.src, q.dst, q.protocol, p));
  return { arrivals, passes };
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('settleRound: verdicts only from what the recorder saw', () => {
  const q = inbound(
    [1, 100],
    [
      [22, 22],
      [80, 80],
    ],
  );

  it('all arrived: passed is pass, the rest is block, no difference when the ruleset matches', () => {
    const v = new Verdicts([q]);
    settleRound(v, {
      sent: v.pending(),
      sport: 61000,
      ...records(q, 61000, range(1, 100), [22, 80]),
      conntrackTrouble: false,
      exact: true,
    });
    expect(v.undecidedCount()).toBe(0);
    expect(summarise(v, 'x')).toEqual({ differences: [], undecided: [] });
  });

  it('a blocked port the policy allows and an open one it does not are differences, as ranges with counts', () => {
    const v = new Verdicts([q]);
    settleRound(v, {
      sent: v.pending(),
      sport: 61000,
      ...records(q, 61000, range(1, 100), [22, 50, 51, 52]),
      conntrackTrouble: false,
      exact: true,
    });
    expect(summarise(v, 'x').differences).toEqual([
      expect.objectContaining({ ports: '80', count: 1, expected: 'pass', observed: 'block' }),
      expect.objectContaining({ ports: '50-52', count: 3, expected: 'block', observed: 'pass' }),
    ]);
  });

  it('a probe that never arrived is neither pass nor block: it is sent again', () => {
    const v = new Verdicts([q]);
    // port 7 (expected block) and 22 (expected pass) never reached the host
    const arrive = range(1, 100).filter((p) => p !== 7 && p !== 22);
    settleRound(v, {
      sent: v.pending(),
      sport: 61000,
      ...records(q, 61000, arrive, [80]),
      conntrackTrouble: false,
      exact: true,
    });
    // 22 is undecided; the block class lost one packet, so none of its ports is decided
    expect(v.pending()).toEqual([
      { src: PEER, dst: HOST, protocol: 'tcp', ports: rangesOf([...range(1, 79), ...range(81, 100)]) },
    ]);
    // the second round, with another source port, brings them all
    settleRound(v, {
      sent: v.pending(),
      sport: 61001,
      ...records(q, 61001, [...range(1, 79), ...range(81, 100)], [22]),
      conntrackTrouble: false,
      exact: true,
    });
    expect(v.undecidedCount()).toBe(0);
    expect(summarise(v, 'x').differences).toEqual([]);
  });

  it('stragglers of an earlier round (another source port) do not complete a later one', () => {
    const v = new Verdicts([q]);
    const first = records(q, 61000, range(1, 99), [22, 80]);
    settleRound(v, { sent: v.pending(), sport: 61000, ...first, conntrackTrouble: false, exact: true });
    const again = v.pending();
    const late = records(q, 61000, range(1, 100), []);
    settleRound(v, { sent: again, sport: 61001, ...late, conntrackTrouble: false, exact: true });
    expect(v.undecidedCount()).toBeGreaterThan(0);
  });

  it('when conntrack dropped packets, nothing counts as blocked', () => {
    const v = new Verdicts([q]);
    settleRound(v, {
      sent: v.pending(),
      sport: 61000,
      ...records(q, 61000, range(1, 100), [22, 80]),
      conntrackTrouble: true,
      exact: true,
    });
    expect(v.undecidedCount()).toBe(98);
    const { undecided } = summarise(v, 'conntrack dropped packets');
    expect(undecided).toEqual([
      expect.objectContaining({ ports: '1-21,23-79,81-100', count: 98, reason: 'conntrack dropped packets' }),
    ]);
  });

  it('a forward is decided by where the probe left the ruleset (after DNAT)', () => {
    const forward: Question = {
      where: { zone: 'ext', direction: 'forward', family: 4, peer: PEER },
      src: PEER,
      dst: HOST,
      protocol: 'tcp',
      ports: [{ from: 8443, to: 8443 }],
      expected: [{ from: 8443, to: 8443 }],
      translated: { dst: '198.51.100.20', port: 8080, label: '8443->198.51.100.20:8080' },
    };
    expect(expectations([forward]).expectPass).toEqual([
      { src: PEER, dst: '198.51.100.20', protocol: 'tcp', from: 8080, to: 8080 },
    ]);
    const v = new Verdicts([forward]);
    const arrivals = emptyRecords();
    arrivals.arrivedExpected.add(probeKey(PEER, HOST, 'tcp', 8443));
    arrivals.arrivedCount.set(countKey(PEER, HOST, 'tcp', 61000), 1);
    const passes = emptyRecords();
    passes.passed.add(probeKey(PEER, '198.51.100.20', 'tcp', 8081)); // DNAT to the wrong port
    settleRound(v, {
      sent: v.pending(),
      sport: 61000,
      arrivals,
      passes,
      conntrackTrouble: false,
      exact: true,
    });
    expect(summarise(v, 'x').differences).toEqual([
      expect.objectContaining({
        direction: 'forward',
        ports: '8443->198.51.100.20:8080',
        expected: 'pass',
        observed: 'block',
      }),
    ]);
  });
});

describe('the recorder', () => {
  it('brackets the ruleset: lowest priority at ingress and output, INT_MAX-1 at input and postrouting', () => {
    const spec = {
      interfaces: ['eth0', 'eth1'],
      expectIn: [{ src: PEER, dst: HOST, protocol: 'tcp' as const, from: 20, to: 21 }],
      expectPass: [],
    };
    const pre = recorderInRuleset(spec);
    expect(pre).toContain('type filter hook ingress device "eth0" priority -2147483648;');
    expect(pre).toContain('type filter hook ingress device "eth1" priority -2147483648;');
    expect(pre).toContain('type filter hook output priority -2147483648;');
    expect(pre).toContain('elements = { 203.0.113.5 . 203.0.113.1 . tcp . 20-21 }');
    const post = recorderPassRuleset(spec);
    expect(post).toContain('type filter hook input priority 2147483646;');
    expect(post).toContain('type filter hook postrouting priority 2147483646;');
    expect(post).toContain('ct original ip saddr . ip daddr . meta l4proto . th dport');
    expect(() => recorderInRuleset({ ...spec, interfaces: ['eth0"; flush ruleset'] })).toThrow(
      /not a kernel interface name/,
    );
  });

  it('reads the sets and counters of an nft -j listing, addresses in canonical form', () => {
    const listing = JSON.stringify({
      nftables: [
        { set: { name: 'inp6', elem: [{ concat: ['2001:db8:0::5', '2001:db8::1', 'tcp', 22] }] } },
        {
          set: {
            name: 'cin4',
            elem: [
              { elem: { val: { concat: [PEER, HOST, 'udp', 61000] }, counter: { packets: 7, bytes: 1 } } },
            ],
          },
        },
        { set: { name: 'un4_3', elem: [{ concat: [PEER, HOST, 6, 3306] }] } },
      ],
    });
    const r = readRecords(listing, emptyRecords());
    expect([...r.arrivedExpected]).toEqual(['2001:db8::5|2001:db8::1|tcp|22']);
    expect([...r.arrivedCount]).toEqual([[`${PEER}|${HOST}|udp|61000`, 7]]);
    expect([...r.passed]).toEqual([`${PEER}|${HOST}|tcp|3306`]);
  });
});

describe('wrapPorts', () => {
  it('breaks a long list at commas, within the width', () => {
    const ports = Array.from({ length: 40 }, (_, i) => `${i * 100}-${i * 100 + 50}`).join(',');
    const lines = wrapPorts(ports, 60, '    ');
    expect(lines.length).toBeGreaterThan(5);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(60);
    expect(lines.map((l) => l.trim()).join('')).toBe(ports);
  });
});
