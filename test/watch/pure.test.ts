import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPolicyOrThrow } from '../../src/policy/load.ts';
import { syslogSink, webhookSink } from '../../src/watch/alerts.ts';
import { runWatch } from '../../src/watch/daemon.ts';
import type { Reach } from '../../src/audit/exposure.ts';
import type { ReachOf } from '../../src/audit/reachability.ts';
import { listenersOf } from '../../src/inventory/listeners.ts';
import { diffListeners, type WatchEvent } from '../../src/watch/events.ts';
import { KnockDeduper, parseKnock, ScanDetector } from '../../src/watch/knocks.ts';
import { WatchStore } from '../../src/watch/store.ts';
import { runCli } from '../helpers/cli.ts';
import { makeSocket } from '../helpers/socket.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDb(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pw-watch-'));
  dirs.push(dir);
  return join(dir, 'watch.db');
}

const ssh = makeSocket({
  protocol: 'tcp',
  localAddress: '0.0.0.0',
  localPort: 22,
  state: 'LISTEN',
  service: 'ssh',
  risk: 'medium',
});
const telnet = makeSocket({
  protocol: 'tcp',
  localAddress: '0.0.0.0',
  localPort: 23,
  state: 'LISTEN',
  service: 'telnet',
  risk: 'critical',
});
const redisLocal = makeSocket({
  protocol: 'tcp',
  localAddress: '127.0.0.1',
  localPort: 6379,
  state: 'LISTEN',
  exposure: 'loopback',
  service: 'redis',
  risk: 'high',
});
const client = makeSocket({
  protocol: 'tcp',
  localAddress: '203.0.113.1',
  localPort: 40000,
  state: 'ESTABLISHED',
  remoteAddress: '203.0.113.9',
  remotePort: 443,
});
const policy = loadPolicyOrThrow(
  'version: 1\nname: p\ndefaults: { inbound: drop, outbound: accept, forward: drop }\nzones:\n  z:\n    interfaces: [eth0]\n    inbound: [{ allow: ssh }]\n',
  'p.yaml',
);

describe('listener events (pure)', () => {
  it('keeps listeners only, keyed by protocol, address, port and namespace', () => {
    expect([...listenersOf([ssh, client, redisLocal]).keys()]).toEqual([
      'tcp|0.0.0.0|22|host',
      'tcp|127.0.0.1|6379|host',
    ]);
  });

  it.each([
    ['nothing changed', [ssh], [ssh], []],
    [
      'an exposed critical service opens, outside the policy',
      [ssh],
      [ssh, telnet],
      ['listener-opened', 'risky-exposed', 'policy-drift'],
    ],
    [
      'a loopback-only risky service is neither risky-exposed nor drift',
      [],
      [redisLocal],
      ['listener-opened'],
    ],
    ['a listener the policy allows', [], [ssh], ['listener-opened']],
    ['a listener closes', [ssh, telnet], [ssh], ['listener-closed']],
  ] as const)('%s', (_name, before, after, kinds) => {
    const events = diffListeners(
      listenersOf(before),
      listenersOf(after),
      new Date(1000).toISOString(),
      policy,
    );
    expect(events.map((e) => e.kind)).toEqual(kinds);
  });

  it('says who and where', () => {
    const [opened] = diffListeners(new Map(), listenersOf([telnet]), new Date(1).toISOString());
    expect(opened?.message).toMatch(
      /listens on tcp\/23 on 0\.0\.0\.0 \(bound to all interfaces, reachable: unknown\)/,
    );
  });
});

describe('reachability in watch (pure)', () => {
  const answer =
    (reachable: Reach): ReachOf =>
    () => ({ reachable, via: [], onlyFrom: [], why: null });
  const at = new Date(5000).toISOString();
  const sample = (reachable: Reach) => listenersOf([telnet], answer(reachable));

  it.each([
    ['yes', 'no', ['reach-changed']],
    ['no', 'yes', ['reach-changed', 'risky-exposed']],
    ['no', 'unknown', ['reach-changed', 'risky-exposed']],
    ['yes', 'yes', []],
  ] as const)('telnet stays, the firewall goes %s -> %s', (before, after, kinds) => {
    const events = diffListeners(sample(before), sample(after), at);
    expect(events.map((e) => e.kind)).toEqual(kinds);
    if (kinds.length > 0) expect(events[0]?.message).toContain(`${before} -> ${after}`);
  });

  it('a risky listener the firewall stops is not risky-exposed; one it lets through is', () => {
    expect(diffListeners(new Map(), sample('no'), at).map((e) => e.kind)).toEqual(['listener-opened']);
    expect(diffListeners(new Map(), sample('yes'), at).map((e) => e.kind)).toEqual([
      'listener-opened',
      'risky-exposed',
    ]);
  });

  it("a listener stored by an older version (address, port, no reachability) reads in today's words", () => {
    const store = new WatchStore(tempDb());
    const old = { ...[...sample('yes').values()][0] } as Record<string, unknown>;
    old['address'] = old['localAddress'];
    old['port'] = old['localPort'];
    delete old['localAddress'];
    delete old['localPort'];
    delete old['reachable'];
    store.db.prepare('INSERT INTO state (key, value) VALUES (?, ?)').run('listeners', JSON.stringify([old]));
    const back = [...store.lastListeners().values()][0];
    expect(back).toMatchObject({ localAddress: '0.0.0.0', localPort: 23 });
    // no reachability stored: no change reported against today's answer
    expect(diffListeners(store.lastListeners(), sample('yes'), at)).toEqual([]);
    store.close();
  });
});

