import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatPortSet } from '../../src/catalog/port-set.ts';
import { expectedInbound, expectedOutbound, expectedRouted } from '../../src/policy/expect.ts';
import { loadPolicy, loadPolicyOrThrow } from '../../src/policy/load.ts';

const fixture = (path: string): string =>
  readFileSync(new URL(`../fixtures/policies/${path}`, import.meta.url), 'utf8');
const example = (name: string) => {
  const file = `examples/${name}.yaml`;
  return loadPolicyOrThrow(readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8'), file);
};

describe('broken policies: every problem named with file:line:col', () => {
  it.each([
    [
      'unknown-key',
      'POLICY_UNKNOWN_KEY',
      4,
      5,
      /unknown key "interfacs" in zone "external"/,
      /did you mean "interfaces"/,
    ],
    [
      'bad-service',
      'PORT_UNKNOWN_NAME',
      6,
      16,
      /unknown service name "telent".*inbound rule 1 of zone "external"/,
      /telnet/,
    ],
    [
      'interface-twice',
      'POLICY_INTERFACE_TWICE',
      6,
      24,
      /interface "eth0" is in zone "external" and zone "internal"/,
      /one zone/,
    ],
    [
      'overlapping-sources',
      'POLICY_OVERLAPPING_SOURCES',
      8,
      14,
      /198\.51\.100\.0\/24 of zone "lan" and 198\.51\.100\.128\/25 of zone "lab" overlap/,
      /distinct/,
    ],
    [
      'bad-cidr',
      'POLICY_BAD_ADDRESS',
      5,
      15,
      /"198\.51\.100\.0\/33" is not an IPv4\/IPv6 address/,
      /198\.51\.100\.0\/24/,
    ],
    ['bad-verdict', 'POLICY_INVALID', 2, 22, /"defaults\.inbound" cannot be "deny"/, /drop, reject, accept/],
    ['duplicate-key', 'YAML_DUPLICATE_KEY', 5, 3, /duplicate key "external"/, /once/],
    ['missing-version', 'POLICY_INVALID', 1, 1, /needs "version"/, /version: 1/],
    ['unknown-zone', 'POLICY_UNKNOWN_ZONE', 8, 11, /unknown zone "internl"/, /did you mean "internal"/],
    ['port-out-of-range', 'PORT_OUT_OF_RANGE', 6, 16, /70000/, /65535/],
    ['yaml-syntax', 'YAML_BAD_INDENT', 5, 5, /Flow sequence/, /indentation/],
    [
      'rule-from-in-outbound',
      'POLICY_UNKNOWN_KEY',
      7,
      9,
      /unknown key "from" in outbound rule 1 of zone "external"/,
      /allow, to, comment, log/,
    ],
    [
      'interfaces-not-list',
      'POLICY_INVALID',
      4,
      17,
      /"interfaces" of zone "external" must be a list, not string "eth0"/,
      undefined,
    ],
  ] as const)('%s: %s at %i:%i', (name, code, line, col, message, hint) => {
    const file = `broken/${name}.yaml`;
    const { policy, diagnostics } = loadPolicy(fixture(file), file);
    expect(policy).toBeNull();
    expect(diagnostics).toHaveLength(1);
    const [d] = diagnostics;
    expect(d).toMatchObject({ severity: 'error', code, location: { file, line, col } });
    expect(d?.message).toMatch(message);
    if (hint) expect(d?.hint).toMatch(hint);
  });

  it.each([
    // the unknown key itself, the duplicated key, the bad address, the value of the wrong type
    ['unknown-key', 4, 5, 4, 14],
    ['duplicate-key', 5, 3, 5, 11],
    ['bad-cidr', 5, 15, 5, 30],
    ['interfaces-not-list', 4, 17, 4, 21],
  ] as const)('%s: the location is a range, %i:%i to %i:%i', (name, line, col, endLine, endCol) => {
    const file = `broken/${name}.yaml`;
    const [d] = loadPolicy(fixture(file), file).diagnostics;
    expect(d?.location).toMatchObject({ line, col, endLine, endCol });
  });

  it('covers every file of the broken corpus', () => {
    expect(readdirSync(new URL('../fixtures/policies/broken/', import.meta.url)).length).toBe(13);
  });

  it('collects several problems at once, sorted by position', () => {
    const text =
      'version: 1\nzones:\n  a:\n    interfaces: [eth0]\n    inbound:\n      - allow: tcp/99999\n      - allow: ssh\n        from: [not-an-ip]\n  b:\n    interfaces: [eth0]\n';
    const { diagnostics } = loadPolicy(text, 'p.yaml');
    expect(diagnostics.map((d) => [d.code, d.location?.line])).toEqual([
      ['PORT_OUT_OF_RANGE', 6],
      ['POLICY_BAD_ADDRESS', 8],
      ['POLICY_INTERFACE_TWICE', 10],
    ]);
  });

  it('throws one POLICY_INVALID error carrying every diagnostic', () => {
    expect(() => loadPolicyOrThrow(fixture('broken/unknown-zone.yaml'), 'x.yaml')).toThrow(
      /unknown zone "internl"/,
    );
  });

  it('never crashes on arbitrary text or arbitrary YAML-shaped values', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        const { policy, diagnostics } = loadPolicy(text, 'f.yaml');
        expect(policy === null || diagnostics.every((d) => d.severity !== 'error')).toBe(true);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const { policy } = loadPolicy(`version: 1\nzones: ${JSON.stringify(value)}\n`, 'f.yaml');
        if (policy) expect(Array.isArray(policy.zones)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('normalised policy', () => {
  it('turns the dual-homed example into ports and CIDRs', () => {
    const policy = example('web-ftp-dual-homed');
    expect(policy.defaults).toEqual({ inbound: 'drop', outbound: 'drop', forward: 'drop', log: true });
    expect(policy.ftp).toBe(true);
    const [external, internal] = policy.zones;
    expect(external?.exposure).toBe('external');
    expect(formatPortSet(external?.inbound[0]?.ports ?? { tcp: [], udp: [] })).toBe('T:21,80,443');
    expect(internal?.sources.map((s) => s.text)).toEqual(['198.51.100.0/24', '2001:db8:100::/48']);
    expect(internal?.inbound[1]?.peers.map((p) => p.text)).toEqual(['198.51.100.10', '2001:db8:100::10']);
  });

  it('reads a bare port number as TCP and names as their own protocols', () => {
    const { policy } = loadPolicy(
      'version: 1\nzones:\n  z:\n    interfaces: [eth0]\n    inbound:\n      - allow: [8080, dns]\n',
      'p.yaml',
    );
    expect(formatPortSet(policy?.zones[0]?.inbound[0]?.ports ?? { tcp: [], udp: [] })).toBe('T:53,8080,U:53');
  });
});

describe('expectations come from the policy', () => {
  const policy = example('web-ftp-dual-homed');
  it.each([
    ['external', 4, undefined, 'T:21,80,443'],
    ['external', 6, '2001:db8::99', 'T:21,80,443'],
    ['internal', 4, '198.51.100.77', 'T:21,80,137-139,U:137-139'],
    ['internal', 4, '198.51.100.10', 'T:21-22,80,137-139,U:137-139'],
    ['internal', 6, '2001:db8:100::10', 'T:21-22,80,137-139,U:137-139'],
    ['internal', 4, '203.0.113.9', ''],
    ['internal', 4, undefined, ''],
  ] as const)('inbound %s v%i from %s: %s', (zone, family, source, ports) => {
    expect(formatPortSet(expectedInbound(policy, zone, family, source))).toBe(ports);
  });

  it('outbound honours destinations', () => {
    expect(formatPortSet(expectedOutbound(policy, 'internal', 4, '203.0.113.53'))).toBe('T:53,80,443,U:53');
    expect(formatPortSet(expectedOutbound(policy, 'internal', 4, '192.0.2.1'))).toBe('');
    expect(formatPortSet(expectedOutbound(policy, 'external', 6))).toBe('');
  });

  it('routing is per zone pair and source', () => {
    const router = example('router');
    expect(formatPortSet(expectedRouted(router, 'lan', 'wan', 4, '198.51.100.7'))).toBe('T:53,80,443,U:53');
    expect(formatPortSet(expectedRouted(router, 'wan', 'lan', 4, '203.0.113.7'))).toBe('');
  });
});
