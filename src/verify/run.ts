import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ipaddr from 'ipaddr.js';
import { portSetHas, portSetSize } from '../catalog/port-set.ts';
import { parsePortSpec } from '../catalog/port-spec.ts';
import { compilePolicy } from '../compile/registry.ts';
import { PortwardenError } from '../errors.ts';
import { NetnsLab } from '../lab/netns.ts';
import { runCommand } from '../lab/run.ts';
import {
  cidrContains,
  expectedInbound,
  expectedOutbound,
  expectedRouted,
  isZoneMember,
} from '../policy/expect.ts';
import type { Forward, Policy } from '../policy/types.ts';
import {
  comparePorts,
  labSide,
  labSubnet,
  planExtraPeers,
  planLab,
  samplePorts,
  type Difference,
  type ExtraPeer,
  type LabZone,
} from './plan.ts';

const BIN = fileURLToPath(new URL('../../bin/portwarden.js', import.meta.url));

export interface VerifyOptions {
  backend: 'nftables' | 'iptables';
  /**
   * A ruleset the user wrote, checked against the policy instead of the compiled one: one nft file,
   * or iptables-restore files with suffix .v4 / .v6 (a missing family stays without rules).
   */
  rulesetFiles?: { suffix: string; content: string }[];
  /** TCP ports to probe from and to each zone's main peer (default all 65,535). */
  ports: string;
  /** Probe tasks run at once (default 2: one per core of the reference machine). */
  parallel?: number;
  version: string;
  onStep?: (text: string) => void;
}

export interface VerifyResult {
  ok: boolean;
  differences: Difference[];
  probes: number;
  lab: { zone: string; interface: string; host: string[]; peer: string[]; extraPeers: string[] }[];
  /** What was checked, one line each (for the text report). */
  checks: string[];
}

interface ScanJson {
  hosts: { address: string; ports: { port: number; state: string; protocol: string }[] }[];
}

/** A runnable piece of the verification: it returns its differences and how many probes it sent. */
type Task = { label: string; run: () => Promise<{ differences: Difference[]; probes: number }> };

interface SweepTarget {
  address: string;
  where: Omit<Parameters<typeof comparePorts>[0], 'protocol'>;
  expected: Parameters<typeof comparePorts>[1];
}

/** One scanner run from one namespace to several targets, TCP and UDP ports at once. */
interface Sweep {
  label: string;
  ns: string;
  targets: SweepTarget[];
  tcp: string | null;
  udp: string | null;
}

type Observed = Map<string, { tcp: Map<number, string>; udp: Map<number, string> }>;

function canonical(address: string): string {
  return ipaddr.parse(address).toString();
}

/**
 * Runs portwarden's scanner inside a namespace. The lab loses no packets: one probe per port is
 * enough (--retries 0), many may be in flight from the start, and targets answer every ICMP error at
 * once (the lab turns the rate limit off).
 */
async function scanFrom(
  lab: NetnsLab,
  ns: string,
  targets: readonly string[],
  ports: { tcp: string | null; udp: string | null },
  timeoutMs = LAB_TIMEOUT_MS,
): Promise<Observed> {
  const spec = [ports.tcp ? `T:${ports.tcp}` : '', ports.udp ? `U:${ports.udp}` : '']
    .filter(Boolean)
    .join(',');
  const result = await lab.exec(
    ns,
    [
      process.execPath,
      BIN,
      'scan',
      ...targets,
      '-p',
      spec,
      '--retries',
      '0',
      '--timeout',
      String(timeoutMs),
      '--min-parallelism',
      '2048',
      '--concurrency',
      '8192',
      '--icmp-budget',
      '100000',
      '--json',
      '--show-all',
    ],
    { timeoutMs: 300_000 },
  );
  const json = JSON.parse(result.stdout) as ScanJson;
  const out: Observed = new Map();
  for (const host of json.hosts) {
    const entry = { tcp: new Map<number, string>(), udp: new Map<number, string>() };
    for (const p of host.ports) (p.protocol === 'udp' ? entry.udp : entry.tcp).set(p.port, p.state);
    out.set(canonical(host.address), entry);
  }
  return out;
}

