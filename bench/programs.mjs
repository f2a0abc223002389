#!/usr/bin/env node
// Bench for `watch --programs`: the gate (the built dist/) in a namespace of the bench's own, with an
// "allow always" decision for the client program, and a client that opens new TCP connections to a
// peer namespace at a given rate from known source ports. Per connection: decision latency (the client's
// connect() call -> the daemon's admission of that exact 5-tuple is loaded in the kernel) and connect
// time (including the retransmission the gate waits for); CPU of the daemon per connection, nft children
// included (utime+stime+cutime+cstime from /proc/self/stat). Needs root.
// Usage: node bench/programs.mjs [rate=10,100,1000] [seconds=3] [pollMs=200]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const role = process.env.PW_BENCH_ROLE;

if (role === 'daemon') await daemon();
else if (role === 'client') await client();
else await main();

/** The gate with instrumentation: admission times per source port, CPU with children. */
async function daemon() {
  const { WatchStore } = await import('../dist/watch/store.js');
  const { ProgramStore } = await import('../dist/programs/store.js');
  const { ProgramsGate } = await import('../dist/programs/gatekeeper.js');
  const { kernelGateIo } = await import('../dist/programs/nft-io.js');
  const { executableSha256 } = await import('../dist/programs/attribute.js');
  const store = new WatchStore(process.env.PW_BENCH_DB);
  const programs = new ProgramStore(store.db);
  programs.addDecision(
    {
      exe: realpathSync(process.execPath),
      sha256: executableSha256(process.pid),
      verdict: 'allow',
      scope: 'always',
      protocol: null,
      remoteAddress: null,
      remotePort: null,
    },
    Date.now(),
    'bench',
  );
  const io = kernelGateIo();
  const admitted = new Map();
  const timedIo = {
    ...io,
    nft: async (script) => {
      await io.nft(script);
      if (script.startsWith('add element')) {
        const at = Date.now();
        for (const m of script.matchAll(/(\d+) \. 198\.51\.100\.2 \. 8080 \. tcp/g))
          admitted.set(Number(m[1]), at);
      }
    },
  };
  const controller = new AbortController();
  const gate = new ProgramsGate({
    mode: 'ask',
    store: programs,
    io: timedIo,
    policy: null,
    signal: controller.signal,
  });
  await gate.start();
  const pollMs = Number(process.env.PW_BENCH_POLL ?? 50);
  process.stdout.write('ready\n');
  let stop = false;
  process.stdin.on('data', () => (stop = true));
  const cpu = () => {
    const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 10; // ms at 100 Hz
  };
  const cpu0 = cpu();
  const wall0 = Date.now();
  let polls = 0;
  let handled = 0;
  while (!stop) {
    handled += await gate.poll();
    polls += 1;
    await new Promise((r) => setTimeout(r, pollMs));
  }
  const cpuMs = cpu() - cpu0;
  const wallMs = Date.now() - wall0;
  process.stdout.write(`${JSON.stringify({ admitted: [...admitted], cpuMs, wallMs, polls, handled })}\n`);
  store.close();
  process.exit(0);
}

/** Opens connections at a rate from source ports 20000.., records when each connect() was called. */
async function client() {
  const net = await import('node:net');
  const rate = Number(process.env.PW_BENCH_RATE);
  const seconds = Number(process.env.PW_BENCH_SECONDS);
  const total = Math.round(rate * seconds);
  const started = new Map();
  const connected = new Map();
  const failed = [];
  const base = Number(process.env.PW_BENCH_BASE);
  let pending = 0;
  const t0 = Date.now();
  await new Promise((resolve) => {
    let i = 0;
    const tick = () => {
      const due = Math.min(total, Math.floor(((Date.now() - t0) / 1000) * rate) + 1);
      for (; i < due; i++) {
        const port = base + i;
        pending += 1;
        started.set(port, Date.now());
        const s = net.connect({
          host: '198.51.100.2',
          port: 8080,
          localAddress: '198.51.100.1',
          localPort: port,
        });
        s.setTimeout(15_000, () => s.destroy(new Error('timeout')));
        s.once('connect', () => {
          connected.set(port, Date.now());
          s.destroy();
        });
        s.once('close', () => {
          pending -= 1;
          if (i >= total && pending === 0) resolve();
        });
        s.once('error', (e) => failed.push(`${port}: ${e.message}`));
      }
      if (i < total) setTimeout(tick, 2);
    };
    tick();
  });
  process.stdout.write(
    `${JSON.stringify({ started: [...started], connected: [...connected], failed: failed.length })}\n`,
  );
}

