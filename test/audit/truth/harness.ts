import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsLab } from '../../../src/lab/netns.ts';
import { runCommand } from '../../../src/system/run.ts';
import { BIN, ROOT } from '../../helpers/cli.ts';
import {
  auditVerdict,
  enumerateCells,
  judge,
  listenerLabel,
  probesOf,
  readExposure,
  truthOf,
  type Cell,
  type HostInterface,
  type Judged,
  type Listener,
  type Probe,
  type ProbeResult,
  type Protocol,
} from './cells.ts';

const SERVE = fileURLToPath(new URL('./serve.mjs', import.meta.url));
const PROBE = fileURLToPath(new URL('./probe.mjs', import.meta.url));

/** A connect that neither completes nor is refused within this time counts as not reachable. */
export const PROBE_TIMEOUT_MS = 1500;
/**
 * A datagram's answer comes from the echo server, a process that a loaded machine may not schedule at
 * once (a SYN-ACK comes from the kernel): UDP waits twice as long.
 */
const UDP_TIMEOUT_MS = 2 * PROBE_TIMEOUT_MS;
/** A scenario sends at most this many probes (each bounded by PROBE_TIMEOUT_MS). */
export const MAX_PROBES = 400;

/**
 * The host every scenario starts from: eth0 and eth1, each facing a peer namespace. Each peer holds a
 * source inside the rules' from-ranges (198.51.100.0/26, 203.0.113.0/26, 2001:db8::/120,
 * 2001:db8:1::/120) and one outside them, plus a link-local address.
 */
export const ETH0: HostInterface = {
  name: 'eth0',
  addresses: ['198.51.100.1', '2001:db8::1', 'fe80::1'],
  peerAddresses: ['198.51.100.10', '198.51.100.100', '2001:db8::10', '2001:db8::1:10', 'fe80::10'],
};
export const ETH1: HostInterface = {
  name: 'eth1',
  addresses: ['203.0.113.1', '2001:db8:1::1', 'fe80::1'],
  peerAddresses: ['203.0.113.10', '203.0.113.100', '2001:db8:1::10', '2001:db8:1::1:10', 'fe80::10'],
};
const PREFIX: Record<string, number> = { '198.51.100': 25, '203.0.113': 25 };

function withPrefix(address: string): string {
  if (address.includes(':')) return `${address}/64`;
  return `${address}/${PREFIX[address.split('.').slice(0, 3).join('.')] ?? 24}`;
}

/** A bridge on the host (docker0, cni0) with namespaces behind it: containers, pods, a client. */
export interface Bridge {
  name: string;
  /** The host's addresses on the bridge (IPv4, and IPv6 if any), with their prefix lengths. */
  cidrs: string[];
  backends: { addresses: string[]; listeners: string[] }[];
  /** The bridge's peer for the truth: one more namespace on the bridge that only sends, its addresses. */
  client: string[];
}

export interface Scenario {
  name: string;
  /** What the scenario models, for the table heading. */
  title: string;
  tools: string[];
  listeners: Listener[];
  /** Ports published by DNAT with nothing listening on the host (kube NodePorts). */
  published?: Listener[];
  sports?: { proto: Protocol; port: number; sport: number }[];
  extraAddresses?: { iface: 'eth0' | 'eth1'; address: string }[];
  bridges?: Bridge[];
  /**
   * New connections per second the ruleset lets through from everyone together (a global SYN limit
   * such as fw4's syn_flood): the peers then start their probes spaced below that rate, so a probe
   * is refused by the ruleset's rules, never by its rate limit as a burst of probes would be.
   */
  probeRate?: number;
  /** Loads the ruleset into the host namespace, the way the tool it models does. */
  load(host: HostContext): Promise<void>;
}

export interface HostContext {
  lab: NetnsLab;
  ns: string;
  /** A private directory for files the scenario writes. */
  dir: string;
  run(argv: readonly string[], input?: string): Promise<string>;
}

export interface ScenarioResult {
  scenario: Scenario;
  judged: Judged[];
  /** The ruleset as the kernel holds it (nft -a, legacy x_tables), for the failure report. */
  rulesetText: string;
  probes: number;
  seconds: number;
  /** Seconds spent per phase (build, listeners, ruleset, audit, probes): where the time goes. */
  phases: Record<string, number>;
}

/**
 * One `ip` process per namespace for its links, addresses and routes: `ip -n` enters the namespace
 * itself, cheaper than a command per line through `ip netns exec` on a loaded machine.
 */
async function ipBatch(ns: string, lines: string[]): Promise<void> {
  if (lines.length > 0) await runCommand('ip', ['-n', ns, '-batch', '-'], { input: `${lines.join('\n')}\n` });
}

/** Link-local addresses are fixed (fe80::1 host, fe80::10 peer) instead of derived from the MAC. */
function linkLines(ifname: string, addresses: readonly string[]): string[] {
  return [
    `link set ${ifname} addrgenmode none`,
    `link set ${ifname} up`,
    ...addresses.map((a) => `addr add ${withPrefix(a)} dev ${ifname}${a.includes(':') ? ' nodad' : ''}`),
  ];
}

