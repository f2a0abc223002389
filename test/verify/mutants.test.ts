import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../src/compile/registry.ts';
import { loadPolicyOrThrow } from '../../src/policy/load.ts';
import { mutantsOf } from './mutants.ts';

const EXAMPLES = ['workstation', 'web-ftp-dual-homed', 'dns-dhcp', 'router', 'per-program-egress'];

function load(example: string): { policy: ReturnType<typeof loadPolicyOrThrow>; nft: string } {
  const file = `examples/${example}.yaml`;
  const policy = loadPolicyOrThrow(readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8'), file);
  return { policy, nft: compilePolicy(policy, 'nftables', 'test')[0]?.content ?? '' };
}

const all = EXAMPLES.flatMap((example) => {
  const { policy, nft } = load(example);
  return mutantsOf(example, policy, nft);
});

describe('mutants (pure)', () => {
  it.each(EXAMPLES)('%s has at least 20 mutants, each changing some probe', (example) => {
    expect(all.filter((m) => m.example === example).length).toBeGreaterThanOrEqual(20);
  });
});
