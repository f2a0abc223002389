import { requiredKernelSettings } from '../apply/kernel-settings.ts';
import { PortwardenError } from '../errors.ts';
import type { NetnsLab } from '../lab/netns.ts';
import { loadIntoNamespace, type LabRuleset } from '../ruleset/load-live.ts';
import { runCommand } from '../system/run.ts';
import { cidrContains } from '../catalog/address.ts';
import { privateEntry } from '../lab/private-entry.ts';
import type { Policy } from '../policy/types.ts';
import { labSide, labSubnet, type ExtraPeer, type LabZone } from './plan.ts';
import { settleOnce } from '../system/settle.ts';
import {
  PRIORITY_FIRST,
  PRIORITY_PASS,
  TABLE_IN_INET,
  TABLE_IN_NETDEV,
  TABLE_PASS,
  recorderInRuleset,
  recorderPassRuleset,
  type RecorderSpec,
} from './recorder.ts';

/** The lab's private worker (lab/worker-entry.ts compiled): `node LAB_WORKER server SPEC...` / `ftp-client PORT HOST...`. */
export const LAB_WORKER = privateEntry(import.meta.url, '../lab/worker-entry');

/** The lab's namespaces: the host, each zone's main peer, each extra peer; addresses to their namespace. */
export interface LabNamespaces {
  host: string;
  peers: Map<string, string>;
  extraNs: Map<string, string>;
}

async function sysctl(lab: NetnsLab, ns: string, settings: readonly string[]): Promise<void> {
  await lab.exec(ns, ['sysctl', '-q', '-w', ...settings], { allowFailure: true });
}

/**
 * `ip` commands collected for the whole lab and run as one `ip -batch` for the links between
 * namespaces plus one per namespace: a lab of ten namespaces is a dozen processes, not a hundred.
 */
class IpScript {
  readonly global: string[] = [];
  readonly inside = new Map<string, string[]>();

  constructor(private readonly lab: NetnsLab) {}

  name(kind: string): string {
    return this.lab.name(kind);
  }

  namespace(kind: string): string {
    const name = this.lab.name(kind);
    this.global.push(`netns add ${name}`);
    this.lab.adoptNamespace(name);
    this.in(name, 'link set lo up');
    return name;
  }

  in(ns: string, command: string): void {
    this.inside.set(ns, [...(this.inside.get(ns) ?? []), command]);
  }

  /** A veth pair between two namespaces, named and up on both sides. */
  link(a: { ns: string; ifname: string }, b: { ns: string; ifname: string }): void {
    const tmpA = this.lab.name('va');
    const tmpB = this.lab.name('vb');
    this.global.push(`link add ${tmpA} netns ${a.ns} type veth peer name ${tmpB} netns ${b.ns}`);
    for (const [side, tmp] of [
      [a, tmpA],
      [b, tmpB],
    ] as const) {
      this.in(side.ns, `link set ${tmp} name ${side.ifname}`);
      this.in(side.ns, `link set ${side.ifname} up`);
    }
  }

  address(ns: string, ifname: string, cidr: string): void {
    this.in(ns, `addr add ${cidr} dev ${ifname}${cidr.includes(':') ? ' nodad' : ''}`);
  }

  async run(): Promise<void> {
    await runCommand('ip', ['-batch', '-'], { input: `${this.global.join('\n')}\n` });
    await Promise.all(
      [...this.inside].map(([ns, commands]) =>
        runCommand('ip', ['-n', ns, '-batch', '-'], { input: `${commands.join('\n')}\n` }),
      ),
    );
  }
}

function addZonePeer(ip: IpScript, host: string, zone: LabZone): string {
  const peer = ip.namespace('peer');
  ip.link({ ns: host, ifname: zone.hostIf }, { ns: peer, ifname: 'eth0' });
  // the peer's side is a bridge, so extra peers of the zone share the link
  ip.in(peer, 'link add br0 type bridge');
  ip.in(peer, 'link set eth0 master br0');
  ip.in(peer, 'link set br0 up');
  for (const family of [4, 6] as const) {
    const a = labSide(zone, family);
    ip.address(host, zone.hostIf, `${a.host}/${a.prefix}`);
    ip.address(peer, 'br0', `${a.peer}/${a.prefix}`);
    ip.in(peer, `route add default via ${a.host}`);
  }
  return peer;
}

function addExtraPeer(ip: IpScript, host: string, zone: LabZone, peer: string, extra: ExtraPeer): string {
  const ns = ip.namespace('xp');
  const port = ip.name('bp');
  ip.link({ ns: peer, ifname: port }, { ns, ifname: 'eth0' });
  ip.in(peer, `link set ${port} master br0`);
  const hostAddr = labSide(zone, extra.family).host;
  const prefix = extra.onLink ? labSide(zone, extra.family).prefix : extra.family === 4 ? 32 : 128;
  ip.address(ns, 'eth0', `${extra.address}/${prefix}`);
  if (!extra.onLink) {
    ip.in(ns, `route add ${hostAddr} dev eth0`);
    ip.in(host, `route add ${extra.address} dev ${zone.hostIf}`);
  }
  ip.in(ns, `route add default via ${hostAddr}`);
  return ns;
}

/**
 * The lab's namespaces and links: the host with the policy's interface names, per zone a peer on a
 * bridge (so the zone's extra peers share its link), each extra peer with the routes it needs.
 * The host gets the kernel settings apply would set for the policy, and forwarding on.
 */
