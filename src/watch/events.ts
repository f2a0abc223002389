import type { Reach } from '../audit/exposure.ts';
import type { ReachOf } from '../audit/reachability.ts';
import { portSetHas } from '../catalog/port-set.ts';
import type { Socket } from '../inventory/types.ts';
import type { Policy } from '../policy/types.ts';

/**
 * What `watch` records (pure): listeners as stable keys, and the events between two samples.
 */

/** A listening TCP socket or a bound, unconnected UDP socket, as watch keeps it. */
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

export type EventKind =
  | 'listener-opened'
  | 'listener-closed'
  | 'reach-changed'
  | 'risky-exposed'
  | 'policy-drift'
  | 'knock'
  | 'port-scan'
  | 'storage-failed'
  | 'storage-recovered';

export interface WatchEvent {
  /** When, as an ISO 8601 time (UTC), like every other time portwarden prints. */
  at: string;
  kind: EventKind;
  key: string;
  message: string;
  listener?: Listener;
  /** For knock and port-scan events. */
  knock?: {
    source: string;
    destination: string;
    protocol: string;
    port: number;
    zone: string;
    direction: string;
  };
  ports?: number[];
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
 * The listeners of an inventory: TCP in LISTEN, UDP bound and not connected, each with its
 * reachability through the firewall (`reachOf`, from audit's evaluator; unknown without one).
 */
export function listenersOf(
  sockets: readonly Socket[],
  reachOf: ReachOf = NOT_EVALUATED,
): Map<string, Listener> {
  const out = new Map<string, Listener>();
  for (const s of sockets) {
    const listening = s.protocol === 'tcp' ? s.state === 'LISTEN' : s.remotePort === 0;
    if (!listening) continue;
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

function who(l: Listener): string {
  const p = l.processes[0];
  if (!p) return 'an unknown process';
  return `${p.name ?? '?'} (pid ${p.pid}${p.unit ? `, ${p.unit}` : ''}${p.container ? `, ${p.container}` : ''})`;
}

function where(l: Listener): string {
  const addr = l.localAddress.includes(':') ? `[${l.localAddress}]` : l.localAddress;
  return `${l.protocol}/${l.localPort} on ${addr}${l.netns === 'host' ? '' : ` in ${l.netns}`}`;
}

/** Whether the policy lets the listener's port in on some zone (drift when not). */
function allowedByPolicy(policy: Policy, l: Listener): boolean {
  return policy.zones.some(
    (z) =>
      z.inbound.some((r) => portSetHas(r.ports, l.protocol, l.localPort)) ||
      (l.protocol === 'tcp' &&
        z.ftpPassive !== null &&
        l.localPort >= z.ftpPassive.from &&
        l.localPort <= z.ftpPassive.to),
  );
}

function riskyEvent(l: Listener, at: string): WatchEvent[] {
  if (l.reachable === 'no' || (l.risk !== 'high' && l.risk !== 'critical')) return [];
  const how = l.reachable === 'yes' ? 'reachable through the firewall' : 'reachability unknown';
  return [
    {
      at,
      kind: 'risky-exposed',
      key: l.key,
      listener: l,
      message: `${l.risk} risk: ${l.service ?? 'a service'} exposed on ${where(l)} (${how}) by ${who(l)}`,
    },
  ];
}

/** A listener that stayed while the firewall changed what reaches it. */
function reachEvents(before: Listener, l: Listener, at: string): WatchEvent[] {
  // a listener stored before reachability was recorded has none: no change to report
  if (before.reachable === undefined || before.reachable === l.reachable) return [];
  return [
    {
      at,
      kind: 'reach-changed',
      key: l.key,
      listener: l,
      message: `${where(l)} (${who(l)}) reachable through the firewall: ${before.reachable} -> ${l.reachable}`,
    },
    ...(before.reachable === 'no' ? riskyEvent(l, at) : []),
  ];
}

/**
 * Events between two samples: opened and closed listeners, risky exposure (a high or critical risk
 * service a peer can reach, or might: unknown is not no), policy drift (bound beyond loopback on a
 * port no zone allows), and listeners whose reachability the firewall changed.
 */
export function diffListeners(
  previous: ReadonlyMap<string, Listener>,
  current: ReadonlyMap<string, Listener>,
  at: string,
  policy?: Policy,
): WatchEvent[] {
  const events: WatchEvent[] = [];
  for (const [key, l] of current) {
    const before = previous.get(key);
    if (before) {
      events.push(...reachEvents(before, l, at));
      continue;
    }
    events.push({
      at,
      kind: 'listener-opened',
      key,
      listener: l,
      message: `${who(l)} listens on ${where(l)} (bound to ${l.exposure === 'all' ? 'all interfaces' : l.exposure === 'address' ? 'one address' : 'loopback'}, reachable: ${l.reachable})`,
    });
    events.push(...riskyEvent(l, at));
    if (l.exposure !== 'loopback' && policy && !allowedByPolicy(policy, l)) {
      events.push({
        at,
        kind: 'policy-drift',
        key,
        listener: l,
        message: `policy "${policy.name}" allows ${l.protocol}/${l.localPort} in no zone, but ${who(l)} listens on ${where(l)}`,
      });
    }
  }
  for (const [key, l] of previous) {
    if (current.has(key)) continue;
    events.push({
      at,
      kind: 'listener-closed',
      key,
      listener: l,
      message: `${where(l)} closed (was ${who(l)})`,
    });
  }
  return events;
}
