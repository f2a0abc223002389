import { createHash, randomBytes } from 'node:crypto';
import type pg from 'pg';
import { PortwardenError } from '../errors.ts';
import {
  DRIFT_RULE,
  fleetListenerKey,
  type FleetEvent,
  type FleetFinding,
  type FleetListener,
  type FleetSnapshot,
  type IngestBatch,
} from './schema.ts';

/**
 * The fleet in PostgreSQL: hosts and their tokens, the current listeners of every host, history points
 * and events. Ingest is idempotent: snapshots are state (one sent twice, or older than the newest
 * applied, changes nothing) and events carry the agent's key (a key seen before is skipped).
 */

/** A history point is stored on every change, and at least this often otherwise. */
export const HISTORY_EVERY_MS = 5 * 60_000;
/** How long a token lookup is reused: a rotated token keeps working this long (a removed host's not at all). */
const TOKEN_CACHE_MS = 30_000;

export interface FleetHost {
  name: string;
  group: string;
  createdAt: string;
  lastSeen: string | null;
  lastSnapshotAt: string | null;
  method: string | null;
  policy: string | null;
  listeners: number;
  exposed: number;
  drift: number;
  openFindings: number;
}

/** A listener on a host, as fleet queries answer it. */
export interface FleetListenerRow extends FleetListener {
  host: string;
  group: string;
  since: string;
}

export interface FleetEventRow {
  host: string;
  group: string;
  key: string;
  at: string;
  kind: string;
  listenerKey: string;
  message: string;
}

export interface IngestResult {
  snapshots: { applied: number; skipped: number };
  events: { stored: number; duplicates: number };
}

/** The host of a cached token was removed meanwhile: the agent is answered as unauthenticated. */
export class HostRemovedError extends Error {
  constructor() {
    super('the host was removed');
  }
}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/** A listener row as PostgreSQL returns it (snake_case columns). */
export interface ListenerDbRow {
  protocol: 'tcp' | 'udp';
  local_address: string;
  local_port: number;
  netns: string;
  exposure: string;
  reachable: 'yes' | 'no' | 'unknown';
  service: string | null;
  risk: string | null;
  process: string | null;
  pid: number | null;
  username: string | null;
  unit: string | null;
  container: string | null;
  since: Date;
}

export function listenerFromDb(r: ListenerDbRow): FleetListener {
  return {
    protocol: r.protocol,
    localAddress: r.local_address,
    localPort: r.local_port,
    netns: r.netns,
    exposure: r.exposure,
    reachable: r.reachable,
    service: r.service,
    risk: r.risk,
    process: r.process,
    pid: r.pid,
    user: r.username,
    unit: r.unit,
    container: r.container,
  };
}

function sameListener(a: FleetListener, b: FleetListener): boolean {
  return (
    a.exposure === b.exposure &&
    a.reachable === b.reachable &&
    a.service === b.service &&
    a.risk === b.risk &&
    a.process === b.process &&
    a.pid === b.pid &&
    a.user === b.user &&
    a.unit === b.unit &&
    a.container === b.container
  );
}

function describe(l: FleetListener): string {
  const addr = l.localAddress.includes(':') ? `[${l.localAddress}]` : l.localAddress;
  const who = l.process ? `${l.process}${l.pid === null ? '' : ` (pid ${l.pid})`}` : 'an unknown process';
  return `${who} on ${l.protocol}/${l.localPort} at ${addr}${l.netns === 'host' ? '' : ` in ${l.netns}`}`;
}

/** The change events a snapshot implies, keyed by the snapshot so a resent snapshot adds none. */
function changeEvents(
  snapshot: FleetSnapshot,
  opened: readonly FleetListener[],
  closed: readonly FleetListener[],
): FleetEvent[] {
  const event = (kind: string, l: FleetListener, message: string): FleetEvent => ({
    key: `${snapshot.key}|${kind}|${fleetListenerKey(l)}`,
    at: snapshot.takenAt,
    kind,
    listenerKey: fleetListenerKey(l),
    message,
    listener: l,
  });
  return [
    ...opened.map((l) =>
      event(
        'listener-opened',
        l,
        `${describe(l)} listens (bound to ${l.exposure}, reachable: ${l.reachable})`,
      ),
    ),
    ...closed.map((l) => event('listener-closed', l, `${describe(l)} closed`)),
  ];
}

const LISTENER_COLUMNS =
  'protocol, local_address, local_port, netns, exposure, service, risk, process, pid, username, unit, container, reachable, since';

