import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { isPortwardenError, PortwardenError } from '../errors.ts';
import type { Listener } from '../inventory/listeners.ts';
import type { WatchEvent } from './events.ts';
import { lockInstance, type InstanceLock } from './instance-lock.ts';
import type { Knock } from './knocks.ts';

/**
 * The watch database (SQLite, WAL): events, periodic snapshots of the listeners, knocks, stored scans,
 * and the last known listener set. Events and the listener set are written in one transaction, so a
 * restart continues from exactly what was recorded: no event twice, none lost.
 */

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE events (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, message TEXT NOT NULL, data TEXT NOT NULL);
   CREATE INDEX events_at ON events(at);
   CREATE TABLE snapshots (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, count INTEGER NOT NULL, exposed INTEGER NOT NULL, listeners TEXT NOT NULL);
   CREATE INDEX snapshots_at ON snapshots(at);
   CREATE TABLE knocks (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, source TEXT NOT NULL, destination TEXT NOT NULL, protocol TEXT NOT NULL, port INTEGER NOT NULL, zone TEXT NOT NULL, direction TEXT NOT NULL);
   CREATE INDEX knocks_at ON knocks(at);
   CREATE TABLE scans (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, targets TEXT NOT NULL, data TEXT NOT NULL);
   CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  // The scans list reads counts only: results move to a table of their own (a row's columns after a
  // megabyte of JSON cost a walk through its overflow pages), and each scan gets its counts.
  `CREATE TABLE scan_results (id INTEGER PRIMARY KEY, data TEXT NOT NULL);
   INSERT INTO scan_results (id, data) SELECT id, data FROM scans;
   CREATE TABLE scan_list (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, targets TEXT NOT NULL,
     hosts INTEGER NOT NULL, open INTEGER NOT NULL, bytes INTEGER NOT NULL);
   INSERT INTO scan_list SELECT id, at, targets, coalesce(json_array_length(data, '$.hosts'), 0),
     (SELECT count(*) FROM json_each(scans.data, '$.hosts') h, json_each(h.value, '$.ports') p
      WHERE json_extract(p.value, '$.state') = 'open'),
     length(CAST(data AS BLOB)) FROM scans;
   DROP TABLE scans;
   ALTER TABLE scan_list RENAME TO scans;
   CREATE INDEX scans_at ON scans(at);`,
  // watch --programs (src/programs/store.ts): the decisions, the prompts the dashboard and
  // `portwarden ask` answer (the database is how they reach the daemon), and the connection log.
  `CREATE TABLE program_decisions (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, exe TEXT NOT NULL,
     sha256 TEXT, verdict TEXT NOT NULL, scope TEXT NOT NULL, protocol TEXT, remote_address TEXT,
     remote_port INTEGER, source TEXT NOT NULL);
   CREATE INDEX program_decisions_exe ON program_decisions(exe);
   CREATE TABLE program_prompts (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, deadline INTEGER NOT NULL,
     exe TEXT NOT NULL, sha256 TEXT, changed INTEGER NOT NULL, program TEXT NOT NULL, protocol TEXT NOT NULL,
     remote_address TEXT NOT NULL, remote_port INTEGER NOT NULL, answer TEXT, answered_at INTEGER,
     answered_by TEXT, resolved INTEGER NOT NULL DEFAULT 0);
   CREATE INDEX program_prompts_open ON program_prompts(resolved, answer);
   CREATE TABLE program_connections (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, exe TEXT, sha256 TEXT,
     pid INTEGER, start_time INTEGER, user TEXT, unit TEXT, container TEXT, cmdline TEXT,
     protocol TEXT NOT NULL, local_address TEXT NOT NULL, local_port INTEGER NOT NULL,
     remote_address TEXT NOT NULL, remote_port INTEGER NOT NULL, verdict TEXT NOT NULL, reason TEXT NOT NULL);
   CREATE INDEX program_connections_at ON program_connections(at);
   CREATE INDEX program_connections_exe ON program_connections(exe);`,
];

const TABLES = ['events', 'snapshots', 'knocks', 'scans', 'state'];

const iso = (ms: number): string => new Date(ms).toISOString();

/** A listener as an older database stored it: `address`/`port`, no reachability. */
type StoredListener = Omit<Listener, 'localAddress' | 'localPort' | 'reachable'> &
  Partial<Pick<Listener, 'localAddress' | 'localPort' | 'reachable'>> & { address?: string; port?: number };

/** Reads a stored listener in today's vocabulary, whichever version wrote it. */
function readListener(stored: StoredListener): Listener {
  const { address, port, ...rest } = stored;
  return {
    ...rest,
    localAddress: stored.localAddress ?? address ?? '',
    localPort: stored.localPort ?? port ?? 0,
    // unknown for the diff: a listener stored without it reports no change of reachability
    reachable: stored.reachable as Listener['reachable'],
  };
}

export interface StoredEvent extends WatchEvent {
  id: number;
}

/** A stored knock as read back: its time in ISO 8601 like every time portwarden prints. */
export type StoredKnock = Omit<Knock, 'at'> & { at: string };

