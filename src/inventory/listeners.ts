import type { Reach } from '../audit/exposure.ts';
import type { ReachOf } from '../audit/reachability.ts';
import { isListening } from './parse-proc-net.ts';
import type { Socket } from './types.ts';

/** Listeners as stable keys: what `watch` records and the dashboard shows (pure). */

/** A listening TCP socket or a bound, unconnected UDP socket, keyed by protocol, address, port and namespace. */
export interface Listener {
  key: string;
  protocol: 'tcp' | 'udp';
  localAddress: string;
  localPort: number;
  netns: string;
  /** What the socket is bound to: loopback, one address, all interfaces. */
  exposure: Socket['exposure'];
  /** Whether a peer beyond the host gets through the loaded firewall (audit's evaluator). */
  reachable: Reach;
  service: string | null;
  risk: Socket['risk'];
  processes: {
    pid: number;
    name: string | null;
    unit: string | null;
    container: string | null;
    user: string | null;
  }[];
}

export function listenerKey(s: {
  protocol: string;
  localAddress: string;
  localPort: number;
  netns: string;
}): string {
  return `${s.protocol}|${s.localAddress}|${s.localPort}|${s.netns}`;
}

/** Listeners as reached when nothing evaluated the firewall: beyond loopback is `unknown`, never `no`. */
const NOT_EVALUATED: ReachOf = (s) =>
  s.exposure === 'loopback'
    ? { reachable: 'no', via: [], onlyFrom: [], why: 'bound to loopback only' }
    : { reachable: 'unknown', via: [], onlyFrom: [], why: 'the firewall was not evaluated' };

/**
 * The listeners of an inventory (see isListening), one per address and port, with every owner and
 * the reachability through the firewall (`reachOf`, from audit's evaluator; unknown without one).
 */
export function listenersOf(
  sockets: readonly Socket[],
  reachOf: ReachOf = NOT_EVALUATED,
): Map<string, Listener> {
  const out = new Map<string, Listener>();
  for (const s of sockets) {
    if (!isListening(s)) continue;
    const key = listenerKey(s);
    const processes = s.processes.map((p) => ({
      pid: p.pid,
      name: p.name,
      unit: p.unit,
      container: p.container,
      user: p.user,
    }));
    const existing = out.get(key);
    if (existing) {
      // SO_REUSEPORT groups: one listener, every owner
      for (const p of processes)
        if (!existing.processes.some((q) => q.pid === p.pid)) existing.processes.push(p);
      continue;
    }
    out.set(key, {
      key,
      protocol: s.protocol,
      localAddress: s.localAddress,
      localPort: s.localPort,
      netns: s.netns,
      exposure: s.exposure,
      reachable: reachOf(s).reachable,
      service: s.service,
      risk: s.risk,
      processes,
    });
  }
  return out;
}
