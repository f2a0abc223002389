import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { migrate } from '../../src/fleet/db.ts';
import { changesSince, hostDetail, hostsExposing, hostsRunning, listHosts } from '../../src/fleet/queries.ts';
import type { FleetListener, FleetSnapshot, IngestBatch } from '../../src/fleet/schema.ts';
import { FleetStore } from '../../src/fleet/store.ts';
import { describePostgres } from '../helpers/postgres.ts';

const listener = (over: Partial<FleetListener>): FleetListener => ({
  protocol: 'tcp',
  localAddress: '0.0.0.0',
  localPort: 80,
  netns: 'host',
  exposure: 'all',
  reachable: 'yes',
  service: 'http',
  risk: null,
  process: 'nginx',
  pid: 100,
  user: 'www-data',
  unit: 'nginx.service',
  container: null,
  ...over,
});
const telnet = (address: string): FleetListener =>
  listener({
    localAddress: address,
    localPort: 23,
    exposure: address.startsWith('127.') ? 'loopback' : 'all',
    service: 'telnet',
    process: 'inetd',
  });
const redis = (address: string): FleetListener =>
  listener({
    localAddress: address,
    localPort: 6379,
    exposure: address.startsWith('127.') ? 'loopback' : 'all',
    service: 'redis',
    process: 'redis-server',
  });
const snapshot = (key: string, takenAt: string, listeners: FleetListener[]): FleetSnapshot => ({
  key,
  takenAt,
  method: 'static',
  policy: null,
  listeners,
  findings: [{ id: 'PW003:tcp/23@0.0.0.0', rule: 'PW003', severity: 'high', message: 'telnet is reachable' }],
});
const batch = (snapshots: FleetSnapshot[], events: IngestBatch['events'] = []): IngestBatch => ({
  agentVersion: 'test',
  snapshots,
  events,
});

