import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { computeExposure } from '../../src/audit/exposure.ts';
import { evaluateInbound, evaluateOutbound, xtMatch, type Packet } from '../../src/ruleset/path.ts';
import { findDnatRules } from '../../src/audit/published.ts';
import { summarizeRuleset } from '../../src/ruleset/summarise.ts';
import { parseIptablesSave, parseNftJson } from '../../src/ruleset/parse.ts';
import { makeSocket } from '../helpers/socket.ts';

const fixture = (name: string) =>
  parseNftJson(readFileSync(new URL(`../fixtures/rulesets/${name}`, import.meta.url), 'utf8'));

const tcp = (over: Partial<Packet>): Packet => ({
  family: 4,
  protocol: 'tcp',
  saddr: '203.0.113.77',
  daddr: '198.51.100.1',
  sport: 40000,
  dport: 22,
  iifname: 'eth0',
  daddrLocal: true,
  ...over,
});

describe('evaluateInbound on the compiled dual-homed policy (captured nft -j output)', () => {
  const ruleset = fixture('dual-homed.json');
  it.each([
    ['external tcp/80 from anywhere', tcp({ dport: 80 }), 'accept'],
    ['external tcp/21 from anywhere', tcp({ dport: 21 }), 'accept'],
    ['external tcp/22 from anywhere', tcp({ dport: 22 }), 'drop'],
    ['external udp/137', tcp({ protocol: 'udp', dport: 137 }), 'drop'],
    [
      'internal netbios from the LAN',
      tcp({ protocol: 'udp', dport: 137, iifname: 'eth1', saddr: '198.51.100.50' }),
      'accept',
    ],
    [
      'internal netbios from outside the LAN',
      tcp({ protocol: 'udp', dport: 137, iifname: 'eth1', saddr: '192.0.2.9' }),
      'drop',
    ],
    ['internal ssh from the admin host', tcp({ iifname: 'eth1', saddr: '198.51.100.10' }), 'accept'],
    ['internal ssh from another LAN host', tcp({ iifname: 'eth1', saddr: '198.51.100.11' }), 'drop'],
    [
      'internal ssh from the admin host over IPv6',
      tcp({ family: 6, iifname: 'eth1', saddr: '2001:db8:100::10', daddr: '2001:db8:100::1' }),
      'accept',
    ],
    ['an unknown interface', tcp({ dport: 80, iifname: 'eth9' }), 'drop'],
  ] as const)('%s: %s', (_name, packet, verdict) => {
    expect(evaluateInbound(ruleset, packet).verdict).toBe(verdict);
  });

  it('names the deciding rule', () => {
    const decision = evaluateInbound(ruleset, tcp({ dport: 443 }));
    expect(decision).toMatchObject({ verdict: 'accept', reasons: [] });
    const drop = evaluateInbound(ruleset, tcp({ dport: 3306 }));
    expect(drop).toMatchObject({
      verdict: 'drop',
      table: 'inet portwarden',
      chain: 'input',
      handle: null,
      comment: 'policy drop',
    });
  });

  it('filters egress: only the allowed ports to the allowed destinations', () => {
    const out = (over: Partial<Packet>) =>
      evaluateOutbound(
        ruleset,
        tcp({ saddr: '198.51.100.1', daddrLocal: false, iifname: undefined, ...over }),
      ).verdict;
    expect(out({ oifname: 'eth1', daddr: '203.0.113.53', dport: 53, protocol: 'udp' })).toBe('accept');
    expect(out({ oifname: 'eth1', daddr: '192.0.2.53', dport: 53, protocol: 'udp' })).toBe('drop');
    expect(out({ oifname: 'eth0', daddr: '203.0.113.9', dport: 443 })).toBe('drop');
  });

  it('summarises who wrote the ruleset', () => {
    expect(summarizeRuleset(ruleset)).toMatchObject({
      loaded: true,
      inputDefaultAccept: false,
      tools: ['portwarden'],
    });
  });
});