describe('knock log (pure)', () => {
  const line = (port: number, src = '203.0.113.5'): string =>
    `[12345.678] pw:in:uplink: IN=eth0 OUT= MAC=f2:cd SRC=${src} DST=203.0.113.1 LEN=60 TTL=64 PROTO=TCP SPT=43618 DPT=${port} WINDOW=64240 SYN`;

  it('parses portwarden drop-log lines and ignores the rest', () => {
    expect(parseKnock(line(23), 5)).toEqual({
      at: 5,
      direction: 'in',
      zone: 'uplink',
      source: '203.0.113.5',
      destination: '203.0.113.1',
      protocol: 'tcp',
      port: 23,
      interface: 'eth0',
    });
    expect(parseKnock('usb 1-1: new high-speed USB device', 1)).toBeNull();
    expect(parseKnock('pw:in:x: IN=eth0 SRC=1.2.3.4 PROTO=ICMP TYPE=8', 1)).toBeNull();
  });

  it('counts a packet logged twice (zone chain, then base chain) once', () => {
    const dedupe = new KnockDeduper(1000);
    const zone = parseKnock(line(23), 100);
    const base = parseKnock(line(23).replace('pw:in:uplink:', 'pw:in:-:'), 100);
    const later = parseKnock(line(23), 5000);
    expect([zone, base, later].map((k) => (k ? dedupe.fresh(k) : null))).toEqual([true, false, true]);
  });

  it('flags one port scan per burst, not one per knock, and not a single busy port', () => {
    const detector = new ScanDetector(10, 60_000);
    const alerts: WatchEvent[] = [];
    for (let i = 0; i < 50; i++) {
      const e = detector.add(parseKnock(line(1000 + i), i * 10) ?? (undefined as never));
      if (e) alerts.push(e);
    }
    for (let i = 0; i < 50; i++)
      detector.add(parseKnock(line(22, '198.51.100.7'), i * 10) ?? (undefined as never));
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ kind: 'port-scan', key: 'scan|203.0.113.5' });
    expect(alerts[0]?.ports).toHaveLength(10);
    // after a quiet window the same source is flagged again
    for (let i = 0; i < 10; i++) {
      const e = detector.add(parseKnock(line(2000 + i), 200_000 + i) ?? (undefined as never));
      if (e) alerts.push(e);
    }
    expect(alerts).toHaveLength(2);
  });
});

