import type { Socket } from '../inventory/types.ts';
import type { ExposureRow, Reach } from './exposure.ts';

/**
 * One answer to "can someone beyond this host connect to this socket through the loaded firewall?",
 * the same for `ports`, `audit`, `watch` and `serve`: read off audit's exposure rows (pure).
 * Bound to (Socket.exposure) and reachable through the firewall (this) are two different things.
 */
export interface Reachability {
  /** yes: some peer gets through; no: the firewall stops every peer; unknown: could not be decided. */
  reachable: Reach;
  /** The interfaces through which some peer gets through. */
  via: string[];
  /** When not everyone may connect: the sources the rules admit (CIDRs); empty means anyone. */
  onlyFrom: string[];
  /** Why the answer is no or unknown, in a few words; null when it is yes. */
  why: string | null;
}

/** Where the exposure rows came from: the loaded ruleset, no ruleset at all, or one not readable. */
export interface ReachSource {
  method: ExposureRow['method'];
  /** Why the ruleset was not read (method `unreadable`). */
  reason: string | null;
}

export type ReachOf = (
  socket: Pick<Socket, 'protocol' | 'localAddress' | 'localPort' | 'exposure'>,
) => Reachability;

const key = (protocol: string, address: string, port: number) => `${protocol}|${address}|${port}`;

function fromRow(row: ExposureRow, source: ReachSource): Reachability {
  const open = row.cells.filter((c) => c.reach === 'yes');
  const onlyFrom = [...new Set(open.flatMap((c) => c.onlyFrom))];
  const everyone = open.some((c) => c.onlyFrom.length === 0);
  const why =
    row.reachable === 'yes'
      ? null
      : row.reachable === 'no'
        ? 'the firewall stops every peer'
        : source.method === 'unreadable'
          ? `the ruleset could not be read: ${source.reason ?? 'no reason given'}`
          : [
              ...new Set(
                row.cells.filter((c) => c.reach === 'unknown').flatMap((c) => c.decision?.reasons ?? []),
              ),
            ]
              .slice(0, 3)
              .join('; ') || 'a rule audit cannot evaluate decides';
  return {
    reachable: row.reachable,
    via: [...new Set(open.map((c) => c.interface))],
    onlyFrom: everyone ? [] : onlyFrom,
    why,
  };
}

/**
 * The reachability of any listener of the host the rows were computed for. A loopback-bound socket
 * is `no` whatever the firewall says; a listener with no row (another namespace, a socket that came
 * after the rows) is `unknown`, never `no`.
 */
export function reachabilityFrom(rows: readonly ExposureRow[], source: ReachSource): ReachOf {
  const byKey = new Map(rows.map((r) => [key(r.protocol, r.localAddress, r.localPort), r]));
  return (socket) => {
    if (socket.exposure === 'loopback')
      return { reachable: 'no', via: [], onlyFrom: [], why: 'bound to loopback only' };
    const row = byKey.get(key(socket.protocol, socket.localAddress, socket.localPort));
    if (row) return fromRow(row, source);
    return {
      reachable: 'unknown',
      via: [],
      onlyFrom: [],
      why:
        source.method === 'unreadable'
          ? `the ruleset could not be read: ${source.reason ?? 'no reason given'}`
          : 'not evaluated (the socket was not in the audited set)',
    };
  };
}

/** Every socket `unknown` for one reason: a captured listing, a namespace whose ruleset was not read. */
export function reachabilityUnknown(why: string): ReachOf {
  return (socket) =>
    socket.exposure === 'loopback'
      ? { reachable: 'no', via: [], onlyFrom: [], why: 'bound to loopback only' }
      : { reachable: 'unknown', via: [], onlyFrom: [], why };
}

/** A socket of `ports` with its reachability; a connection (not a listener) has `reachable: null`. */
export type ReachableSocket = Socket & {
  reachable: Reach | null;
  reachableVia: string[];
  reachableFrom: string[];
  reachableWhy: string | null;
};

/** Joins sockets with the reachability of their namespace (`reachOf(netns label)`); pure. */
export function withReachability(
  sockets: readonly Socket[],
  reachOf: (netns: string) => ReachOf,
  isListening: (s: Socket) => boolean,
): ReachableSocket[] {
  return sockets.map((s) => {
    if (!isListening(s))
      return { ...s, reachable: null, reachableVia: [], reachableFrom: [], reachableWhy: null };
    const r = reachOf(s.netns)(s);
    return {
      ...s,
      reachable: r.reachable,
      reachableVia: r.via,
      reachableFrom: r.onlyFrom,
      reachableWhy: r.why,
    };
  });
}
