import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { splitShards } from '../../src/fleet/distributed-scan.ts';
import { BIN, ROOT } from '../helpers/cli.ts';
import { describePostgres } from '../helpers/postgres.ts';

const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', NO_COLOR: '1', LANG: 'C' };
const TARGETS = '127.0.0.1-16';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function start(args: string[]): { child: ChildProcess; done: Promise<Run> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<Run>((resolve) =>
    child.once('exit', (status) => resolve({ status, stdout, stderr })),
  );
  return { child, done };
}

/**
 * Every port of every host, as "address port/state/reason", in address order: what must match between
 * the two scans (a one-process scan lists hosts as they finish, so its order is not part of the answer).
 */
function portByPort(json: string): string[] {
  const report = JSON.parse(json) as {
    hosts: { address: string; ports: { port: number; state: string; reason: string }[] }[];
  };
  const last = (address: string): number => Number(address.split('.').at(-1));
  return [...report.hosts]
    .sort((a, b) => last(a.address) - last(b.address))
    .flatMap((h) => h.ports.map((p) => `${h.address} ${p.port}/${p.state}/${p.reason}`));
}

/** The hosts of a report in the order it lists them. */
function hostOrder(json: string): string[] {
  return (JSON.parse(json) as { hosts: { address: string }[] }).hosts.map((h) => h.address);
}

it('shards are slices of the targets in order, every target in exactly one', () => {
  expect(splitShards([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
  expect(splitShards([], 4)).toEqual([]);
});

describePostgres('distributed scan through pg-boss', (cluster) => {
  const servers: Server[] = [];
  const workers: ChildProcess[] = [];
  let ports: number[] = [];

  beforeAll(async () => {
    // three open ports on three loopback addresses; the rest of the list is closed everywhere
    const open = await Promise.all(
      ['127.0.0.2', '127.0.0.5', '127.0.0.14'].map(
        (address) =>
          new Promise<number>((resolve) => {
            const server = createServer((s) => s.destroy());
            servers.push(server);
            server.listen(0, address, () => {
              const a = server.address();
              resolve(typeof a === 'object' && a ? a.port : 0);
            });
          }),
      ),
    );
    ports = [...new Set([...open, ...Array.from({ length: 37 }, (_, i) => 41_000 + i)])].sort(
      (a, b) => a - b,
    );
  });
  afterAll(() => {
    for (const w of workers) w.kill('SIGKILL');
    for (const s of servers) s.close();
  });

  const scanArgs = (): string[] => ['scan', TARGETS, '-p', ports.join(','), '--json', '--show-all'];
  const worker = (name: string): ChildProcess => {
    const w = start(['scan-worker', '--queue', cluster().url, '--name', name]).child;
    workers.push(w);
    return w;
  };

  it('two workers: the merged report equals a single-process scan, port by port', async () => {
    const single = start(scanArgs());
    const expected = await single.done;
    expect(expected.status, expected.stderr).toBe(0);
    worker('w1');
    worker('w2');
    const shared = await start([...scanArgs(), '--queue', cluster().url, '--shard-size', '3']).done;
    expect(shared.status, shared.stderr).toBe(0);
    expect(shared.stderr).toMatch(/scan: 6 shards done by [12] worker\(s\)/);
    const lines = portByPort(shared.stdout);
    expect(lines).toEqual(portByPort(expected.stdout));
    expect(lines).toHaveLength(16 * ports.length);
    expect(lines.filter((l) => l.includes('/open/'))).toHaveLength(3);
    // the merged report lists hosts in target order, whichever shard finished first
    expect(hostOrder(shared.stdout)).toEqual(Array.from({ length: 16 }, (_, i) => `127.0.0.${i + 1}`));
    for (const w of workers.splice(0)) w.kill('SIGTERM');
  }, 90_000);

  it('a worker killed mid-shard: its shard is retried by another, no port lost or counted twice', async () => {
    const pool = new pg.Pool({ connectionString: cluster().url, max: 1 });
    try {
      const victim = worker('victim');
      // slow shards (80 probes/s): the victim is surely inside one when it is killed
      const coordinator = start([
        ...scanArgs(),
        '--queue',
        cluster().url,
        '--shard-size',
        '4',
        '--shard-timeout',
        '3',
        '--rate',
        '80',
      ]);
      const activeSince = Date.now();
      for (;;) {
        const installed = await pool.query("SELECT to_regclass('pgboss.job') IS NOT NULL AS ok");
        if (!(installed.rows[0] as { ok: boolean }).ok) {
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        const active = await pool.query(
          "SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'portwarden-scan-shard' AND state = 'active'",
        );
        if ((active.rows[0] as { n: number }).n > 0) break;
        if (Date.now() - activeSince > 20_000) throw new Error('no worker took a shard');
        await new Promise((r) => setTimeout(r, 100));
      }
      await new Promise((r) => setTimeout(r, 500));
      victim.kill('SIGKILL');
      worker('rescuer');
      const shared = await coordinator.done;
      expect(shared.status, shared.stderr).toBe(0);
      expect(shared.stderr).toMatch(/scan: 4 shards done by 1 worker\(s\): rescuer/);
      const retried = await pool.query(
        "SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'portwarden-scan-shard' AND retry_count > 0 AND state = 'completed'",
      );
      expect((retried.rows[0] as { n: number }).n).toBeGreaterThanOrEqual(1);
      const lines = portByPort(shared.stdout);
      expect(lines).toHaveLength(16 * ports.length);
      expect(new Set(lines).size).toBe(lines.length);
      const expected = await start(scanArgs()).done;
      expect(lines).toEqual(portByPort(expected.stdout));
    } finally {
      await pool.end();
    }
  }, 120_000);
});
