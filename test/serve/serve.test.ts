import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditData } from '../../src/audit/run.ts';
import type { Socket } from '../../src/inventory/types.ts';
import { loadPolicyOrThrow } from '../../src/policy/load.ts';
import { buildServer, SECURITY_HEADERS } from '../../src/serve/server.ts';
import { WatchStore } from '../../src/watch/store.ts';
import { BIN, ROOT } from '../helpers/cli.ts';
import { launchChromium } from '../helpers/browser.ts';
import { makeSocket } from '../helpers/socket.ts';

const owner = (pid: number, name: string, unit: string | null): Socket['processes'][number] => ({
  pid,
  startTime: 1,
  name,
  exe: `/usr/sbin/${name}`,
  exeDeleted: false,
  uid: 0,
  user: 'root',
  cmdline: name,
  unit,
  container: null,
});
const sockets: Socket[] = [
  makeSocket({
    localPort: 22,
    service: 'ssh',
    risk: 'medium',
    processes: [owner(101, 'sshd', 'ssh.service')],
  }),
  makeSocket({
    localPort: 23,
    service: 'telnet',
    risk: 'critical',
    processes: [owner(102, 'inetd', 'inetd.service')],
  }),
  makeSocket({ localPort: 80, service: 'http', processes: [owner(103, 'nginx', 'nginx.service')] }),
  makeSocket({
    localPort: 6379,
    localAddress: '127.0.0.1',
    exposure: 'loopback',
    service: 'redis',
    risk: 'high',
    processes: [owner(104, 'redis-server', 'redis.service')],
  }),
];
const data: AuditData = {
  sockets,
  interfaces: [
    { name: 'lo', addresses: ['127.0.0.1'] },
    { name: 'eth0', addresses: ['203.0.113.1'] },
  ],
  nftJson: null,
  rulesetReason: 'no ruleset in this fixture',
  legacyRules: 0,
  warnings: [],
};
const POLICY = join(ROOT, 'examples/web-ftp-dual-homed.yaml');
const policyText = readFileSync(POLICY, 'utf8');
const policy = { file: POLICY, text: policyText, policy: loadPolicyOrThrow(policyText, POLICY) };

const dir = mkdtempSync(join(tmpdir(), 'pw-serve-'));
const dbPath = join(dir, 'watch.db');
const dataPath = join(dir, 'data.json');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(() => {
  writeFileSync(dataPath, JSON.stringify(data));
  const store = new WatchStore(dbPath);
  const t0 = Date.parse('2026-12-01T10:00:00Z');
  for (let i = 0; i < 12; i++) {
    const listeners = new Map(
      sockets.slice(0, i < 6 ? 3 : 4).map((s) => [
        `tcp|${s.localAddress}|${s.localPort}|host`,
        {
          key: `tcp|${s.localAddress}|${s.localPort}|host`,
          protocol: 'tcp' as const,
          localAddress: s.localAddress,
          localPort: s.localPort,
          netns: 'host',
          exposure: s.exposure,
          reachable: s.exposure === 'loopback' ? ('no' as const) : ('yes' as const),
          service: s.service,
          risk: s.risk,
          processes: [],
        },
      ]),
    );
    store.snapshot(t0 + i * 300_000, listeners);
  }
  store.recordEvent({
    at: new Date(t0 + 1_800_000).toISOString(),
    kind: 'listener-opened',
    key: 'tcp|127.0.0.1|6379|host',
    message: 'redis-server (pid 104, redis.service) listens on tcp/6379 on 127.0.0.1 (loopback)',
  });
  store.recordEvent({
    at: new Date(t0 + 2_000_000).toISOString(),
    kind: 'port-scan',
    key: 'scan|203.0.113.5',
    message: 'port scan: 203.0.113.5 knocked on 24 ports of zone external within 60 s',
  });
  for (let p = 1; p <= 24; p++)
    store.recordKnock({
      at: t0 + 2_000_000 + p * 100,
      direction: 'in',
      zone: 'external',
      source: '203.0.113.5',
      destination: '203.0.113.1',
      protocol: 'tcp',
      port: p,
      interface: 'eth0',
    });
  store.recordScan(
    t0 + 3_000_000,
    '127.0.0.1',
    JSON.stringify({
      hosts: [
        { address: '127.0.0.1', ports: [{ protocol: 'tcp', port: 22, state: 'open', service: 'ssh' }] },
      ],
    }),
    { hosts: 1, open: 1 },
  );
  store.close();
});