export async function buildLab(
  lab: NetnsLab,
  policy: Policy,
  plan: readonly LabZone[],
  extras: readonly ExtraPeer[],
): Promise<LabNamespaces> {
  const ip = new IpScript(lab);
  const host = ip.namespace('host');
  const peers = new Map<string, string>();
  const extraNs = new Map<string, string>();
  for (const zone of plan) peers.set(zone.zone, addZonePeer(ip, host, zone));
  for (const extra of extras) {
    const zone = plan.find((z) => z.zone === extra.zone);
    const peer = peers.get(extra.zone);
    if (zone && peer) extraNs.set(extra.address, addExtraPeer(ip, host, zone, peer, extra));
  }
  await ip.run();
  // exactly what apply sets for this policy (route_localnet, ...), and forwarding on in any case: a
  // hole in the forward chain is a hole the moment anything (Docker, libvirt) turns forwarding on
  const settings = requiredKernelSettings(policy)
    .filter((s) => s.kind === 'sysctl')
    .map((s) => `${s.name}=${s.value}`);
  await sysctl(lab, host, [
    ...new Set(['net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1', ...settings]),
  ]);
  return { host, peers, extraNs };
}

/**
 * Puts each forward's target address where packets can be routed to it: on the host's loopback, in
 * the peer namespace of the zone whose subnet holds it, or else on another zone's peer with host routes.
 */
export async function placeForwardTargets(
  lab: NetnsLab,
  policy: Policy,
  plan: readonly LabZone[],
  namespaces: LabNamespaces,
): Promise<void> {
  for (const forward of policy.forwards) {
    if (forward.toLoopback || namespaces.extraNs.has(forward.toAddress)) continue;
    const family = forward.toFamily;
    const home =
      plan.find((z) => cidrContains(labSubnet(z, family), forward.toAddress)) ??
      plan.find((z) => z.zone !== forward.zone) ??
      plan[0];
    if (!home) continue;
    const ns = namespaces.peers.get(home.zone) ?? '';
    if (forward.toAddress === labSide(home, family).peer) continue;
    const onLink = cidrContains(labSubnet(home, family), forward.toAddress);
    const prefix = onLink ? labSubnet(home, family).prefix : family === 4 ? 32 : 128;
    await lab.addAddress(ns, 'br0', `${forward.toAddress}/${prefix}`).catch(() => undefined);
    if (!onLink)
      await lab.exec(
        namespaces.host,
        ['ip', `-${family}`, 'route', 'add', forward.toAddress, 'dev', home.hostIf],
        {
          allowFailure: true,
        },
      );
  }
}

async function nftLoad(lab: NetnsLab, ns: string, text: string): Promise<void> {
  await lab.exec(ns, ['nft', '-f', '-'], { input: text });
}

/**
 * Loads the ruleset under test between the recorder's tables: *in* first (so its lowest-priority
 * chains come before any chain of the ruleset at the same priority), then the ruleset, then *pass*.
 * A ruleset that flushes everything takes *in* with it, which is loaded again.
 */
export async function loadWithRecorder(
  lab: NetnsLab,
  host: string,
  ruleset: LabRuleset,
  spec: RecorderSpec,
  dir: string,
): Promise<void> {
  await nftLoad(lab, host, recorderInRuleset(spec));
  await loadIntoNamespace(ruleset, (argv) => lab.exec(host, argv), dir);
  const tables = await lab.exec(host, ['nft', 'list', 'tables']);
  if (!tables.stdout.includes(`table netdev ${TABLE_IN_NETDEV}`))
    await nftLoad(lab, host, recorderInRuleset(spec));
  await nftLoad(lab, host, recorderPassRuleset(spec));
  await checkPriorities(lab, host);
}

interface ChainInfo {
  family: string;
  table: string;
  name: string;
  hook?: string;
  prio?: number;
}

/**
 * The recorder can only bracket the ruleset when no chain of the ruleset shares its priorities, and
 * nothing filters after its last point (a netdev egress chain would).
 */
async function checkPriorities(lab: NetnsLab, host: string): Promise<void> {
  const listing = await lab.exec(host, ['nft', '-j', 'list', 'chains']);
  const items = (JSON.parse(listing.stdout) as { nftables?: { chain?: ChainInfo }[] }).nftables ?? [];
  const ours = new Set([TABLE_IN_NETDEV, TABLE_IN_INET, TABLE_PASS]);
  for (const { chain } of items) {
    if (!chain?.hook || ours.has(chain.table)) continue;
    const where = `chain ${chain.family} ${chain.table} ${chain.name} (hook ${chain.hook}, priority ${chain.prio})`;
    const first = ['ingress', 'output'].includes(chain.hook) && chain.prio === PRIORITY_FIRST;
    const last = ['input', 'postrouting'].includes(chain.hook) && (chain.prio ?? 0) >= PRIORITY_PASS;
    if (first || last || chain.hook === 'egress')
      throw new PortwardenError(
        'VERIFY_UNDECIDED',
        `the ruleset's ${where} sits where verify records packets`,
        {
          hint: `verify records at priority ${PRIORITY_FIRST} (ingress, output) and ${PRIORITY_PASS} (input, postrouting) and cannot see past a netdev egress chain; move the chain to another priority`,
        },
      );
  }
}

/** Starts the lab worker's servers in a namespace and waits until they listen. */
export async function startServers(lab: NetnsLab, ns: string, specs: readonly string[]): Promise<void> {
  const child = lab.spawn(ns, [process.execPath, LAB_WORKER, 'server', ...specs]);
  let err = '';
  // null once the servers listen, else why they do not
  const failure = await settleOnce<string | null>(
    { timeoutMs: 10_000, onTimeout: () => 'did not start' },
    (finish) => {
      child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
      child.stdout?.once('data', () => finish(null));
      child.once('exit', () => finish(`exited: ${err.trim()}`));
    },
  );
  if (failure !== null)
    throw new PortwardenError('NETNS_SETUP_FAILED', `lab servers ${specs.join(' ')} ${failure}`);
}
