import ipaddr from 'ipaddr.js';

/**
 * The truth suite's pure part: which cells a scenario has, what audit said about each, what the
 * probes saw, and how the two compare. No I/O here; harness.ts builds the hosts and runs the probes.
 */

export type Family = 4 | 6;
export type Protocol = 'tcp' | 'udp';

/** A socket on the host, or a port published by DNAT (`published`: nothing listens on the host). */
export interface Listener {
  proto: Protocol;
  /** Bound address: 0.0.0.0, ::, one address, or loopback. `*` for a published port. */
  host: string;
  port: number;
  v6only?: boolean;
  /** Runs as this uid (the output-path scenario drops replies by socket owner). */
  uid?: number;
}

/** One host interface, the addresses the host holds on it and the peer namespace facing it. */
export interface HostInterface {
  name: string;
  addresses: string[];
  /** The peer's source addresses: some inside the rules' from-ranges, some outside. */
  peerAddresses: string[];
}

/** One listener reached from the peer on one interface at one host address and family. */
export interface Cell {
  key: string;
  listener: Listener;
  iface: string;
  dst: string;
  family: Family;
  sources: string[];
  /** Extra source ports to try besides an ephemeral one (rules keyed on the source port). */
  sports: number[];
}

export const familyOf = (address: string): Family => (address.includes(':') ? 6 : 4);
const isLinkLocal = (address: string): boolean => address.toLowerCase().startsWith('fe80:');
const bare = (address: string): string => address.split('%')[0] ?? address;

export function listenerLabel(l: Listener): string {
  const host = l.host.includes(':') ? `[${l.host}]` : l.host;
  return `${l.proto} ${host}:${l.port}${l.v6only ? ' v6only' : ''}${l.uid === undefined ? '' : ` uid ${l.uid}`}`;
}

/** The families a listener answers: `::` is dual-stack unless v6only, a published port is IPv4 (NAT). */
export function listenerFamilies(l: Listener): Family[] {
  if (l.host === '*') return [4];
  if (l.host === '::' && !l.v6only) return [4, 6];
  return [familyOf(l.host)];
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '*';
}

function isLoopback(host: string): boolean {
  return host.startsWith('127.') || host === '::1';
}

/**
 * Destinations a peer on `iface` can send to: every host address of the family (weak host model:
 * Linux answers for any local address on any interface), link-local ones only on their own link.
 * A listener bound to one address is tried at that address; a loopback one at every address.
 */
function destinations(l: Listener, iface: HostInterface, all: readonly HostInterface[], family: Family) {
  const local = all.flatMap((i) =>
    i.addresses.filter((a) => familyOf(a) === family && (!isLinkLocal(a) || i.name === iface.name)),
  );
  if (isWildcard(l.host) || isLoopback(l.host)) return [...new Set(local)];
  return local.includes(l.host) ? [l.host] : [];
}

/** A link-local destination is reachable from the link's global sources too; a global one from global ones. */
function sourcesFor(iface: HostInterface, dst: string): string[] {
  const family = familyOf(dst);
  const fits = iface.peerAddresses.filter((a) => familyOf(a) === family);
  return isLinkLocal(dst) ? fits : fits.filter((a) => !isLinkLocal(a));
}

export function cellKey(scenario: string, l: Listener, iface: string, dst: string): string {
  return `${scenario} | ${listenerLabel(l)} | ${iface} -> ${dst}`;
}

/** Every listener x interface x host address x family of a scenario, with the peer sources to try. */
export function enumerateCells(
  scenario: string,
  listeners: readonly Listener[],
  interfaces: readonly HostInterface[],
  sports: readonly { proto: Protocol; port: number; sport: number }[] = [],
): Cell[] {
  const cells: Cell[] = [];
  for (const listener of listeners) {
    const extra = sports.filter((s) => s.proto === listener.proto && s.port === listener.port);
    for (const iface of interfaces) {
      for (const family of listenerFamilies(listener)) {
        for (const dst of destinations(listener, iface, interfaces, family)) {
          const sources = sourcesFor(iface, dst);
          if (sources.length === 0) continue;
          cells.push({
            key: cellKey(scenario, listener, iface.name, dst),
            listener,
            iface: iface.name,
            dst,
            family,
            sources,
            sports: extra.map((s) => s.sport),
          });
        }
      }
    }
  }
  return cells;
}