function sweepTask(lab: NetnsLab, sweep: Sweep): Task {
  return {
    label: sweep.label,
    run: async () => {
      const observed = await scanFrom(
        lab,
        sweep.ns,
        sweep.targets.map((t) => t.address),
        sweep,
      );
      let probes = 0;
      const differences: Difference[] = [];
      for (const target of sweep.targets) {
        const seen = observed.get(canonical(target.address)) ?? { tcp: new Map(), udp: new Map() };
        probes += seen.tcp.size + seen.udp.size;
        const compare = (): Difference[] =>
          (['tcp', 'udp'] as const).flatMap((protocol) =>
            sweep[protocol] === null
              ? []
              : comparePorts({ ...target.where, protocol }, target.expected, seen[protocol]),
          );
        let found = compare();
        if (found.length > 0) {
          // a verdict against the policy is confirmed with a generous timeout before it is reported
          const list = (protocol: 'tcp' | 'udp'): string | null =>
            found
              .filter((d) => d.protocol === protocol)
              .map((d) => d.ports)
              .join(',') || null;
          const again = await scanFrom(
            lab,
            sweep.ns,
            [target.address],
            { tcp: list('tcp'), udp: list('udp') },
            CONFIRM_TIMEOUT_MS,
          );
          const re = again.get(canonical(target.address));
          for (const protocol of ['tcp', 'udp'] as const) {
            for (const [port, state] of re?.[protocol] ?? []) seen[protocol].set(port, state);
            probes += re?.[protocol].size ?? 0;
          }
          found = compare();
        }
        differences.push(...found);
      }
      return { differences, probes };
    },
  };
}

/**
 * A veth round trip takes microseconds; 250 ms leaves room for a loaded machine. Ports whose verdict
 * disagrees with the policy are probed again with a generous timeout before they are reported.
 */
const LAB_TIMEOUT_MS = 250;
const CONFIRM_TIMEOUT_MS = 2000;

