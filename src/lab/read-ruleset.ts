import { runCommand } from './run.ts';

/** The live ruleset as nft prints it, or null with the reason it could not be read. */
export interface LiveRuleset {
  nftJson: string | null;
  /** iptables-save and ip6tables-save output (iptables-nft), for the extensions nft shows by name. */
  iptablesSave: { ip: string; ip6: string };
  reason: string | null;
  /** Rules in legacy iptables (x_tables) that `nft` cannot show: not modelled. */
  legacyRules: number;
}

/** Reads `nft -j list ruleset` (optionally inside a named namespace) and counts legacy iptables rules. */
export async function readLiveRuleset(options: { netns?: string } = {}): Promise<LiveRuleset> {
  const prefix = options.netns ? ['netns', 'exec', options.netns] : [];
  const run = (command: string, args: string[]) =>
    options.netns
      ? runCommand('ip', [...prefix, command, ...args], { allowFailure: true, timeoutMs: 15_000 })
      : runCommand(command, args, { allowFailure: true, timeoutMs: 15_000 });
  let nftJson: string | null = null;
  let reason: string | null = null;
  try {
    const result = await run('nft', ['-j', 'list', 'ruleset']);
    if (result.status === 0) nftJson = result.stdout.trim() === '' ? '{"nftables":[]}' : result.stdout;
    else if (/Operation not permitted|Permission denied/i.test(result.stderr))
      reason = 'reading the ruleset needs root (CAP_NET_ADMIN); exposure assumes no firewall';
    else reason = `nft failed: ${result.stderr.trim().split('\n')[0] ?? ''}`;
  } catch {
    reason = 'nft is not installed; exposure assumes no firewall (install nftables to read the live ruleset)';
  }
  const iptablesSave = { ip: '', ip6: '' };
  for (const [key, tool] of [
    ['ip', 'iptables-save'],
    ['ip6', 'ip6tables-save'],
  ] as const) {
    try {
      const result = await run(tool, []);
      if (result.status === 0) iptablesSave[key] = result.stdout;
    } catch {
      // iptables not installed: nothing written by it to explain
    }
  }
  let legacyRules = 0;
  try {
    for (const tool of ['iptables-legacy-save', 'ip6tables-legacy-save']) {
      const result = await run(tool, []);
      if (result.status === 0)
        legacyRules += result.stdout.split('\n').filter((l) => l.startsWith('-A ')).length;
    }
  } catch {
    legacyRules = 0;
  }
  return { nftJson, iptablesSave, reason, legacyRules };
}
