#!/usr/bin/env node
// Fleet mode on PostgreSQL: (1) ingest: N simulated agents each POST a snapshot of 100 listeners every
// 10 s to `portwarden serve --db postgres://…` (a separate process), p50/p99 latency and the CPU of the
// server and of PostgreSQL; (2) queries over 10,000 hosts x 100 listeners (1,000,000 rows), 1,000,000
// events and 30-day histories. Starts its own PostgreSQL cluster in a temporary directory (unix socket
// only) and removes it. Traffic: 127.0.0.1 only. As root, PostgreSQL runs as the postgres user.
// (3) `node bench/fleet.mjs scan [addresses=4096] [ports=100]`: one process vs `scan --queue` with one
// and with two scan-workers on this machine, over loopback addresses (127.1.0.0/…), results compared
// port by port.
// Usage: npm run build && node bench/fleet.mjs [agents=1000] [seconds=60] [hosts=10000]
// BENCH_PG_SETTINGS='-c synchronous_commit=off' adds server settings (to tell disk waits from CPU).
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const scanMode = process.argv[2] === 'scan';
const args = scanMode ? process.argv.slice(1) : process.argv;
const agents = scanMode ? 0 : Number(args[2] ?? 1000);
const seconds = Number(args[3] ?? 60);
const queryHosts = Number(args[4] ?? 10_000);
const scanAddresses = scanMode ? Number(args[2] ?? 4096) : 0;
const scanPorts = scanMode ? Number(args[3] ?? 100) : 0;
const root = fileURLToPath(new URL('..', import.meta.url));
const { FleetStore } = await import(join(root, 'dist/fleet/store.js'));
const { migrate } = await import(join(root, 'dist/fleet/db.js'));
const queries = await import(join(root, 'dist/fleet/queries.js'));

const base = '/usr/lib/postgresql';
const bin = join(base, readdirSync(base).sort((a, b) => Number(b) - Number(a))[0], 'bin');
const dir = mkdtempSync(join(tmpdir(), 'pw-bench-pg-'));
const data = join(dir, 'data');
const asRoot = process.getuid() === 0;
const owner = (cmd, args) => (asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]);
const run = (cmd, args) => execFileSync(...owner(join(bin, cmd), args), { stdio: 'pipe' });
let started = false;
let serve = null;
function cleanup() {
  serve?.kill('SIGTERM');
  if (started) {
    try {
      run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } catch {
      // already stopped
    }
  }
  rmSync(dir, { recursive: true, force: true });
}
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});

/** CPU seconds of these pids and of their exited children (PostgreSQL's backends). */
function cpuSeconds(pids) {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime + stime, and cutime + cstime: backends that exited are counted in the postmaster's
      ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
    } catch {
      // exited
    }
  }
  return ticks / 100;
}
function postgresPids() {
  const postmaster = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const children = readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster;
      } catch {
        return false;
      }
    });
  return [postmaster, ...children.map(Number)];
}
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];

function listenersOf(agent, round) {
  // 100 listeners; each round a tenth of the agents see one of them move (a change to diff and record)
  const moved = (round + agent) % 10 === 9 ? (round % 2) + 1 : 0;
  return Array.from({ length: 100 }, (_, j) => ({
    protocol: j % 5 === 0 ? 'udp' : 'tcp',
    localAddress: j % 3 === 0 ? '127.0.0.1' : '0.0.0.0',
    localPort: 10_000 + j * 10 + (j === 0 ? moved : 0),
    netns: 'host',
    exposure: j % 3 === 0 ? 'loopback' : 'all',
    service: `svc${j}`,
    risk: null,
    process: `proc${j}`,
    pid: 1000 + j,
    user: 'root',
    unit: `svc${j}.service`,
    container: null,
  }));
}