describe('rules written by iptables-nft', () => {
  const text = (name: string) =>
    readFileSync(new URL(`../fixtures/rulesets/${name}`, import.meta.url), 'utf8');
  const bare = parseNftJson(text('iptables-nft.json'));
  const withSave = parseNftJson(
    text('iptables-nft.json'),
    parseIptablesSave(text('iptables-nft.save'), 'ip'),
  );

  it('without iptables-save, an xt match that may decide makes the answer unknown, naming it', () => {
    const decision = evaluateInbound(bare, tcp({ dport: 5432 }));
    expect(decision.verdict).toBe('unknown');
    expect(decision.reasons.join()).toMatch(/iptables extension match conntrack/);
  });

  it.each([
    [tcp({ dport: 22 }), 'accept'],
    [tcp({ dport: 5432 }), 'drop'],
    [tcp({ dport: 5432, saddr: '198.51.100.7' }), 'accept'],
    [tcp({ dport: 443 }), 'accept'],
    [tcp({ dport: 25 }), 'drop'],
    [tcp({ protocol: 'udp', dport: 80 }), 'drop'],
  ] as const)(
    'with iptables-save text, xt conntrack and multiport are exact: %j -> %s',
    (packet, verdict) => {
      const decision = evaluateInbound(withSave, packet);
      expect(decision.verdict).toBe(verdict);
      expect(decision.reasons).toEqual([]);
    },
  );

  it('pairs save lines with nft rules by position', () => {
    expect(withSave.chains[0]?.rules.map((r) => r.iptables)).toEqual([
      '-i lo -j ACCEPT',
      '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-p tcp -m tcp --dport 22 -j ACCEPT',
      '-s 198.51.100.0/24 -p tcp -m tcp --dport 5432 -j ACCEPT',
      '-p tcp -m multiport --dports 80,443 -j ACCEPT',
    ]);
  });

  it.each([
    ['conntrack', '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT', false],
    ['conntrack', '-m conntrack --ctstate NEW -j ACCEPT', true],
    ['conntrack', '-m conntrack ! --ctstate NEW -j DROP', false],
    ['state', '-m state --state NEW,ESTABLISHED -j ACCEPT', true],
    ['multiport', '-p tcp -m multiport --dports 20:25,80 -j ACCEPT', true],
    ['multiport', '-p tcp -m multiport ! --dports 22 -j DROP', true],
    ['addrtype', '-m addrtype --dst-type LOCAL -j DOCKER', true],
    ['comment', '-m comment --comment "x" -j ACCEPT', true],
    // A source never seen has no entry in the recent list.
    ['recent', '-m recent --name ssh --rcheck', false],
    ['recent', '-m recent --name ssh --set', true],
  ] as const)('xtMatch %s: %s -> %s', (name, text, result) => {
    expect(xtMatch(name, text, tcp({ dport: 23 }))).toBe(result);
  });
});

describe('hand-written rulesets', () => {
  const ruleset = (objects: unknown[]) => parseNftJson(JSON.stringify({ nftables: objects }));
  const chain = (name: string, extra: Record<string, unknown>) => ({
    chain: { family: 'inet', table: 't', name, handle: 1, ...extra },
  });
  const rule = (chainName: string, expr: unknown[]) => ({
    rule: { family: 'inet', table: 't', chain: chainName, handle: 9, expr },
  });
  const base = { type: 'filter', hook: 'input', prio: 0, policy: 'drop' };

  it('an accept in one base chain does not bypass a drop in a later one', () => {
    const rs = ruleset([
      chain('a', { ...base, policy: 'accept' }),
      rule('a', [{ accept: null }]),
      {
        chain: {
          family: 'ip',
          table: 'u',
          name: 'b',
          handle: 1,
          type: 'filter',
          hook: 'input',
          prio: 10,
          policy: 'drop',
        },
      },
    ]);
    expect(evaluateInbound(rs, tcp({})).verdict).toBe('drop');
    expect(evaluateInbound(rs, tcp({ family: 6, saddr: '2001:db8::9', daddr: '2001:db8::1' })).verdict).toBe(
      'accept',
    );
  });

  it('follows jumps, returns, vmaps and named interval sets', () => {
    const rs = ruleset([
      {
        set: {
          family: 'inet',
          table: 't',
          name: 'ports',
          type: 'inet_service',
          flags: ['interval'],
          elem: [22, { range: [8000, 8100] }],
        },
      },
      chain('in', base),
      chain('zone', {}),
      rule('in', [
        {
          vmap: {
            key: { meta: { key: 'iifname' } },
            data: { set: [['eth0', { jump: { target: 'zone' } }]] },
          },
        },
      ]),
      rule('zone', [
        {
          match: {
            op: '!=',
            left: { payload: { protocol: 'ip', field: 'saddr' } },
            right: { prefix: { addr: '198.51.100.0', len: 24 } },
          },
        },
        { return: null },
      ]),
      rule('zone', [
        { match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: '@ports' } },
        { accept: null },
      ]),
    ]);
    expect(evaluateInbound(rs, tcp({ saddr: '198.51.100.5', dport: 8050 })).verdict).toBe('accept');
    expect(evaluateInbound(rs, tcp({ saddr: '198.51.100.5', dport: 8101 })).verdict).toBe('drop');
    expect(evaluateInbound(rs, tcp({ saddr: '203.0.113.5', dport: 22 })).verdict).toBe('drop');
    // The v4 saddr match never applies to IPv6 (nft's implicit dependency), so v6 is not returned early.
    expect(
      evaluateInbound(rs, tcp({ family: 6, saddr: '2001:db8::5', daddr: '2001:db8::1', dport: 22 })).verdict,
    ).toBe('accept');
  });

  it('finds native DNAT rules', () => {
    const rs = ruleset([
      {
        chain: {
          family: 'ip',
          table: 'nat',
          name: 'pre',
          handle: 1,
          type: 'nat',
          hook: 'prerouting',
          prio: -100,
          policy: 'accept',
        },
      },
      {
        rule: {
          family: 'ip',
          table: 'nat',
          chain: 'pre',
          handle: 3,
          expr: [
            { match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: 8080 } },
            { dnat: { addr: '172.17.0.2', port: 80 } },
          ],
        },
      },
    ]);
    expect(findDnatRules(rs)).toEqual([
      {
        table: 'ip nat',
        chain: 'pre',
        handle: 3,
        protocol: 'tcp',
        port: 8080,
        iifname: null,
        toAddress: '172.17.0.2',
        toPort: 80,
        family: 4,
      },
    ]);
  });

  it('never crashes on arbitrary JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), (a, b) => {
        const rs = ruleset([
          chain('x', base),
          { rule: { family: 'inet', table: 't', chain: 'x', expr: [a, b] } },
        ]);
        expect(['accept', 'drop', 'reject', 'unknown']).toContain(evaluateInbound(rs, tcp({})).verdict);
      }),
      { numRuns: 300 },
    );
    expect(() => parseNftJson('not json')).toThrow(/not JSON/);
  });
});