describe('watch store and loop', () => {
  function fakeSamples(sequence: (typeof ssh)[][]): () => Promise<(typeof ssh)[]> {
    let i = 0;
    return () => Promise.resolve(sequence[Math.min(i++, sequence.length - 1)] ?? []);
  }

  it('records a baseline silently, then changes; a restart neither repeats nor loses events', async () => {
    const path = tempDb();
    const seen: WatchEvent[] = [];
    const sink = {
      name: 'test',
      send: (e: WatchEvent) => void seen.push(e),
      flush: () => Promise.resolve(),
    };
    let store = new WatchStore(path);
    await runWatch({
      store,
      sample: fakeSamples([[ssh], [ssh, telnet]]),
      intervalMs: 1,
      sinks: [sink],
      kernelLog: 'none',
      maxSamples: 2,
      signal: new AbortController().signal,
    });
    store.close();
    expect(seen.map((e) => e.kind)).toEqual(['listener-opened', 'risky-exposed']);
    // restart: telnet closed while watch was down, redis opened; nothing from before comes again
    store = new WatchStore(path);
    await runWatch({
      store,
      sample: fakeSamples([[ssh, redisLocal]]),
      intervalMs: 1,
      sinks: [sink],
      kernelLog: 'none',
      maxSamples: 1,
      signal: new AbortController().signal,
    });
    expect(seen.map((e) => `${e.kind} ${e.key}`)).toEqual([
      'listener-opened tcp|0.0.0.0|23|host',
      'risky-exposed tcp|0.0.0.0|23|host',
      'listener-opened tcp|127.0.0.1|6379|host',
      'listener-closed tcp|0.0.0.0|23|host',
    ]);
    expect(
      store
        .events()
        .map((e) => e.kind)
        .reverse(),
    ).toEqual(seen.map((e) => e.kind));
    expect(Number(store.db.pragma('user_version', { simple: true }))).toBe(3);
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(store.snapshots().length).toBeGreaterThanOrEqual(2);
    store.close();
  });

  it('migration 2 keeps the stored scans of a version-1 database and counts them', () => {
    const path = tempDb();
    const v1 = new Database(path);
    v1.exec(`CREATE TABLE events (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, message TEXT NOT NULL, data TEXT NOT NULL);
      CREATE TABLE snapshots (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, count INTEGER NOT NULL, exposed INTEGER NOT NULL, listeners TEXT NOT NULL);
      CREATE TABLE knocks (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, source TEXT NOT NULL, destination TEXT NOT NULL, protocol TEXT NOT NULL, port INTEGER NOT NULL, zone TEXT NOT NULL, direction TEXT NOT NULL);
      CREATE TABLE scans (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, targets TEXT NOT NULL, data TEXT NOT NULL);
      CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL);`);
    const result = JSON.stringify({
      hosts: [
        {
          address: '198.51.100.1',
          ports: [
            { port: 22, state: 'open' },
            { port: 23, state: 'closed' },
          ],
        },
        { address: '198.51.100.2', ports: [{ port: 80, state: 'open' }] },
      ],
    });
    v1.prepare('INSERT INTO scans (at, targets, data) VALUES (?, ?, ?)').run(5, '198.51.100.0/31', result);
    v1.pragma('user_version = 1');
    v1.close();
    const store = new WatchStore(path);
    expect(store.scans()).toEqual([
      {
        id: 1,
        at: new Date(5).toISOString(),
        targets: '198.51.100.0/31',
        hosts: 2,
        open: 2,
        bytes: result.length,
      },
    ]);
    expect(store.scan(1)?.data).toBe(result);
    expect(store.prune(10)).toBe(1);
    expect(store.scan(1)).toBeUndefined();
    expect(store.db.prepare('SELECT count(*) AS n FROM scan_results').get()).toEqual({ n: 0 });
    store.close();
  });

  it('retention deletes old rows', () => {
    const store = new WatchStore(tempDb());
    store.recordEvent({
      at: new Date(1000).toISOString(),
      kind: 'listener-opened',
      key: 'k',
      message: 'old',
    });
    store.recordEvent({ at: new Date().toISOString(), kind: 'listener-opened', key: 'k', message: 'new' });
    expect(store.prune(Date.now() - 86_400_000)).toBe(1);
    expect(store.events().map((e) => e.message)).toEqual(['new']);
    store.close();
  });

  it('the webhook retries with backoff until the endpoint answers, without blocking the sender', async () => {
    const received: unknown[] = [];
    let failures = 2;
    const server: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        if (failures-- > 0) {
          res.statusCode = 503;
          res.end();
          return;
        }
        received.push(JSON.parse(body));
        res.end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const sink = webhookSink({ url: `http://127.0.0.1:${port}/hook`, backoffMs: 20 });
    const started = Date.now();
    sink.send({ at: new Date(1).toISOString(), kind: 'listener-opened', key: 'a', message: 'one' });
    sink.send({ at: new Date(2).toISOString(), kind: 'listener-closed', key: 'a', message: 'two' });
    expect(Date.now() - started).toBeLessThan(20);
    await sink.flush(5000);
    server.close();
    expect(received).toEqual([
      expect.objectContaining({ message: 'one' }),
      expect.objectContaining({ message: 'two' }),
    ]);
  });
});

describe('syslog alerts and CLI input errors', () => {
  it('syslog goes through logger(1) with the portwarden tag', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pw-logger-'));
    dirs.push(dir);
    const fake = join(dir, 'logger');
    writeFileSync(fake, `#!/bin/sh\nprintf '%s\\n' "$@" > ${join(dir, 'args')}\n`, { mode: 0o755 });
    const path = process.env['PATH'];
    process.env['PATH'] = `${dir}:${path ?? ''}`;
    try {
      syslogSink().send({
        at: new Date(1).toISOString(),
        kind: 'risky-exposed',
        key: 'k',
        message: 'critical risk: telnet exposed',
      });
      const deadline = Date.now() + 5000;
      while (!existsSync(join(dir, 'args')) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
    } finally {
      process.env['PATH'] = path;
    }
    expect(readFileSync(join(dir, 'args'), 'utf8').split('\n')).toEqual([
      '-t',
      'portwarden',
      '-p',
      'auth.warning',
      '--',
      'risky-exposed: critical risk: telnet exposed',
      '',
    ]);
  });

  it.each([
    [['watch', '--interval', '0'], /--interval "0" must be a number from 0.1 to 3600/],
    [['watch', '--webhook', 'ftp://x'], /--webhook "ftp:\/\/x" is not an http\(s\) URL/],
    [['serve', '--port', '70000'], /--port "70000" must be a whole number from 0 to 65535/],
    [['serve', '--db', '/nonexistent/watch.db'], /no watch database at "\/nonexistent\/watch.db"/],
    [
      ['verify', 'examples/workstation.yaml', '--rounds', 'two'],
      /--rounds "two" must be a whole number from 1 to 20/,
    ],
  ])('%j exits 2 with one line and a hint', (args, message) => {
    const result = runCli(args);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toMatch(/hint: /);
  });
});
