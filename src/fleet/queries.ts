import type pg from 'pg';
import type { FleetFinding } from './schema.ts';
import {
  listenerFromDb,
  type FleetEventRow,
  type FleetHost,
  type FleetListenerRow,
  type ListenerDbRow,
} from './store.ts';

/**
 * Fleet-wide questions, each one indexed query (see migrations.ts for which index answers which).
 * Times are ISO 8601 strings in and out.
 */

interface HostDbRow {
  name: string;
  host_group: string;
  created_at: Date;
  last_seen: Date | null;
  last_snapshot_at: Date | null;
  method: string | null;
  policy: string | null;
  listeners: number;
  exposed: number;
  drift: number;
  open_findings: number;
}

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

function hostFromDb(r: HostDbRow): FleetHost {
  return {
    name: r.name,
    group: r.host_group,
    createdAt: r.created_at.toISOString(),
    lastSeen: iso(r.last_seen),
    lastSnapshotAt: iso(r.last_snapshot_at),
    method: r.method,
    policy: r.policy,
    listeners: r.listeners,
    exposed: r.exposed,
    drift: r.drift,
    openFindings: r.open_findings,
  };
}

const HOST_COLUMNS =
  'name, host_group, created_at, last_seen, last_snapshot_at, method, policy, listeners, exposed, drift, open_findings';

export async function listHosts(pool: pg.Pool, group?: string): Promise<FleetHost[]> {
  const rows = await pool.query<HostDbRow>(
    `SELECT ${HOST_COLUMNS} FROM fleet_hosts WHERE $1::text IS NULL OR host_group = $1 ORDER BY name COLLATE "C"`,
    [group ?? null],
  );
  return rows.rows.map(hostFromDb);
}

interface ListenerJoinRow extends ListenerDbRow {
  name: string;
  host_group: string;
}

function listenerRow(r: ListenerJoinRow): FleetListenerRow {
  return { host: r.name, group: r.host_group, ...listenerFromDb(r), since: r.since.toISOString() };
}

const LISTENER_SELECT = `SELECT h.name, h.host_group, l.protocol, l.local_address, l.local_port, l.netns,
  l.exposure, l.reachable, l.service, l.risk, l.process, l.pid, l.username, l.unit, l.container, l.since
  FROM fleet_listeners l JOIN fleet_hosts h ON h.id = l.host_id`;

/**
 * "Which hosts expose tcp/23?": listeners on that port bound beyond loopback (index fleet_listeners_port),
 * each with whether its host's firewall lets a peer through; `reachable` keeps only those it may
 * (yes or unknown: unknown is not no).
 */
export async function hostsExposing(
  pool: pg.Pool,
  protocol: 'tcp' | 'udp',
  port: number,
  options: { reachable?: boolean; limit?: number } = {},
): Promise<FleetListenerRow[]> {
  const rows = await pool.query<ListenerJoinRow>(
    `${LISTENER_SELECT} WHERE l.local_port = $1 AND l.protocol = $2 AND l.exposure <> 'loopback'
       AND ($4::boolean IS NOT TRUE OR l.reachable <> 'no')
     ORDER BY h.name COLLATE "C", l.local_address COLLATE "C" LIMIT $3`,
    [port, protocol, options.limit ?? 10_000, options.reachable === true],
  );
  return rows.rows.map(listenerRow);
}

/**
 * "Who runs redis on 0.0.0.0?": listeners whose service or process is the name, optionally bound to
 * one address (indexes fleet_listeners_service and fleet_listeners_process, OR-ed by a bitmap scan).
 */
export async function hostsRunning(
  pool: pg.Pool,
  name: string,
  address?: string,
  limit = 10_000,
): Promise<FleetListenerRow[]> {
  const rows = await pool.query<ListenerJoinRow>(
    `${LISTENER_SELECT} WHERE (l.service = $1 OR l.process = $1) AND ($2::text IS NULL OR l.local_address = $2)
     ORDER BY h.name COLLATE "C", l.local_port, l.local_address COLLATE "C" LIMIT $3`,
    [name, address ?? null, limit],
  );
  return rows.rows.map(listenerRow);
}

interface EventJoinRow {
  name: string;
  host_group: string;
  key: string;
  at: Date;
  kind: string;
  listener_key: string;
  message: string;
}

function eventRow(r: EventJoinRow): FleetEventRow {
  return {
    host: r.name,
    group: r.host_group,
    key: r.key,
    at: r.at.toISOString(),
    kind: r.kind,
    listenerKey: r.listener_key,
    message: r.message,
  };
}

/** "What changed on the web tier since Monday?": events since a time, of one group, host or all. */
export async function changesSince(
  pool: pg.Pool,
  options: { since: string; group?: string; host?: string; limit?: number },
): Promise<FleetEventRow[]> {
  const rows = await pool.query<EventJoinRow>(
    `SELECT h.name, h.host_group, e.key, e.at, e.kind, e.listener_key, e.message
     FROM fleet_events e JOIN fleet_hosts h ON h.id = e.host_id
     WHERE e.at >= $1 AND ($2::text IS NULL OR h.host_group = $2) AND ($3::text IS NULL OR h.name = $3)
     ORDER BY e.at DESC, e.id DESC LIMIT $4`,
    [options.since, options.group ?? null, options.host ?? null, options.limit ?? 1000],
  );
  return rows.rows.map(eventRow);
}

export interface HostDetail {
  host: FleetHost;
  listeners: FleetListenerRow[];
  findings: FleetFinding[];
  history: { takenAt: string; listeners: number; exposed: number; openFindings: number }[];
}

/** One host: its current listeners and findings, and its hourly history over the last `days`. */
export async function hostDetail(pool: pg.Pool, name: string, days = 30): Promise<HostDetail | null> {
  const host = (
    await pool.query<HostDbRow & { id: string; findings: FleetFinding[] }>(
      `SELECT id, findings, ${HOST_COLUMNS} FROM fleet_hosts WHERE name = $1`,
      [name],
    )
  ).rows[0];
  if (!host) return null;
  const [listeners, history] = await Promise.all([
    pool.query<ListenerJoinRow>(
      `${LISTENER_SELECT} WHERE l.host_id = $1 ORDER BY l.protocol, l.local_port, l.local_address`,
      [host.id],
    ),
    pool.query<{ taken_at: Date; listeners: number; exposed: number; open_findings: number }>(
      // one point per hour (the highest counts in it): a month is 720 points, whatever the agents' interval
      `SELECT date_trunc('hour', taken_at) AS taken_at, max(listeners) AS listeners, max(exposed) AS exposed,
         max(open_findings) AS open_findings FROM fleet_snapshots
       WHERE host_id = $1 AND taken_at >= now() - make_interval(days => $2) GROUP BY 1 ORDER BY 1`,
      [host.id, days],
    ),
  ]);
  return {
    host: hostFromDb(host),
    listeners: listeners.rows.map(listenerRow),
    findings: host.findings,
    history: history.rows.map((r) => ({
      takenAt: r.taken_at.toISOString(),
      listeners: r.listeners,
      exposed: r.exposed,
      openFindings: r.open_findings,
    })),
  };
}
