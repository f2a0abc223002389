import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { auditFromData, type AuditData } from '../../src/audit/run.ts';
import { runAgent, uploadOutbox } from '../../src/fleet/agent.ts';
import { migrate } from '../../src/fleet/db.ts';
import { Outbox } from '../../src/fleet/outbox.ts';
import { fleetPlugin } from '../../src/fleet/routes.ts';
import { FleetStore } from '../../src/fleet/store.ts';
import type { Socket } from '../../src/inventory/types.ts';
import { buildServer } from '../../src/serve/server.ts';
import { describePostgres } from '../helpers/postgres.ts';
import { makeSocket } from '../helpers/socket.ts';

/** A port nothing listens on yet: the server comes up on it later ("the server is back"). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      s.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** The machine at step i: ports 20000..20000+i listen, so every step opens exactly one listener. */
function socketsAt(step: number): Socket[] {
  return Array.from({ length: step + 1 }, (_, i) => makeSocket({ localPort: 20000 + i, service: null }));
}
function dataAt(step: number): AuditData {
  return {
    sockets: socketsAt(step),
    interfaces: [{ name: 'lo', addresses: ['127.0.0.1'] }],
    nftJson: null,
    rulesetReason: 'fixture',
    legacyRules: 0,
    warnings: [],
  };
}

