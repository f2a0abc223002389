import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { evaluate } from '../../src/ruleset/path.ts';
import { featuresUsed, type Feature } from '../../src/compile/backend.ts';
import { buildIr } from '../../src/compile/ir.ts';
import { BACKENDS, compilePolicy } from '../../src/compile/registry.ts';
import { loadPolicyOrThrow } from '../../src/policy/load.ts';
import type { Policy } from '../../src/policy/types.ts';
import type { Question } from '../../src/verify/probes.ts';
import {
  compareAnswers,
  rulesetOfCompiled,
  staticQuestions,
  verifyStatically,
  type Disagreement,
} from '../../src/verify/static.ts';
import { FEATURE_POLICIES } from './_features.ts';
import { expectedDifferences, mutantsOf, reportedDifferences } from '../verify/mutants.ts';
import { parseNftText } from '../../src/ruleset/nft-text.ts';

/**
 * The conformance suite: every backend must give the same answer, the policy's. nftables and
 * iptables rulesets are run through the ruleset evaluator with verify's own questions (a static
 * verify); pf, Windows and ipchains, which no evaluator reads, keep their golden files
 * (golden.test.ts) and each feature's output is checked below.
 */

const EXAMPLES = new URL('../../examples/', import.meta.url);
const examples = readdirSync(EXAMPLES)
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const EVALUATED = ['nftables', 'iptables'] as const;

function example(name: string): Policy {
  return loadPolicyOrThrow(readFileSync(new URL(name, EXAMPLES), 'utf8'), `examples/${name}`);
}

const policyOf = (body: string): Policy => loadPolicyOrThrow(`version: 1\n${body}`, 'p.yaml');
const compiled = (policy: Policy, backend: string) => compilePolicy(policy, backend, 'test');
const textOf = (policy: Policy, backend: string): string =>
  compiled(policy, backend)
    .map((f) => f.content)
    .join('\n');

function describeAll(where: string, list: readonly Disagreement[]): string[] {
  return list.map(
    (d) =>
      `${where}: zone ${d.zone}${d.toZone ? ` -> ${d.toZone}` : ''} ${d.direction} IPv${d.family} ${d.protocol}/${d.port} from/to ${d.peer ?? '?'}: policy says ${d.expected}, ruleset ${d.observed}${d.reason ? ` (${d.reason})` : ''}`,
  );
}

describe.each(examples)('%s: every evaluated backend lets through exactly what the policy says', (name) => {
  const policy = example(name);
  it.each(EVALUATED)('%s', (backend) => {
    const ruleset = rulesetOfCompiled(backend, compiled(policy, backend));
    const questions = staticQuestions(policy, ruleset);
    // The questions must reach every zone in both directions and expect some ports to pass.
    const zones = new Set(questions.map((q) => `${q.where.zone} ${q.where.direction}`));
    for (const zone of policy.zones) {
      expect(zones).toContain(`${zone.name} inbound`);
      expect(zones).toContain(`${zone.name} outbound`);
    }
    expect(questions.some((q) => q.expected.length > 0)).toBe(true);
    expect(describeAll(`${name} ${backend}`, verifyStatically(policy, ruleset))).toEqual([]);
  });
});