describe('dashboard API: auth and headers', () => {
  async function server(
    host: string,
  ): Promise<{ app: Awaited<ReturnType<typeof buildServer>>; store: WatchStore }> {
    const store = new WatchStore(dbPath);
    const app = await buildServer({
      host,
      port: 0,
      token: 'secret-token',
      sources: { auditData: () => Promise.resolve(data), store, policy, version: 'test' },
    });
    return { app, store };
  }

  it('on loopback: reads need no token, writes do; every response has the security headers', async () => {
    const { app, store } = await server('127.0.0.1');
    try {
      for (const url of [
        '/',
        '/listeners',
        '/app.js',
        '/api/overview',
        '/api/listeners',
        '/api/findings',
        '/api/history',
        '/api/policy',
        '/api/scans',
      ]) {
        const res = await app.inject({ url, headers: { host: '127.0.0.1:7780' } });
        expect(res.statusCode, url).toBe(200);
        for (const [name, value] of Object.entries(SECURITY_HEADERS))
          expect(res.headers[name], `${url} ${name}`).toBe(value);
      }
      const post = (headers: Record<string, string>) =>
        app.inject({
          method: 'POST',
          url: '/api/scans',
          headers: { host: 'localhost:7780', ...headers },
          payload: { hosts: [{ address: '127.0.0.1', ports: [] }] },
        });
      expect((await post({})).statusCode).toBe(401);
      expect((await post({ authorization: 'Bearer wrong-token!' })).statusCode).toBe(401);
      expect((await post({ authorization: 'Bearer secret-token' })).statusCode).toBe(201);
      // a DNS-rebinding page arrives with a foreign Host header
      expect(
        (await app.inject({ url: '/api/overview', headers: { host: 'attacker.example:7780' } })).statusCode,
      ).toBe(421);
    } finally {
      await app.close();
      store.close();
    }
  });

  it('bound beyond loopback: every request needs the token (header, query or cookie)', async () => {
    const { app, store } = await server('0.0.0.0');
    try {
      expect((await app.inject({ url: '/api/overview' })).statusCode).toBe(401);
      expect((await app.inject({ url: '/' })).statusCode).toBe(401);
      expect(
        (await app.inject({ url: '/api/overview', headers: { authorization: 'Bearer secret-token' } }))
          .statusCode,
      ).toBe(200);
      const page = await app.inject({ url: '/?token=secret-token' });
      expect(page.statusCode).toBe(200);
      expect(page.headers['set-cookie']).toMatch(/^pw_token=secret-token; HttpOnly; SameSite=Strict/);
      expect(
        (await app.inject({ url: '/api/findings', headers: { cookie: 'pw_token=secret-token' } })).statusCode,
      ).toBe(200);
    } finally {
      await app.close();
      store.close();
    }
  });

  it('serves the data the pages need', async () => {
    const { app, store } = await server('127.0.0.1');
    try {
      const get = async (url: string): Promise<Record<string, unknown>> =>
        (await app.inject({ url, headers: { host: '127.0.0.1' } })).json();
      const overview = await get('/api/overview');
      expect(overview).toMatchObject({
        listeners: 3,
        watching: true,
        policy: { name: 'web-and-ftp-server' },
      });
      expect((overview['findings'] as Record<string, number>)['critical']).toBeGreaterThanOrEqual(1);
      const listeners = (await get('/api/listeners'))['listeners'] as {
        localPort: number;
        process: string;
        unit: string;
      }[];
      expect(listeners.map((l) => `${l.localPort} ${l.process} ${l.unit}`)).toEqual([
        '22 sshd ssh.service',
        '23 inetd inetd.service',
        '80 nginx nginx.service',
        '6379 redis-server redis.service',
      ]);
      const history = await get('/api/history');
      expect((history['snapshots'] as unknown[]).length).toBe(12);
      expect((history['knocks'] as unknown[]).length).toBe(24);
      const pf = await get('/api/policy?target=pf');
      expect(pf['error']).toMatch(/pf/);
      const ipt = await get('/api/policy?target=iptables');
      expect((ipt['compiled'] as { suffix: string }[]).map((f) => f.suffix)).toEqual(['.v4', '.v6']);
    } finally {
      await app.close();
      store.close();
    }
  });
});

