import ipaddr from 'ipaddr.js';
import { isListening } from '../inventory/parse-proc-net.ts';
import type { LocalInterface, Socket } from '../inventory/types.ts';
import {
  contains,
  fromIntervals,
  intersect,
  isEmpty,
  subtract,
  toCidrs,
  universe,
  type AddrSet,
} from '../ruleset/addr-set.ts';
import { formatAddress, parseAddress, prefixRange } from '../catalog/address.ts';
import {
  evaluateSources,
  sourcesBy,
  undecided,
  type Decision,
  type PathOptions,
  type SourceOutcome,
} from '../ruleset/path.ts';
import { publishedPortCandidates } from './published.ts';
import { obj, type Family, type Ruleset } from '../ruleset/ruleset.ts';

/** A source address no firewall rule would single out: "anyone on the Internet". */
export const ANYWHERE: Readonly<Record<Family, string>> = { 4: '203.0.113.77', 6: '2001:db8:ffff::77' };

/** The source port a probe uses unless a rule singles one out. */
export const PROBE_SPORT = 40000;

export type Reach = 'yes' | 'no' | 'unknown';

/** An interface as audit sees it: addresses with prefix lengths, and whether it is a bridge port. */
export interface AuditInterface extends LocalInterface {
  /** `address/len` for each address, when known (for routing a DNAT'ed packet). */
  cidrs?: string[];
  /** A port of a bridge (a container veth): its packets are the bridge's, it gets no column. */
  bridgePort?: boolean;
}