async function upsertListeners(
  client: pg.PoolClient,
  hostId: string,
  rows: readonly FleetListener[],
  since: string,
): Promise<void> {
  if (rows.length === 0) return;
  const column = <T>(pick: (l: FleetListener) => T): T[] => rows.map(pick);
  await client.query(
    `INSERT INTO fleet_listeners (host_id, ${LISTENER_COLUMNS})
     SELECT $1, u.*, $15::timestamptz FROM unnest($2::text[], $3::text[], $4::int[], $5::text[], $6::text[],
       $7::text[], $8::text[], $9::text[], $10::int[], $11::text[], $12::text[], $13::text[], $14::text[]) AS u
     ON CONFLICT (host_id, protocol, local_address, local_port, netns) DO UPDATE SET
       exposure = excluded.exposure, service = excluded.service, risk = excluded.risk,
       process = excluded.process, pid = excluded.pid, username = excluded.username,
       unit = excluded.unit, container = excluded.container, reachable = excluded.reachable`,
    [
      hostId,
      column((l) => l.protocol),
      column((l) => l.localAddress),
      column((l) => l.localPort),
      column((l) => l.netns),
      column((l) => l.exposure),
      column((l) => l.service),
      column((l) => l.risk),
      column((l) => l.process),
      column((l) => l.pid),
      column((l) => l.user),
      column((l) => l.unit),
      column((l) => l.container),
      column((l) => l.reachable),
      since,
    ],
  );
}

async function deleteListeners(
  client: pg.PoolClient,
  hostId: string,
  rows: readonly FleetListener[],
): Promise<void> {
  if (rows.length === 0) return;
  await client.query(
    `DELETE FROM fleet_listeners l USING unnest($2::text[], $3::text[], $4::int[], $5::text[]) AS u(p, a, o, n)
     WHERE l.host_id = $1 AND l.protocol = u.p AND l.local_address = u.a AND l.local_port = u.o AND l.netns = u.n`,
    [
      hostId,
      rows.map((l) => l.protocol),
      rows.map((l) => l.localAddress),
      rows.map((l) => l.localPort),
      rows.map((l) => l.netns),
    ],
  );
}

/** Inserts events whose key this host has not sent before; returns how many were new. */
async function insertEvents(
  client: pg.PoolClient,
  hostId: string,
  events: readonly FleetEvent[],
): Promise<number> {
  if (events.length === 0) return 0;
  const result = await client.query(
    `INSERT INTO fleet_events (host_id, key, at, kind, listener_key, message, listener)
     SELECT $1, * FROM unnest($2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::jsonb[])
     ON CONFLICT (host_id, key) DO NOTHING`,
    [
      hostId,
      events.map((e) => e.key),
      events.map((e) => e.at),
      events.map((e) => e.kind),
      events.map((e) => e.listenerKey),
      events.map((e) => e.message),
      events.map((e) => (e.listener ? JSON.stringify(e.listener) : null)),
    ],
  );
  return result.rowCount ?? 0;
}

function openFindings(findings: readonly FleetFinding[]): number {
  return findings.filter((f) => f.severity !== 'info').length;
}

interface HostState {
  lastSnapshotAt: number;
  lastHistoryAt: number;
  current: Map<string, FleetListener> | null;
}