/** A stored scan as the scans list shows it: counts, not the whole result. */
export interface ScanSummary {
  id: number;
  /** ISO 8601 time the scan was stored. */
  at: string;
  targets: string;
  hosts: number;
  open: number;
  bytes: number;
}

/** What one transaction records: events, knocks, and (when given) the listener set they lead to. */
export interface Batch {
  events?: readonly WatchEvent[];
  knocks?: readonly Knock[];
  listeners?: ReadonlyMap<string, Listener>;
}

function sqliteCode(error: unknown): string {
  return error instanceof Error && 'code' in error ? String(error.code) : '';
}

/** SQLite's failure, in words a user can act on. */
export function describeStorageError(error: unknown): string {
  const code = sqliteCode(error);
  const message = error instanceof Error ? error.message : String(error);
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT'))
    return `it is damaged or not a SQLite database (${message})`;
  if (code.startsWith('SQLITE_READONLY')) return `it is read-only (${message})`;
  if (code.startsWith('SQLITE_CANTOPEN')) return `it cannot be opened (${message})`;
  return message;
}

/** A watch database that cannot be used: exit 3 with the path and what to do about it. */
export function unusableDatabase(path: string, why: string, cause?: unknown): PortwardenError {
  return new PortwardenError('STATE_UNAVAILABLE', `cannot use the watch database "${path}": ${why}`, {
    hint: `move it aside (mv "${path}" "${path}.bad") and start again, or use --db with another file`,
    ...(cause === undefined ? {} : { cause }),
  });
}

/** Refuses what is not our schema: someone else's database, or one from a newer portwarden. */
function checkSchema(db: Database.Database, path: string): number {
  const version = Number(db.pragma('user_version', { simple: true }));
  const rows = db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    .all() as { name: string }[];
  const tables = rows.map((t) => t.name);
  if (version > MIGRATIONS.length)
    throw unusableDatabase(
      path,
      `it was written by a newer portwarden (schema version ${version}; this one knows up to ${MIGRATIONS.length})`,
    );
  if (version === 0 && tables.length > 0)
    throw unusableDatabase(path, `it is not a portwarden watch database (its tables: ${tables.join(', ')})`);
  const missing = version === 0 ? [] : TABLES.filter((t) => !tables.includes(t));
  if (missing.length > 0)
    throw unusableDatabase(path, `it is not a portwarden watch database (no table ${missing.join(', ')})`);
  return version;
}

function migrate(db: Database.Database, from: number): void {
  for (let v = from; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v] ?? '');
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