/** Runs tasks with at most `limit` at once, in order of submission. */
async function pool(
  tasks: readonly Task[],
  limit: number,
  onStep?: (text: string) => void,
): Promise<{ differences: Difference[]; probes: number }> {
  const results: { differences: Difference[]; probes: number }[] = tasks.map(() => ({
    differences: [],
    probes: 0,
  }));
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(limit, tasks.length)) }, async () => {
      for (let i = next++; i < tasks.length; i = next++) {
        const task = tasks[i];
        if (!task) continue;
        const started = Date.now();
        results[i] = await task.run();
        onStep?.(`${task.label} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
      }
    }),
  );
  return {
    differences: results.flatMap((r) => r.differences),
    probes: results.reduce((n, r) => n + r.probes, 0),
  };
}

const SYSCTLS_LAB = [
  // answer every UDP probe at once, so closed and filtered can be told apart quickly
  'net.ipv4.icmp_ratelimit=0',
  'net.ipv4.icmp_msgs_per_sec=100000',
  'net.ipv4.icmp_msgs_burst=100000',
  'net.ipv6.icmp.ratelimit=0',
];

async function sysctl(lab: NetnsLab, ns: string, settings: readonly string[]): Promise<void> {
  await lab.exec(ns, ['sysctl', '-q', '-w', ...settings], { allowFailure: true });
}

/**
 * The lab's namespaces and links: the host with the policy's interface names, per zone a peer on a
 * bridge (so the zone's extra peers share its link), each extra peer with the routes it needs, and
 * forwarding and the ICMP limits set for probing.
 */
async function buildLab(
  lab: NetnsLab,
  policy: Policy,
  plan: readonly LabZone[],
  extras: readonly ExtraPeer[],
): Promise<{ host: string; peers: Map<string, string>; extraNs: Map<string, string> }> {
  const host = await lab.addNamespace('host');
  await sysctl(lab, host, [...SYSCTLS_LAB, 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
  const peers = new Map<string, string>();
  const extraNs = new Map<string, string>();
  for (const zone of plan) {
    const peer = await lab.addNamespace('peer');
    peers.set(zone.zone, peer);
    await sysctl(lab, peer, SYSCTLS_LAB);
    await lab.link({ ns: host, ifname: zone.hostIf }, { ns: peer, ifname: 'eth0' });
    // the peer's side is a bridge, so extra peers of the zone share the link
    await lab.exec(peer, ['ip', 'link', 'add', 'br0', 'type', 'bridge']);
    await lab.exec(peer, ['ip', 'link', 'set', 'eth0', 'master', 'br0']);
    await lab.exec(peer, ['ip', 'link', 'set', 'br0', 'up']);
    for (const family of [4, 6] as const) {
      const a = labSide(zone, family);
      await lab.addAddress(host, zone.hostIf, `${a.host}/${a.prefix}`);
      await lab.addAddress(peer, 'br0', `${a.peer}/${a.prefix}`);
      await lab.exec(peer, ['ip', `-${family}`, 'route', 'add', 'default', 'via', a.host]);
    }
    if (policy.forwards.some((f) => f.zone === zone.zone && f.toLoopback))
      await sysctl(lab, host, [`net.ipv4.conf.${zone.hostIf}.route_localnet=1`]);
  }
  for (const extra of extras) {
    const zone = plan.find((z) => z.zone === extra.zone);
    const peer = peers.get(extra.zone);
    if (!zone || !peer) continue;
    const ns = await lab.addNamespace('xp');
    extraNs.set(extra.address, ns);
    await sysctl(lab, ns, SYSCTLS_LAB);
    const port = lab.name('bp');
    await lab.link({ ns: peer, ifname: port }, { ns, ifname: 'eth0' });
    await lab.exec(peer, ['ip', 'link', 'set', port, 'master', 'br0']);
    const hostAddr = labSide(zone, extra.family).host;
    const prefix = extra.onLink ? labSide(zone, extra.family).prefix : extra.family === 4 ? 32 : 128;
    await lab.addAddress(ns, 'eth0', `${extra.address}/${prefix}`);
    if (!extra.onLink) {
      await lab.exec(ns, ['ip', `-${extra.family}`, 'route', 'add', hostAddr, 'dev', 'eth0']);
      await lab.exec(host, ['ip', `-${extra.family}`, 'route', 'add', extra.address, 'dev', zone.hostIf]);
    }
    await lab.exec(ns, ['ip', `-${extra.family}`, 'route', 'add', 'default', 'via', hostAddr]);
  }
  return { host, peers, extraNs };
}

/**
 * Proves a ruleset against its policy with real packets. The lab: a host namespace with the policy's
 * interface names and the ruleset loaded; per zone a peer namespace (a bridge, so further peers can
 * join) inside the zone's sources, plus peers inside each `from`/`to` range and one outside them.
 * Probed: every TCP port from each main peer to the host and back (egress), a sample of TCP and the
 * policy's UDP ports from every extra peer, routed traffic between zone peers, each port forward end to
 * end, and FTP sessions (passive and active) where the policy allows FTP; IPv4 and IPv6. Each verdict
 * is compared with what the policy itself allows. Every namespace and process is removed afterwards.
 */
export async function verifyPolicy(policy: Policy, options: VerifyOptions): Promise<VerifyResult> {
  if (process.getuid?.() !== 0) {
    throw new PortwardenError('NOT_ROOT', 'verify builds network namespaces and needs root', {
      hint: 'run it as root (e.g. sudo portwarden verify policy.yaml)',
    });
  }
  const plan = planLab(policy);
  const extras = planExtraPeers(policy, plan);
  const lab = new NetnsLab('vfy');
  const dir = mkdtempSync(join(tmpdir(), 'pw-verify-'));
  const checks: string[] = [];
  try {
    options.onStep?.('building the lab');
    const { host, peers, extraNs } = await buildLab(lab, policy, plan, extras);
    const forwardTargets = await placeForwardTargets(lab, policy, plan, host, peers, extraNs);
    await loadRuleset(lab, host, policy, options, dir);

    const tcpSample = samplePorts(policy, 'tcp', options.ports);
    const udpPorts = samplePorts(policy, 'udp');
    const sweeps: Sweep[] = [];
    for (const zone of plan) {
      sweeps.push({
        label: `zone ${zone.zone}: egress from the host to ${zone.v4.peer} and ${zone.v6.peer}`,
        ns: host,
        tcp: options.ports,
        udp: udpPorts,
        targets: ([4, 6] as const).map((family): SweepTarget => {
          const a = labSide(zone, family);
          return {
            address: a.peer,
            where: { zone: zone.zone, direction: 'outbound', family, peer: a.peer },
            expected: expectedOutbound(policy, zone.zone, family, a.peer),
          };
        }),
      });
    }
    if (extras.length > 0) {
      sweeps.push({
        label: 'egress from the host to the extra peers',
        ns: host,
        tcp: tcpSample,
        udp: udpPorts,
        targets: extras.map((extra) => ({
          address: extra.address,
          where: { zone: extra.zone, direction: 'outbound', family: extra.family, peer: extra.address },
          expected: expectedOutbound(policy, extra.zone, extra.family, extra.address),
        })),
      });
    }
    for (const zone of plan) {
      const peer = peers.get(zone.zone) ?? '';
      sweeps.push({
        label: `zone ${zone.zone}: inbound from ${zone.v4.peer} and ${zone.v6.peer}`,
        ns: peer,
        tcp: options.ports,
        udp: udpPorts,
        targets: ([4, 6] as const).map((family) => {
          const a = labSide(zone, family);
          return {
            address: a.host,
            where: { zone: zone.zone, direction: 'inbound', family, peer: a.peer },
            expected: expectedInbound(policy, zone.zone, family, a.peer),
          };
        }),
      });
      checks.push(`zone ${zone.zone}: TCP ${options.ports} and UDP ${udpPorts} in and out, IPv4 and IPv6`);
      // Routed traffic from this zone's peer to every other zone's peer (the forward chain).
      const routed = plan
        .filter((to) => to !== zone)
        .flatMap((to) =>
          ([4, 6] as const).map((family): SweepTarget => {
            const src = labSide(zone, family).peer;
            const dst = labSide(to, family).peer;
            return {
              address: dst,
              where: { zone: zone.zone, toZone: to.zone, direction: 'routed', family, peer: dst },
              expected: expectedRouted(policy, zone.zone, to.zone, family, src),
            };
          }),
        );
      if (routed.length > 0)
        sweeps.push({
          label: `routed from zone ${zone.zone}`,
          ns: peer,
          tcp: tcpSample,
          udp: udpPorts,
          targets: routed,
        });
    }
    if (plan.length > 1)
      checks.push(`routed traffic between ${plan.length} zones (sampled TCP and UDP), IPv4 and IPv6`);
    for (const extra of extras) {
      const zone = plan.find((z) => z.zone === extra.zone);
      if (!zone) continue;
      sweeps.push({
        label: `zone ${extra.zone}: inbound from ${extra.address} (${extra.why})`,
        ns: extraNs.get(extra.address) ?? '',
        tcp: tcpSample,
        udp: udpPorts,
        targets: [
          {
            address: labSide(zone, extra.family).host,
            where: { zone: extra.zone, direction: 'inbound', family: extra.family, peer: extra.address },
            expected: expectedInbound(policy, extra.zone, extra.family, extra.address),
          },
        ],
      });
      checks.push(`zone ${extra.zone}: peer ${extra.address} (${extra.why}), sampled TCP and UDP in and out`);
    }
    // Longest first, so the two slots finish together.
    const count = (spec: string | null): number => (spec ? portSetSize(parsePortSpec(spec)) : 0);
    const weight = (sweep: Sweep): number => sweep.targets.length * (count(sweep.tcp) + count(sweep.udp));
    const tasks: Task[] = [...sweeps]
      .sort((x, y) => weight(y) - weight(x))
      .map((sweep) => sweepTask(lab, sweep));
    for (const target of forwardTargets) tasks.push(forwardTask(lab, policy, plan, peers, target));
    if (forwardTargets.length > 0) checks.push(`${forwardTargets.length} port forward(s) end to end`);
    const ftp = await ftpTasks(lab, policy, plan, host, peers);
    tasks.push(...ftp);
    if (ftp.length > 0) checks.push('FTP sessions, passive and active, where the policy allows FTP');
    const outcome = await pool(tasks, options.parallel ?? 2, options.onStep);
    return {
      ok: outcome.differences.length === 0,
      differences: outcome.differences,
      probes: outcome.probes,
      lab: plan.map((z) => ({
        zone: z.zone,
        interface: z.hostIf,
        host: [z.v4.host, z.v6.host],
        peer: [z.v4.peer, z.v6.peer],
        extraPeers: extras.filter((e) => e.zone === z.zone).map((e) => e.address),
      })),
      checks,
    };
  } finally {
    await lab.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function loadRuleset(
  lab: NetnsLab,
  host: string,
  policy: Policy,
  options: VerifyOptions,
  dir: string,
): Promise<void> {
  const files = options.rulesetFiles ?? compilePolicy(policy, options.backend, options.version);
  const units = policy.programs.flatMap((p) =>
    p.match.kind === 'unit' ? [`system.slice/${p.match.unit}`] : [],
  );
  const loads = files.map((compiled) => {
    const file = join(dir, `ruleset${compiled.suffix}`);
    writeFileSync(file, compiled.content);
    if (options.backend === 'nftables') return `nft -f ${file}`;
    return `${compiled.suffix === '.v6' ? 'ip6tables-restore' : 'iptables-restore'} ${file}`;
  });
  if (options.backend === 'nftables' || units.length === 0) {
    // nft resolves `socket cgroupv2` paths itself under /sys/fs/cgroup: a tmpfs with the policy's
    // units stands in for it, in a private mount namespace.
    const dirs = units.map((u) => `/sys/fs/cgroup/${u}`).join(' ') || '/sys/fs/cgroup/x';
    await lab.exec(host, [
      'unshare',
      '-m',
      'sh',
      '-c',
      `mount -t tmpfs pwcg /sys/fs/cgroup && mkdir -p ${dirs} && ${loads.join(' && ')}`,
    ]);
    return;
  }
  // The kernel resolves iptables' `-m cgroup --path` in the cgroup2 hierarchy, relative to the
  // loader's cgroup namespace: the lab makes a temporary empty cgroup with the units below it, loads
  // from a cgroup namespace rooted there, and removes it all again.
  const mountDir = join(dir, 'cgroup2');
  const root = join(mountDir, `portwarden-verify-${process.pid}`);
  await runCommand('mkdir', ['-p', mountDir]);
  await runCommand('mount', ['-t', 'cgroup2', 'none', mountDir]);
  try {
    await runCommand('mkdir', ['-p', ...units.map((u) => join(root, u))]);
    await lab.exec(host, [
      'sh',
      '-c',
      `echo $$ > ${root}/cgroup.procs && exec unshare -C sh -c '${loads.join(' && ')}'`,
    ]);
  } finally {
    const remove = [...units.flatMap((u) => [join(root, u), join(root, u.split('/')[0] ?? '')]), root];
    // deepest first: a cgroup can only be removed once its children are
    const ordered = [...new Set(remove)].sort((a, b) => b.split('/').length - a.split('/').length);
    for (const d of ordered) await runCommand('rmdir', [d], { allowFailure: true });
    await runCommand('umount', [mountDir], { allowFailure: true });
  }
}

interface ForwardTarget {
  forward: Forward;
  /** The namespace that serves the forward's target. */
  ns: string;
}

/**
 * Puts each forward's target address where the lab can serve it: on the host's loopback, in the peer
 * namespace of the zone whose subnet holds it, or else on another zone's peer with host routes.
 */
async function placeForwardTargets(
  lab: NetnsLab,
  policy: Policy,
  plan: readonly LabZone[],
  host: string,
  peers: ReadonlyMap<string, string>,
  extraNs: ReadonlyMap<string, string>,
): Promise<ForwardTarget[]> {
  const out: ForwardTarget[] = [];
  const served = new Map<string, string[]>();
  for (const forward of policy.forwards) {
    let ns: string;
    const extra = extraNs.get(forward.toAddress);
    if (forward.toLoopback) ns = host;
    else if (extra !== undefined)
      ns = extra; // an extra peer already has the address: serve it there
    else {
      const family = forward.toFamily;
      const home =
        plan.find((z) => cidrContains(labSubnet(z, family), forward.toAddress)) ??
        plan.find((z) => z.zone !== forward.zone) ??
        plan[0];
      if (!home) continue;
      ns = peers.get(home.zone) ?? '';
      const peerAddr = labSide(home, family).peer;
      if (forward.toAddress !== peerAddr) {
        const onLink = cidrContains(labSubnet(home, family), forward.toAddress);
        const prefix = onLink ? labSubnet(home, family).prefix : family === 4 ? 32 : 128;
        await lab.addAddress(ns, 'br0', `${forward.toAddress}/${prefix}`).catch(() => undefined);
        if (!onLink)
          await lab.exec(host, ['ip', `-${family}`, 'route', 'add', forward.toAddress, 'dev', home.hostIf], {
            allowFailure: true,
          });
      }
    }
    const spec = `${forward.protocol}:${forward.toFamily === 6 ? `[${forward.toAddress}]` : forward.toAddress}:${forward.toPort}`;
    served.set(ns, [...(served.get(ns) ?? []), spec]);
    out.push({ forward, ns });
  }
  for (const [ns, specs] of served) await startServers(lab, ns, [...new Set(specs)]);
  return out;
}

async function startServers(lab: NetnsLab, ns: string, specs: readonly string[]): Promise<void> {
  const child = lab.spawn(ns, [process.execPath, BIN, 'lab-server', ...specs]);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new PortwardenError('NETNS_SETUP_FAILED', `lab servers ${specs.join(' ')} did not start`)),
      10_000,
    );
    let err = '';
    child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.stdout?.once('data', () => {
      clearTimeout(timer);
      resolve();
    });
    child.once('exit', () => {
      clearTimeout(timer);
      reject(
        new PortwardenError('NETNS_SETUP_FAILED', `lab servers ${specs.join(' ')} exited: ${err.trim()}`),
      );
    });
  });
}

/** A forward works when a zone member reaches the target through the host's address and port. */
function forwardTask(
  lab: NetnsLab,
  policy: Policy,
  plan: readonly LabZone[],
  peers: ReadonlyMap<string, string>,
  target: ForwardTarget,
): Task {
  const { forward } = target;
  const zone = plan.find((z) => z.zone === forward.zone);
  const family = forward.toFamily;
  const label = `forward ${forward.zone} ${forward.protocol}/${forward.listenPort} -> ${forward.toAddress}:${forward.toPort}`;
  return {
    label,
    run: async () => {
      if (!zone) return { differences: [], probes: 0 };
      const a = labSide(zone, family);
      const policyZone = policy.zones.find((z) => z.name === forward.zone);
      const member = policyZone !== undefined && isZoneMember(policyZone, a.peer);
      const allowedSource =
        forward.sources.length === 0 || forward.sources.some((c) => cidrContains(c, a.peer));
      const expected = member && allowedSource ? 'pass' : 'block';
      const ports = String(forward.listenPort);
      const observed = await scanFrom(
        lab,
        peers.get(forward.zone) ?? '',
        [a.host],
        forward.protocol === 'tcp' ? { tcp: ports, udp: null } : { tcp: null, udp: ports },
        CONFIRM_TIMEOUT_MS,
      );
      // open means the connection reached the lab server behind the forward; closed or filtered means not
      const state = observed.get(canonical(a.host))?.[forward.protocol].get(forward.listenPort);
      const seen = state === 'open' ? 'pass' : 'block';
      const differences: Difference[] =
        seen === expected
          ? []
          : [
              {
                zone: forward.zone,
                direction: 'forward',
                family,
                protocol: forward.protocol,
                ports: `${forward.listenPort}->${forward.toAddress}:${forward.toPort}`,
                expected,
                observed: seen,
                peer: a.peer,
              },
            ];
      return { differences, probes: 1 };
    },
  };
}

/** FTP sessions from each zone peer allowed to reach tcp/21, passive and active, both families. */
async function ftpTasks(
  lab: NetnsLab,
  policy: Policy,
  plan: readonly LabZone[],
  host: string,
  peers: ReadonlyMap<string, string>,
): Promise<Task[]> {
  const wanted = plan.flatMap((zone) =>
    ([4, 6] as const)
      .map((family) => ({ zone, family, a: labSide(zone, family) }))
      .filter(({ zone: z, family, a }) =>
        portSetHas(expectedInbound(policy, z.zone, family, a.peer), 'tcp', 21),
      ),
  );
  if (wanted.length === 0) return [];
  const passive = policy.zones.find((z) => z.ftpPassive !== null)?.ftpPassive ?? null;
  const range = passive ? `:${passive.from}-${passive.to}` : '';
  await startServers(lab, host, [
    ...new Set(wanted.map(({ family, a }) => `ftp:${family === 6 ? `[${a.host}]` : a.host}:21${range}`)),
  ]);
  return plan.flatMap((zone) => {
    const mine = wanted.filter((w) => w.zone === zone);
    if (mine.length === 0) return [];
    return [
      {
        label: `zone ${zone.zone}: FTP sessions, passive and active`,
        run: async () => {
          const result = await lab.exec(
            peers.get(zone.zone) ?? '',
            [process.execPath, BIN, 'lab-ftp', '21', ...mine.map((w) => w.a.host)],
            { timeoutMs: 60_000, allowFailure: true },
          );
          let sessions: { host: string; ok: boolean; mode: 'passive' | 'active' }[] = [];
          try {
            sessions = JSON.parse(result.stdout) as typeof sessions;
          } catch {
            sessions = [];
          }
          const differences: Difference[] = [];
          for (const w of mine) {
            for (const mode of ['passive', 'active'] as const) {
              const ok = sessions.some((x) => x.host === w.a.host && x.mode === mode && x.ok);
              if (!ok)
                differences.push({
                  zone: zone.zone,
                  direction: 'inbound',
                  family: w.family,
                  protocol: 'ftp',
                  ports: mode,
                  expected: 'pass',
                  observed: 'block',
                  peer: w.a.peer,
                });
            }
          }
          return { differences, probes: mine.length * 2 };
        },
      },
    ];
  });
}

/** Checks that the tools verify needs are present (exit 3 naming the missing one). */
export async function checkVerifyTools(backend: string): Promise<void> {
  for (const tool of ['ip', backend === 'nftables' ? 'nft' : 'iptables-restore']) {
    await runCommand('sh', ['-c', `command -v ${tool}`]).catch(() => {
      throw new PortwardenError('TOOL_MISSING', `verify needs "${tool}"`, {
        hint: `install it (Debian: apt-get install ${tool === 'ip' ? 'iproute2' : tool === 'nft' ? 'nftables' : 'iptables'})`,
      });
    });
  }
}