/** One connect or datagram from a peer; `id` ties the result to its cell. */
export interface Probe {
  id: string;
  proto: Protocol;
  src: string;
  sport?: number;
  dst: string;
  port: number;
  timeoutMs: number;
  /** Started this long after the peer's first probe (a scenario's probeRate), else at once. */
  delayMs?: number;
}

export interface ProbeResult {
  id: string;
  ok: boolean;
  detail: string;
}

/** A link-local address only means something with the interface it is on. */
function scoped(address: string, ifname: string): string {
  return isLinkLocal(address) ? `${address}%${ifname}` : address;
}

/** The probes of one cell: every source, with an ephemeral source port and each extra one. */
export function probesOf(cell: Cell, index: number, peerIfname: string, timeoutMs: number): Probe[] {
  const probes: Probe[] = [];
  cell.sources.forEach((src, s) => {
    for (const sport of [undefined, ...cell.sports]) {
      probes.push({
        id: `${index}.${s}.${sport ?? 0}`,
        proto: cell.listener.proto,
        src: scoped(src, peerIfname),
        ...(sport === undefined ? {} : { sport }),
        dst: scoped(cell.dst, peerIfname),
        port: cell.listener.port,
        timeoutMs,
      });
    }
  });
  return probes;
}

/** What the probes saw for one cell: which sources got through (with any source port). */
export interface Truth {
  reachable: boolean;
  /** Sources that got through with some source port. */
  connected: string[];
  /** Sources that got through from an ephemeral source port (no port singled out). */
  anyPort: string[];
  details: string[];
}

export function truthOf(cell: Cell, index: number, results: ReadonlyMap<string, ProbeResult>): Truth {
  const connected: string[] = [];
  const anyPort: string[] = [];
  const details: string[] = [];
  cell.sources.forEach((src, s) => {
    const mine = [undefined, ...cell.sports].map((sport) => ({
      sport,
      result: results.get(`${index}.${s}.${sport ?? 0}`),
    }));
    if (mine.some((m) => m.result?.ok)) connected.push(src);
    if (mine[0]?.result?.ok) anyPort.push(src);
    for (const m of mine)
      details.push(`${src}${m.sport ? `:${m.sport}` : ''} ${m.result?.detail ?? 'not run'}`);
  });
  return { reachable: connected.length > 0, connected, anyPort, details };
}

// ---------------------------------------------------------------------------------------------
// What audit said. Read loosely: the evaluator's JSON grows while this suite runs against it.

export type Reach = 'yes' | 'no' | 'unknown';

export interface AuditCell {
  interface: string;
  family: Family;
  reach: Reach;
  onlyFrom: string[];
  /** Reachable only from these source ports (empty: from any). */
  sourcePorts: number[];
  /** The host address the cell was evaluated for, when audit says (one cell per address). */
  address: string | null;
  reasons: string[];
  decision: string;
}

export interface AuditRow {
  protocol: Protocol;
  localAddress: string;
  localPort: number;
  cells: AuditCell[];
  notModelled: string[];
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((s) => typeof s === 'string') : []);
const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);

function readDecision(v: unknown): { reasons: string[]; decision: string } {
  if (!isRecord(v)) return { reasons: [], decision: '' };
  const where = [v['table'], v['chain'], v['handle']].filter(
    (x) => typeof x === 'string' || typeof x === 'number',
  );
  const rule = text(v['rule']) ?? text(v['text']) ?? text(v['comment']) ?? '';
  return {
    reasons: strings(v['reasons']),
    decision: `${text(v['verdict']) ?? '?'} at ${where.join(' ') || 'policy'}${rule ? ` (${rule})` : ''}`,
  };
}