describe('dashboard API: hostile requests get a 4xx with a JSON error and the headers, never a 500', () => {
  async function server(
    host = '127.0.0.1',
    path = dbPath,
  ): Promise<{ app: Awaited<ReturnType<typeof buildServer>>; store: WatchStore }> {
    const store = new WatchStore(path);
    const app = await buildServer({
      host,
      port: 0,
      token: 'secret-token',
      sources: { auditData: () => Promise.resolve(data), store, policy, version: 'test' },
    });
    return { app, store };
  }
  const auth = { host: '127.0.0.1:7780', authorization: 'Bearer secret-token' };

  function expectClean(
    res: { statusCode: number; headers: Record<string, unknown>; body: string },
    status: number,
    error: RegExp,
  ): void {
    expect(res.statusCode, res.body).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect((JSON.parse(res.body) as { error: string }).error).toMatch(error);
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) expect(res.headers[name], name).toBe(value);
  }

  it.each([
    ['a null host', '{"hosts":[null]}', /expected the JSON of `portwarden scan --json` at hosts\.0/],
    ['hosts not a list', '{"hosts":{"address":"x"}}', /at hosts: /],
    [
      'arrays nested 10,000 deep',
      `{"hosts":${'['.repeat(10_000)}${']'.repeat(10_000)}}`,
      /nested deeper than 64/,
    ],
    [
      'objects nested 10,000 deep',
      `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`,
      /nested deeper than 64/,
    ],
    ['not JSON', '{"hosts": [', /not valid JSON/],
    ['a __proto__ key', '{"hosts":[],"__proto__":{"admin":true}}', /the key "__proto__" is refused/],
    [
      'a constructor.prototype',
      '{"hosts":[],"constructor":{"prototype":{}}}',
      /the key "constructor" is refused/,
    ],
  ])('POST /api/scans with %s: 400', async (_name, payload, error) => {
    const { app, store } = await server();
    try {
      const res = await app.inject({
        method: 'POST',
        url: '/api/scans',
        headers: { ...auth, 'content-type': 'application/json' },
        payload,
      });
      expectClean(res, 400, error);
    } finally {
      await app.close();
      store.close();
    }
  });

  it('a malformed pw_token cookie: 400, on loopback writes and everywhere beyond loopback', async () => {
    for (const host of ['127.0.0.1', '0.0.0.0']) {
      const { app, store } = await server(host);
      try {
        const res = await app.inject({
          method: host === '0.0.0.0' ? 'GET' : 'POST',
          url: '/api/scans',
          headers: { host: '127.0.0.1:7780', cookie: 'pw_token=%E0%A4%A' },
          payload: host === '0.0.0.0' ? undefined : { hosts: [] },
        });
        expectClean(res, 400, /the pw_token cookie is malformed/);
      } finally {
        await app.close();
        store.close();
      }
    }
  });

  it('a URL fastify cannot decode: the headers and the Host check apply, and nothing is echoed', async () => {
    const { app, store } = await server();
    try {
      const bad = await app.inject({ url: '/%zz<b>', headers: { host: '127.0.0.1:7780' } });
      expectClean(bad, 400, /^bad request: the URL is not valid$/);
      expect(bad.body).not.toMatch(/zz|<b>/);
      const rebinding = await app.inject({ url: '/%zz', headers: { host: 'attacker.example' } });
      expectClean(rebinding, 421, /misdirected request/);
      const missing = await app.inject({ url: '/nothing-here<b>', headers: { host: '127.0.0.1' } });
      expectClean(missing, 404, /^not found$/);
      expect(missing.body).not.toMatch(/nothing-here|<b>/);
    } finally {
      await app.close();
      store.close();
    }
  });

  it('a request without Host (real HTTP/1.1): 400 with the security headers, not a bare reply from Node', async () => {
    const { app, store } = await server();
    try {
      await app.listen({ host: '127.0.0.1', port: 0 });
      const { port } = app.server.address() as { port: number };
      const raw = await new Promise<string>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => socket.write('GET /api/overview HTTP/1.1\r\n\r\n'));
        let text = '';
        socket.on('data', (chunk: Buffer) => {
          text += chunk.toString();
          if (text.includes('}')) socket.end();
        });
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
        socket.setTimeout(5000, () => socket.destroy(new Error('no answer in 5 s')));
      });
      expect(raw).toMatch(/^HTTP\/1\.1 400 /);
      expect(raw).toMatch(/\r\ncontent-security-policy: default-src 'none'/i);
      expect(raw).toMatch(/\r\nx-frame-options: DENY/i);
      expect(raw).toMatch(/"error":"a Host header is required"/);
    } finally {
      await app.close();
      store.close();
    }
  });

  it('a scan bigger than 2 MiB: 413 with a JSON error that says the limit', async () => {
    const { app, store } = await server();
    try {
      const hosts = Array.from({ length: 30_000 }, (_, i) => ({
        address: `10.0.${i >> 8}.${i & 255}`,
        ports: [],
      }));
      const res = await app.inject({
        method: 'POST',
        url: '/api/scans',
        headers: { ...auth, 'content-type': 'application/json' },
        payload: JSON.stringify({ hosts, padding: 'x'.repeat(2 * 1024 * 1024) }),
      });
      expectClean(res, 413, /larger than 2 MiB, the limit for one stored scan/);
    } finally {
      await app.close();
      store.close();
    }
  });

  it('50 stored scans of 1 MiB each: the list is summaries and fast, one scan in full by id', async () => {
    const { app, store } = await server('127.0.0.1', join(dir, 'many-scans.db'));
    try {
      const port = { protocol: 'tcp', port: 443, state: 'open', service: 'https', banner: 'x'.repeat(160) };
      const hosts = Array.from({ length: 4000 }, (_, i) => ({
        address: `10.1.${i >> 8}.${i & 255}`,
        ports: [port],
      }));
      const payload = JSON.stringify({ scanner: 'portwarden', hosts });
      expect(payload.length).toBeGreaterThan(1024 * 1024);
      let id = 0;
      for (let i = 0; i < 50; i++) {
        const res = await app.inject({
          method: 'POST',
          url: '/api/scans',
          headers: { ...auth, 'content-type': 'application/json' },
          payload,
        });
        expect(res.statusCode).toBe(201);
        id = (JSON.parse(res.body) as { id: number }).id;
      }
      const started = performance.now();
      const list = await app.inject({ url: '/api/scans', headers: { host: '127.0.0.1' } });
      const ms = performance.now() - started;
      expect(list.statusCode).toBe(200);
      const scans = (JSON.parse(list.body) as { scans: Record<string, unknown>[] }).scans;
      expect(scans).toHaveLength(50);
      expect(scans[0]).toEqual({
        id,
        at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) as string,
        targets: '10.1.0.0, 10.1.0.1, 10.1.0.2 and 3997 more',
        hosts: 4000,
        open: 4000,
        bytes: expect.any(Number) as number,
      });
      expect(list.body.length).toBeLessThan(50 * 200);
      expect(ms).toBeLessThan(1000); // 8-10 s before, on this machine
      const one = await app.inject({ url: `/api/scans/${id}`, headers: { host: '127.0.0.1' } });
      const full = JSON.parse(one.body) as { scan: { id: number }; data: { hosts: unknown[] } };
      expect(full.scan.id).toBe(id);
      expect(full.data.hosts).toHaveLength(4000);
      expectClean(
        await app.inject({ url: '/api/scans/999999', headers: { host: '127.0.0.1' } }),
        404,
        /no stored scan/,
      );
    } finally {
      await app.close();
      store.close();
    }
  }, 60_000);
});

