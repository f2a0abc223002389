import ipaddr from 'ipaddr.js';
import type { PortSet } from '../catalog/port-set.ts';
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

function hostInside(cidr: Cidr, offset: number): string {
  const bytes = ipaddr.parse(cidr.address).toByteArray();
  let carry = offset;
  for (let i = bytes.length - 1; i >= 0 && carry > 0; i--) {
    const sum = (bytes[i] ?? 0) + carry;
    bytes[i] = sum & 0xff;
    carry = sum >> 8;
  }
  return ipaddr.fromByteArray(bytes).toString();
}

/** Zone i's default networks: quarters of 203.0.113.0/24 and 2001:db8:<i+1>::/64. */
function defaultCidr(family: 4 | 6, index: number): Cidr {
  return family === 4
    ? { family: 4, address: `203.0.113.${(index % 4) * 64}`, prefix: 26, text: '' }
    : { family: 6, address: `2001:db8:${(index + 1).toString(16)}::`, prefix: 64, text: '' };
}

export function planLab(policy: Policy): LabZone[] {
  return policy.zones.map((zone, index) => {
    const pick = (family: 4 | 6): { host: string; peer: string; prefix: number } => {
      const source = zone.sources.find((c) => c.family === family && c.prefix <= (family === 4 ? 29 : 125));
      const cidr = source ?? defaultCidr(family, index);
      // The peer sits inside the zone's sources; the host shares its subnet to stay on-link.
      return { host: hostInside(cidr, 1), peer: hostInside(cidr, 5), prefix: cidr.prefix };
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
  direction: 'inbound' | 'outbound';
  family: 4 | 6;
  protocol: 'tcp' | 'udp';
  ports: string;
  expected: 'pass' | 'block';
  observed: 'pass' | 'block';
}

function compress(ports: readonly number[]): string {
  const out: string[] = [];
  let start = ports[0];
  let prev = ports[0];
  for (const port of ports.slice(1)) {
    if (prev !== undefined && port === prev + 1) {
      prev = port;
      continue;
    }
    if (start !== undefined) out.push(start === prev ? String(start) : `${start}-${prev}`);
    start = prev = port;
  }
  if (start !== undefined) out.push(start === prev ? String(start) : `${start}-${prev}`);
  return out.join(',');
}

/**
 * Compares what the policy expects with what the probes saw. A port passed when it answered open or
 * closed (a RST still means the firewall let the SYN through) and was blocked when filtered.
 */
export function comparePorts(
  where: { zone: string; direction: 'inbound' | 'outbound'; family: 4 | 6; protocol: 'tcp' | 'udp' },
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
        ports: compress(ports),
        expected: kind,
        observed: kind === 'pass' ? 'block' : 'pass',
      });
  }
  return out;
}
