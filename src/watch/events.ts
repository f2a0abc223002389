import { portSetHas } from '../catalog/port-set.ts';
import type { Listener } from '../inventory/listeners.ts';
import type { Policy } from '../policy/types.ts';

/**
 * What `watch` records (pure): listeners as stable keys, and the events between two samples.
 */

export type EventKind =
  | 'listener-opened'
  | 'listener-closed'
  | 'reach-changed'
  | 'risky-exposed'
  | 'policy-drift'
  | 'knock'
  | 'port-scan'
  | 'storage-failed'
  | 'storage-recovered'
  | 'program-ask'
  | 'program-denied';

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
  /** For program events (watch --programs): the prompt or the attempt, in the dashboard's vocabulary. */
  program?: Record<string, unknown>;
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