async function ingestBench(url) {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  await migrate(pool);
  const store = new FleetStore(pool);
  const tokens = [];
  for (let i = 0; i < agents; i++) tokens.push(await store.addHost(`agent-${i}`, ['web', 'db'][i % 2]));
  await pool.end();
  serve = spawn(
    process.execPath,
    [join(root, 'bin/portwarden.js'), 'serve', '--db', url, '--port', '0', '--json'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const server = await new Promise((resolve) =>
    createInterface({ input: serve.stdout }).once('line', (l) => resolve(JSON.parse(l).url)),
  );
  const ingest = new URL('/api/fleet/ingest', server);
  const latencies = [];
  let errors = 0;
  const stopAt = Date.now() + seconds * 1000;
  const cpu0 = { serve: cpuSeconds([serve.pid]), pg: cpuSeconds(postgresPids()), bench: process.cpuUsage() };
  const t0 = Date.now();
  // p99 per 10-s window: the first holds every host's baseline insert, the rest the steady state
  const windows = Array.from({ length: Math.ceil(seconds / 10) + 2 }, () => []);
  await Promise.all(
    tokens.map(async (token, agent) => {
      // agents start spread over the first interval, as real ones do
      await new Promise((r) => setTimeout(r, (agent / agents) * 10_000));
      for (let round = 0; Date.now() < stopAt; round++) {
        const next = Date.now() + 10_000;
        const body = JSON.stringify({
          agentVersion: 'bench',
          events: [],
          snapshots: [
            {
              key: `bench-${agent}-${round}-${t0}`,
              takenAt: new Date().toISOString(),
              method: 'static',
              policy: null,
              listeners: listenersOf(agent, round),
              findings: [],
            },
          ],
        });
        const start = performance.now();
        const response = await fetch(ingest, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body,
        }).catch(() => null);
        if (!response?.ok) errors++;
        await response?.arrayBuffer();
        latencies.push(performance.now() - start);
        windows[Math.floor((Date.now() - t0) / 10_000)]?.push(performance.now() - start);
        await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
      }
    }),
  );
  const wall = (Date.now() - t0) / 1000;
  const benchCpu = process.cpuUsage(cpu0.bench);
  const result = {
    agents,
    seconds: Math.round(wall),
    requests: latencies.length,
    errors,
    perSecond: Math.round(latencies.length / wall),
    serverCpu: `${Math.round(((cpuSeconds([serve.pid]) - cpu0.serve) / wall) * 100)}% of one core`,
    postgresCpu: `${Math.round(((cpuSeconds(postgresPids()) - cpu0.pg) / wall) * 100)}% of one core`,
    loadGeneratorCpu: `${Math.round(((benchCpu.user + benchCpu.system) / 1e6 / wall) * 100)}% of one core`,
  };
  latencies.sort((a, b) => a - b);
  Object.assign(result, {
    p50: `${percentile(latencies, 50).toFixed(1)} ms`,
    p99: `${percentile(latencies, 99).toFixed(1)} ms`,
    max: `${latencies.at(-1).toFixed(1)} ms`,
    p99PerWindow: windows
      .filter((w) => w.length > 0)
      .map(
        (w) =>
          `${percentile(
            w.sort((a, b) => a - b),
            99,
          ).toFixed(0)} ms (${w.length})`,
      )
      .join(', '),
  });
  serve.kill('SIGTERM');
  serve = null;
  return result;
}

async function queryBench(url) {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  await pool.query('TRUNCATE fleet_hosts CASCADE');
  const t = Date.now();
  await pool.query(
    `INSERT INTO fleet_hosts (name, host_group, token_hash, last_seen, listeners)
     SELECT 'host-' || i, (ARRAY['web','db','cache','batch'])[i % 4 + 1], sha256(('t' || i)::bytea), now(), 100
     FROM generate_series(1, $1) i`,
    [queryHosts],
  );
  // 100 listeners a host; port 23 on 1% of hosts, redis on 0.0.0.0 on 2%, redis on loopback on 2%
  await pool.query(
    `INSERT INTO fleet_listeners SELECT h.id, 'tcp',
       CASE WHEN j = 0 AND h.id % 100 = 0 THEN '0.0.0.0' WHEN j = 1 AND h.id % 50 = 2 THEN '127.0.0.1'
            WHEN j % 3 = 0 THEN '127.0.0.1' ELSE '0.0.0.0' END,
       CASE WHEN j = 0 AND h.id % 100 = 0 THEN 23 WHEN j = 1 AND h.id % 50 IN (1, 2) THEN 6379
            ELSE 10000 + j * 100 + h.id % 100 END,
       'host',
       CASE WHEN j = 0 AND h.id % 100 = 0 THEN 'all' WHEN j = 1 AND h.id % 50 = 2 THEN 'loopback'
            WHEN j % 3 = 0 THEN 'loopback' ELSE 'all' END,
       CASE WHEN j = 0 AND h.id % 100 = 0 THEN 'telnet' WHEN j = 1 AND h.id % 50 IN (1, 2) THEN 'redis'
            ELSE 'svc' || j END,
       NULL,
       CASE WHEN j = 1 AND h.id % 50 IN (1, 2) THEN 'redis-server' ELSE 'proc' || j END,
       1000 + j, 'root', NULL, NULL, now() - interval '10 days'
     FROM fleet_hosts h, generate_series(0, 99) j`,
  );
  // 1,000,000 events over 30 days; a full 30-day history (one point per 5 min) for 200 hosts
  await pool.query(
    `INSERT INTO fleet_events (host_id, key, at, kind, listener_key, message)
     SELECT h.id, 'k' || g, now() - (g % 2592000) * interval '1 second',
       CASE WHEN g % 2 = 0 THEN 'listener-opened' ELSE 'listener-closed' END, 'tcp|0.0.0.0|' || (g % 65535) || '|host', 'bench event'
     FROM generate_series(1, 1000000) g JOIN fleet_hosts h ON h.name = 'host-' || (1 + g % $1)`,
    [queryHosts],
  );
  await pool.query(
    `INSERT INTO fleet_snapshots (host_id, taken_at, key, listeners, exposed, open_findings)
     SELECT h.id, now() - s * interval '5 minutes', 'p' || s, 100, 66, 3
     FROM fleet_hosts h, generate_series(0, 8639) s WHERE h.id % ($1 / 200) = 0`,
    [queryHosts],
  );
  await pool.query('ANALYZE');
  const loadSeconds = ((Date.now() - t) / 1000).toFixed(0);
  const rows = (
    await pool.query(
      'SELECT (SELECT count(*) FROM fleet_listeners) l, (SELECT count(*) FROM fleet_events) e, (SELECT count(*) FROM fleet_snapshots) s',
    )
  ).rows[0];
  const historyHost = (
    await pool.query(
      'SELECT h.name FROM fleet_hosts h WHERE h.id IN (SELECT host_id FROM fleet_snapshots LIMIT 1)',
    )
  ).rows[0].name;
  const since = new Date(Date.now() - 7 * 86_400_000).toISOString();
  const cases = [
    ['hosts exposing tcp/23', () => queries.hostsExposing(pool, 'tcp', 23)],
    ['who runs redis on 0.0.0.0', () => queries.hostsRunning(pool, 'redis', '0.0.0.0')],
    [
      'what changed on group web in 7 days (newest 1,000)',
      () => queries.changesSince(pool, { since, group: 'web' }),
    ],
    ["a host's detail and 30-day history", () => queries.hostDetail(pool, historyHost, 30)],
    ['hosts page (all hosts)', () => queries.listHosts(pool)],
  ];
  const out = [];
  for (const [name, fn] of cases) {
    const times = [];
    let size = 0;
    for (let i = 0; i < 21; i++) {
      const start = performance.now();
      const r = await fn();
      times.push(performance.now() - start);
      size = Array.isArray(r) ? r.length : r.history.length;
    }
    times.sort((a, b) => a - b);
    out.push({
      query: name,
      rows: size,
      median: `${times[10].toFixed(1)} ms`,
      max: `${times[20].toFixed(1)} ms`,
    });
  }
  await pool.end();
  return { loaded: rows, loadSeconds, queries: out };
}

function runCli(cliArgs) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'bin/portwarden.js'), ...cliArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    child.once('exit', (code) =>
      code === 0 ? resolve({ out, err }) : reject(new Error(`${cliArgs[0]}: ${err}`)),
    );
  });
}

