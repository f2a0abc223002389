import { join } from 'node:path';

/** Where portwarden keeps its state unless told otherwise (apply's records, the watch database). */
export const DEFAULT_STATE_DIR = '/var/lib/portwarden';

/** The state directory: the explicit option, else PORTWARDEN_STATE_DIR, else /var/lib/portwarden. */
export function stateDir(
  explicit: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): string {
  return explicit ?? env['PORTWARDEN_STATE_DIR'] ?? DEFAULT_STATE_DIR;
}

/** The watch database: the explicit path (--db), else watch.db in the state directory. */
export function watchDbPath(
  explicit: string | undefined,
  stateDirOption: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): string {
  return explicit ?? join(stateDir(stateDirOption, env), 'watch.db');
}