describePostgres('fleet store on PostgreSQL', (cluster) => {
  let pool: pg.Pool;
  let store: FleetStore;
  const ids = new Map<string, string>();

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: cluster().url, max: 4 });
    expect(await migrate(pool)).toEqual([1, 2]);
    store = new FleetStore(pool);
    for (const [name, group] of [
      ['web-1', 'web'],
      ['web-2', 'web'],
      ['db-1', 'db'],
    ] as const) {
      const token = await store.addHost(name, group);
      ids.set(name, (await store.hostForToken(token))!.id);
    }
  });
  afterAll(() => pool?.end());

  it('migrations are versioned: a second run applies nothing', async () => {
    expect(await migrate(pool)).toEqual([]);
    const rows = await pool.query('SELECT version FROM fleet_migrations');
    expect(rows.rows).toEqual([{ version: 1 }, { version: 2 }]);
  });

  it('a removed host: its cached token gets no ingest (the agent is told it is unauthenticated)', async () => {
    const token = await store.addHost('gone', 'x');
    const host = (await store.hostForToken(token))!;
    expect(await store.removeHost('gone')).toBe(true);
    await expect(store.ingest(host.id, batch([]))).rejects.toThrow(/removed/);
  });

  it('tokens are stored as hashes; an unknown token finds no host; a name cannot be registered twice', async () => {
    const stored = await pool.query<{ token_hash: Buffer }>('SELECT token_hash FROM fleet_hosts');
    expect(stored.rows.every((r) => r.token_hash.length === 32)).toBe(true);
    expect(await store.hostForToken('pwh_not-a-token')).toBeNull();
    await expect(store.addHost('web-1', 'web')).rejects.toThrow(/already registered/);
  });

  it('answers fleet questions with exactly the right hosts', async () => {
    const t = '2026-12-01T10:00:00.000Z';
    await store.ingest(
      ids.get('web-1')!,
      batch([snapshot('s-web1-1', t, [listener({}), telnet('0.0.0.0'), redis('0.0.0.0')])]),
    );
    await store.ingest(
      ids.get('web-2')!,
      batch([snapshot('s-web2-1', t, [listener({}), telnet('127.0.0.1'), redis('127.0.0.1')])]),
    );
    await store.ingest(ids.get('db-1')!, batch([snapshot('s-db1-1', t, [redis('0.0.0.0'), redis('::')])]));
    expect((await hostsExposing(pool, 'tcp', 23)).map((r) => r.host)).toEqual(['web-1']);
    expect(await hostsExposing(pool, 'udp', 23)).toEqual([]);
    expect((await hostsRunning(pool, 'redis', '0.0.0.0')).map((r) => r.host)).toEqual(['db-1', 'web-1']);
    expect((await hostsRunning(pool, 'redis-server')).map((r) => `${r.host} ${r.localAddress}`)).toEqual([
      'db-1 0.0.0.0',
      'db-1 ::',
      'web-1 0.0.0.0',
      'web-2 127.0.0.1',
    ]);
    const hosts = await listHosts(pool);
    expect(hosts.map((h) => [h.name, h.listeners, h.exposed, h.drift, h.openFindings])).toEqual([
      ['db-1', 2, 2, 1, 1],
      ['web-1', 3, 3, 1, 1],
      ['web-2', 3, 1, 1, 1],
    ]);
  });

  it('what changed on a group since a date: the changes of later snapshots, not the baseline', async () => {
    const later = '2026-12-02T09:00:00.000Z';
    // web-1 closes telnet; db-1 (another group) opens ssh
    await store.ingest(
      ids.get('web-1')!,
      batch([snapshot('s-web1-2', later, [listener({}), redis('0.0.0.0')])]),
    );
    await store.ingest(
      ids.get('db-1')!,
      batch([
        snapshot('s-db1-2', later, [
          redis('0.0.0.0'),
          redis('::'),
          listener({ localPort: 22, service: 'ssh', process: 'sshd' }),
        ]),
      ]),
    );
    const web = await changesSince(pool, { since: '2026-12-01T12:00:00Z', group: 'web' });
    expect(web.map((e) => [e.host, e.kind, e.listenerKey])).toEqual([
      ['web-1', 'listener-closed', 'tcp|0.0.0.0|23|host'],
    ]);
    const all = await changesSince(pool, { since: '2026-12-01T00:00:00Z' });
    expect(all.map((e) => `${e.host} ${e.kind}`).sort()).toEqual([
      'db-1 listener-opened',
      'web-1 listener-closed',
    ]);
    expect((await hostsExposing(pool, 'tcp', 23)).map((r) => r.host)).toEqual([]);
    const detail = await hostDetail(pool, 'web-1', 100_000);
    expect(detail?.listeners.map((l) => l.localPort)).toEqual([80, 6379]);
    expect(detail?.history.map((h) => [h.takenAt, h.listeners])).toEqual([
      ['2026-12-01T10:00:00.000Z', 3],
      ['2026-12-02T09:00:00.000Z', 2],
    ]);
  });

  it('a watching agent sends its changes as events: its snapshots update state but derive none', async () => {
    const id = ids.get('db-1')!;
    const before = await changesSince(pool, { since: '2026-12-01T00:00:00Z', host: 'db-1' });
    const watched = { ...snapshot('s-db1-3', '2026-12-02T10:00:00.000Z', [redis('0.0.0.0')]), watched: true };
    expect((await store.ingest(id, batch([watched]))).snapshots.applied).toBe(1);
    expect(await changesSince(pool, { since: '2026-12-01T00:00:00Z', host: 'db-1' })).toEqual(before);
    expect((await hostDetail(pool, 'db-1'))?.listeners.map((l) => l.localAddress)).toEqual(['0.0.0.0']);
  });

  it('a batch sent twice changes nothing the second time; an older snapshot never rolls state back', async () => {
    const id = ids.get('web-2')!;
    const events = [
      {
        key: 'evt-0001-web2',
        at: '2026-12-03T10:00:01.000Z',
        kind: 'knock',
        listenerKey: 'tcp|0.0.0.0|80|host',
        message: 'a knock',
      },
    ];
    const b = batch([snapshot('s-web2-2', '2026-12-03T10:00:00.000Z', [listener({})])], events);
    const first = await store.ingest(id, b);
    expect(first).toEqual({ snapshots: { applied: 1, skipped: 0 }, events: { stored: 1, duplicates: 0 } });
    const count = async (): Promise<unknown> =>
      (
        await pool.query(
          'SELECT (SELECT count(*) FROM fleet_events) AS e, (SELECT count(*) FROM fleet_snapshots) AS s, (SELECT count(*) FROM fleet_listeners) AS l',
        )
      ).rows[0];
    const before = await count();
    expect(await store.ingest(id, b)).toEqual({
      snapshots: { applied: 0, skipped: 1 },
      events: { stored: 0, duplicates: 1 },
    });
    await store.ingest(id, batch([snapshot('s-web2-old', '2026-12-01T11:00:00.000Z', [telnet('0.0.0.0')])]));
    expect(await count()).toEqual(before);
    expect((await hostDetail(pool, 'web-2'))?.listeners.map((l) => l.localPort)).toEqual([80]);
  });

  it('bound to and reachable are two answers: --reachable keeps only hosts whose firewall lets a peer in', async () => {
    const id = ids.get('web-2')!;
    const at = '2026-12-04T10:00:00.000Z';
    const dropped = { ...telnet('0.0.0.0'), reachable: 'no' as const };
    await store.ingest(id, batch([snapshot('s-web2-reach', at, [listener({}), dropped])]));
    const exposing = await hostsExposing(pool, 'tcp', 23);
    expect(exposing.map((r) => `${r.host} ${r.exposure} ${r.reachable}`)).toEqual(['web-2 all no']);
    expect(await hostsExposing(pool, 'tcp', 23, { reachable: true })).toEqual([]);
    await store.ingest(
      id,
      batch([snapshot('s-web2-open', '2026-12-04T11:00:00.000Z', [listener({}), telnet('0.0.0.0')])]),
    );
    expect((await hostsExposing(pool, 'tcp', 23, { reachable: true })).map((r) => r.host)).toEqual(['web-2']);
  });
});