function percentile(sorted, p) {
  return sorted.length === 0
    ? NaN
    : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function run(ns, env, input) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'ip',
      ['netns', 'exec', ns, 'sh', '-c', `ulimit -n $(ulimit -Hn); exec "${process.execPath}" "${SELF}"`],
      {
        env: { ...process.env, ...env },
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
      if (input) input(child, out);
    });
    child.once('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${env.PW_BENCH_ROLE} exited ${code}`)),
    );
  });
}

async function main() {
  const rates = (process.argv[2] ?? '10,100,1000').split(',').map(Number);
  const seconds = Number(process.argv[3] ?? 3);
  const pollMs = Number(process.argv[4] ?? 200);
  const tag = `pwbp${process.pid % 10000}`;
  const host = `${tag}h`;
  const peer = `${tag}p`;
  const dir = mkdtempSync(join(tmpdir(), 'pw-bench-programs-'));
  let server;
  const cleanup = () => {
    server?.kill('SIGKILL');
    // a namespace whose last process is still exiting can refuse deletion once: try again
    for (const ns of [host, peer])
      for (let i = 0; i < 3 && spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }).status !== 0; i++)
        spawnSync('sleep', ['0.2']);
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', cleanup);
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));
  const ip = (...args) => spawnSync('ip', args, { stdio: 'inherit' });
  ip('netns', 'add', host);
  ip('netns', 'add', peer);
  ip('link', 'add', `${tag}a`, 'netns', host, 'type', 'veth', 'peer', 'name', `${tag}b`, 'netns', peer);
  ip('-n', host, 'addr', 'add', '198.51.100.1/24', 'dev', `${tag}a`);
  ip('-n', peer, 'addr', 'add', '198.51.100.2/24', 'dev', `${tag}b`);
  for (const [ns, dev] of [
    [host, `${tag}a`],
    [peer, `${tag}b`],
  ]) {
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'link', 'set', dev, 'up');
  }
  spawnSync('ip', ['netns', 'exec', host, 'sysctl', '-qw', 'net.ipv4.ip_local_port_range=40000 60999']);
  server = spawn(
    'ip',
    [
      'netns',
      'exec',
      peer,
      'python3',
      '-c',
      "import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('198.51.100.2', 8080)); s.listen(4096)\nwhile True:\n    c, a = s.accept(); c.close()",
    ],
    { stdio: 'ignore' },
  );
  await new Promise((r) => setTimeout(r, 500));
  console.log(
    `watch --programs gate, poll ${pollMs} ms, ${seconds} s per rate; decision latency = connect() -> admission loaded`,
  );
  console.log(
    'rate/s | connections | connected | decision p50 | p99 | connect p50 | p99 | daemon CPU (wall) | of one core | CPU per connection',
  );
  let base = 20000;
  for (const rate of rates) {
    const db = join(dir, `w${rate}.db`);
    let daemonChild;
    let ready;
    const isReady = new Promise((resolve) => (ready = resolve));
    const daemonOut = run(
      host,
      { PW_BENCH_ROLE: 'daemon', PW_BENCH_DB: db, PW_BENCH_POLL: String(pollMs) },
      (child, out) => {
        daemonChild = child;
        if (out.includes('ready')) ready();
      },
    );
    await isReady;
    const c = JSON.parse(
      await run(host, {
        PW_BENCH_ROLE: 'client',
        PW_BENCH_RATE: String(rate),
        PW_BENCH_SECONDS: String(seconds),
        PW_BENCH_BASE: String(base),
      }),
    );
    // each rate takes fresh source ports: the last ones are in TIME_WAIT for a minute
    base += Math.round(rate * seconds) + 10;
    daemonChild.stdin.write('stop\n');
    const d = JSON.parse(
      (await daemonOut)
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .pop(),
    );
    const started = new Map(c.started);
    const admitted = new Map(d.admitted);
    const decision = [...admitted]
      .filter(([p]) => started.has(p))
      .map(([p, at]) => at - started.get(p))
      .sort((a, b) => a - b);
    const connect = c.connected.map(([p, at]) => at - started.get(p)).sort((a, b) => a - b);
    const n = c.started.length;
    console.log(
      `${rate} | ${n} | ${c.connected.length} | ${percentile(decision, 50)} ms | ${percentile(decision, 99)} ms | ${percentile(connect, 50)} ms | ${percentile(connect, 99)} ms | ${d.cpuMs} ms (${d.wallMs} ms) | ${((100 * d.cpuMs) / d.wallMs).toFixed(0)}% | ${(d.cpuMs / n).toFixed(2)} ms`,
    );
  }
}
