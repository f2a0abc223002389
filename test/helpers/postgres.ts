import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';

/**
 * A real PostgreSQL cluster for one test file: initdb in a temporary directory, postgres on a unix
 * socket there (no TCP port), stopped and removed by stop(). As root, PostgreSQL refuses to run: the
 * cluster then belongs to the `postgres` user and its commands run through runuser.
 */
export interface TestPostgres {
  /** postgres://… URL over the unix socket, for `pg` and the CLI. */
  url: string;
  dir: string;
  stop: () => void;
}

/** The directory of Debian's PostgreSQL binaries (highest version), or PG_BIN. */
export function postgresBin(): string | null {
  if (process.env['PG_BIN']) return process.env['PG_BIN'];
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return null;
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? null : join(base, versions[0], 'bin');
}

/** Why no test cluster can start here, or undefined when it can. */
export function postgresUnavailableReason(): string | undefined {
  if (postgresBin() === null) return 'PostgreSQL is not installed (apt-get install postgresql)';
  if (process.getuid?.() === 0 && spawnSync('id', ['-u', 'postgres']).status !== 0)
    return 'running as root but there is no postgres user to own the cluster';
  return undefined;
}

function asOwner(command: string, args: readonly string[]): string[] {
  return process.getuid?.() === 0
    ? ['runuser', '-u', 'postgres', '--', command, ...args]
    : [command, ...args];
}

function run(bin: string, command: string, args: readonly string[]): void {
  const [file, ...rest] = asOwner(join(bin, command), args);
  execFileSync(file!, rest, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
}

export function startPostgres(): TestPostgres {
  const bin = postgresBin();
  if (bin === null) throw new Error('PostgreSQL is not installed');
  const dir = mkdtempSync(join(tmpdir(), 'pw-pg-'));
  const data = join(dir, 'data');
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  let started = false;
  const stop = (): void => {
    if (started) {
      try {
        run(bin, 'pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // already gone: removing the directory is all that is left
      }
      started = false;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    run(bin, 'initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
    const settings = `-k ${dir} -c listen_addresses='' -c fsync=off -c max_connections=200`;
    started = true;
    run(bin, 'pg_ctl', ['-D', data, '-w', '-t', '30', '-l', join(dir, 'log'), '-o', settings, 'start']);
  } catch (error) {
    stop();
    throw error;
  }
  return { url: `postgres://postgres@localhost/postgres?host=${encodeURIComponent(dir)}`, dir, stop };
}

/**
 * A describe block with one cluster for the whole file (started in beforeAll, always stopped in
 * afterAll). Without PostgreSQL it skips with the reason; in CI (PORTWARDEN_REQUIRE_ROOT_TIERS=1),
 * where the package is installed, a missing server fails instead.
 */
export function describePostgres(name: string, body: (pg: () => TestPostgres) => void): void {
  const reason = postgresUnavailableReason();
  if (reason !== undefined) {
    if (process.env['PORTWARDEN_REQUIRE_ROOT_TIERS'] === '1') {
      describe(name, () => {
        it('has PostgreSQL (required in CI)', () => {
          throw new Error(`"${name}" cannot run: ${reason}`);
        });
      });
      return;
    }
    process.stderr.write(`portwarden tests: skipping "${name}": ${reason}\n`);
    describe(name, () => it.skip(`skipped: ${reason}`, () => undefined));
    return;
  }
  let cluster: TestPostgres | null = null;
  describe(name, () => {
    beforeAll(() => {
      cluster = startPostgres();
    });
    afterAll(() => cluster?.stop());
    body(() => {
      if (!cluster) throw new Error('the test cluster did not start');
      return cluster;
    });
  });
}