/** One cell of the exposure matrix: a listener's address reached through one interface. */
export interface ExposureCell {
  interface: string;
  family: Family;
  /** The destination address probed (any local address arrives on any interface: weak host model). */
  address: string;
  reach: Reach;
  /** When not everyone may connect: exactly the sources the rules admit, as merged CIDRs. */
  onlyFrom: string[];
  /** onlyFrom was cut at this many prefixes (the full list is longer). */
  onlyFromTruncated?: boolean;
  /** Reachable only when the peer sends from one of these source ports. */
  sourcePorts?: number[];
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
  /** How reachability was decided: `static` evaluation, `no-firewall`, or `unreadable` ruleset. */
  method: 'static' | 'no-firewall' | 'unreadable';
  notModelled: string[];
  /** For a port published by DNAT: where it goes (address:port). */
  dnat?: string | null;
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

function rangeOf(address: string): string {
  try {
    return ipaddr.parse(address.split('%')[0] ?? address).range();
  } catch {
    return 'invalid';
  }
}

function isUsable(address: string): boolean {
  const range = rangeOf(address);
  return range !== 'loopback' && range !== 'unspecified' && range !== 'invalid';
}

const isLinkLocal = (address: string) => rangeOf(address) === 'linkLocal';

/** Sources a peer can really send from: not loopback, unspecified, multicast or broadcast (martians). */
function realSources(family: Family): AddrSet {
  const martians =
    family === 4 ? ['0.0.0.0/8', '127.0.0.0/8', '224.0.0.0/3'] : ['::/127', 'ff00::/8', '::ffff:0:0/96'];
  const ranges: [bigint, bigint][] = martians.flatMap((m) => {
    const [a = '', l = '0'] = m.split('/');
    const range = prefixRange(family, a, Number(l));
    return range ? [range] : [];
  });
  return subtract(universe(family), fromIntervals(family, ranges));
}

/** Everything the evaluation of one listener needs about the host. */
interface Host {
  ruleset: Ruleset;
  ifaces: AuditInterface[];
  options: PathOptions;
  sportCandidates: number[];
  /** Neighbor discovery outcomes per "interface address": the same for every listener. */
  neighbors: Map<string, SourceOutcome[]>;
}

function ownerOf(ifaces: readonly AuditInterface[], address: string): string[] {
  return ifaces.filter((i) => i.addresses.some((a) => a.split('%')[0] === address)).map((i) => i.name);
}

/** Destination addresses of a listener reachable through one interface (weak host model). */
function targets(
  socket: Pick<Socket, 'exposure' | 'localAddress' | 'interface'>,
  iface: AuditInterface,
  all: readonly AuditInterface[],
  family: Family,
): string[] {
  if (socket.exposure === 'address') {
    const local = socket.localAddress.split('%')[0] ?? '';
    if (familyOf(local) !== family && !(family === 4 && local.startsWith('::ffff:'))) return [];
    if (isLinkLocal(local) && socket.interface !== null && socket.interface !== iface.name) return [];
    return [local.replace(/^::ffff:/, '')];
  }
  const globals = all
    .flatMap((i) => i.addresses)
    .filter((a) => familyOf(a) === family && isUsable(a) && !isLinkLocal(a));
  const own = iface.addresses
    .filter((a) => familyOf(a) === family && isLinkLocal(a))
    .map((a) => a.split('%')[0] ?? a);
  return [...new Set([...globals, ...own])];
}

function cellFrom(outcomes: SourceOutcome[], family: Family, iface: string, address: string): ExposureCell {
  const accepted = sourcesBy(outcomes, ['accept'], family);
  const doubtful = sourcesBy(outcomes, ['unknown'], family);
  const anywhere = parseAddress(ANYWHERE[family])?.value ?? 0n;
  const probe =
    outcomes.find((o) => contains(o.sources, anywhere)) ??
    outcomes.find((o) => o.decision.verdict === 'accept') ??
    outcomes[0];
  const reach: Reach = !isEmpty(accepted) ? 'yes' : !isEmpty(doubtful) ? 'unknown' : 'no';
  const restricted = reach === 'yes' && !contains(accepted, anywhere);
  const onlyFrom = restricted ? toCidrs(accepted, 1001) : [];
  return {
    interface: iface,
    family,
    address,
    reach,
    onlyFrom: onlyFrom.slice(0, 1000),
    ...(onlyFrom.length > 1000 ? { onlyFromTruncated: true } : {}),
    decision: probe?.decision ?? null,
  };
}

/** Source ports the ruleset singles out: the verdict is constant between these points. */
function sourcePortCandidates(ruleset: Ruleset): number[] {
  const points = new Set<number>();
  const visit = (v: unknown): void => {
    if (typeof v === 'number') {
      points.add(v);
    } else if (Array.isArray(v)) v.forEach(visit);
    else {
      const e = obj(v);
      if (e?.['set'] !== undefined) visit(e['set']);
      const range = e?.['range'];
      if (Array.isArray(range)) {
        visit(range[0]);
        if (typeof range[1] === 'number') points.add(range[1] + 1);
      }
    }
  };
  for (const chain of ruleset.chains)
    for (const rule of chain.rules)
      for (const e of rule.expr) {
        const m = obj(obj(e)?.['match']);
        if (obj(obj(m?.['left'])?.['payload'])?.['field'] === 'sport') visit(m?.['right']);
      }
  return [...points].filter((p) => p > 0 && p < 65536 && p !== PROBE_SPORT).slice(0, 64);
}

function evaluateCell(
  host: Host,
  socket: ProbeTarget,
  iface: AuditInterface,
  family: Family,
  daddr: string,
): { cell: ExposureCell; reasons: string[] } {
  const packet = (sport: number) => ({
    family,
    protocol: socket.protocol,
    saddr: ANYWHERE[family],
    daddr,
    sport,
    dport: socket.localPort,
    iifname: iface.name,
    daddrLocal: true,
    daddrOn: ownerOf(host.ifaces, daddr),
    ...(socket.uid !== null ? { skuid: socket.uid } : {}),
  });
  const sources = realSources(family);
  const nd = family === 6 ? neighborDiscovery(host, iface, daddr, sources) : null;
  const run = (sport: number) => {
    const outcomes = evaluateSources(host.ruleset, 'inbound', packet(sport), host.options, sources);
    return nd ? withNeighborDiscovery(outcomes, nd) : outcomes;
  };
  const outcomes = run(PROBE_SPORT);
  let cell = cellFrom(outcomes, family, iface.name, daddr);
  const reasons = outcomes.flatMap((o) => o.decision.reasons);
  if (cell.reach === 'no') {
    const ports = host.sportCandidates.filter((sport) =>
      run(sport).some((o) => o.decision.verdict === 'accept'),
    );
    if (ports.length > 0)
      cell = { ...cellFrom(run(ports[0] ?? 0), family, iface.name, daddr), sourcePorts: ports };
  }
  return { cell, reasons };
}

/** ff02::1:ffXX:XXXX, where a neighbor solicitation for `address` is sent. */
function solicitedNode(address: string): string {
  const value = parseAddress(address)?.value ?? 0n;
  return formatAddress(6, 0xff0200000000000000000001ff000000n | (value & 0xffffffn));
}

/**
 * Before any IPv6 connection the peer must resolve the address: its neighbor solicitation and
 * advertisement (ICMPv6 135/136, untracked by conntrack, hop limit 255) must get in. A ruleset that
 * drops ICMPv6 makes IPv6 unreachable whatever its port rules say.
 */
function neighborDiscovery(
  host: Host,
  iface: AuditInterface,
  daddr: string,
  sources: AddrSet,
): SourceOutcome[] {
  const key = `${iface.name} ${daddr}`;
  const known = host.neighbors.get(key);
  if (known) return known;
  const base = {
    family: 6 as const,
    protocol: 'icmpv6' as const,
    saddr: ANYWHERE[6],
    sport: 0,
    dport: 0,
    iifname: iface.name,
    daddrLocal: true,
    ctState: 'untracked' as const,
  };
  const options = { ...host.options, reply: false };
  const outcomes = [
    ...evaluateSources(
      host.ruleset,
      'inbound',
      { ...base, icmpType: 135, daddr: solicitedNode(daddr) },
      options,
      sources,
    ),
    ...evaluateSources(host.ruleset, 'inbound', { ...base, icmpType: 136, daddr }, options, sources),
  ];
  host.neighbors.set(key, outcomes);
  return outcomes;
}

function withNeighborDiscovery(outcomes: SourceOutcome[], nd: SourceOutcome[]): SourceOutcome[] {
  const blocked = sourcesBy(nd, ['drop', 'reject'], 6);
  const doubtful = subtract(sourcesBy(nd, ['unknown'], 6), blocked);
  if (isEmpty(blocked) && isEmpty(doubtful)) return outcomes;
  const why = nd.find((o) => o.decision.verdict === 'drop' || o.decision.verdict === 'reject')?.decision;
  const doubt = nd.find((o) => o.decision.verdict === 'unknown')?.decision;
  const out: SourceOutcome[] = [];
  for (const o of outcomes) {
    if (o.decision.verdict === 'drop' || o.decision.verdict === 'reject') {
      out.push(o);
      continue;
    }
    const b = intersect(o.sources, blocked);
    const d = intersect(subtract(o.sources, b), doubtful);
    const rest = subtract(subtract(o.sources, b), d);
    if (!isEmpty(rest)) out.push({ ...o, sources: rest });
    const note = 'neighbor discovery (ICMPv6 135/136) is dropped: a peer cannot resolve this address';
    if (!isEmpty(b) && why)
      out.push({
        ...o,
        sources: b,
        decision: { ...why, verdict: why.verdict === 'reject' ? 'reject' : 'drop', notes: [note] },
      });
    if (!isEmpty(d))
      out.push({
        ...o,
        sources: d,
        decision: {
          ...o.decision,
          verdict: 'unknown',
          reasons: [...o.decision.reasons, ...(doubt?.reasons ?? [])],
        },
      });
  }
  return out;
}

interface ProbeTarget {
  protocol: 'tcp' | 'udp';
  localPort: number;
  localAddress: string;
  exposure: Socket['exposure'];
  interface: string | null;
  uid: number | null;
}

function reachOf(cells: readonly ExposureCell[]): Reach {
  return cells.some((c) => c.reach === 'yes')
    ? 'yes'
    : cells.some((c) => c.reach === 'unknown')
      ? 'unknown'
      : 'no';
}

function rowCells(
  host: Host | null,
  target: ProbeTarget,
  families: Family[],
  ifaces: AuditInterface[],
  unreadable: string | null,
): { cells: ExposureCell[]; reasons: Set<string> } {
  const cells: ExposureCell[] = [];
  const reasons = new Set<string>();
  for (const iface of ifaces) {
    for (const family of families) {
      for (const daddr of targets(target, iface, ifaces, family)) {
        if (!host) {
          const decision = unreadable ? undecided(`could not read the ruleset: ${unreadable}`) : null;
          cells.push({
            interface: iface.name,
            family,
            address: daddr,
            reach: unreadable ? 'unknown' : 'yes',
            onlyFrom: [],
            decision,
          });
          continue;
        }
        const { cell, reasons: why } = evaluateCell(host, target, iface, family, daddr);
        why.forEach((r) => reasons.add(r));
        cells.push(cell);
      }
    }
  }
  if (unreadable) reasons.add(`could not read the ruleset: ${unreadable}`);
  return { cells, reasons };
}

/** How a DNAT'ed packet is routed and which addresses are this host's. */
export function hostPathOptions(interfaces: readonly AuditInterface[]): PathOptions {
  const all = interfaces.flatMap((i) => i.addresses.map((a) => a.split('%')[0] ?? a));
  return {
    isLocal: (address) => all.includes(address) || rangeOf(address) === 'loopback',
    routeOif: (address) => routeOif(interfaces, address),
  };
}

function routeOif(interfaces: readonly AuditInterface[], address: string): string | null {
  const target = parseAddress(address);
  if (!target) return null;
  let best: { name: string; len: number } | null = null;
  for (const iface of interfaces) {
    const cidrs = iface.cidrs ?? iface.addresses.map((a) => `${a}/${familyOf(a) === 4 ? 24 : 64}`);
    for (const cidr of cidrs) {
      const [addr = '', len = '0'] = cidr.split('/');
      const range = prefixRange(target.family, addr, Number(len));
      if (range && range[0] <= target.value && target.value <= range[1] && (!best || Number(len) > best.len))
        best = { name: iface.name, len: Number(len) };
    }
  }
  return best?.name ?? null;
}

export interface ExposureOptions {
  /** Why the ruleset could not be read: every cell is then unknown, never "no firewall". */
  unreadable?: string | null;
}

/** Interfaces that get columns: addressed, not loopback, not a bridge port. */
export function matrixInterfaces(interfaces: readonly AuditInterface[]): AuditInterface[] {
  return interfaces.filter((i) => i.name !== 'lo' && !i.bridgePort && i.addresses.some(isUsable));
}

/**
 * The exposure matrix: for every listener beyond loopback (and every port published by DNAT), each
 * interface, family and local address it can be reached at, whether a new connection is accepted —
 * and from exactly which sources — by the live ruleset (or would be, with no ruleset at all).
 */
export function computeExposure(
  ruleset: Ruleset | null,
  sockets: readonly Socket[],
  interfaces: readonly AuditInterface[],
  options: ExposureOptions = {},
): ExposureRow[] {
  const ifaces = matrixInterfaces(interfaces);
  const unreadable = ruleset ? null : (options.unreadable ?? null);
  const host: Host | null = ruleset
    ? {
        ruleset,
        ifaces,
        options: hostPathOptions(interfaces),
        sportCandidates: sourcePortCandidates(ruleset),
        neighbors: new Map(),
      }
    : null;
  const method: ExposureRow['method'] = ruleset ? 'static' : unreadable ? 'unreadable' : 'no-firewall';
  const rows: ExposureRow[] = [];
  for (const socket of sockets) {
    if (socket.exposure === 'loopback') continue;
    if (!isListening(socket)) continue;
    const { cells, reasons } = rowCells(host, socket, socketFamilies(socket), ifaces, unreadable);
    rows.push({
      protocol: socket.protocol,
      localAddress: socket.localAddress,
      localPort: socket.localPort,
      family: socket.family,
      service: socket.service,
      risk: socket.risk,
      process: socket.processes.map((p) => `${p.name ?? '?'}[${p.pid}]`).join(', ') || '?',
      cells,
      reachable: reachOf(cells),
      method,
      notModelled: [...reasons],
      dnat: dnatTarget(cells),
    });
  }
  if (host) rows.push(...publishedRows(host, rows));
  return rows;
}

function dnatTarget(cells: readonly ExposureCell[]): string | null {
  const note = cells.flatMap((c) => c.decision?.notes ?? []).find((n) => n.startsWith('DNAT to '));
  return note ? (/^DNAT to (\S+)/.exec(note)?.[1] ?? null) : null;
}

/** Rows for ports published by DNAT that no listener of this host owns. */
function publishedRows(host: Host, existing: readonly ExposureRow[]): ExposureRow[] {
  const rows: ExposureRow[] = [];
  for (const { protocol, port, family } of publishedPortCandidates(host.ruleset)) {
    if (
      existing.some(
        (r) => r.protocol === protocol && r.localPort === port && socketFamiliesOf(r).includes(family),
      )
    )
      continue;
    const target: ProbeTarget = {
      protocol,
      localPort: port,
      localAddress: family === 4 ? '0.0.0.0' : '::',
      exposure: 'all',
      interface: null,
      uid: null,
    };
    const { cells, reasons } = rowCells(host, target, [family], host.ifaces, null);
    const dnat = dnatTarget(cells);
    if (dnat === null) continue;
    // Where the packet is not translated nothing listens: not reachable there.
    const real = cells.map((c) =>
      c.decision?.notes?.some((n) => n.startsWith('DNAT to '))
        ? c
        : { ...c, reach: 'no' as const, onlyFrom: [] },
    );
    const merged = rows.find((r) => r.protocol === protocol && r.localPort === port);
    if (merged) {
      merged.cells.push(...real);
      merged.reachable = reachOf(merged.cells);
      continue;
    }
    rows.push({
      protocol,
      localAddress: '*',
      localPort: port,
      family,
      service: null,
      risk: null,
      process: `DNAT -> ${dnat}`,
      cells: real,
      reachable: reachOf(real),
      method: 'static',
      notModelled: [...reasons],
      dnat,
    });
  }
  return rows;
}

function socketFamiliesOf(row: ExposureRow): Family[] {
  return [...new Set(row.cells.map((c) => c.family))];
}

/** One matrix column (interface × family) of a row: its cells for every local address, merged. */
export interface ColumnSummary {
  interface: string;
  family: Family;
  reach: Reach;
  restricted: boolean;
  onlyFrom: string[];
  sourcePorts: number[];
  notes: string[];
}

/** Merges a row's cells per interface and family (most open first). */
export function columnsOf(row: Pick<ExposureRow, 'cells'>): ColumnSummary[] {
  const out = new Map<string, ColumnSummary>();
  for (const c of row.cells) {
    const key = `${c.interface}|${c.family}`;
    const prev = out.get(key);
    const open = c.reach === 'yes' && c.onlyFrom.length === 0 && !c.sourcePorts;
    const summary: ColumnSummary = prev ?? {
      interface: c.interface,
      family: c.family,
      reach: 'no',
      restricted: true,
      onlyFrom: [],
      sourcePorts: [],
      notes: [],
    };
    if (c.reach === 'yes' || (c.reach === 'unknown' && summary.reach === 'no')) summary.reach = c.reach;
    if (open) summary.restricted = false;
    summary.onlyFrom = [...new Set([...summary.onlyFrom, ...c.onlyFrom])];
    summary.sourcePorts = [...new Set([...summary.sourcePorts, ...(c.sourcePorts ?? [])])];
    summary.notes = [...new Set([...summary.notes, ...(c.decision?.notes ?? [])])];
    out.set(key, summary);
  }
  for (const s of out.values()) if (s.reach !== 'yes') s.restricted = false;
  return [...out.values()];
}
