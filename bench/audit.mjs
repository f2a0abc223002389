#!/usr/bin/env node
// Bench for `portwarden audit`: 1,000 TCP listeners on all interfaces in a namespace of its own,
// with the dual-homed example's compiled ruleset loaded there; times `portwarden audit` (no
// arguments, text and --json) as the median of RUNS. Goal: under 3 s on 2 cores. Needs root.
// Usage: node bench/audit.mjs [listeners=1000] [runs=5]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const N = Number(process.argv[2] ?? 1000);
const RUNS = Number(process.argv[3] ?? 5);
const BIN = fileURLToPath(new URL('../bin/portwarden.js', import.meta.url));
const SOCKETS = fileURLToPath(new URL('./ports-sockets.mjs', import.meta.url));
const RULESET = fileURLToPath(new URL('../test/golden/web-ftp-dual-homed/nftables.nft', import.meta.url));
const NS = `pwbenchaudit${process.pid % 10000}`;
const PEER = `${NS}p`;

const sh = (args) => execFileSync(args[0], args.slice(1), { encoding: 'utf8' });
function cleanup() {
  for (const ns of [NS, PEER]) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
}
process.on('exit', cleanup);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

cleanup();
sh(['ip', 'netns', 'add', NS]);
sh(['ip', 'netns', 'add', PEER]);
sh(['ip', 'link', 'add', 'pwba0', 'netns', NS, 'type', 'veth', 'peer', 'name', 'pwba1', 'netns', PEER]);
sh(['ip', 'netns', 'exec', NS, 'ip', 'link', 'set', 'pwba0', 'name', 'eth0']);
sh(['ip', 'netns', 'exec', NS, 'ip', 'link', 'set', 'eth0', 'up']);
sh(['ip', 'netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up']);
sh(['ip', 'netns', 'exec', NS, 'ip', 'addr', 'add', '198.51.100.1/24', 'dev', 'eth0']);
sh(['ip', 'netns', 'exec', NS, 'nft', '-f', RULESET]);
// ports-sockets binds 127.0.0.1; the audit bench wants exposed listeners, so ask for 0.0.0.0.
const child = spawn(
  'ip',
  [
    'netns',
    'exec',
    NS,
    'sh',
    '-c',
    `ulimit -n 20000; exec "${process.execPath}" "${SOCKETS}" ${N} 0 0.0.0.0`,
  ],
  {
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
process.on('exit', () => child.kill('SIGKILL'));
await new Promise((resolve) => child.stdout.on('data', (d) => String(d).includes('ready') && resolve()));

function time(args) {
  const times = [];
  let out = '';
  for (let i = 0; i < RUNS; i++) {
    const start = process.hrtime.bigint();
    const r = spawnSync('ip', ['netns', 'exec', NS, process.execPath, BIN, ...args], {
      encoding: 'utf8',
      maxBuffer: 1 << 28,
    });
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
    out = r.stdout;
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)], out };
}
const text = time(['audit']);
const json = time(['audit', '--json']);
const report = JSON.parse(json.out);
console.log(`${N} listeners on 0.0.0.0, dual-homed ruleset loaded, median of ${RUNS} runs`);
console.log(`portwarden audit           ${text.median.toFixed(0)} ms`);
console.log(
  `portwarden audit --json    ${json.median.toFixed(0)} ms  (${report.exposure.length} exposure rows, ${report.findings.length} findings, method ${report.method})`,
);

// The socket-holding child keeps the event loop alive; leave explicitly so the exit handler cleans up.
process.exit(0);
