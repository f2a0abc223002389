import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { Socket } from '../../src/inventory/types.ts';
import { webhookSink, type AlertSink } from '../../src/watch/alerts.ts';
import { runWatch } from '../../src/watch/daemon.ts';
import { listenersOf } from '../../src/inventory/listeners.ts';
import type { WatchEvent } from '../../src/watch/events.ts';
import { lockInstance } from '../../src/watch/instance-lock.ts';
import { WatchStore } from '../../src/watch/store.ts';
import { BIN, ROOT, runCli } from '../helpers/cli.ts';
import { makeSocket } from '../helpers/socket.ts';

/**
 * watch must not go quiet: bad databases are exit 3 with the fix, storage failures are alerts and lose
 * no alert, SIGTERM ends in 5 s whatever the webhook does, and one daemon per database.
 */

const dirs: string[] = [];
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pw-watch-rel-'));
  dirs.push(dir);
  return dir;
}

const ssh = makeSocket({ localPort: 22, state: 'LISTEN', service: 'ssh', risk: 'medium' });
// a long command line: its events need pages of their own, which a full database cannot give
const telnet = makeSocket({
  localPort: 23,
  state: 'LISTEN',
  service: 'telnet',
  risk: 'critical',
  processes: [
    {
      pid: 23,
      startTime: 1,
      name: 'in.telnetd',
      exe: '/usr/sbin/in.telnetd',
      exeDeleted: false,
      uid: 0,
      user: 'root',
      cmdline: 'in.telnetd',
      unit: `telnet-${'x'.repeat(8000)}.service`,
      container: null,
    },
  ],
});
const http = makeSocket({ localPort: 80, state: 'LISTEN', service: 'http' });

function collector(): { sink: AlertSink; seen: WatchEvent[] } {
  const seen: WatchEvent[] = [];
  return {
    seen,
    sink: { name: 'memory', send: (e) => void seen.push(e), flush: () => Promise.resolve() },
  };
}

function watchCli(db: string, extra: readonly string[] = []): string[] {
  return ['watch', '--db', db, '--samples', '1', '--kernel-log', 'none', '--quiet', ...extra];
}

describe('a database watch cannot use is exit 3 with the path and the fix, never 4', () => {
  function expectExit3(args: readonly string[], db: string, why: RegExp): void {
    const result = runCli(args);
    expect(result.stderr).not.toMatch(/internal error|SqliteError|\n\s+at /);
    expect(result.status).toBe(3);
    expect(result.stderr).toContain(`"${db}"`);
    expect(result.stderr).toMatch(why);
    expect(result.stderr).toMatch(/hint: move it aside \(mv .*\) and start again, or use --db with another/);
  }

  it('corrupt: random bytes where the database should be (watch and serve)', () => {
    const db = join(tempDir(), 'watch.db');
    writeFileSync(db, Buffer.from(Array.from({ length: 8192 }, (_, i) => (i * 7919) % 251)));
    expectExit3(watchCli(db), db, /damaged or not a SQLite database/);
    expectExit3(['serve', '--port', '0', '--db', db], db, /damaged or not a SQLite database/);
  });

  it('foreign: another program’s SQLite database is refused and left untouched', () => {
    const db = join(tempDir(), 'app.db');
    const conn = new Database(db);
    conn.exec("CREATE TABLE users (id INTEGER, name TEXT); INSERT INTO users VALUES (1, 'ada')");
    conn.close();
    const before = readFileSync(db);
    expectExit3(watchCli(db), db, /not a portwarden watch database \(its tables: users\)/);
    expect(readFileSync(db).equals(before)).toBe(true);
  });

  it('future: a schema version newer than this portwarden knows', () => {
    const db = join(tempDir(), 'watch.db');
    new WatchStore(db).close();
    const conn = new Database(db);
    conn.pragma('user_version = 99');
    conn.close();
    expectExit3(
      watchCli(db),
      db,
      /written by a newer portwarden \(schema version 99; this one knows up to 3\)/,
    );
  });

  it('the systemd unit does not restart what needs a human (exit 2 and 3)', () => {
    const unit = readFileSync(join(ROOT, 'contrib/portwarden-watch.service'), 'utf8');
    expect(unit).toMatch(/^Restart=on-failure$/m);
    expect(unit).toMatch(/^RestartPreventExitStatus=2 3$/m);
  });
});