describe('computeExposure', () => {
  const socket = makeSocket;

  const interfaces = [
    { name: 'lo', addresses: ['127.0.0.1', '::1'] },
    { name: 'eth0', addresses: ['198.51.100.1', '2001:db8::1'] },
    { name: 'eth1', addresses: ['198.51.100.129'] },
  ];
  it('without a firewall every interface of the bound family is reachable', () => {
    const [row] = computeExposure(null, [socket({})], interfaces);
    // Weak host model: each local address answers on every interface.
    expect(row?.cells.map((c) => `${c.interface}/${c.address}:${c.reach}`)).toEqual([
      'eth0/198.51.100.1:yes',
      'eth0/198.51.100.129:yes',
      'eth1/198.51.100.1:yes',
      'eth1/198.51.100.129:yes',
    ]);
    expect(row?.method).toBe('no-firewall');
  });
  it('a dual-stack socket is checked on both families; loopback sockets are left out', () => {
    const rows = computeExposure(
      null,
      [
        socket({ family: 6, localAddress: '::', dualStack: true }),
        socket({ localAddress: '127.0.0.1', exposure: 'loopback' }),
      ],
      interfaces,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]?.cells.map((c) => `${c.interface}/${c.address}`)).toEqual([
      'eth0/198.51.100.1',
      'eth0/198.51.100.129',
      'eth0/2001:db8::1',
      'eth1/198.51.100.1',
      'eth1/198.51.100.129',
      'eth1/2001:db8::1',
    ]);
  });
  it('says reachable only from the sources the ruleset lets in', () => {
    const saved = parseIptablesSave(
      readFileSync(new URL('../fixtures/rulesets/iptables-nft.save', import.meta.url), 'utf8'),
      'ip',
    );
    const rs = parseNftJson(
      readFileSync(new URL('../fixtures/rulesets/iptables-nft.json', import.meta.url), 'utf8'),
      saved,
    );
    const rows = computeExposure(rs, [socket({ localPort: 5432 })], interfaces);
    // The rule's own range, exactly — not the probe addresses audit happened to try.
    expect(rows[0]?.cells[0]).toMatchObject({ reach: 'yes', onlyFrom: ['198.51.100.0/24'] });
  });
});

describe('iptables --tcp-flags is an equality on the masked flags', () => {
  it.each([
    ['-p tcp -m tcp --tcp-flags FIN,SYN FIN,SYN -j DROP', false],
    ['-p tcp -m tcp --tcp-flags SYN,RST SYN,RST -j DROP', false],
    ['-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT', true],
    ['-p tcp -m tcp ! --tcp-flags FIN,SYN,RST,ACK SYN -j DROP', false],
    ['-p tcp -m tcp --tcp-flags ALL NONE -j DROP', false],
    ['-p tcp -m tcp --syn -j ACCEPT', true],
  ] as const)('%s -> %s for a SYN', (text, result) => {
    expect(xtMatch('tcp', text, tcp({}))).toBe(result);
  });
});