const portLines = (json) =>
  JSON.parse(json).hosts.flatMap((h) => h.ports.map((p) => `${h.address} ${p.port}/${p.state}`));

async function scanBench(url) {
  const bits = Math.ceil(Math.log2(scanAddresses));
  const target = `127.1.0.0/${32 - bits}`;
  const ports = `41000-${41000 + scanPorts - 1}`;
  const base = ['scan', target, '-p', ports, '--json', '--show-all', '--yes'];
  const timed = async (cliArgs) => {
    const start = performance.now();
    const result = await runCli(cliArgs);
    return { ms: performance.now() - start, ...result };
  };
  const single = await timed(base);
  const out = { target, ports, addresses: 2 ** bits, singleProcess: `${(single.ms / 1000).toFixed(1)} s` };
  const expected = portLines(single.out);
  const shardSize = 64;
  for (const count of [1, 2]) {
    const workers = Array.from({ length: count }, (_, i) =>
      spawn(
        process.execPath,
        [join(root, 'bin/portwarden.js'), 'scan-worker', '--queue', url, '--name', `w${i}`],
        {
          stdio: 'ignore',
        },
      ),
    );
    await new Promise((r) => setTimeout(r, 1500));
    const shared = await timed([...base, '--queue', url, '--shard-size', String(shardSize)]);
    for (const w of workers) w.kill('SIGTERM');
    const same = JSON.stringify(portLines(shared.out)) === JSON.stringify(expected);
    out[`queue, ${count} worker(s)`] =
      `${(shared.ms / 1000).toFixed(1)} s, ${shared.err.trim().split('\n').at(-1)}, same ports as single: ${same}`;
    out[`ms${count}`] = shared.ms;
  }
  const shards = Math.ceil(2 ** bits / shardSize);
  out.speedUpTwoWorkers = `${(out.ms1 / out.ms2).toFixed(2)}x`;
  out.overheadPerShard = `${((out.ms1 - single.ms) / shards).toFixed(0)} ms (1 worker vs one process, ${shards} shards)`;
  delete out.ms1;
  delete out.ms2;
  return out;
}

try {
  if (asRoot) {
    const id = (flag) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }));
    chownSync(dir, id('-u'), id('-g'));
  }
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  started = true;
  run('pg_ctl', [
    '-D',
    data,
    '-w',
    '-l',
    join(dir, 'log'),
    '-o',
    `-k ${dir} -c listen_addresses='' -c max_connections=200 -c shared_buffers=256MB ${process.env.BENCH_PG_SETTINGS ?? ''}`,
    'start',
  ]);
  const url = `postgres://postgres@localhost/postgres?host=${encodeURIComponent(dir)}`;
  console.log(JSON.stringify({ loadAverage: (await import('node:os')).loadavg().map((l) => l.toFixed(1)) }));
  if (scanMode) {
    console.log(JSON.stringify(await scanBench(url), null, 2));
    process.exitCode = 0;
  } else console.log(JSON.stringify({ ingest: await ingestBench(url) }, null, 2));
  if (!scanMode && queryHosts > 0) console.log(JSON.stringify(await queryBench(url), null, 2));
} finally {
  cleanup();
}
