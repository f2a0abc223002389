import type { ServerPlugin } from '../../serve/server.ts';
import { PortwardenError } from '../../errors.ts';

/**
 * serve --db postgres://…: the fleet's routes on the dashboard. Plain HTTP stays on loopback: beyond it
 * agent tokens would travel in clear, so TLS is a reverse proxy's job (README: "Fleet").
 */
export async function openFleetServe(
  url: string,
  host: string,
): Promise<{ plugin: ServerPlugin; close: () => Promise<void>; migrated: number[] }> {
  const [{ openPool, checkConnection, migrate }, { FleetStore }, { fleetPlugin }, { isLoopback }] =
    await Promise.all([
      import('../../fleet/db.ts'),
      import('../../fleet/store.ts'),
      import('../../fleet/routes.ts'),
      import('../../serve/server.ts'),
    ]);
  if (!isLoopback(host))
    throw new PortwardenError(
      'OPTION_INVALID',
      `fleet mode serves plain HTTP, so --host "${host}" is refused`,
      {
        hint: 'keep --host 127.0.0.1 and put a TLS reverse proxy in front (README: Fleet, TLS)',
      },
    );
  const pool = openPool(url, 20);
  try {
    await checkConnection(pool, url);
    const migrated = await migrate(pool);
    return { plugin: fleetPlugin(pool, new FleetStore(pool)), close: () => pool.end(), migrated };
  } catch (error) {
    await pool.end();
    throw error;
  }
}
