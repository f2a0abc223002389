import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';

/**
 * Reads a watch database; `fallback` while it does not exist yet or has no tables. A copy (without
 * the -shm of a live database) must be opened read-write.
 */
function query<T>(db: string, fallback: T, read: (conn: Database.Database) => T, readonly = true): T {
  if (!existsSync(db)) return fallback;
  let conn: Database.Database | undefined;
  try {
    conn = new Database(db, { readonly });
    return read(conn);
  } catch {
    return fallback; // not created yet, or being created right now
  } finally {
    conn?.close();
  }
}

/** Whether watch has stored its first sample (the baseline listener set). */
export function hasBaseline(db: string, readonly = true): boolean {
  const stored = (c: Database.Database): boolean =>
    c.prepare("SELECT 1 FROM state WHERE key = 'listeners'").get() !== undefined;
  return query(db, false, stored, readonly);
}

/** How many knocks from `source` watch has stored. */
export function knockCount(db: string, source: string): number {
  return query(
    db,
    0,
    (c) => (c.prepare('SELECT count(*) AS n FROM knocks WHERE source = ?').get(source) as { n: number }).n,
  );
}
