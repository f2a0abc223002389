import { runCommand } from '../system/run.ts';

/** The live ruleset as nft prints it, or null with the reason it could not be read. */
export interface LiveRuleset {
  nftJson: string | null;
  /** iptables-save and ip6tables-save output (iptables-nft), for the extensions nft shows by name. */
  iptablesSave: { ip: string; ip6: string };
  /** iptables-legacy-save and ip6tables-legacy-save output: x_tables rules nft cannot show. */
  legacySave: { ip: string; ip6: string };
  /** `nft list chains` text: ingress chains' devices, which nft 1.0.6 leaves out of its JSON. */
  nftChains: string;
  reason: string | null;
  /** Rules in legacy iptables (x_tables). */
  legacyRules: number;
}

type Runner = (command: string, args: string[]) => ReturnType<typeof runCommand>;

function runner(netns: string | undefined): Runner {
  return (command, args) =>
    netns
      ? runCommand('ip', ['netns', 'exec', netns, command, ...args], {
          allowFailure: true,
          timeoutMs: 15_000,
        })
      : runCommand(command, args, { allowFailure: true, timeoutMs: 15_000 });
}

async function readNft(run: Runner): Promise<{ nftJson: string | null; reason: string | null }> {
  try {
    const result = await run('nft', ['-j', 'list', 'ruleset']);
    if (result.status === 0)
      return { nftJson: result.stdout.trim() === '' ? '{"nftables":[]}' : result.stdout, reason: null };
    if (/Operation not permitted|Permission denied/i.test(result.stderr))
      return { nftJson: null, reason: 'reading the ruleset needs root (CAP_NET_ADMIN)' };
    return { nftJson: null, reason: `nft failed: ${result.stderr.trim().split('\n')[0] ?? ''}` };
  } catch {
    return { nftJson: null, reason: 'nft is not installed (install nftables to read the live ruleset)' };
  }
}

/** Output of a save tool, or '' when it is missing or fails (nothing written by it to explain). */
async function saveText(run: Runner, tool: string): Promise<string> {
  try {
    const result = await run(tool, []);
    return result.status === 0 ? result.stdout : '';
  } catch {
    return '';
  }
}

/** Reads `nft -j list ruleset`, iptables(-legacy)-save and ingress devices (optionally in a namespace). */
export async function readLiveRuleset(options: { netns?: string } = {}): Promise<LiveRuleset> {
  const run = runner(options.netns);
  const { nftJson, reason } = await readNft(run);
  // Each of these lists the whole nft cache again (seconds with a 100,000-element set): ask only
  // when the JSON has something they explain — xt expressions, ingress chains.
  const hasXt = nftJson?.includes('"xt":') ?? true;
  const [ip, ip6, legacyIp, legacyIp6] = await Promise.all([
    hasXt ? saveText(run, 'iptables-save') : '',
    hasXt ? saveText(run, 'ip6tables-save') : '',
    saveText(run, 'iptables-legacy-save'),
    saveText(run, 'ip6tables-legacy-save'),
  ]);
  const hasIngress = (nftJson?.includes('"ingress"') || nftJson?.includes('"egress"')) ?? false;
  const nftChains = hasIngress
    ? (await run('nft', ['list', 'chains']).catch(() => ({ stdout: '' }))).stdout
    : '';
  const legacyRules = `${legacyIp}\n${legacyIp6}`.split('\n').filter((l) => l.startsWith('-A ')).length;
  return {
    nftJson,
    iptablesSave: { ip, ip6 },
    legacySave: { ip: legacyIp, ip6: legacyIp6 },
    nftChains,
    reason,
    legacyRules,
  };
}

/** An interface with prefix lengths and bridge membership, from `ip -j -d addr`. */
export interface InterfaceDetails {
  name: string;
  addresses: string[];
  cidrs: string[];
  bridgePort: boolean;
}

interface IpLink {
  ifname?: string;
  linkinfo?: { info_slave_kind?: string };
  addr_info?: { local?: string; prefixlen?: number }[];
}

/** Interfaces of this host (or a namespace) with prefixes and bridge ports; [] when `ip` fails. */
export async function readInterfaceDetails(options: { netns?: string } = {}): Promise<InterfaceDetails[]> {
  try {
    const result = await runner(options.netns)('ip', ['-j', '-d', 'addr', 'show']);
    const parsed: unknown = JSON.parse(result.stdout);
    if (!Array.isArray(parsed)) return [];
    return parsed.map((link: IpLink) => {
      const addrs = (link.addr_info ?? []).filter((a) => a.local);
      return {
        name: link.ifname ?? '?',
        addresses: addrs.map((a) => a.local ?? ''),
        cidrs: addrs.map((a) => `${a.local ?? ''}/${a.prefixlen ?? 32}`),
        bridgePort: link.linkinfo?.info_slave_kind === 'bridge',
      };
    });
  } catch {
    return [];
  }
}