describe('storage failures are alerts, and no alert waits for storage', () => {
  function samples(
    sequence: Socket[][],
    onStep: (step: number) => void = () => undefined,
  ): () => Promise<Socket[]> {
    let i = 0;
    return () => {
      onStep(i);
      return Promise.resolve(sequence[Math.min(i++, sequence.length - 1)] ?? []);
    };
  }

  it('a full database (SQLITE_FULL): alerts still go out, the outage is alerted, nothing is lost once it has room', async () => {
    const store = new WatchStore(join(tempDir(), 'watch.db'));
    const { sink, seen } = collector();
    const errors: string[] = [];
    // the file may not grow, and its pages are full: the next write of any size fails
    const fillUp = (): void => {
      store.db.pragma(`max_page_count = ${Number(store.db.pragma('page_count', { simple: true }))}`);
      const knock = {
        at: 0,
        direction: 'in',
        zone: 'z',
        source: '',
        destination: '',
        protocol: 'tcp',
        port: 1,
      };
      for (let i = 0; i < 100_000; i++) {
        try {
          store.recordKnock({ ...knock, source: `filler ${i}`, interface: '' });
        } catch {
          return;
        }
      }
    };
    await runWatch({
      store,
      sample: samples([[ssh], [ssh, telnet], [ssh, telnet, http], [ssh, http], [ssh, http]], (step) => {
        // after the baseline the file may not grow; at step 3 the disk has room again
        if (step === 1) fillUp();
        if (step === 3) store.db.pragma('max_page_count = 1000000');
      }),
      intervalMs: 1,
      snapshotEveryMs: 1,
      sinks: [sink],
      kernelLog: 'none',
      maxSamples: 5,
      signal: new AbortController().signal,
      onError: (e) => errors.push(e.message),
    });
    const kinds = seen.map((e) => `${e.kind} ${e.key.split('|')[2] ?? ''}`);
    expect(kinds).toEqual([
      'storage-failed ',
      'listener-opened 23',
      'risky-exposed 23',
      'listener-opened 80',
      'storage-recovered ',
      'listener-closed 23',
    ]);
    expect(seen[0]?.message).toMatch(
      /cannot write the watch database ".*watch\.db": database or disk is full; alerts still go out \(to memory\)/,
    );
    expect(errors.join('\n')).toMatch(/database or disk is full.*\(alerted on: memory\)/);
    expect(seen[4]?.message).toMatch(/takes writes again: 5 events and knocks held since .* are stored/);
    // everything alerted is stored, the outage included
    const stored = store.events().map((e) => `${e.kind} ${e.key}`);
    expect(stored.sort()).toEqual(seen.map((e) => `${e.kind} ${e.key}`).sort());
    // and the stored listener set is the last one: a restart reports nothing again
    expect([...store.lastListeners().keys()]).toEqual([...listenersOf([ssh, http]).keys()]);
    store.close();
  });

  it('a damaged page in the events table: the daemon keeps alerting and says storage is damaged', async () => {
    const db = join(tempDir(), 'watch.db');
    let store = new WatchStore(db);
    store.recordSample([], listenersOf([ssh]));
    for (let i = 0; i < 300; i++)
      store.recordEvent({
        at: new Date(i).toISOString(),
        kind: 'listener-opened',
        key: `k${i}`,
        message: 'x'.repeat(200),
      });
    const { rootpage } = store.db
      .prepare("SELECT rootpage FROM sqlite_master WHERE name = 'events'")
      .get() as {
      rootpage: number;
    };
    const pageSize = Number(store.db.pragma('page_size', { simple: true }));
    store.close();
    const fd = openSync(db, 'r+');
    writeSync(fd, Buffer.alloc(pageSize, 0xab), 0, pageSize, (rootpage - 1) * pageSize);
    closeSync(fd);

    store = new WatchStore(db);
    const { sink, seen } = collector();
    const errors: string[] = [];
    await runWatch({
      store,
      sample: samples([[ssh, telnet], [ssh], [ssh, http]]),
      intervalMs: 1,
      sinks: [sink],
      kernelLog: 'none',
      maxSamples: 3,
      signal: new AbortController().signal,
      onError: (e) => errors.push(e.message),
    });
    // the page stays damaged: what could not be stored is said at the stop
    expect(errors.at(-1)).toMatch(
      /^stopping with 5 events and knocks never stored in ".*watch\.db" \(they were alerted\)$/,
    );
    store.close();
    expect(seen.map((e) => e.kind)).toEqual([
      'storage-failed',
      'listener-opened',
      'risky-exposed',
      'listener-closed',
      'listener-opened',
    ]);
    expect(seen[0]?.message).toMatch(/damaged or not a SQLite database \(database disk image is malformed\)/);
  });
});

