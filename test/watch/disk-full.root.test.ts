import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  appendFileSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, expect, it } from 'vitest';
import { WatchStore } from '../../src/watch/store.ts';
import { BIN } from '../helpers/cli.ts';
import { describeRootTier } from '../helpers/root-tier.ts';
import { until } from '../helpers/until.ts';
import { hasBaseline } from '../helpers/watch-db.ts';

/**
 * The real thing: the watch database on a 1 MiB tmpfs (mounted in a mount namespace of the daemon's
 * own, so nothing outside sees it) that the test fills up, and on a read-only bind mount.
 */

interface Event {
  kind: string;
  key: string;
  message: string;
}

const ENV = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', NO_COLOR: '1', LANG: 'C' };

await describeRootTier('watch on a full disk and a read-only mount', ['unshare', 'mount'], () => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-watch-disk-'));
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  /** Writes until the file system says ENOSPC, in smaller and smaller pieces. */
  function fillUp(file: string): void {
    for (const size of [65_536, 4096, 512, 1]) {
      try {
        for (let i = 0; i < 100_000; i++) appendFileSync(file, Buffer.alloc(size));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      }
    }
  }

  const knockLine = (port: number): string =>
    `[12345.678] pw:in:uplink: IN=eth0 OUT= MAC=f2:cd SRC=203.0.113.5 DST=203.0.113.1 LEN=60 TTL=64 PROTO=TCP SPT=43618 DPT=${port} WINDOW=64240 SYN\n`;

  it('disk full, then knocks: alerts still go out, the outage is one, and it all lands once there is room', async () => {
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    const log = join(dir, 'kern.log');
    writeFileSync(log, '');
    const child = spawn(
      'unshare',
      [
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        'mount -t tmpfs -o size=1m pw-watch-test "$0" && exec "$@"',
        mnt,
        process.execPath,
        BIN,
        'watch',
        '--db',
        join(mnt, 'watch.db'),
        '--kernel-log',
        log,
        '--json',
        '--interval',
        '0.3',
        '--scan-threshold',
        '5',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: ENV },
    );
    children.push(child);
    const events: Event[] = [];
    let stderr = '';
    let buffer = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const line of lines) if (line.trim()) events.push(JSON.parse(line) as Event);
    });
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // unshare and sh exec: the pid is the daemon's, and /proc/<pid>/root sees its tmpfs
    const inside = (name: string): string => `/proc/${child.pid}/root${mnt}/${name}`;
    // SQLite resolves the /proc magic link to a path of this namespace: read a copy instead
    const copyOfDb = (name: string): string => {
      const copy = join(dir, name);
      rmSync(`${copy}-wal`, { force: true });
      for (const suffix of ['', '-wal'])
        if (existsSync(inside(`watch.db${suffix}`)))
          copyFileSync(inside(`watch.db${suffix}`), `${copy}${suffix}`);
      return copy;
    };
    await until(
      'the baseline',
      () => existsSync(inside('watch.db')) && hasBaseline(copyOfDb('baseline.db'), false),
    );
    fillUp(inside('fill'));

    let port = 1;
    await until(
      'the storage-failed alert',
      () => {
        if (port <= 60) appendFileSync(log, knockLine(port++));
        return events.some((e) => e.kind === 'storage-failed');
      },
      20_000,
    );
    for (let i = 0; i < 6; i++) appendFileSync(log, knockLine(port++));
    await until('the port-scan alert', () => events.some((e) => e.kind === 'port-scan'));
    expect(child.exitCode).toBeNull();
    expect(events.find((e) => e.kind === 'storage-failed')?.message).toMatch(
      /cannot write the watch database ".*watch\.db": database or disk is full; alerts still go out \(to stdout\)/,
    );
    expect(stderr).toMatch(/database or disk is full.*\(alerted on: stdout\)/);
    expect(stderr).not.toMatch(/SqliteError|\n\s+at /);

    unlinkSync(inside('fill'));
    appendFileSync(log, knockLine(port++));
    await until('the storage-recovered alert', () => events.some((e) => e.kind === 'storage-recovered'));
    // a copy taken while the daemon writes can be torn: such a read counts as "not yet"
    const stored = (): { knocks: number; kinds: string[] } => {
      try {
        return storedOnce();
      } catch {
        return { knocks: -1, kinds: [] };
      }
    };
    const storedOnce = (): { knocks: number; kinds: string[] } => {
      const conn = new Database(copyOfDb('copy.db'));
      try {
        const knocks = conn.prepare('SELECT count(*) AS n FROM knocks').get() as { n: number };
        const kinds = conn.prepare('SELECT kind FROM events').all() as { kind: string }[];
        return { knocks: knocks.n, kinds: kinds.map((e) => e.kind).sort() };
      } finally {
        conn.close();
      }
    };
    // the last knock may come in after the sample that found the disk writable again
    await until('every knock stored', () => stored().knocks === port - 1);
    await until('the three events stored', () => stored().kinds.length === 3);
    expect(stored().kinds).toEqual(['port-scan', 'storage-failed', 'storage-recovered']);
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 60_000);

  it('a database on a read-only mount: exit 3 with the path and what to do', () => {
    const ro = join(dir, 'ro');
    mkdirSync(ro);
    const db = join(ro, 'watch.db');
    new WatchStore(db).close();
    const result = spawnSync(
      'unshare',
      [
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"',
        ro,
        process.execPath,
        BIN,
        'watch',
        '--db',
        db,
        '--samples',
        '1',
        '--kernel-log',
        'none',
        '--quiet',
      ],
      { encoding: 'utf8', env: ENV, timeout: 30_000 },
    );
    expect(result.stderr).not.toMatch(/internal error|\n\s+at /);
    expect(result.status).toBe(3);
    expect(result.stderr).toContain(db);
    expect(result.stderr).toMatch(/read-only file system/);
    expect(result.stderr).toMatch(/hint: .*--db with a file in a writable place/);
  });
});