/**
 * A veth pair named as the scenario wants it at both ends, created straight into both namespaces
 * (one `ip` call instead of a create, rename and up per end); deleting the namespaces removes it.
 */
async function veth(a: { ns: string; ifname: string }, b: { ns: string; ifname: string }): Promise<void> {
  await runCommand('ip', [
    'link',
    'add',
    a.ifname,
    'netns',
    a.ns,
    'type',
    'veth',
    'peer',
    'name',
    b.ifname,
    'netns',
    b.ns,
  ]);
}

async function addPeer(lab: NetnsLab, host: string, iface: HostInterface, extra: string[]): Promise<string> {
  const peer = await lab.addNamespace('p');
  await veth({ ns: host, ifname: iface.name }, { ns: peer, ifname: 'eth0' });
  const gw4 = iface.addresses.find((a) => !a.includes(':'));
  const gw6 = iface.addresses.find((a) => a.includes(':') && !a.startsWith('fe80'));
  await Promise.all([
    ipBatch(host, linkLines(iface.name, [...iface.addresses, ...extra])),
    ipBatch(peer, [
      ...linkLines('eth0', iface.peerAddresses),
      `route add default via ${gw4}`,
      `route add default via ${gw6}`,
    ]),
  ]);
  return peer;
}

async function addBridge(lab: NetnsLab, host: string, bridge: Bridge): Promise<{ client: string }> {
  const nodad = (cidr: string) => (cidr.includes(':') ? ' nodad' : '');
  await ipBatch(host, [
    `link add ${bridge.name} type bridge`,
    ...bridge.cidrs.map((cidr) => `addr add ${cidr} dev ${bridge.name}${nodad(cidr)}`),
    `link set ${bridge.name} up`,
  ]);
  // each member takes the prefix length of the bridge address of its family and routes through it
  const onBridge = (address: string) =>
    bridge.cidrs.find((c) => c.includes(':') === address.includes(':'))?.split('/') ?? [];
  const member = async (addresses: string[]): Promise<string> => {
    const ns = await lab.addNamespace('c');
    const port = lab.name('vb');
    await veth({ ns: host, ifname: port }, { ns, ifname: 'eth0' });
    const lines = addresses.flatMap((a) => {
      const [gateway = '', bits = '24'] = onBridge(a);
      return [`addr add ${a}/${bits} dev eth0${nodad(a)}`, `route add default via ${gateway}`];
    });
    await Promise.all([
      ipBatch(host, [`link set ${port} master ${bridge.name}`, `link set ${port} up`]),
      ipBatch(ns, ['link set eth0 up', ...lines]),
    ]);
    return ns;
  };
  const backends = bridge.backends.map(async (backend) => {
    const ns = await member(backend.addresses);
    await startListeners(lab, ns, backend.listeners, undefined);
  });
  const [client] = await Promise.all([member(bridge.client), ...backends]);
  return { client };
}

function serveSpec(l: Listener): string {
  const host = l.host.includes(':') ? `[${l.host}]` : l.host;
  return `${l.proto}${l.v6only ? '6only' : ''}:${host}:${l.port}`;
}

/** Starts serve.mjs (as `uid` when given) and waits for its "ready", at most 20 s. */
async function startListeners(lab: NetnsLab, ns: string, specs: string[], uid: number | undefined) {
  if (specs.length === 0) return;
  const drop = uid === undefined ? [] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];
  const child = lab.spawn(ns, [...drop, process.execPath, SERVE, ...specs]);
  const timeout = AbortSignal.timeout(20_000);
  const [line] = (await once(child.stdout!, 'data', { signal: timeout })) as [Buffer];
  if (!line.toString().includes('ready')) throw new Error(`listeners ${specs.join(' ')} did not start`);
}

async function readRulesetText(ctx: HostContext): Promise<string> {
  const parts: string[] = [];
  for (const argv of [
    ['nft', '-a', 'list', 'ruleset'],
    ['iptables-legacy-save'],
    ['ip6tables-legacy-save'],
  ]) {
    const result = await ctx.lab.exec(ctx.ns, argv, { allowFailure: true });
    if (result.stdout.trim() !== '') parts.push(`# ${argv.join(' ')}\n${result.stdout.trim()}`);
  }
  return parts.join('\n');
}

async function runAudit(ctx: HostContext): Promise<unknown> {
  const result = await ctx.lab.exec(
    ctx.ns,
    [process.execPath, BIN, 'audit', '--json', '--profile', 'server'],
    { allowFailure: true, timeoutMs: 60_000 },
  );
  try {
    return JSON.parse(result.stdout);
  } catch {
    throw new Error(`audit --json exited ${result.status}: ${result.stderr.trim().slice(0, 500)}`);
  }
}

async function runProbes(lab: NetnsLab, ns: string, probes: Probe[]): Promise<ProbeResult[]> {
  if (probes.length === 0) return [];
  const result = await lab.exec(ns, [process.execPath, PROBE], {
    input: JSON.stringify(probes),
    timeoutMs: 30_000,
  });
  return JSON.parse(result.stdout) as ProbeResult[];
}

