import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, expect, it } from 'vitest';
import { compilePolicy } from '../../src/compile/registry.ts';
import { loadPolicyOrThrow } from '../../src/policy/load.ts';
import type { Policy } from '../../src/policy/types.ts';
import { describeRootTier } from '../helpers/root-tier.ts';
import { shShapes } from '../helpers/statements.ts';
import { benignPolicyYaml, hostile, withHostileText } from './_hostile.ts';

/**
 * The real parsers judge the escaping: each hostile compilation is loaded by nft and
 * iptables-restore inside a throw-away network namespace (`unshare -n`, nothing else touched) and
 * must give exactly the rules of the benign compilation; the ipchains script must pass `sh -n` and
 * bash's own parse (`--pretty-print`) must have the benign statements. The sample is seeded and
 * small so the tier stays within seconds: set PW_INJECTION_SEED to replay a run.
 */
const SEED = Number(process.env['PW_INJECTION_SEED'] ?? Date.now() % 1_000_000);
const RUNS = 6;

/** Multi-byte comments past the kernel limits (nft rejected them: cut at 120 characters, routes not at all). */
const LONG = ['long.yaml', 'é'.repeat(200), '😀'.repeat(100), 'x'.repeat(300), 'ü'.repeat(65)];

function sample(): string[][] {
  return [
    LONG,
    ...fc.sample(fc.array(hostile, { minLength: 5, maxLength: 5 }), { numRuns: RUNS, seed: SEED }),
  ];
}

function run(command: string[], input?: string): string {
  const result = spawnSync(command[0] ?? '', command.slice(1), { input, encoding: 'utf8', timeout: 20_000 });
  if (result.status !== 0) throw new Error(`${command.join(' ')} exited ${result.status}: ${result.stderr}`);
  return result.stdout;
}

// nft resolves `socket cgroupv2` paths at load time: a private tmpfs stands in for the unit's cgroup.
const FAKE_CGROUP =
  'mount -t tmpfs pwcgroup /sys/fs/cgroup && mkdir -p /sys/fs/cgroup/system.slice/backup.service';

/** Loads an nft file next to a sentinel table; returns the rule count of each chain, by table. */
function nftRuleCounts(dir: string, content: string): Record<string, number> {
  const file = join(dir, 'ruleset.nft');
  writeFileSync(file, content);
  const script = `${FAKE_CGROUP} && nft add table inet sentinel && nft -c -f ${file} && nft -f ${file} && nft -j list ruleset`;
  const listing: unknown = JSON.parse(run(['unshare', '-n', '-m', 'sh', '-c', script]));
  const items = (listing as { nftables: Record<string, { table?: string; chain?: string; name?: string }>[] })
    .nftables;
  const counts: Record<string, number> = {};
  for (const item of items) {
    if (item['table']) counts[`table ${item['table'].name ?? ''}`] = 1;
    const rule = item['rule'];
    if (rule)
      counts[`${rule.table ?? ''}/${rule.chain ?? ''}`] =
        (counts[`${rule.table ?? ''}/${rule.chain ?? ''}`] ?? 0) + 1;
  }
  return counts;
}

/** Loads an iptables-restore file (after --test) and counts the `-A` rules of each chain. */
function iptablesRuleCounts(dir: string, content: string, family: 4 | 6): Record<string, number> {
  const file = join(dir, `rules.v${family}`);
  writeFileSync(file, content);
  const tool = family === 4 ? 'iptables' : 'ip6tables';
  const script = `${tool}-restore --test < ${file} && ${tool}-restore < ${file} && ${tool}-save`;
  const counts: Record<string, number> = {};
  for (const line of run(['unshare', '-n', 'sh', '-c', script]).split('\n')) {
    const chain = /^-A (\S+)/.exec(line)?.[1];
    if (chain) counts[chain] = (counts[chain] ?? 0) + 1;
  }
  return counts;
}

function files(policy: Policy, target: string): string[] {
  return compilePolicy(policy, target, 'test').map((f) => f.content);
}

await describeRootTier(
  'hostile text through the real parsers (nft, iptables-restore, sh)',
  ['nft', 'iptables-restore', 'ip6tables-restore', 'unshare', 'sh', 'bash'],
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'pw-inject-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    process.stderr.write(`injection tier: PW_INJECTION_SEED=${SEED}, ${RUNS} samples per target\n`);

    it('nftables: the same rules in the same chains, and the sentinel table survives', () => {
      const benign = loadPolicyOrThrow(benignPolicyYaml('nftables'), 'policy.yaml');
      const want = nftRuleCounts(dir, files(benign, 'nftables')[0] ?? '');
      expect(want['table sentinel']).toBe(1);
      for (const texts of sample())
        expect(
          nftRuleCounts(dir, files(withHostileText('nftables', texts), 'nftables')[0] ?? ''),
          JSON.stringify(texts),
        ).toEqual(want);
    });

    it('iptables: iptables-restore and ip6tables-restore load the same rules per chain', () => {
      const benign = files(loadPolicyOrThrow(benignPolicyYaml('iptables', false), 'policy.yaml'), 'iptables');
      const want = [iptablesRuleCounts(dir, benign[0] ?? '', 4), iptablesRuleCounts(dir, benign[1] ?? '', 6)];
      for (const texts of sample()) {
        const [v4 = '', v6 = ''] = files(withHostileText('iptables', texts, false), 'iptables');
        expect(
          [iptablesRuleCounts(dir, v4, 4), iptablesRuleCounts(dir, v6, 6)],
          JSON.stringify(texts),
        ).toEqual(want);
      }
    });

    it('ipchains: sh -n accepts the script and bash parses the benign statements', () => {
      const parse = (script: string): string[] => {
        const file = join(dir, 'ipchains.sh');
        writeFileSync(file, script);
        run(['sh', '-n', file]);
        return shShapes(run(['bash', '--pretty-print', file]));
      };
      const want = parse(
        files(loadPolicyOrThrow(benignPolicyYaml('ipchains'), 'p.yaml'), 'ipchains')[0] ?? '',
      );
      for (const texts of fc.sample(fc.array(hostile, { minLength: 5, maxLength: 5 }), {
        numRuns: 4 * RUNS,
        seed: SEED,
      }))
        expect(
          parse(files(withHostileText('ipchains', texts), 'ipchains')[0] ?? ''),
          JSON.stringify(texts),
        ).toEqual(want);
    });
  },
);
