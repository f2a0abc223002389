import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../src/compile/registry.ts';
import { loadPolicy } from '../../src/policy/load.ts';

const twoZones = (a: string, b: string): string =>
  `version: 1\nzones:\n  ${a}:\n    interfaces: [eth0]\n    inbound: [{ allow: ssh }]\n  ${b}:\n    interfaces: [eth1]\n    inbound: [{ allow: http }]\n`;

describe('zone names that would share a chain', () => {
  it.each([
    ['a-b', 'a_b'],
    ['office_network_segment_1', 'office-network-segment_2'],
  ])('%s and %s are refused at the second zone', (a, b) => {
    const { policy, diagnostics } = loadPolicy(twoZones(a, b), 'p.yaml');
    expect(policy).toBeNull();
    expect(diagnostics[0]?.message).toBe(
      `zones "${a}" and "${b}" would share one chain in compiled rulesets`,
    );
    expect(diagnostics[0]?.location).toMatchObject({ line: 6, col: 3 });
    expect(diagnostics[0]?.hint).toMatch(/rename one/);
  });

  it('distinct names give distinct nft and iptables chains', () => {
    const { policy } = loadPolicy(twoZones('dmz', 'lan'), 'p.yaml');
    if (!policy) throw new Error('policy expected');
    const nft = compilePolicy(policy, 'nftables', 'test')[0]?.content ?? '';
    expect(nft.match(/^\tchain in_\w+ \{/gm)).toEqual(['\tchain in_dmz {', '\tchain in_lan {']);
  });
});
