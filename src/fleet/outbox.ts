import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { FleetEvent, FleetSnapshot } from './schema.ts';

/**
 * The agent's on-disk outbox (SQLite): every snapshot and event is written here first, with its
 * idempotency key, and deleted only after the server acknowledged it. A crash or a lost answer means it
 * is sent again, and the server skips what it already has: nothing lost, nothing twice.
 */

/** Pending snapshots kept when the server stays away (the newest; events are never dropped). */
export const MAX_PENDING_SNAPSHOTS = 2_000;

export type OutboxItem =
  { seq: number; kind: 'snapshot'; item: FleetSnapshot } | { seq: number; kind: 'event'; item: FleetEvent };

export class Outbox {
  readonly #db: Database.Database;
  readonly #maxSnapshots: number;

  constructor(path: string, options: { maxSnapshots?: number } = {}) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.#db = new Database(path);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = FULL');
    this.#db.exec(
      'CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, key TEXT NOT NULL UNIQUE, body TEXT NOT NULL)',
    );
    this.#maxSnapshots = options.maxSnapshots ?? MAX_PENDING_SNAPSHOTS;
  }

  /** Queues items in one transaction; snapshots beyond the cap drop the oldest pending snapshots. */
  add(snapshots: readonly FleetSnapshot[], events: readonly FleetEvent[]): void {
    const insert = this.#db.prepare('INSERT OR IGNORE INTO outbox (kind, key, body) VALUES (?, ?, ?)');
    this.#db.transaction(() => {
      for (const e of events) insert.run('event', e.key, JSON.stringify(e));
      for (const s of snapshots) insert.run('snapshot', s.key, JSON.stringify(s));
      this.#db
        .prepare(
          "DELETE FROM outbox WHERE kind = 'snapshot' AND seq NOT IN (SELECT seq FROM outbox WHERE kind = 'snapshot' ORDER BY seq DESC LIMIT ?)",
        )
        .run(this.#maxSnapshots);
    })();
  }

  /** The oldest pending items, at most `limit` and about `maxBytes` of JSON (always at least one). */
  peek(limit: number, maxBytes: number): OutboxItem[] {
    const rows = this.#db.prepare('SELECT seq, kind, body FROM outbox ORDER BY seq LIMIT ?').all(limit) as {
      seq: number;
      kind: string;
      body: string;
    }[];
    const out: OutboxItem[] = [];
    let bytes = 0;
    for (const row of rows) {
      bytes += row.body.length;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(
        row.kind === 'snapshot'
          ? { seq: row.seq, kind: 'snapshot', item: JSON.parse(row.body) as FleetSnapshot }
          : { seq: row.seq, kind: 'event', item: JSON.parse(row.body) as FleetEvent },
      );
    }
    return out;
  }

  /** Deletes acknowledged items. */
  remove(seqs: readonly number[]): void {
    const del = this.#db.prepare('DELETE FROM outbox WHERE seq = ?');
    this.#db.transaction(() => {
      for (const seq of seqs) del.run(seq);
    })();
  }

  pending(): { snapshots: number; events: number } {
    const rows = this.#db.prepare('SELECT kind, count(*) AS n FROM outbox GROUP BY kind').all() as {
      kind: string;
      n: number;
    }[];
    return {
      snapshots: rows.find((r) => r.kind === 'snapshot')?.n ?? 0,
      events: rows.find((r) => r.kind === 'event')?.n ?? 0,
    };
  }

  close(): void {
    this.#db.close();
  }
}
