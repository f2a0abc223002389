import { fileURLToPath } from 'node:url';

/**
 * The compiled file of a private process entry (a worker started with `process.execPath FILE`);
 * `name` is its path relative to the module asking, without extension (`rollback-worker`,
 * `../lab/worker-entry`). From dist/ that is the .js there; from source (the tests run TypeScript,
 * which node cannot start) it is the same file under dist/, so `npm run build` comes first.
 * Library code starts these entries instead of the public CLI, so it depends on none of its flags.
 */
export function privateEntry(moduleUrl: string, name: string): string {
  const path = fileURLToPath(new URL(`./${name}.js`, moduleUrl));
  if (!moduleUrl.endsWith('.ts')) return path;
  const at = path.lastIndexOf('/src/');
  return `${path.slice(0, at)}/dist/${path.slice(at + '/src/'.length)}`;
}
