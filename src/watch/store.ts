import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { PortwardenError } from '../errors.ts';
import type { Listener, WatchEvent } from './events.ts';
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
];

export interface StoredEvent extends WatchEvent {
  id: number;
}

export class WatchStore {
  readonly db: Database.Database;

  constructor(readonly path: string) {
    try {
      if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      this.db = new Database(path);
    } catch (error) {
      throw new PortwardenError(
        'STATE_UNAVAILABLE',
        `cannot open the watch database "${path}": ${(error as Error).message}`,
        {
          hint: 'run as root, or point --db (or PORTWARDEN_STATE_DIR) at a writable place',
        },
      );
    }
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
  }

  private migrate(): void {
    const version = Number(this.db.pragma('user_version', { simple: true }));
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v] ?? '');
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  /** The listener set recorded with the last events (empty on the first start). */
  lastListeners(): Map<string, Listener> {
    const row = this.db.prepare('SELECT value FROM state WHERE key = ?').get('listeners') as
      { value: string } | undefined;
    if (!row) return new Map();
    return new Map((JSON.parse(row.value) as Listener[]).map((l) => [l.key, l]));
  }

  hasBaseline(): boolean {
    return this.db.prepare('SELECT 1 FROM state WHERE key = ?').get('listeners') !== undefined;
  }

  /** Records a sample's events and its listener set atomically. */
  recordSample(events: readonly WatchEvent[], listeners: ReadonlyMap<string, Listener>): void {
    const insert = this.db.prepare(
      'INSERT INTO events (at, kind, key, message, data) VALUES (?, ?, ?, ?, ?)',
    );
    const state = this.db.prepare(
      'INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
    );
    this.db.transaction(() => {
      for (const e of events) insert.run(e.at, e.kind, e.key, e.message, JSON.stringify(e));
      if (events.length > 0 || !this.hasBaseline())
        state.run('listeners', JSON.stringify([...listeners.values()]));
    })();
  }

  recordEvent(event: WatchEvent): void {
    this.db
      .prepare('INSERT INTO events (at, kind, key, message, data) VALUES (?, ?, ?, ?, ?)')
      .run(event.at, event.kind, event.key, event.message, JSON.stringify(event));
  }

  recordKnock(k: Knock): void {
    this.db
      .prepare(
        'INSERT INTO knocks (at, source, destination, protocol, port, zone, direction) VALUES (?, ?, ?, ?, ?, ?, ?)',
      )
      .run(k.at, k.source, k.destination, k.protocol, k.port, k.zone, k.direction);
  }

  snapshot(at: number, listeners: ReadonlyMap<string, Listener>): void {
    const all = [...listeners.values()];
    this.db
      .prepare('INSERT INTO snapshots (at, count, exposed, listeners) VALUES (?, ?, ?, ?)')
      .run(at, all.length, all.filter((l) => l.exposure !== 'loopback').length, JSON.stringify(all));
  }

  recordScan(at: number, targets: string, data: unknown): void {
    this.db
      .prepare('INSERT INTO scans (at, targets, data) VALUES (?, ?, ?)')
      .run(at, targets, JSON.stringify(data));
  }

  /** Deletes what is older than the retention; returns the number of rows removed. */
  prune(before: number): number {
    let removed = 0;
    this.db.transaction(() => {
      for (const table of ['events', 'snapshots', 'knocks', 'scans']) {
        removed += this.db.prepare(`DELETE FROM ${table} WHERE at < ?`).run(before).changes;
      }
    })();
    return removed;
  }

  events(options: { since?: number; limit?: number; kind?: string } = {}): StoredEvent[] {
    const rows = this.db
      .prepare(
        `SELECT id, data FROM events WHERE at >= ? ${options.kind ? 'AND kind = ?' : ''} ORDER BY id DESC LIMIT ?`,
      )
      .all(...[options.since ?? 0, ...(options.kind ? [options.kind] : []), options.limit ?? 1000]) as {
      id: number;
      data: string;
    }[];
    return rows.map((r) => ({ id: r.id, ...(JSON.parse(r.data) as WatchEvent) }));
  }

  snapshots(since = 0, limit = 2000): { at: number; count: number; exposed: number }[] {
    return this.db
      .prepare('SELECT at, count, exposed FROM snapshots WHERE at >= ? ORDER BY at LIMIT ?')
      .all(since, limit) as {
      at: number;
      count: number;
      exposed: number;
    }[];
  }

  knocks(since = 0, limit = 5000): Knock[] {
    return (
      this.db
        .prepare(
          'SELECT at, source, destination, protocol, port, zone, direction FROM knocks WHERE at >= ? ORDER BY at LIMIT ?',
        )
        .all(since, limit) as Omit<Knock, 'interface'>[]
    ).map((k) => ({ ...k, interface: '' }));
  }

  scans(limit = 50): { id: number; at: number; targets: string; data: unknown }[] {
    return (
      this.db.prepare('SELECT id, at, targets, data FROM scans ORDER BY at DESC LIMIT ?').all(limit) as {
        id: number;
        at: number;
        targets: string;
        data: string;
      }[]
    ).map((r) => ({ ...r, data: JSON.parse(r.data) as unknown }));
  }

  close(): void {
    this.db.close();
  }
}