describe('dashboard pages in headless Chromium (screenshots in test-artifacts/)', () => {
  let child: ChildProcess;
  let base = '';
  let browser: Browser;
  const artifacts = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

  beforeAll(async () => {
    mkdirSync(artifacts, { recursive: true });
    child = spawn(
      process.execPath,
      [BIN, 'serve', '--port', '0', '--json', '--data', dataPath, '--db', dbPath, '--policy', POLICY],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    base = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('\n')) resolve((JSON.parse(out) as { url: string }).url.replace(/\/$/, ''));
      });
      child.once('exit', (code) => reject(new Error(`serve exited ${code}`)));
    });
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    child?.kill('SIGTERM');
  });

  async function open(path: string, name: string) {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    await page.goto(`${base}${path}`);
    // a selector, not a function: the page's CSP forbids the eval a polled function would need
    await page.waitForSelector('#content[data-state="ready"]');
    return {
      page,
      problems,
      done: async () => {
        await page.screenshot({ path: `${artifacts}dashboard-${name}.png`, fullPage: true });
        await page.close();
        // a CSP violation or a script error would show here
        expect(problems).toEqual([]);
      },
    };
  }

  it('overview: exposure and findings by severity', async () => {
    const { page, done } = await open('/', 'overview');
    expect(await page.locator('nav a.active').textContent()).toBe('Overview');
    const cards = page.locator('[data-testid="findings-by-severity"] .card');
    expect(await cards.count()).toBe(5);
    expect(await cards.first().textContent()).toMatch(/^[1-9]\d*critical$/);
    expect(await page.locator('[data-testid="exposure"]').textContent()).toMatch(/3listeners/);
    await done();
  }, 30_000);

  it('listeners: sortable and filterable, with owners', async () => {
    const { page, done } = await open('/listeners', 'listeners');
    const rows = page.locator('[data-testid="listeners"] tbody tr');
    expect(await rows.count()).toBe(4);
    await page.locator('th', { hasText: 'Port' }).click();
    await page.locator('th', { hasText: 'Port' }).click();
    expect(await rows.first().locator('td').nth(2).textContent()).toBe('6379');
    await page.fill('input[type="search"]', 'inetd');
    expect(await rows.count()).toBe(1);
    expect(await rows.first().textContent()).toMatch(/telnet.*critical.*inetd \(102\).*inetd\.service/);
    await done();
  }, 30_000);

  it('findings: every finding with its fix', async () => {
    const { page, done } = await open('/findings', 'findings');
    const rows = page.locator('[data-testid="findings"] tbody tr');
    expect(await rows.count()).toBeGreaterThanOrEqual(2);
    expect(await page.locator('[data-testid="findings"]').textContent()).toMatch(/telnet/);
    expect(await page.locator('[data-testid="findings"] code').first().textContent()).not.toBe('');
    await done();
  }, 30_000);

  it('history: a timeline of listeners and knocks, and the events', async () => {
    const { page, done } = await open('/history', 'history');
    expect(await page.locator('[data-testid="timeline"] polyline').count()).toBe(2);
    expect(await page.locator('[data-testid="timeline"] rect[data-series="knocks"]').count()).toBeGreaterThan(
      0,
    );
    expect(await page.locator('[data-testid="events"] tbody tr').count()).toBe(2);
    expect(await page.locator('[data-testid="events"]').textContent()).toMatch(/port scan: 203\.0\.113\.5/);
    await done();
  }, 30_000);

  it('policy: the YAML and its compiled ruleset per target', async () => {
    const { page, done } = await open('/policy', 'policy');
    expect(await page.locator('[data-testid="policy-text"]').textContent()).toMatch(
      /name: web-and-ftp-server/,
    );
    expect(await page.locator('[data-testid="compiled"]').textContent()).toMatch(/table inet portwarden/);
    await Promise.all([page.waitForURL(/target=iptables/), page.selectOption('select', 'iptables')]);
    await page.waitForSelector('[data-testid="compiled"]');
    expect(await page.locator('[data-testid="compiled"]').first().textContent()).toMatch(/\*filter/);
    await done();
  }, 30_000);

  it('scans: the stored scans listed with counts, one result shown in full', async () => {
    const { page, done } = await open('/scans', 'scans');
    const list = page.locator('[data-testid="scan-list"] tbody tr');
    expect(await list.count()).toBeGreaterThanOrEqual(1);
    const stored = list.filter({ hasText: '2026-12-01T10:50:00' });
    expect(await stored.textContent()).toMatch(/127\.0\.0\.1111 KiB$/);
    await Promise.all([page.waitForURL(/\/scans\?id=\d+$/), stored.locator('a').click()]);
    await page.waitForSelector('#content[data-state="ready"]');
    expect(await page.locator('[data-testid="scan"] tbody tr').first().textContent()).toMatch(
      /127\.0\.0\.122\/tcpopenssh/,
    );
    await done();
  }, 30_000);
});