/** Opens, checks and migrates; every failure is exit 3 naming the file, never a stack trace. */
function openDatabase(path: string): Database.Database {
  let db: Database.Database | undefined;
  try {
    db = new Database(path);
    db.pragma('busy_timeout = 5000');
    const version = checkSchema(db, path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    migrate(db, version);
    return db;
  } catch (error) {
    db?.close();
    if (isPortwardenError(error)) throw error;
    throw unusableDatabase(path, describeStorageError(error), error);
  }
}

export interface WatchStoreOptions {
  /** Take the single-instance lock (`<db>.lock`): the watch daemon is the one writer of events. */
  exclusive?: boolean;
}

export class WatchStore {
  readonly db: Database.Database;
  private readonly lock: InstanceLock | null;

  constructor(
    readonly path: string,
    options: WatchStoreOptions = {},
  ) {
    try {
      if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new PortwardenError(
        'STATE_UNAVAILABLE',
        `cannot create the directory of the watch database "${path}": ${(error as Error).message}`,
        { hint: 'run as root, or point --db (or PORTWARDEN_STATE_DIR) at a writable place', cause: error },
      );
    }
    this.lock = options.exclusive && path !== ':memory:' ? lockInstance(path) : null;
    try {
      this.db = openDatabase(path);
    } catch (error) {
      this.lock?.release();
      throw error;
    }
  }

  /** The listener set recorded with the last events (empty on the first start). */
  lastListeners(): Map<string, Listener> {
    const row = this.db.prepare('SELECT value FROM state WHERE key = ?').get('listeners') as
      { value: string } | undefined;
    if (!row) return new Map();
    return new Map((JSON.parse(row.value) as StoredListener[]).map((l) => [l.key, readListener(l)]));
  }

  hasBaseline(): boolean {
    return this.db.prepare('SELECT 1 FROM state WHERE key = ?').get('listeners') !== undefined;
  }

  /** Records a sample's events and its listener set atomically. */
  recordSample(events: readonly WatchEvent[], listeners: ReadonlyMap<string, Listener>): void {
    this.record({ events, listeners });
  }

  /**
   * Records a batch in one transaction. The listener set is written with events, or when there is none
   * yet (the baseline).
   */
  record(batch: Batch): void {
    const events = batch.events ?? [];
    const insert = this.db.prepare(
      'INSERT INTO events (at, kind, key, message, data) VALUES (?, ?, ?, ?, ?)',
    );
    const state = this.db.prepare(
      'INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
    );
    this.db.transaction(() => {
      for (const e of events) insert.run(Date.parse(e.at), e.kind, e.key, e.message, JSON.stringify(e));
      for (const k of batch.knocks ?? []) this.recordKnock(k);
      if (batch.listeners && (events.length > 0 || !this.hasBaseline()))
        state.run('listeners', JSON.stringify([...batch.listeners.values()]));
    })();
  }

  recordEvent(event: WatchEvent): void {
    this.record({ events: [event] });
  }

  recordKnock(k: Knock): void {
    this.db
      .prepare(
        'INSERT INTO knocks (at, source, destination, protocol, port, zone, direction) VALUES (?, ?, ?, ?, ?, ?, ?)',
      )
      .run(k.at, k.source, k.destination, k.protocol, k.port, k.zone, k.direction);
  }

  /** Times stored are milliseconds since the epoch (indexed, compared); they are read back as ISO. */
  snapshot(at: number, listeners: ReadonlyMap<string, Listener>): void {
    const all = [...listeners.values()];
    this.db
      .prepare('INSERT INTO snapshots (at, count, exposed, listeners) VALUES (?, ?, ?, ?)')
      .run(at, all.length, all.filter((l) => l.exposure !== 'loopback').length, JSON.stringify(all));
  }

  /** Stores a scan result (already serialized) with the counts the scans list shows; returns its id. */
  recordScan(at: number, targets: string, json: string, counts: { hosts: number; open: number }): number {
    return this.db.transaction(() => {
      const result = this.db
        .prepare('INSERT INTO scans (at, targets, hosts, open, bytes) VALUES (?, ?, ?, ?, ?)')
        .run(at, targets, counts.hosts, counts.open, Buffer.byteLength(json));
      const id = Number(result.lastInsertRowid);
      this.db.prepare('INSERT INTO scan_results (id, data) VALUES (?, ?)').run(id, json);
      return id;
    })();
  }

  /** Deletes what is older than the retention; returns the number of rows removed. */
  prune(before: number): number {
    let removed = 0;
    this.db.transaction(() => {
      for (const table of ['events', 'snapshots', 'knocks', 'scans']) {
        removed += this.db.prepare(`DELETE FROM ${table} WHERE at < ?`).run(before).changes;
      }
      this.db.exec('DELETE FROM scan_results WHERE id NOT IN (SELECT id FROM scans)');
    })();
    return removed;
  }

  events(options: { since?: number; limit?: number; kind?: string } = {}): StoredEvent[] {
    const rows = this.db
      .prepare(
        `SELECT id, at, data FROM events WHERE at >= ? ${options.kind ? 'AND kind = ?' : ''} ORDER BY id DESC LIMIT ?`,
      )
      .all(...[options.since ?? 0, ...(options.kind ? [options.kind] : []), options.limit ?? 1000]) as {
      id: number;
      at: number;
      data: string;
    }[];
    return rows.map((r) => {
      const event = JSON.parse(r.data) as WatchEvent & { listener?: StoredListener };
      return {
        id: r.id,
        ...event,
        at: iso(r.at),
        ...(event.listener ? { listener: readListener(event.listener) } : {}),
      };
    });
  }

  snapshots(since = 0, limit = 2000): { at: string; count: number; exposed: number }[] {
    const rows = this.db
      .prepare('SELECT at, count, exposed FROM snapshots WHERE at >= ? ORDER BY at LIMIT ?')
      .all(since, limit) as { at: number; count: number; exposed: number }[];
    return rows.map((r) => ({ ...r, at: iso(r.at) }));
  }

  knocks(since = 0, limit = 5000): StoredKnock[] {
    return (
      this.db
        .prepare(
          'SELECT at, source, destination, protocol, port, zone, direction FROM knocks WHERE at >= ? ORDER BY at LIMIT ?',
        )
        .all(since, limit) as Omit<Knock, 'interface'>[]
    ).map((k) => ({ ...k, at: iso(k.at), interface: '' }));
  }

  /** The newest stored scans, without their results (see scan()). */
  scans(limit = 50): ScanSummary[] {
    const rows = this.db
      .prepare('SELECT id, at, targets, hosts, open, bytes FROM scans ORDER BY at DESC, id DESC LIMIT ?')
      .all(limit) as (Omit<ScanSummary, 'at'> & { at: number })[];
    return rows.map((r) => ({ ...r, at: iso(r.at) }));
  }

  /** One stored scan with its result as stored (JSON text), or undefined. */
  scan(id: number): (ScanSummary & { data: string }) | undefined {
    const row = this.db
      .prepare(
        'SELECT s.id, at, targets, hosts, open, bytes, data FROM scans s JOIN scan_results r ON r.id = s.id WHERE s.id = ?',
      )
      .get(id) as (Omit<ScanSummary, 'at'> & { at: number; data: string }) | undefined;
    return row ? { ...row, at: iso(row.at) } : undefined;
  }

  close(): void {
    this.db.close();
    this.lock?.release();
  }
}
