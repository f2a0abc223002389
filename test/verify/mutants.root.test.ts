import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { compilePolicy } from '../../src/compile/registry.ts';
import { loadPolicyOrThrow } from '../../src/policy/load.ts';
import { verifyPolicy } from '../../src/verify/run.ts';
import { describeRootTier } from '../helpers/root-tier.ts';
import {
  expectedDifferences,
  MUTATION_SWEEP,
  mutantsOf,
  mutationQuestions,
  reportedDifferences,
  type Mutant,
} from './mutants.ts';

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

/** A small deterministic generator, so a failing sample can be run again from its seed. */
function sample<T>(items: readonly T[], count: number, seed: number): T[] {
  let state = Math.imul(seed ^ 0x9e3779b9, 2654435761) >>> 0 || 1;
  const next = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
  const pool = [...items];
  const out: T[] = [];
  while (out.length < count && pool.length > 0) out.push(...pool.splice(Math.floor(next() * pool.length), 1));
  return out;
}

// CI runs a seeded sample under load (a different seed each run, printed); PORTWARDEN_MUTANTS=all runs
// every mutant (bench/verify.mjs does, idle and loaded).
const seed = Number(process.env['PORTWARDEN_MUTANT_SEED'] ?? Date.now() % 1_000_000);
const everything = process.env['PORTWARDEN_MUTANTS'] === 'all';
const chosen: Mutant[] = everything
  ? all
  : EXAMPLES.flatMap((example, i) =>
      sample(
        all.filter((m) => m.example === example),
        2,
        seed + i,
      ),
    );
const hog = process.env['PORTWARDEN_MUTANT_HOG'] !== '0';

await describeRootTier('verify: mutation testing of the compiled rulesets', ['ip', 'nft', 'python3'], () => {
  const hogs: ChildProcess[] = [];
  beforeAll(() => {
    console.log(
      `mutation testing: ${chosen.length} of ${all.length} mutants (seed ${seed}, PORTWARDEN_MUTANT_SEED=${seed} repeats it)${hog ? ', both cores kept busy' : ''}`,
    );
    // both cores busy for the whole run: verdicts must not depend on the machine's load
    if (hog)
      for (let i = 0; i < 2; i++) hogs.push(spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }));
  });
  afterAll(() => {
    for (const h of hogs) h.kill('SIGKILL');
  });

  it.each(chosen.map((m) => [`${m.example}: ${m.name}`, m] as const))(
    '%s: verify reports exactly that difference',
    async (_label, mutant) => {
      const { policy, nft } = load(mutant.example);
      const result = await verifyPolicy(policy, {
        backend: 'nftables',
        rulesetFiles: [{ suffix: '', content: mutant.edit(nft) }],
        ports: MUTATION_SWEEP,
        version: 'test',
      });
      expect(result.undecided).toEqual([]);
      expect(reportedDifferences(result.differences)).toEqual(
        expectedDifferences(mutant, mutationQuestions(policy)),
      );
    },
    180_000,
  );

  it.each(EXAMPLES)(
    'the unmutated %s ruleset passes under load',
    async (example) => {
      const { policy } = load(example);
      const result = await verifyPolicy(policy, {
        backend: 'nftables',
        ports: MUTATION_SWEEP,
        version: 'test',
      });
      expect(result.differences).toEqual([]);
      expect(result.undecided).toEqual([]);
    },
    180_000,
  );
});
