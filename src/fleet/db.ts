import pg from 'pg';
import { PortwardenError } from '../errors.ts';
import { MIGRATIONS } from './migrations.ts';

/** Whether a --db or --queue value names a PostgreSQL database rather than a SQLite file. */
export function isPostgresUrl(value: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(value);
}

/** A connection pool; the URL is checked first so a typo is a usage error naming the value. */
export function openPool(url: string, max = 10): pg.Pool {
  try {
    new URL(url);
  } catch {
    throw new PortwardenError('OPTION_INVALID', `"${url}" is not a PostgreSQL URL`, {
      hint: 'e.g. postgres://portwarden@db.example/portwarden or postgres://user@localhost/db?host=/run/postgresql',
    });
  }
  const pool = new pg.Pool({ connectionString: url, max, connectionTimeoutMillis: 10_000 });
  // an idle client losing its server must not crash the process: the next query reports it
  pool.on('error', () => undefined);
  return pool;
}

/** Connects once, so a wrong URL or a stopped server is reported with what to check. */
export async function checkConnection(pool: pg.Pool, url: string): Promise<void> {
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    const redacted = url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
    throw new PortwardenError(
      'SOCKET_FAILED',
      `cannot connect to PostgreSQL at ${redacted}: ${(error as Error).message}`,
      { hint: 'check that the server runs, the database exists and the user may connect', cause: error },
    );
  }
}

/**
 * Applies the migrations this version knows and the database has not seen, each in a transaction,
 * under an advisory lock so two servers starting at once do not race. Returns the versions applied.
 */
export async function migrate(pool: pg.Pool): Promise<number[]> {
  const client = await pool.connect();
  const applied: number[] = [];
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', ['portwarden-fleet-migrate']);
    await client.query(
      'CREATE TABLE IF NOT EXISTS fleet_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const done = new Set(
      (await client.query<{ version: number }>('SELECT version FROM fleet_migrations')).rows.map(
        (r) => r.version,
      ),
    );
    const newest = Math.max(0, ...done);
    const known = Math.max(...MIGRATIONS.map((m) => m.version));
    if (newest > known)
      throw new PortwardenError(
        'STATE_UNAVAILABLE',
        `the fleet database is at schema version ${newest}, newer than this portwarden knows (${known})`,
        { hint: 'upgrade portwarden on this machine' },
      );
    for (const migration of MIGRATIONS) {
      if (done.has(migration.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(migration.sql);
        await client.query('INSERT INTO fleet_migrations (version, name) VALUES ($1, $2)', [
          migration.version,
          migration.name,
        ]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      }
      applied.push(migration.version);
    }
  } finally {
    await client
      .query('SELECT pg_advisory_unlock(hashtext($1))', ['portwarden-fleet-migrate'])
      .catch(() => undefined);
    client.release();
  }
  return applied;
}