/** The host namespace with its peers: which namespace faces which host interface. */
interface Host {
  ctx: HostContext;
  interfaces: HostInterface[];
  peers: Map<string, string>;
}

/** The host namespace, a peer per interface, the scenario's bridges with their namespaces behind. */
async function buildHost(lab: NetnsLab, scenario: Scenario, dir: string): Promise<Host> {
  const ns = await lab.addNamespace('h');
  const run = async (argv: readonly string[], input?: string) =>
    (await lab.exec(ns, argv, input === undefined ? {} : { input })).stdout;
  const extra = (name: string) =>
    (scenario.extraAddresses ?? []).filter((e) => e.iface === name).map((e) => e.address);
  const bridges = scenario.bridges ?? [];
  if (bridges.length > 0) await run(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  if (bridges.some((b) => b.cidrs.some((c) => c.includes(':'))))
    await run(['sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
  const peers = new Map<string, string>();
  await Promise.all([
    ...[ETH0, ETH1].map(async (i) => peers.set(i.name, await addPeer(lab, ns, i, extra(i.name)))),
    ...bridges.map(async (b) => peers.set(b.name, (await addBridge(lab, ns, b)).client)),
  ]);
  const interfaces: HostInterface[] = [
    ...[ETH0, ETH1].map((i) => ({ ...i, addresses: [...i.addresses, ...extra(i.name)] })),
    ...bridges.map((b) => ({
      name: b.name,
      addresses: b.cidrs.map((c) => c.split('/')[0] ?? ''),
      peerAddresses: b.client,
    })),
  ];
  return { ctx: { lab, ns, dir, run }, interfaces, peers };
}

/** Every cell's probes, sent by the peer facing the cell's interface (all peers at once). */
async function probeCells(
  host: Host,
  cells: readonly Cell[],
  probeRate: number | undefined,
): Promise<Map<string, ProbeResult>> {
  const byPeer = new Map<string, Probe[]>();
  const all: Probe[] = [];
  cells.forEach((cell, i) => {
    const probes = probesOf(
      cell,
      i,
      'eth0',
      cell.listener.proto === 'udp' ? UDP_TIMEOUT_MS : PROBE_TIMEOUT_MS,
    );
    byPeer.set(cell.iface, [...(byPeer.get(cell.iface) ?? []), ...probes]);
    all.push(...probes);
  });
  if (all.length > MAX_PROBES)
    throw new Error(`${all.length} probes: more than ${MAX_PROBES}, split the scenario`);
  if (probeRate !== undefined) all.forEach((probe, i) => (probe.delayMs = Math.ceil((i * 1000) / probeRate)));
  const results = new Map<string, ProbeResult>();
  await Promise.all(
    [...byPeer].map(async ([iface, probes]) => {
      for (const r of await runProbes(host.ctx.lab, host.peers.get(iface) ?? '', probes))
        results.set(r.id, r);
    }),
  );
  return results;
}

/** Seconds since the previous lap, per phase name. */
function stopwatch(): { lap: (name: string) => void; phases: Record<string, number> } {
  const phases: Record<string, number> = {};
  let mark = Date.now();
  return {
    phases,
    lap: (name) => {
      phases[name] = (Date.now() - mark) / 1000;
      mark = Date.now();
    },
  };
}

/**
 * Builds the scenario's host, loads its ruleset, audits it from inside and probes every cell from
 * the peers; always removes every namespace and process it made. `tag` keeps the names of scenarios
 * running at once apart.
 */
export async function runScenario(scenario: Scenario, dir: string, tag: string): Promise<ScenarioResult> {
  const started = Date.now();
  const lab = new NetnsLab(tag);
  const { lap, phases } = stopwatch();
  try {
    const host = await buildHost(lab, scenario, dir);
    lap('build');
    for (const uid of new Set(scenario.listeners.map((l) => l.uid))) {
      const mine = scenario.listeners.filter((l) => l.uid === uid);
      await startListeners(lab, host.ctx.ns, mine.map(serveSpec), uid);
    }
    lap('listeners');
    await scenario.load(host.ctx);
    lap('ruleset');
    const rows = readExposure(await runAudit(host.ctx));
    lap('audit');
    const listeners = [...scenario.listeners, ...(scenario.published ?? [])];
    const cells = enumerateCells(scenario.name, listeners, host.interfaces, scenario.sports);
    const results = await probeCells(host, cells, scenario.probeRate);
    lap('probes');
    const judged = cells.map((cell, i) => judge(cell, auditVerdict(rows, cell), truthOf(cell, i, results)));
    const rulesetText = await readRulesetText(host.ctx);
    const seconds = (Date.now() - started) / 1000;
    return { scenario, judged, rulesetText, probes: results.size, seconds, phases };
  } finally {
    await lab.dispose();
  }
}

/** Writes a file the scenario's tool reads (an iptables-restore input, an nft script). */
export function writeScenarioFile(ctx: HostContext, name: string, content: string): string {
  const file = join(ctx.dir, `${ctx.ns}-${name}`);
  writeFileSync(file, content);
  return file;
}

export { listenerLabel, ROOT };