describePostgres('agent on PostgreSQL', (cluster) => {
  let pool: pg.Pool;
  let store: FleetStore;
  let token: string;
  let app: FastifyInstance | null = null;
  let base = '';
  const dir = mkdtempSync(join(tmpdir(), 'pw-agent-'));

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: cluster().url, max: 4 });
    await migrate(pool);
    store = new FleetStore(pool);
    token = await store.addHost('agent-host', 'lab');
  });
  afterAll(async () => {
    await app?.close();
    await pool?.end();
    rmSync(dir, { recursive: true, force: true });
  });

  async function startServer(port: number): Promise<void> {
    app = await buildServer({
      host: '127.0.0.1',
      port,
      token: 'dashboard-token',
      sources: { auditData: () => Promise.resolve(dataAt(0)), store: null, policy: null, version: 'test' },
      plugins: [fleetPlugin(pool, store)],
    });
    await app.listen({ host: '127.0.0.1', port });
    base = `http://127.0.0.1:${port}`;
  }

  it('offline, then online: every event and snapshot arrives once, even when an answer is lost', async () => {
    const port = await freePort();
    const server = `http://127.0.0.1:${port}/`;
    const outbox = new Outbox(join(dir, 'outbox.db'));
    let step = 0;
    let sampleStep = 0;
    const failures: string[] = [];
    // offline: the agent audits and watches with nothing listening on the server's port
    await runAgent({
      server,
      token,
      version: 'test',
      outbox,
      audit: () => {
        const data = dataAt(step++);
        return Promise.resolve({
          data,
          report: auditFromData(data, { now: new Date(Date.UTC(2026, 11, 1, 10, 0, step)) }),
        });
      },
      sample: () => Promise.resolve(socketsAt(sampleStep++)),
      intervalMs: 1,
      watchIntervalMs: 1,
      maxSnapshots: 6,
      signal: new AbortController().signal,
      onUpload: (outcome) => {
        if (!outcome.ok) failures.push(outcome.offline ? 'offline' : String(outcome.status));
      },
    });
    expect(failures).toEqual(Array(6).fill('offline'));
    const pending = outbox.pending();
    expect(pending.snapshots).toBe(6);
    expect(pending.events).toBe(5); // one opened listener per sample after the first
    const queuedKeys = outbox.peek(100, 1e9).flatMap((i) => (i.kind === 'event' ? [i.item.key] : []));
    outbox.close();

    // online: the server is back; the first answer is lost after the server stored the batch
    await startServer(port);
    const reopened = new Outbox(join(dir, 'outbox.db'));
    let calls = 0;
    const losingFetch: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (calls++ === 0) throw new TypeError('fetch failed', { cause: new Error('connection reset') });
      return response;
    };
    const lost = await uploadOutbox(reopened, { server, token, version: 'test', fetch: losingFetch });
    expect(lost.ok).toBe(false);
    expect(reopened.pending()).toEqual(pending);
    expect(await uploadOutbox(reopened, { server, token, version: 'test' })).toEqual({ ok: true, sent: 11 });
    expect(reopened.pending()).toEqual({ snapshots: 0, events: 0 });
    reopened.close();

    const own = await pool.query<{ key: string }>(
      "SELECT key FROM fleet_events WHERE key NOT LIKE '%|%' ORDER BY key",
    );
    expect(own.rows.map((r) => r.key)).toEqual([...queuedKeys].sort());
    // a watching agent sends its changes as events: the server derives none from its snapshots
    const derived = await pool.query("SELECT count(*)::int AS n FROM fleet_events WHERE key LIKE '%|%'");
    expect(derived.rows[0]).toEqual({ n: 0 });
    const opened = await pool.query<{ listener_key: string }>(
      "SELECT listener_key FROM fleet_events WHERE kind = 'listener-opened' ORDER BY at, listener_key",
    );
    expect(opened.rows.map((r) => r.listener_key)).toEqual(
      [1, 2, 3, 4, 5].map((i) => `tcp|0.0.0.0|${20000 + i}|host`),
    );
    const host = await pool.query('SELECT listeners, last_snapshot_at FROM fleet_hosts WHERE name = $1', [
      'agent-host',
    ]);
    expect(host.rows[0]).toEqual({
      listeners: 6,
      last_snapshot_at: new Date(Date.UTC(2026, 11, 1, 10, 0, 6)),
    });
  });

  it('a 413 from a proxy with a small body limit: the agent sends smaller batches, all of them', async () => {
    const hostToken = await store.addHost('small-proxy-host', 'lab');
    const outbox = new Outbox(join(dir, 'outbox-413.db'));
    const at = '2026-12-01T12:00:00.000Z';
    outbox.add(
      [],
      [1, 2, 3, 4, 5].map((i) => ({
        key: `event-413-${i}`,
        at,
        kind: 'knock',
        listenerKey: `k${i}`,
        message: 'm',
      })),
    );
    const sizes: number[] = [];
    // like nginx's client_max_body_size: anything above two items is refused before the server sees it
    const proxy: typeof fetch = async (input, init) => {
      const body = JSON.parse(typeof init?.body === 'string' ? init.body : '{}') as {
        events: unknown[];
        snapshots: unknown[];
      };
      const items = body.events.length + body.snapshots.length;
      sizes.push(items);
      return items > 2 ? new Response('{"error":"too large"}', { status: 413 }) : fetch(input, init);
    };
    expect(
      await uploadOutbox(outbox, { server: base, token: hostToken, version: 'test', fetch: proxy }),
    ).toEqual({
      ok: true,
      sent: 5,
    });
    expect(sizes).toEqual([5, 3, 2, 2, 1]);
    outbox.close();
    const stored = await pool.query(
      "SELECT count(*)::int AS n FROM fleet_events e JOIN fleet_hosts h ON h.id = e.host_id WHERE h.name = 'small-proxy-host'",
    );
    expect(stored.rows[0]).toEqual({ n: 5 });
  });

  it('the ingest endpoint takes only a registered host token, and never the dashboard token', async () => {
    const post = (auth: string | null, body: unknown): Promise<Response> =>
      fetch(`${base}/api/fleet/ingest`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${auth}` } : {}) },
        body: JSON.stringify(body),
      });
    const empty = { agentVersion: 't', snapshots: [], events: [] };
    expect((await post(null, empty)).status).toBe(401);
    expect((await post('dashboard-token', empty)).status).toBe(401);
    expect((await post(`${token}x`, empty)).status).toBe(401);
    const bad = await post(token, { ...empty, snapshots: [{ key: 'short' }] });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(
      /^not an agent batch at snapshots\.0\.key/,
    );
    expect((await post(token, empty)).status).toBe(200);
  });
});
