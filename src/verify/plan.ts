import { formatRanges, portSetHas, rangesOf, type PortSet } from '../catalog/port-set.ts';
import { parsePortSpec } from '../catalog/port-spec.ts';
import { addressInside, cidrContains } from '../catalog/address.ts';
import type { Cidr, Policy } from '../policy/types.ts';

/**
 * The verify lab, planned from the policy alone (pure): the host namespace gets one interface per
 * zone, named as the policy names it, and each zone one peer namespace whose addresses are members
 * of the zone (inside its `sources`), so every rule of the zone applies to the peer.
 */
export interface LabZone {
  zone: string;
  /** The host's interface for the zone (a wildcard eth* becomes eth0). */
  hostIf: string;
  v4: { host: string; peer: string; prefix: number };
  v6: { host: string; peer: string; prefix: number };
}

/** Zone i's default networks: quarters of 203.0.113.0/24 and 2001:db8:<i+1>::/64. */
function defaultCidr(family: 4 | 6, index: number): Cidr {
  return family === 4
    ? { family: 4, address: `203.0.113.${(index % 4) * 64}`, prefix: 26, text: '' }
    : { family: 6, address: `2001:db8:${(index + 1).toString(16)}::`, prefix: 64, text: '' };
}

/** The zone's addresses and prefix for one family. */
export function labSide(zone: LabZone, family: 4 | 6): LabZone['v4'] {
  return family === 4 ? zone.v4 : zone.v6;
}

/** The zone's lab network for one family, as a CIDR around the host's address. */
export function labSubnet(zone: LabZone, family: 4 | 6): { address: string; prefix: number } {
  const side = labSide(zone, family);
  return { address: side.host, prefix: side.prefix };
}

export function planLab(policy: Policy): LabZone[] {
  return policy.zones.map((zone, index) => {
    const pick = (family: 4 | 6): { host: string; peer: string; prefix: number } => {
      const source = zone.sources.find((c) => c.family === family && c.prefix <= (family === 4 ? 29 : 125));
      const cidr = source ?? defaultCidr(family, index);
      // The peer sits inside the zone's sources; the host shares its subnet to stay on-link.
      return { host: addressInside(cidr, 1), peer: addressInside(cidr, 5), prefix: cidr.prefix };
    };
    const first = zone.interfaces[0] ?? `eth${index}`;
    return {
      zone: zone.name,
      hostIf: first.endsWith('*') ? `${first.slice(0, -1)}0` : first,
      v4: pick(4),
      v6: pick(6),
    };
  });
}

/** One disagreement between the policy and the packets. */
export interface Difference {
  zone: string;
  /** inbound/outbound: to/from this host; routed: between two zone peers; forward: a port forward. */
  direction: 'inbound' | 'outbound' | 'routed' | 'forward';
  family: 4 | 6;
  /** `ftp` is a whole FTP session (control + data connection), `ports` then says passive or active. */
  protocol: 'tcp' | 'udp' | 'ftp';
  ports: string;
  /** How many ports `ports` names (a forward or an FTP session counts as one). */
  count?: number;
  expected: 'pass' | 'block';
  observed: 'pass' | 'block';
  /** The address on the other side (the peer the packets came from or went to). */
  peer?: string;
  /** For routed traffic: the destination zone. */
  toZone?: string;
}

/** A further peer of a zone: inside a rule's `from`/`to` range, or outside every range of the zone. */
export interface ExtraPeer {
  zone: string;
  family: 4 | 6;
  address: string;
  why: string;
  /** Whether the address is inside the zone's lab subnet (else the lab adds host routes). */
  onLink: boolean;
}

const OUTSIDE_CANDIDATES = {
  4: ['203.0.113.250', '198.51.100.250', '203.0.113.190', '198.51.100.190'],
  6: ['2001:db8:ffff::250', '2001:db8:fffe::250'],
} as const;

/**
 * Extra peers per zone (pure): one address inside each `from`/`to` range of the zone's rules (the
 * range's own address for a single host), and one outside every range the zone names, so rules that
 * depend on addresses are seen to apply and not to apply.
 */