export class FleetStore {
  readonly #pool: pg.Pool;
  readonly #tokens = new Map<string, { at: number; host: { id: string; name: string } | null }>();

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /** Registers a host and returns its token (shown once; only its hash is stored). */
  async addHost(name: string, group: string, options: { rotate?: boolean } = {}): Promise<string> {
    const token = `pwh_${randomBytes(24).toString('base64url')}`;
    const result = await this.#pool.query(
      `INSERT INTO fleet_hosts (name, host_group, token_hash) VALUES ($1, $2, $3)
       ON CONFLICT (name) DO UPDATE SET token_hash = excluded.token_hash, host_group = excluded.host_group
       WHERE $4`,
      [name, group, hashToken(token), options.rotate === true],
    );
    if (result.rowCount === 0)
      throw new PortwardenError('OPTION_INVALID', `the host "${name}" is already registered`, {
        hint: 'add --rotate to give it a new token (the old one stops working)',
      });
    this.#tokens.clear();
    return token;
  }

  async removeHost(name: string): Promise<boolean> {
    const result = await this.#pool.query('DELETE FROM fleet_hosts WHERE name = $1', [name]);
    this.#tokens.clear();
    return (result.rowCount ?? 0) > 0;
  }

  /** The host a token belongs to, or null. */
  async hostForToken(token: string): Promise<{ id: string; name: string } | null> {
    const hash = hashToken(token);
    const cacheKey = hash.toString('hex');
    const cached = this.#tokens.get(cacheKey);
    if (cached && Date.now() - cached.at < TOKEN_CACHE_MS) return cached.host;
    const row = (
      await this.#pool.query<{ id: string; name: string }>(
        'SELECT id, name FROM fleet_hosts WHERE token_hash = $1',
        [hash],
      )
    ).rows[0];
    const host = row ?? null;
    this.#tokens.set(cacheKey, { at: Date.now(), host });
    return host;
  }

  /** Stores one agent batch in one transaction: snapshots in time order, then events. */
  async ingest(hostId: string, batch: IngestBatch): Promise<IngestResult> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      const result = await this.#ingestIn(client, hostId, batch);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async #ingestIn(client: pg.PoolClient, hostId: string, batch: IngestBatch): Promise<IngestResult> {
    const row = (
      await client.query<{ last_snapshot_at: Date | null; last_history_at: Date | null }>(
        'SELECT last_snapshot_at, last_history_at FROM fleet_hosts WHERE id = $1 FOR UPDATE',
        [hostId],
      )
    ).rows[0];
    if (!row) throw new HostRemovedError();
    const state: HostState = {
      lastSnapshotAt: row.last_snapshot_at?.getTime() ?? -Infinity,
      lastHistoryAt: row.last_history_at?.getTime() ?? -Infinity,
      current: null,
    };
    const ordered = [...batch.snapshots].sort((a, b) => Date.parse(a.takenAt) - Date.parse(b.takenAt));
    const derived: FleetEvent[] = [];
    let applied: FleetSnapshot | null = null;
    let skipped = 0;
    for (const snapshot of ordered) {
      if (Date.parse(snapshot.takenAt) <= state.lastSnapshotAt) {
        skipped++;
        continue;
      }
      derived.push(...(await this.#applySnapshot(client, hostId, snapshot, state)));
      applied = snapshot;
    }
    const stored = await insertEvents(client, hostId, [...derived, ...batch.events]);
    const storedOwn = Math.max(0, stored - derived.length);
    await this.#updateHost(client, hostId, applied, state);
    return {
      snapshots: { applied: ordered.length - skipped, skipped },
      events: { stored: storedOwn, duplicates: batch.events.length - storedOwn },
    };
  }

  async #applySnapshot(
    client: pg.PoolClient,
    hostId: string,
    snapshot: FleetSnapshot,
    state: HostState,
  ): Promise<FleetEvent[]> {
    state.current ??= new Map(
      (
        await client.query<ListenerDbRow>(
          `SELECT ${LISTENER_COLUMNS} FROM fleet_listeners WHERE host_id = $1`,
          [hostId],
        )
      ).rows.map((r) => {
        const l = listenerFromDb(r);
        return [fleetListenerKey(l), l];
      }),
    );
    const next = new Map(snapshot.listeners.map((l) => [fleetListenerKey(l), l]));
    const opened: FleetListener[] = [];
    const changed: FleetListener[] = [];
    for (const [key, l] of next) {
      const before = state.current.get(key);
      if (!before) opened.push(l);
      else if (!sameListener(before, l)) changed.push(l);
    }
    const closed = [...state.current].filter(([key]) => !next.has(key)).map(([, l]) => l);
    await deleteListeners(client, hostId, closed);
    await upsertListeners(client, hostId, [...opened, ...changed], snapshot.takenAt);
    const at = Date.parse(snapshot.takenAt);
    if (opened.length + closed.length > 0 || at - state.lastHistoryAt >= HISTORY_EVERY_MS) {
      await client.query(
        `INSERT INTO fleet_snapshots (host_id, taken_at, key, listeners, exposed, open_findings)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
        [
          hostId,
          snapshot.takenAt,
          snapshot.key,
          next.size,
          snapshot.listeners.filter((l) => l.exposure !== 'loopback').length,
          openFindings(snapshot.findings),
        ],
      );
      state.lastHistoryAt = at;
    }
    // the first snapshot of a host is its baseline, not a change
    const isBaseline = !Number.isFinite(state.lastSnapshotAt);
    state.current = next;
    state.lastSnapshotAt = at;
    return isBaseline || snapshot.watched === true ? [] : changeEvents(snapshot, opened, closed);
  }

  async #updateHost(
    client: pg.PoolClient,
    hostId: string,
    snapshot: FleetSnapshot | null,
    state: HostState,
  ): Promise<void> {
    if (!snapshot) {
      await client.query('UPDATE fleet_hosts SET last_seen = now() WHERE id = $1', [hostId]);
      return;
    }
    await client.query(
      `UPDATE fleet_hosts SET last_seen = now(), last_snapshot_at = $2, last_history_at = $3, method = $4,
         policy = $5, listeners = $6, exposed = $7, drift = $8, open_findings = $9, findings = $10
       WHERE id = $1`,
      [
        hostId,
        snapshot.takenAt,
        new Date(state.lastHistoryAt).toISOString(),
        snapshot.method,
        snapshot.policy,
        snapshot.listeners.length,
        snapshot.listeners.filter((l) => l.exposure !== 'loopback').length,
        snapshot.findings.filter((f) => f.rule === DRIFT_RULE).length,
        openFindings(snapshot.findings),
        JSON.stringify(snapshot.findings),
      ],
    );
  }
}
