import ipaddr from 'ipaddr.js';
import type { Socket } from '../inventory/types.ts';
import type { LocalInterface } from '../inventory/types.ts';
import { evaluateInbound, mentionedSources, type Decision, type Family, type Ruleset } from './ruleset.ts';

/** A source address no firewall rule would single out: "anyone on the Internet". */
export const ANYWHERE: Readonly<Record<Family, string>> = { 4: '203.0.113.77', 6: '2001:db8:ffff::77' };

export type Reach = 'yes' | 'no' | 'unknown';

/** One cell of the exposure matrix: a listening socket seen from one interface and family. */
export interface ExposureCell {
  interface: string;
  family: Family;
  reach: Reach;
  /** When the socket is blocked for anyone but accepted from these sources. */
  onlyFrom: string[];
  decision: Decision | null;
}

export interface ExposureRow {
  protocol: 'tcp' | 'udp';
  localAddress: string;
  localPort: number;
  family: Family;
  service: string | null;
  risk: Socket['risk'];
  process: string;
  cells: ExposureCell[];
  /** Reachable from somewhere beyond this host on some interface and family. */
  reachable: Reach;
  /** How reachability was decided: `static` evaluation of the live ruleset, or `no-firewall`. */
  method: 'static' | 'no-firewall';
  notModelled: string[];
}

function familyOf(address: string): Family {
  return address.includes(':') ? 6 : 4;
}

/** The families a socket accepts: a dual-stack `::` socket takes both. */
export function socketFamilies(
  socket: Pick<Socket, 'family' | 'localAddress' | 'dualStack' | 'v4Mapped'>,
): Family[] {
  if (socket.family === 4 || socket.v4Mapped) return [4];
  if (socket.localAddress === '::' && socket.dualStack !== false) return [4, 6];
  return [6];
}

function isUsable(address: string): boolean {
  try {
    const range = ipaddr.parse(address.split('%')[0] ?? address).range();
    return range !== 'loopback' && range !== 'unspecified';
  } catch {
    return false;
  }
}

/** A host address inside a source prefix, to ask "would this source be let in?". */
function hostIn(prefix: string): string {
  if (!prefix.includes('/')) return prefix;
  const [net = '', len = '0'] = prefix.split('/');
  const bytes = ipaddr.parse(net).toByteArray();
  if (Number(len) < bytes.length * 8) bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) | 1;
  return ipaddr.fromByteArray(bytes).toString();
}

/**
 * The exposure matrix: for every socket reachable beyond loopback, and every interface and family it
 * can be reached on, whether a NEW connection from anywhere is accepted by the live ruleset (or
 * would be, with no ruleset at all).
 */
export function computeExposure(
  ruleset: Ruleset | null,
  sockets: readonly Socket[],
  interfaces: readonly LocalInterface[],
): ExposureRow[] {
  const ifaces = interfaces.filter((i) => i.name !== 'lo' && i.addresses.some(isUsable));
  const candidates: Record<Family, string[]> = {
    4: ruleset ? mentionedSources(ruleset, 4).map(hostIn) : [],
    6: ruleset ? mentionedSources(ruleset, 6).map(hostIn) : [],
  };
  const rows: ExposureRow[] = [];
  for (const socket of sockets) {
    if (socket.exposure === 'loopback') continue;
    if (socket.protocol === 'tcp' ? socket.state !== 'LISTEN' : socket.state !== 'UNCONN') continue;
    const cells: ExposureCell[] = [];
    const notModelled = new Set<string>();
    for (const iface of ifaces) {
      if (socket.exposure === 'address' && socket.interface !== iface.name) continue;
      for (const family of socketFamilies(socket)) {
        const local =
          socket.exposure === 'address'
            ? socket.localAddress.split('%')[0]
            : iface.addresses.find((a) => familyOf(a) === family && isUsable(a));
        if (!local || familyOf(local) !== family) continue;
        if (!ruleset) {
          cells.push({ interface: iface.name, family, reach: 'yes', onlyFrom: [], decision: null });
          continue;
        }
        const packet = (saddr: string) => ({
          family,
          protocol: socket.protocol,
          saddr,
          daddr: local,
          sport: 40000,
          dport: socket.localPort,
          iifname: iface.name,
          daddrLocal: true,
        });
        const decision = evaluateInbound(ruleset, packet(ANYWHERE[family]));
        decision.reasons.forEach((r) => notModelled.add(r));
        let reach: Reach =
          decision.verdict === 'accept' ? 'yes' : decision.verdict === 'unknown' ? 'unknown' : 'no';
        const onlyFrom: string[] = [];
        if (reach === 'no') {
          for (const source of candidates[family]) {
            if (evaluateInbound(ruleset, packet(source)).verdict === 'accept') onlyFrom.push(source);
          }
        }
        if (reach === 'no' && onlyFrom.length > 0) reach = 'yes';
        cells.push({ interface: iface.name, family, reach, onlyFrom, decision });
      }
    }
    const reachable: Reach = cells.some((c) => c.reach === 'yes')
      ? 'yes'
      : cells.some((c) => c.reach === 'unknown')
        ? 'unknown'
        : 'no';
    rows.push({
      protocol: socket.protocol,
      localAddress: socket.localAddress,
      localPort: socket.localPort,
      family: socket.family,
      service: socket.service,
      risk: socket.risk,
      process: socket.processes.map((p) => `${p.name ?? '?'}[${p.pid}]`).join(', ') || '?',
      cells,
      reachable,
      method: ruleset ? 'static' : 'no-firewall',
      notModelled: [...notModelled],
    });
  }
  return rows;
}
