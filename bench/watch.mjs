#!/usr/bin/env node
// Bench for `portwarden watch`: 10,000 TCP listeners in a namespace of the bench's own; runs the watch
// loop (the built dist/, in this process) for SAMPLES samples back to back and reports CPU per sample
// and memory along the way (flat memory is the goal), next to one `ss -tlnp` over the same sockets.
// Needs root. Usage: node bench/watch.mjs [listeners=10000] [samples=1000]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const LISTENERS = Number(process.argv[2] ?? 10000);
const SAMPLES = Number(process.argv[3] ?? 1000);
const SOCKETS = fileURLToPath(new URL('./ports-sockets.mjs', import.meta.url));
const NS = `pwbenchwatch${process.pid % 10000}`;
const dir = mkdtempSync(join(tmpdir(), 'pw-bench-watch-'));
let holder;
function cleanup() {
  holder?.kill('SIGKILL');
  spawnSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

spawnSync('ip', ['netns', 'add', NS]);
spawnSync('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
holder = spawn(
  'ip',
  [
    'netns',
    'exec',
    NS,
    'sh',
    '-c',
    `ulimit -n ${LISTENERS + 1000}; exec "${process.execPath}" "${SOCKETS}" ${LISTENERS} 0`,
  ],
  {
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
await new Promise((resolve) => holder.stdout.once('data', resolve));

const { WatchStore } = await import('../dist/watch/store.js');
const { runWatch } = await import('../dist/watch/daemon.js');
const { listSockets } = await import('../dist/inventory/list.js');
const store = new WatchStore(join(dir, 'watch.db'));
const marks = new Set([1, 10, 100, 250, 500, 750, SAMPLES]);
const rows = [];
const cpu0 = process.cpuUsage();
const wall0 = performance.now();
let listeners = 0;
await runWatch({
  store,
  sample: async () => (await listSockets({ netns: NS, tcp: true })).sockets,
  intervalMs: 0,
  snapshotEveryMs: 60_000,
  sinks: [],
  kernelLog: 'none',
  maxSamples: SAMPLES,
  signal: new AbortController().signal,
  onSample: (s) => {
    listeners = s.listeners;
    if (!marks.has(s.samples)) return;
    globalThis.gc?.();
    const used = process.cpuUsage(cpu0);
    rows.push({
      samples: s.samples,
      cpuPerSampleMs: (used.user + used.system) / 1000 / s.samples,
      wallPerSampleMs: (performance.now() - wall0) / s.samples,
      rssMb: process.memoryUsage().rss / 2 ** 20,
      heapMb: process.memoryUsage().heapUsed / 2 ** 20,
    });
  },
});
store.close();

const ssRuns = [];
for (let i = 0; i < 5; i++) {
  const t = performance.now();
  spawnSync('ip', ['netns', 'exec', NS, 'ss', '-tlnpH'], { maxBuffer: 1 << 28 });
  ssRuns.push(performance.now() - t);
}
ssRuns.sort((a, b) => a - b);
console.log(`watch: ${listeners} listeners per sample, ${SAMPLES} samples back to back (interval 0)`);
console.log('samples  cpu/sample ms  wall/sample ms  rss MB  heap MB');
for (const r of rows)
  console.log(
    `${String(r.samples).padStart(7)}  ${r.cpuPerSampleMs.toFixed(1).padStart(13)}  ${r.wallPerSampleMs.toFixed(1).padStart(14)}  ${r.rssMb.toFixed(1).padStart(6)}  ${r.heapMb.toFixed(1).padStart(7)}`,
  );
console.log(`ss -tlnp over the same sockets (one run, wall, median of 5): ${ssRuns[2].toFixed(1)} ms`);
process.exit(0);
