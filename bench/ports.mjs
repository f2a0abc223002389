#!/usr/bin/env node
// Bench for `portwarden ports`: 10,000 TCP listeners + 1,000 UDP sockets on loopback in a namespace
// of its own; times `portwarden ports --json` against `ss -tulpnH` and `netstat -tulpn` in the same
// run (median of RUNS), and compares the (proto, address, port, pid) sets with ss's.
// Needs root (ip netns). Usage: node bench/ports.mjs [tcp=10000] [udp=1000] [runs=5]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const TCP = Number(process.argv[2] ?? 10000);
const UDP = Number(process.argv[3] ?? 1000);
const RUNS = Number(process.argv[4] ?? 5);
const BIN = fileURLToPath(new URL('../bin/portwarden.js', import.meta.url));
const SOCKETS = fileURLToPath(new URL('./ports-sockets.mjs', import.meta.url));
const NS = `pwbenchports${process.pid % 10000}`;

const sh = (args) => execFileSync(args[0], args.slice(1), { encoding: 'utf8', maxBuffer: 1 << 28 });
function cleanup() {
  spawnSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
}
process.on('exit', cleanup);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

function timeIt(argv) {
  const times = [];
  let output = '';
  for (let i = 0; i < RUNS; i++) {
    const start = process.hrtime.bigint();
    const result = spawnSync('ip', ['netns', 'exec', NS, ...argv], { encoding: 'utf8', maxBuffer: 1 << 28 });
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
    if (result.status !== 0) throw new Error(`${argv.join(' ')} failed: ${result.stderr}`);
    output = result.stdout;
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)], output };
}

function ssSet(text) {
  const set = new Set();
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5) continue;
    const local = f[4];
    const colon = local.lastIndexOf(':');
    const address = local
      .slice(0, colon)
      .replace(/^\[|\]$/g, '')
      .replace(/%.*$/, '');
    const pids = [...line.matchAll(/pid=(\d+)/g)].map((m) => m[1]);
    for (const pid of pids.length ? pids : ['-'])
      set.add(`${f[0]} ${address === '*' ? '0.0.0.0' : address} ${local.slice(colon + 1)} ${pid}`);
  }
  return set;
}

function portwardenSet(text) {
  const set = new Set();
  for (const s of JSON.parse(text).sockets) {
    const pids = s.processes.map((p) => String(p.pid));
    for (const pid of pids.length ? pids : ['-'])
      set.add(`${s.protocol} ${s.localAddress} ${s.localPort} ${pid}`);
  }
  return set;
}

cleanup();
sh(['ip', 'netns', 'add', NS]);
sh(['ip', 'netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up']);
const child = spawn(
  'ip',
  ['netns', 'exec', NS, 'sh', '-c', `ulimit -n 20000; exec "${process.execPath}" "${SOCKETS}" ${TCP} ${UDP}`],
  {
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
process.on('exit', () => child.kill('SIGKILL'));
await new Promise((resolve) => child.stdout.on('data', (d) => String(d).includes('ready') && resolve()));

const node = timeIt([process.execPath, '-e', '0']);
const version = timeIt([process.execPath, BIN, '--version']);
const pw = timeIt([process.execPath, BIN, 'ports', '--json']);
const ss = timeIt(['ss', '-tulpnH']);
let netstat = null;
try {
  netstat = timeIt(['netstat', '-tulpn']);
} catch {
  netstat = null;
}
const a = portwardenSet(pw.output);
const b = ssSet(ss.output);
const onlyPw = [...a].filter((x) => !b.has(x));
const onlySs = [...b].filter((x) => !a.has(x));

console.log(`sockets: ${TCP} TCP listeners + ${UDP} UDP on loopback, median of ${RUNS} runs`);
console.log(`node -e 0                  ${node.median.toFixed(1)} ms`);
console.log(`portwarden --version       ${version.median.toFixed(1)} ms`);
console.log(
  `portwarden ports --json    ${pw.median.toFixed(1)} ms   (${(pw.median / ss.median).toFixed(2)}x ss)`,
);
console.log(`ss -tulpnH                 ${ss.median.toFixed(1)} ms`);
if (netstat) console.log(`netstat -tulpn             ${netstat.median.toFixed(1)} ms`);
console.log(
  `(proto,address,port,pid) rows: portwarden ${a.size}, ss ${b.size}; only portwarden ${onlyPw.length}, only ss ${onlySs.length}`,
);
for (const x of [...onlyPw.slice(0, 5).map((r) => `+pw ${r}`), ...onlySs.slice(0, 5).map((r) => `+ss ${r}`)])
  console.log(`  ${x}`);
process.exit(onlyPw.length + onlySs.length === 0 ? 0 : 1);
