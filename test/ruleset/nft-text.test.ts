import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseNftRule, parseNftText } from '../../src/ruleset/nft-text.ts';
import { parseNftJson } from '../../src/ruleset/parse.ts';

const read = (path: string): string => readFileSync(new URL(path, import.meta.url), 'utf8');

/** Key order aside, and nft sorts anonymous set elements (the text keeps them as written). */
function normalise(json: unknown): unknown {
  if (Array.isArray(json)) return json.map(normalise);
  if (json === null || typeof json !== 'object') return json;
  const entries = Object.entries(json)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => {
      const value = normalise(v);
      return [k, k === 'set' && Array.isArray(value) ? [...value].sort() : value];
    });
  return Object.fromEntries(entries);
}

describe('nft text as nft -j prints it', () => {
  // dual-homed.json is `nft -j list ruleset` of a compiled web-ftp-dual-homed policy.
  const captured = parseNftJson(read('../fixtures/rulesets/dual-homed.json'));
  const parsed = parseNftText(read('../golden/web-ftp-dual-homed/nftables.nft'));

  it.each(captured.chains.map((c) => c.name))('chain %s: head and every rule as nft prints them', (name) => {
    const want = captured.chains.find((c) => c.name === name);
    const got = parsed.chains.find((c) => c.name === name);
    expect(got).toMatchObject({ hook: want?.hook, prio: want?.prio, policy: want?.policy, type: want?.type });
    const printed = (want?.rules ?? []).map((r) => JSON.stringify(normalise([r.expr, r.comment])));
    expect(got?.rules.length).toBeGreaterThan(0);
    for (const rule of got?.rules ?? [])
      expect(printed).toContain(JSON.stringify(normalise([rule.expr, rule.comment])));
  });

  it('sets with their elements (ranges and prefixes as nft prints them)', () => {
    expect(parsed.sets.find((s) => s.name === 'in_internal_1_tcp')?.elem).toEqual([
      21,
      80,
      { range: [137, 139] },
    ]);
    expect(
      parseNftText(
        'table inet t {\n\tset s {\n\t\ttype ipv4_addr\n\t\telements = { 203.0.113.0/24, 198.51.100.7 }\n\t}\n}\n',
      ).sets[0]?.elem,
    ).toEqual([{ prefix: { addr: '203.0.113.0', len: 24 } }, '198.51.100.7']);
  });

  it('the statements of the nat, program and reject rules', () => {
    expect(
      parseNftRule(
        'iifname "eth0" meta nfproto ipv6 fib daddr type local tcp dport 8443 dnat ip6 to [2001:db8::5]:8080 comment "x"',
      ),
    ).toEqual({
      expr: [
        { match: { op: '==', left: { meta: { key: 'iifname' } }, right: 'eth0' } },
        { match: { op: '==', left: { meta: { key: 'nfproto' } }, right: 'ipv6' } },
        { match: { op: '==', left: { fib: { result: 'type', flags: ['daddr'] } }, right: 'local' } },
        { match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: 8443 } },
        { dnat: { family: 'ip6', addr: '2001:db8::5', port: 8080 } },
      ],
      comment: 'x',
    });
    expect(parseNftRule('socket cgroupv2 level 2 "system.slice/a.service" accept').expr[0]).toEqual({
      match: { op: '==', left: { socket: { key: 'cgroupv2', level: 2 } }, right: 'system.slice/a.service' },
    });
    expect(parseNftRule('meta l4proto tcp reject with tcp reset').expr[1]).toEqual({
      reject: { type: 'tcp', expr: 'reset' },
    });
  });

  it('refuses what it does not know, naming the line', () => {
    expect(() => parseNftText('table inet t {\n\tchain c {\n\t\tqueue num 3\n\t}\n}\n')).toThrow(
      /line 3: the unknown word "queue"/,
    );
  });
});
