import { portSetHas } from '../catalog/port-set.ts';
import type { Listener } from '../inventory/listeners.ts';
import type { Policy } from '../policy/types.ts';

/**
 * What `watch` records (pure): listeners as stable keys, and the events between two samples.
 */

export type EventKind =
  | 'listener-opened'
  | 'listener-closed'
  | 'risky-exposed'
  | 'policy-drift'
  | 'knock'
  | 'port-scan'
  | 'storage-failed'
  | 'storage-recovered';

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
