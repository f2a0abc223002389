import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { migrate } from '../../src/fleet/db.ts';
import { fleetPlugin } from '../../src/fleet/routes.ts';
import type { FleetListener } from '../../src/fleet/schema.ts';
import { FleetStore } from '../../src/fleet/store.ts';
import { buildServer } from '../../src/serve/server.ts';
import { launchChromium } from '../helpers/browser.ts';
import { describePostgres } from '../helpers/postgres.ts';

const listener = (
  localPort: number,
  localAddress: string,
  service: string,
  process: string,
): FleetListener => ({
  protocol: 'tcp',
  localAddress,
  localPort,
  netns: 'host',
  exposure: localAddress.startsWith('127.') ? 'loopback' : 'all',
  reachable: localAddress.startsWith('127.') ? 'no' : 'yes',
  service,
  risk: null,
  process,
  pid: 10,
  user: 'root',
  unit: null,
  container: null,
});

describePostgres('the hosts page in Chromium', (cluster) => {
  let pool: pg.Pool;
  let app: FastifyInstance;
  let browser: Browser;
  let base = '';

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: cluster().url, max: 4 });
    await migrate(pool);
    const store = new FleetStore(pool);
    const hosts = [
      [
        'web-<b>1</b>',
        'web',
        [listener(80, '0.0.0.0', 'http', 'nginx'), listener(23, '0.0.0.0', 'telnet', 'inetd')],
      ],
      [
        'web-2',
        'web',
        [listener(80, '0.0.0.0', 'http', 'nginx'), listener(23, '127.0.0.1', 'telnet', 'inetd')],
      ],
      ['db-1', 'db', [listener(6379, '0.0.0.0', 'redis', 'redis-server')]],
    ] as const;
    for (const [name, group, listeners] of hosts) {
      const token = await store.addHost(name, group);
      const host = (await store.hostForToken(token))!;
      await store.ingest(host.id, {
        agentVersion: 'test',
        events: [],
        snapshots: [
          {
            key: `snapshot-${name}`,
            takenAt: new Date().toISOString(),
            method: 'static',
            policy: null,
            listeners: [...listeners],
            findings: [],
          },
        ],
      });
    }
    // web-2 later closes its loopback telnet: one change on its page
    const web2 = (await pool.query<{ id: string }>("SELECT id FROM fleet_hosts WHERE name = 'web-2'"))
      .rows[0]!.id;
    await store.ingest(web2, {
      agentVersion: 'test',
      events: [],
      snapshots: [
        {
          key: 'snapshot-web-2-later',
          takenAt: new Date(Date.now() + 1000).toISOString(),
          method: 'static',
          policy: null,
          listeners: [listener(80, '0.0.0.0', 'http', 'nginx')],
          findings: [],
        },
      ],
    });
    app = await buildServer({
      host: '127.0.0.1',
      port: 0,
      token: 'dashboard-token',
      sources: {
        auditData: () => Promise.reject(new Error('unused')),
        store: null,
        policy: null,
        version: 'test',
      },
      plugins: [fleetPlugin(pool, store)],
    });
    base = (await app.listen({ host: '127.0.0.1', port: 0 })).replace(/\/$/, '');
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await pool?.end();
  });

  async function open(path: string): Promise<{ page: Page; problems: string[] }> {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    await page.goto(`${base}${path}`);
    await page.waitForSelector('#content[data-state="ready"]');
    return { page, problems };
  }

  it('lists every host, host names as text (never markup), and answers "which hosts expose tcp/23"', async () => {
    const { page, problems } = await open('/hosts');
    expect(await page.locator('nav a.active').textContent()).toBe('Hosts');
    const names = await page.locator('[data-testid="hosts"] tbody tr td:first-child').allTextContents();
    expect(names).toEqual(['db-1', 'web-2', 'web-<b>1</b>']); // byte order, whatever the locale
    expect(await page.locator('[data-testid="hosts"] b').count()).toBe(0);
    await page.fill('#q-exposing input[name="port"]', '23');
    await page.click('#q-exposing button');
    await page.waitForSelector('#answer[data-state="ready"]');
    expect(await page.locator('#answer p').textContent()).toBe('1 hosts, 1 listeners');
    expect(await page.locator('[data-testid="answer-table"] tbody td:first-child').allTextContents()).toEqual(
      ['web-<b>1</b>'],
    );
    await page.fill('#q-running input[name="name"]', 'redis');
    await page.fill('#q-running input[name="address"]', '0.0.0.0');
    await page.click('#q-running button');
    await page.waitForSelector('#answer[data-state="ready"] >> text=1 hosts');
    expect(await page.locator('[data-testid="answer-table"] tbody td:first-child').allTextContents()).toEqual(
      ['db-1'],
    );
    expect(problems).toEqual([]);
    await page.close();
  }, 30_000);

  it("a host's page: its listeners", async () => {
    const { page, problems } = await open('/hosts?name=web-2');
    expect(await page.locator('[data-testid="host-name"]').textContent()).toBe('web-2');
    const ports = await page
      .locator('[data-testid="host-listeners"] tbody tr td:nth-child(3)')
      .allTextContents();
    expect(ports).toEqual(['80']);
    const changes = await page
      .locator('[data-testid="host-changes"] tbody tr td:nth-child(3)')
      .allTextContents();
    expect(changes).toEqual(['inetd (pid 10) on tcp/23 at 127.0.0.1 closed']);
    expect(problems).toEqual([]);
    await page.close();
  }, 30_000);
});