describe('the comparison catches a wrong ruleset', () => {
  const q = (expected: Question['expected']): Question => ({
    where: { zone: 'ext', direction: 'inbound', family: 4, peer: '203.0.113.5' },
    src: '203.0.113.5',
    dst: '203.0.113.1',
    protocol: 'tcp',
    ports: [{ from: 20, to: 25 }],
    expected,
  });

  it('names an extra port, a missing one and an undecided one, and nothing else', () => {
    const questions = [q([{ from: 22, to: 22 }]), q([{ from: 22, to: 22 }])];
    const answers = [
      { passed: [{ from: 22, to: 23 }], unknown: [] },
      { passed: [], unknown: [{ port: 25, reason: 'meta cpu' }] },
    ];
    expect(compareAnswers(questions, answers)).toEqual([
      { ...questions[0]?.where, protocol: 'tcp', port: 23, expected: 'block', observed: 'pass' },
      { ...questions[1]?.where, protocol: 'tcp', port: 22, expected: 'pass', observed: 'block' },
      {
        ...questions[1]?.where,
        protocol: 'tcp',
        port: 25,
        expected: 'block',
        observed: 'unknown',
        reason: 'meta cpu',
      },
    ]);
  });

  it('agrees when the answers are the expectation', () => {
    const questions = [q([{ from: 22, to: 22 }])];
    expect(compareAnswers(questions, [{ passed: [{ from: 22, to: 22 }], unknown: [] }])).toEqual([]);
  });

  it('a port forward sent to the wrong target is a disagreement', () => {
    const question = {
      ...q([{ from: 22, to: 22 }]),
      ports: [{ from: 22, to: 22 }],
      translated: { dst: '198.51.100.5', port: 25, label: '' },
    };
    const [d] = compareAnswers([question], [{ passed: [{ from: 22, to: 22 }], unknown: [], misrouted: 'x' }]);
    expect(d).toMatchObject({ port: 22, expected: 'pass', observed: 'pass', reason: 'x' });
  });

  const policy = example('dns-dhcp.yaml');
  const mutants: { backend: (typeof EVALUATED)[number]; mutate: (files: string) => string }[] = [
    {
      backend: 'nftables',
      // one extra port (tcp/8081 inbound on external) and one missing (udp/67 inbound on internal)
      mutate: (text) =>
        text
          .replace(/(set in_external_1_tcp \{[^}]*elements = \{ )53/, '$18081, 53')
          .replace(/(set in_internal_1_udp \{[^}]*elements = \{ 53), 67/, '$1'),
    },
    {
      backend: 'iptables',
      mutate: (text) =>
        text
          .replace(
            '-A PW-IN-external -p tcp --dport 53',
            '-A PW-IN-external -p tcp --dport 8081 -j ACCEPT\n-A PW-IN-external -p tcp --dport 53',
          )
          .replace('-p udp -m multiport --dports 53,67 ', '-p udp --dport 53 '),
    },
  ];
  it.each(mutants)('$backend: one extra port and one missing are both named', ({ backend, mutate }) => {
    const files = compiled(policy, backend).map((f) => ({ ...f, content: mutate(f.content) }));
    expect(files.map((f) => f.content)).not.toEqual(compiled(policy, backend).map((f) => f.content));
    const found = verifyStatically(policy, rulesetOfCompiled(backend, files)).map(
      (d) => `${d.zone} ${d.direction} ${d.family} ${d.protocol}/${d.port} ${d.expected}->${d.observed}`,
    );
    expect(found).toContain('external inbound 4 tcp/8081 block->pass');
    expect(found).toContain('internal inbound 4 udp/67 pass->block');
    expect(found.every((f) => /tcp\/8081 block->pass|udp\/67 pass->block/.test(f))).toBe(true);
  });
});

describe("verify's mutants are caught by the static verify, exactly", () => {
  // The root tier's mutants (test/verify/mutants.ts): each opens or closes one thing in a compiled
  // nftables ruleset. A seeded sample of 3 per example runs every time (PORTWARDEN_MUTANT_SEED repeats
  // one); PORTWARDEN_MUTANTS=all runs all of them (207, ~15 s).
  const seed = Number(process.env['PORTWARDEN_MUTANT_SEED'] ?? Date.now() % 1_000_000);
  const everything = process.env['PORTWARDEN_MUTANTS'] === 'all';
  const cases = examples.flatMap((name, i) => {
    const policy = example(name);
    const nft = textOf(policy, 'nftables');
    const all = mutantsOf(name, policy, nft);
    const picked = everything ? all : [0, 1, 2].map((k) => all[(seed * (i + 3) + k * 7919) % all.length]);
    return picked.flatMap((m) => (m ? [{ label: `${name}: ${m.name}`, m, policy, nft }] : []));
  });
  it.each(cases)(`$label (seed ${seed})`, ({ m, policy, nft }) => {
    const ruleset = parseNftText(m.edit(nft));
    const want = expectedDifferences(m, staticQuestions(policy, ruleset));
    const found = verifyStatically(policy, ruleset);
    expect(found.filter((d) => d.observed === 'unknown')).toEqual([]);
    const got = reportedDifferences(
      found.map((d) => ({
        ...d,
        ports: d.forward ?? String(d.port),
        observed: d.observed === 'pass' ? 'pass' : 'block',
      })),
    );
    expect(want.length).toBeGreaterThan(0);
    expect(got).toEqual(want);
  });
});

/**
 * What each backend writes for a feature it supports: a line of its real output. A backend that
 * does not declare a feature unsupported must have its line here.
 */
const FEATURE_OUTPUT: Readonly<Record<Feature, Readonly<Record<string, readonly string[]>>>> = {
  ipv6: {
    nftables: ['table inet portwarden {', 'tcp dport @in_z_1_tcp counter accept'],
    iptables: ['-A PW-IN-z -p tcp --dport 2222'],
    ipchains: ['IPv4 only: IPv6 is NOT filtered by this script', '--dport 2222 -j ACCEPT'],
    pf: ['pass in on $if_z proto tcp to port 2222 keep state'],
    windows: ["-Direction Inbound -InterfaceAlias 'eth0' -Protocol TCP -LocalPort 2222 -Action Allow"],
  },
  'ipv6-addresses': {
    nftables: ['type ipv6_addr', 'ip6 saddr @in_z_1_tcp_v6_peers tcp dport @in_z_1_tcp_v6'],
    iptables: ['-A PW-IN-z -s 2001:db8:5::/64 -p tcp --dport 2222'],
    ipchains: ['# skipped (IPv6): inbound rule "tcp/2222" of zone z'],
    pf: ['pass in on $if_z inet6 proto tcp from 2001:db8:5::/64 to port 2222 keep state'],
    windows: ['-RemoteAddress 2001:db8:5::/64 -Protocol TCP -LocalPort 2222'],
  },
  'port-forward': {
    nftables: ['fib daddr type local tcp dport 2525 dnat ip to 198.51.100.5:25'],
    iptables: ['--dst-type LOCAL -p tcp --dport 2525', '-j DNAT --to-destination 198.51.100.5:25'],
    pf: ['rdr pass on $if_z inet proto tcp to port 2525 -> 198.51.100.5 port 25'],
    windows: [
      'portproxy add v4tov4 listenport=2525 listenaddress=0.0.0.0 connectport=25 connectaddress=198.51.100.5',
    ],
  },
  masquerade: {
    nftables: ['iifname "eth1" oifname "eth0" masquerade'],
    iptables: ['-A POSTROUTING -o eth0 -m comment --comment "masquerade b -> a" -j MASQUERADE'],
    ipchains: ['$IPCHAINS -A forward -i eth0 -p TCP --dport 443 -j MASQ'],
    pf: ['nat on $if_a from $if_b:network to any -> ($if_a)'],
  },
  routing: {
    nftables: ['iifname "eth1" oifname "eth0" tcp dport @fwd_1_tcp counter accept'],
    iptables: ['-A FORWARD -i eth1 -o eth0 -p tcp --dport 443'],
    ipchains: ['$IPCHAINS -A forward -i eth0 -p TCP --dport 443 -j ACCEPT'],
    pf: ['pass in on $if_b proto tcp to ! ($if_b) port 443 keep state'],
  },
  'program-unit': {
    nftables: ['socket cgroupv2 level 2 "system.slice/backup.service" tcp dport @prog_1_1_tcp'],
    iptables: ['-A OUTPUT -m cgroup --path system.slice/backup.service -p tcp --dport 443'],
  },
  'program-user': {
    nftables: ['meta skuid "nobody" tcp dport @prog_1_1_tcp'],
    iptables: ['-A OUTPUT -m owner --uid-owner nobody -p tcp --dport 443'],
    pf: ['pass out proto tcp to any port 443 user "nobody" keep state'],
  },
  'program-path': {
    // the mark `watch --programs` sets on connections it attributed to the executable
    nftables: ['meta mark 0x50570001 tcp dport @prog_1_1_tcp'],
    windows: ["-Direction Outbound -Program '/usr/bin/curl' -Protocol TCP -RemotePort 443 -Action Allow"],
  },
  'ftp-helper': {
    nftables: ['ct helper ftp_standard {', 'tcp dport 21 ct helper set "ftp_standard"'],
    iptables: ['-A PREROUTING -p tcp --dport 21 -j CT --helper ftp'],
    ipchains: ['$IPCHAINS -A input -i eth0 -p TCP --dport 20 ! -y -j ACCEPT'],
    windows: ['Set-NetFirewallSetting -EnableStatefulFtp True'],
  },
  'udp-forward': {
    nftables: ['udp dport 5353 dnat ip to 198.51.100.5:53'],
    iptables: ['-p udp --dport 5353', '-j DNAT --to-destination 198.51.100.5:53'],
    pf: ['rdr pass on $if_z inet proto udp to port 5353 -> 198.51.100.5 port 53'],
  },
  'loopback-forward': {
    nftables: ['tcp dport 8080 dnat ip to 127.0.0.1:3000'],
    iptables: ['-j DNAT --to-destination 127.0.0.1:3000'],
    pf: ['rdr pass on $if_z inet proto tcp to port 8080 -> 127.0.0.1 port 3000'],
    windows: ['connectport=3000 connectaddress=127.0.0.1'],
  },
};

describe('every feature on every backend: the real output, or the declared refusal', () => {
  const features = Object.keys(FEATURE_POLICIES) as Feature[];
  const cases = BACKENDS.flatMap((b) => features.map((feature) => ({ backend: b.name, feature })));
  it.each(cases)('$backend: $feature', ({ backend: name, feature }) => {
    const backend = BACKENDS.find((b) => b.name === name);
    const policy = policyOf(FEATURE_POLICIES[feature]);
    const used = featuresUsed(buildIr(policy)).map((u) => u.feature);
    expect(used).toContain(feature);
    const refused = used.filter((f) => backend?.unsupported[f] !== undefined);
    if (refused.length > 0) {
      expect(() => compiled(policy, name)).toThrow(`target ${name} cannot express ${refused[0] ?? ''} (`);
      expect(FEATURE_OUTPUT[feature][name], 'no output listed for a refused feature').toBeUndefined();
      return;
    }
    const lines = FEATURE_OUTPUT[feature][name];
    expect(lines, `FEATURE_OUTPUT has no ${name} output for ${feature}`).toBeDefined();
    const text = textOf(policy, name);
    for (const line of lines ?? []) expect(text).toContain(line);
    if (name === 'nftables' || name === 'iptables')
      expect(
        describeAll(
          `${feature} ${name}`,
          verifyStatically(policy, rulesetOfCompiled(name, compiled(policy, name))),
        ),
      ).toEqual([]);
  });

  it.each(EVALUATED)('%s: a unit rule lets its unit through and no one else', (name) => {
    const policy = policyOf(FEATURE_POLICIES['program-unit']);
    const ruleset = rulesetOfCompiled(name, compiled(policy, name));
    const probe = {
      family: 4 as const,
      protocol: 'tcp' as const,
      saddr: '203.0.113.1',
      daddr: '198.51.100.7',
      sport: 40000,
      dport: 443,
      oifname: 'eth0',
      daddrLocal: false,
      peer: 'daddr' as const,
      skuid: 0,
      skgid: 0,
    };
    const unit = { ...probe, cgroup: 'system.slice/backup.service' };
    expect(evaluate(ruleset, 'outbound', unit).verdict).toBe('accept');
    expect(evaluate(ruleset, 'outbound', { ...unit, dport: 80 }).verdict).toBe('drop');
    expect(evaluate(ruleset, 'outbound', { ...probe, cgroup: 'system.slice/other.service' }).verdict).toBe(
      'drop',
    );
  });
});