function listen(handler: (req: IncomingMessage) => void): Promise<{ server: Server; url: string }> {
  const server = createServer((req) => handler(req)); // never answers
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook` }),
    ),
  );
}

describe('a webhook that never answers cannot hold the stop', () => {
  it('flush gives up after its timeout, aborts the request in flight and counts what it dropped', async () => {
    const aborted: boolean[] = [];
    const { server, url } = await listen((req) => req.on('close', () => aborted.push(true)));
    const abandoned: number[] = [];
    const sink = webhookSink({ url, onAbandon: (n) => abandoned.push(n) });
    try {
      for (let i = 0; i < 3; i++)
        sink.send({ at: new Date(i).toISOString(), kind: 'listener-opened', key: `k${i}`, message: 'm' });
      await new Promise((r) => setTimeout(r, 100));
      const started = Date.now();
      await sink.flush(300);
      expect(Date.now() - started).toBeLessThan(1000);
      expect(abandoned).toEqual([3]);
      await new Promise((r) => setTimeout(r, 100));
      expect(aborted).toEqual([true]);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('SIGTERM stops the daemon within 5 s and says the undelivered alerts were dropped', async () => {
    const db = join(tempDir(), 'watch.db');
    // a baseline with a listener that is not there: the first sample has events for the webhook
    const seed = new WatchStore(db);
    seed.recordSample(
      [],
      listenersOf([makeSocket({ localAddress: '192.0.2.1', localPort: 9, state: 'LISTEN' })]),
    );
    seed.close();
    let requests = 0;
    const { server, url } = await listen(() => requests++);
    try {
      const child = spawn(
        process.execPath,
        [BIN, 'watch', '--db', db, '--kernel-log', 'none', '--quiet', '--interval', '0.5', '--webhook', url],
        { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env['PATH'] ?? '', NO_COLOR: '1' } },
      );
      children.push(child);
      let stderr = '';
      child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      const deadline = Date.now() + 15_000;
      while (requests === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(requests).toBe(1);
      const started = Date.now();
      child.kill('SIGTERM');
      const code = await Promise.race([
        exited,
        new Promise((r) => setTimeout(() => r('still running'), 10_000)),
      ]);
      const took = Date.now() - started;
      expect(code).toBe(0);
      expect(took).toBeLessThan(5000);
      expect(stderr).toMatch(
        /watch: stopping: \d+ alert\(s\) not delivered to the webhook within 4 s were dropped/,
      );
    } finally {
      server.closeAllConnections();
      server.close();
    }
  }, 30_000);
});

describe('one daemon per database', () => {
  it('a second daemon exits 3 naming the pid that holds the database; the lock goes with the first', async () => {
    const db = join(tempDir(), 'watch.db');
    const first = spawn(
      process.execPath,
      [BIN, 'watch', '--db', db, '--kernel-log', 'none', '--quiet', '--interval', '0.3'],
      { stdio: 'ignore' },
    );
    children.push(first);
    const deadline = Date.now() + 15_000;
    while (!existsSync(`${db}.lock`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const second = runCli(watchCli(db));
    expect(second.status).toBe(3);
    expect(second.stderr).toMatch(
      new RegExp(`"${db}" is in use by another portwarden watch \\(pid ${first.pid}, running since `),
    );
    expect(second.stderr).toMatch(/hint: one watch per database: stop pid \d+ first/);
    const exited = new Promise((resolve) => first.once('exit', resolve));
    first.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(existsSync(`${db}.lock`)).toBe(false);
  }, 30_000);

  it('a lock left by a dead process (kill -9) or a reused pid is stale and taken over', () => {
    const db = join(tempDir(), 'watch.db');
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    });
    writeFileSync(`${db}.lock`, JSON.stringify({ pid: Number(gone.stdout), start: '1', since: 'then' }));
    expect(runCli(watchCli(db)).status).toBe(0);
    // pid 1 is alive, but not the process that took the lock (another start time)
    writeFileSync(`${db}.lock`, JSON.stringify({ pid: 1, start: '999999999999', since: 'then' }));
    expect(runCli(watchCli(db)).status).toBe(0);
    expect(existsSync(`${db}.lock`)).toBe(false);
  });

  it('in one process too: the lock is exclusive until released', () => {
    const db = join(tempDir(), 'watch.db');
    const lock = lockInstance(db);
    expect(() => lockInstance(db)).toThrow(/is in use by another portwarden watch \(pid \d+/);
    lock.release();
    lockInstance(db).release();
  });
});