describe('neighbor discovery as ufw (ip6tables) accepts it', () => {
  const ns: Packet = {
    family: 6,
    protocol: 'icmpv6',
    icmpType: 135,
    saddr: '2001:db8::10',
    daddr: 'ff02::1:ff00:1',
    sport: 0,
    dport: 0,
    iifname: 'eth0',
    daddrLocal: true,
    ctState: 'untracked',
  };
  it.each([
    // "135" is an ICMPv6 type here, not the address 0.0.0.135
    ['-p ipv6-icmp -m icmp6 --icmpv6-type 135 -m hl --hl-eq 255 -j ACCEPT', true],
    ['-p ipv6-icmp -m icmp6 --icmpv6-type 136 -m hl --hl-eq 255 -j ACCEPT', false],
    ['-p ipv6-icmp -m icmp6 --icmpv6-type 135 -m hl --hl-eq 1 -j ACCEPT', false],
    ['-m conntrack --ctstate INVALID -j DROP', false],
    ['-m conntrack --ctstate UNTRACKED -j ACCEPT', true],
  ] as const)('%s -> %s', (text, result) => {
    expect(xtMatch('icmp6', text, ns)).toBe(result);
  });
});

describe('--ctstate with the virtual DNAT state (kube-proxy)', () => {
  const rule = '! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP';
  it('a new connection that was not translated is not RELATED,ESTABLISHED,DNAT', () => {
    expect(xtMatch('conntrack', rule, tcp({}))).toBe(true);
  });
  it('a DNAT-translated one is', () => {
    expect(xtMatch('conntrack', rule, tcp({ ctStatus: ['dnat'] }))).toBe(false);
    expect(xtMatch('conntrack', '-m conntrack --ctstate DNAT -j ACCEPT', tcp({ ctStatus: ['dnat'] }))).toBe(
      true,
    );
  });
});

describe('flag lists in nft JSON', () => {
  const rs = (match: unknown) =>
    parseNftJson(
      JSON.stringify({
        nftables: [
          {
            chain: {
              family: 'ip',
              table: 'mangle',
              name: 'pre',
              type: 'filter',
              hook: 'prerouting',
              prio: -150,
              policy: 'accept',
            },
          },
          {
            rule: {
              family: 'ip',
              table: 'mangle',
              chain: 'pre',
              handle: 2,
              expr: [{ match }, { drop: null }],
            },
          },
        ],
      }),
    );
  const flags = { '&': [{ payload: { protocol: 'tcp', field: 'flags' } }, ['fin', 'syn']] };
  it('tcp flags fin,syn / fin,syn (iptables-nft --tcp-flags FIN,SYN FIN,SYN) does not match a SYN', () => {
    expect(evaluateInbound(rs({ op: '==', left: flags, right: ['fin', 'syn'] }), tcp({})).verdict).toBe(
      'accept',
    );
  });
  it('tcp flags syn / fin,syn matches it', () => {
    expect(evaluateInbound(rs({ op: '==', left: flags, right: 'syn' }), tcp({})).verdict).toBe('drop');
  });
  it('ct state established,related (op in) is any of them; != is none of them', () => {
    const ct = { ct: { key: 'state' } };
    expect(evaluateInbound(rs({ op: 'in', left: ct, right: ['established', 'new'] }), tcp({})).verdict).toBe(
      'drop',
    );
    expect(
      evaluateInbound(rs({ op: '!=', left: ct, right: ['established', 'related'] }), tcp({})).verdict,
    ).toBe('drop');
    expect(evaluateInbound(rs({ op: '!=', left: ct, right: ['established', 'new'] }), tcp({})).verdict).toBe(
      'accept',
    );
  });
});

describe('the probe SYN carries an MSS option', () => {
  it.each([
    ['-p tcp -m conntrack --ctstate NEW -m tcpmss ! --mss 536:65535 -j DROP', false],
    ['-p tcp -m tcpmss --mss 1:500 -j DROP', false],
    ['-p tcp -m tcpmss --mss 1400:1500 -j ACCEPT', true],
  ] as const)('%s -> %s', (text, result) => {
    expect(xtMatch('tcpmss', text, tcp({}))).toBe(result);
  });
});
