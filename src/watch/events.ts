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
  address: string;
  port: number;
  netns: string;
  exposure: Socket['exposure'];
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
  | 'risky-exposed'
  | 'policy-drift'
  | 'knock'
  | 'port-scan'
  | 'storage-failed'
  | 'storage-recovered'
  | 'program-ask'
  | 'program-denied';

export interface WatchEvent {
  /** Milliseconds since the epoch. */
  at: number;
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
  /** For program events (watch --programs): the prompt or the attempt, in the dashboard's vocabulary. */
  program?: Record<string, unknown>;
}

export function listenerKey(s: {
  protocol: string;
  localAddress: string;
  localPort: number;
  netns: string;
}): string {
  return `${s.protocol}|${s.localAddress}|${s.localPort}|${s.netns}`;
}

/** The listeners of an inventory: TCP in LISTEN, UDP bound and not connected. */
export function listenersOf(sockets: readonly Socket[]): Map<string, Listener> {
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
      address: s.localAddress,
      port: s.localPort,
      netns: s.netns,
      exposure: s.exposure,
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
  const addr = l.address.includes(':') ? `[${l.address}]` : l.address;
  return `${l.protocol}/${l.port} on ${addr}${l.netns === 'host' ? '' : ` in ${l.netns}`}`;
}

/** Whether the policy lets the listener's port in on some zone (drift when not). */
function allowedByPolicy(policy: Policy, l: Listener): boolean {
  return policy.zones.some(
    (z) =>
      z.inbound.some((r) => portSetHas(r.ports, l.protocol, l.port)) ||
      (l.protocol === 'tcp' &&
        z.ftpPassive !== null &&
        l.port >= z.ftpPassive.from &&
        l.port <= z.ftpPassive.to),
  );
}

/** Events between two samples: opened and closed listeners, risky exposure, policy drift. */
export function diffListeners(
  previous: ReadonlyMap<string, Listener>,
  current: ReadonlyMap<string, Listener>,
  at: number,
  policy?: Policy,
): WatchEvent[] {
  const events: WatchEvent[] = [];
  for (const [key, l] of current) {
    if (previous.has(key)) continue;
    events.push({
      at,
      kind: 'listener-opened',
      key,
      listener: l,
      message: `${who(l)} listens on ${where(l)} (${l.exposure})`,
    });
    const exposed = l.exposure !== 'loopback';
    if (exposed && (l.risk === 'high' || l.risk === 'critical')) {
      events.push({
        at,
        kind: 'risky-exposed',
        key,
        listener: l,
        message: `${l.risk} risk: ${l.service ?? 'a service'} exposed on ${where(l)} by ${who(l)}`,
      });
    }
    if (exposed && policy && !allowedByPolicy(policy, l)) {
      events.push({
        at,
        kind: 'policy-drift',
        key,
        listener: l,
        message: `policy "${policy.name}" allows ${l.protocol}/${l.port} in no zone, but ${who(l)} listens on ${where(l)}`,
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