export function planExtraPeers(policy: Policy, lab: readonly LabZone[]): ExtraPeer[] {
  const out: ExtraPeer[] = [];
  const taken = new Set(lab.flatMap((z) => [z.v4.host, z.v4.peer, z.v6.host, z.v6.peer]));
  for (const zone of policy.zones) {
    const lz = lab.find((l) => l.zone === zone.name);
    if (!lz) continue;
    for (const family of [4, 6] as const) {
      const subnet = labSubnet(lz, family);
      const add = (address: string, why: string): void => {
        if (taken.has(address)) return;
        taken.add(address);
        out.push({ zone: zone.name, family, address, why, onLink: cidrContains(subnet, address) });
      };
      const ranges: { cidr: Cidr; why: string }[] = [];
      for (const [rules, word] of [
        [zone.inbound, 'from'],
        [zone.outbound, 'to'],
      ] as const) {
        for (const rule of rules)
          for (const c of rule.peers)
            if (c.family === family)
              ranges.push({ cidr: c, why: `${word} ${c.text || `${c.address}/${c.prefix}`}` });
      }
      for (const { cidr, why } of ranges.slice(0, 4)) {
        const single = cidr.prefix === (family === 4 ? 32 : 128);
        add(single ? cidr.address : addressInside(cidr, 10), why);
      }
      const named = [...zone.sources.filter((c) => c.family === family), ...ranges.map((r) => r.cidr)];
      if (named.length === 0) continue;
      const subnets = lab.map((l) => labSubnet(l, family));
      const free = OUTSIDE_CANDIDATES[family].filter(
        (a) => !named.some((c) => cidrContains(c, a)) && !taken.has(a),
      );
      const outside = free.find((a) => !subnets.some((s) => cidrContains(s, a))) ?? free[0];
      if (outside !== undefined) add(outside, 'outside every range of the zone');
    }
  }
  return out;
}

function portsNamed(policy: Policy, protocol: 'tcp' | 'udp'): number[] {
  const out = new Set<number>();
  const addSet = (set: PortSet): void => {
    for (const r of set[protocol]) {
      // a range is represented by its ends and its neighbours, not every port
      for (const p of [r.from - 1, r.from, r.to, r.to + 1]) if (p >= 1 && p <= 65535) out.add(p);
    }
  };
  for (const zone of policy.zones) {
    for (const rule of [...zone.inbound, ...zone.outbound]) addSet(rule.ports);
    if (zone.ftpPassive && protocol === 'tcp') addSet({ tcp: [zone.ftpPassive], udp: [] });
  }
  for (const route of policy.routing) addSet(route.ports);
  for (const f of policy.forwards) if (f.protocol === protocol) out.add(f.listenPort);
  return [...out];
}

const UDP_SAMPLE = [
  7, 53, 67, 68, 69, 111, 123, 137, 138, 161, 162, 500, 514, 520, 1194, 1900, 4500, 5353, 33434, 40000, 51820,
  65535,
];
const TCP_SAMPLE_HIGH = [
  1433, 2049, 3306, 3389, 5432, 5900, 6379, 8000, 8080, 8443, 9200, 27017, 49152, 65535,
];

/** Ports probed where a full sweep is not needed: what the policy names, its neighbours, and a sample. */
export function samplePorts(policy: Policy, protocol: 'tcp' | 'udp', sweep?: string): string {
  const ports = new Set(portsNamed(policy, protocol));
  if (protocol === 'udp') for (const p of UDP_SAMPLE) ports.add(p);
  else {
    // the well-known ports, as far as the main sweep covers them (a narrowed sweep narrows this too)
    const swept = sweep === undefined ? null : parsePortSpec(sweep, { defaultProtocols: ['tcp'] });
    const within = (port: number): boolean => swept === null || portSetHas(swept, 'tcp', port);
    for (let p = 1; p <= 1024; p++) if (within(p)) ports.add(p);
    for (const p of TCP_SAMPLE_HIGH) if (within(p)) ports.add(p);
  }
  return formatRanges(rangesOf(ports));
}

/**
 * Compares what the policy expects with what the probes saw. A port passed when it answered open or
 * closed (a RST still means the firewall let the SYN through) and was blocked when filtered.
 */
export function comparePorts(
  where: Pick<Difference, 'zone' | 'direction' | 'family' | 'peer' | 'toZone'> & { protocol: 'tcp' | 'udp' },
  expected: PortSet,
  observed: ReadonlyMap<number, string>,
): Difference[] {
  const allowed = new Set<number>();
  for (const r of expected[where.protocol]) for (let p = r.from; p <= r.to; p++) allowed.add(p);
  const wrong: { port: number; expected: 'pass' | 'block'; observed: 'pass' | 'block' }[] = [];
  for (const [port, state] of [...observed].sort((a, b) => a[0] - b[0])) {
    const seen = state === 'filtered' || state === 'open|filtered' ? 'block' : 'pass';
    const want = allowed.has(port) ? 'pass' : 'block';
    if (seen !== want) wrong.push({ port, expected: want, observed: seen });
  }
  const out: Difference[] = [];
  for (const kind of ['pass', 'block'] as const) {
    const ports = wrong.filter((w) => w.expected === kind).map((w) => w.port);
    if (ports.length > 0)
      out.push({
        ...where,
        ports: formatRanges(rangesOf(ports)),
        expected: kind,
        observed: kind === 'pass' ? 'block' : 'pass',
      });
  }
  return out;
}