function readCell(v: unknown): AuditCell | null {
  if (!isRecord(v)) return null;
  const reach = v['reach'];
  const family = v['family'];
  if ((reach !== 'yes' && reach !== 'no' && reach !== 'unknown') || (family !== 4 && family !== 6))
    return null;
  return {
    interface: text(v['interface']) ?? '',
    family,
    reach,
    onlyFrom: strings(v['onlyFrom']),
    sourcePorts: Array.isArray(v['sourcePorts'])
      ? v['sourcePorts'].filter((p): p is number => typeof p === 'number')
      : [],
    address: text(v['address']) ?? text(v['localAddress']) ?? text(v['daddr']),
    ...readDecision(v['decision']),
  };
}

/** The exposure rows of `portwarden audit --json`. */
export function readExposure(report: unknown): AuditRow[] {
  const rows = isRecord(report) && Array.isArray(report['exposure']) ? report['exposure'] : [];
  return rows.filter(isRecord).flatMap((row) => {
    const protocol = row['protocol'];
    const port = row['localPort'];
    if ((protocol !== 'tcp' && protocol !== 'udp') || typeof port !== 'number') return [];
    const cells = Array.isArray(row['cells']) ? row['cells'].map(readCell) : [];
    return [
      {
        protocol,
        localAddress: text(row['localAddress']) ?? '',
        localPort: port,
        cells: cells.filter((c) => c !== null),
        notModelled: strings(row['notModelled']),
      },
    ];
  });
}

function sameAddress(a: string, b: string): boolean {
  try {
    const x = ipaddr.process(bare(a));
    const y = ipaddr.process(bare(b));
    return x.kind() === y.kind() && x.toNormalizedString() === y.toNormalizedString();
  } catch {
    return bare(a) === bare(b);
  }
}

/** Whether a row speaks for traffic to `dst`: a wildcard row (or a published one) does, else its own address. */
function rowCovers(row: AuditRow, dst: string): boolean {
  const local = row.localAddress;
  if (local === '' || local === '*' || local === '0.0.0.0' || local === '::') return true;
  return sameAddress(local, dst);
}

/** Audit's verdict for one cell: absent when no row or no cell speaks for it. */
export interface AuditVerdict {
  reach: Reach | 'absent';
  onlyFrom: string[];
  sourcePorts: number[];
  expressions: string[];
  decision: string;
}

const RANK: Record<Reach, number> = { yes: 2, unknown: 1, no: 0 };

/**
 * What audit says about `dst:port` arriving on `iface`: every row of that protocol and port that
 * covers dst, its cell for the interface and family (the one for dst when audit evaluates per
 * address). The most open answer wins: audit says "reachable" if any of its rows does.
 */
export function auditVerdict(rows: readonly AuditRow[], cell: Cell): AuditVerdict {
  const found: { cell: AuditCell; row: AuditRow }[] = [];
  for (const row of rows) {
    if (row.protocol !== cell.listener.proto || row.localPort !== cell.listener.port) continue;
    if (!rowCovers(row, cell.dst)) continue;
    const mine = row.cells.filter((c) => c.interface === cell.iface && c.family === cell.family);
    const exact = mine.filter((c) => c.address !== null && sameAddress(c.address, cell.dst));
    const chosen = mine.some((c) => c.address !== null) ? exact : mine;
    for (const c of chosen) found.push({ cell: c, row });
  }
  if (found.length === 0)
    return { reach: 'absent', onlyFrom: [], sourcePorts: [], expressions: [], decision: 'no row/cell' };
  found.sort((a, b) => RANK[b.cell.reach] - RANK[a.cell.reach]);
  const best = found[0]!;
  const expressions = best.cell.reasons.length > 0 ? best.cell.reasons : best.row.notModelled;
  return {
    reach: best.cell.reach,
    onlyFrom: best.cell.onlyFrom,
    sourcePorts: best.cell.sourcePorts,
    expressions: best.cell.reach === 'unknown' ? expressions : [],
    decision: best.cell.decision,
  };
}

// ---------------------------------------------------------------------------------------------
// Comparison

export type Outcome = 'agree' | 'false-reachable' | 'false-not-reachable' | 'unknown';

export interface Judged {
  cell: Cell;
  audit: AuditVerdict;
  truth: Truth;
  outcome: Outcome;
  /** Why the outcome is what it is, in one line. */
  why: string;
}

function inRanges(address: string, ranges: readonly string[]): boolean {
  return ranges.some((range) => {
    try {
      if (!range.includes('/')) return sameAddress(range, address);
      const [net, bits] = ipaddr.parseCIDR(range);
      const addr = ipaddr.process(bare(address));
      return addr.kind() === net.kind() && addr.match([net, bits]);
    } catch {
      return false;
    }
  });
}

/**
 * Audit against the truth. A cell is reachable when any peer source got through. When audit names
 * the only sources admitted (onlyFrom), each probed source must connect exactly when it is inside them.
 */
export function judge(cell: Cell, audit: AuditVerdict, truth: Truth): Judged {
  const base = { cell, audit, truth };
  if (audit.reach === 'unknown') return { ...base, outcome: 'unknown', why: audit.expressions.join('; ') };
  const verdict = audit.reach === 'yes' ? judgeOpen(cell, audit, truth) : judgeClosed(audit, truth);
  return { ...base, ...(verdict ?? { outcome: 'agree', why: '' }) };
}

function judgeClosed(audit: AuditVerdict, truth: Truth): Verdict | null {
  if (!truth.reachable) return null;
  const said = audit.reach === 'absent' ? 'no row/cell' : 'not reachable';
  return { outcome: 'false-not-reachable', why: `audit: ${said}; ${truth.connected.join(', ')} got through` };
}

/**
 * Audit says reachable. Without onlyFrom that means from anywhere (a blocklist may still turn single
 * sources away), so some source must get through. With onlyFrom, each probed source must get
 * through exactly when it lies inside; a range none of this peer's sources fall in is not tested.
 */
function judgeOpen(cell: Cell, audit: AuditVerdict, truth: Truth): Verdict | null {
  if (audit.onlyFrom.length === 0 && !truth.reachable)
    return { outcome: 'false-reachable', why: 'audit: reachable; no source got through' };
  const admitted = cell.sources.filter((s) => audit.onlyFrom.length === 0 || inRanges(s, audit.onlyFrom));
  const missed = truth.connected.filter((s) => !admitted.includes(s));
  if (missed.length > 0)
    return {
      outcome: 'false-not-reachable',
      why: `audit: only from ${audit.onlyFrom.join(', ')}; ${missed.join(', ')} got through too`,
    };
  const wrong = audit.onlyFrom.length === 0 ? [] : admitted.filter((s) => !truth.connected.includes(s));
  if (wrong.length > 0)
    return {
      outcome: 'false-reachable',
      why: `audit: from ${audit.onlyFrom.join(', ')}; ${wrong.join(', ')} did not get through`,
    };
  return truth.reachable ? judgePorts(audit, truth) : null;
}

type Verdict = { outcome: Outcome; why: string };

/** Exposure that depends on the source port: audit must say which (sourcePorts), and only then. */
function judgePorts(audit: AuditVerdict, truth: Truth): Verdict | null {
  if (audit.sourcePorts.length > 0 && truth.anyPort.length > 0)
    return {
      outcome: 'false-not-reachable',
      why: `audit: only from source port ${audit.sourcePorts.join(', ')}; ${truth.anyPort.join(', ')} got through from any port`,
    };
  if (audit.sourcePorts.length === 0 && truth.anyPort.length === 0)
    return {
      outcome: 'false-reachable',
      why: `audit: reachable from any source port; only a chosen source port got through (${truth.connected.join(', ')})`,
    };
  return null;
}

export function tally(judged: readonly Judged[]): Record<Outcome, number> {
  const counts: Record<Outcome, number> = {
    agree: 0,
    'false-reachable': 0,
    'false-not-reachable': 0,
    unknown: 0,
  };
  for (const j of judged) counts[j.outcome] += 1;
  return counts;
}
