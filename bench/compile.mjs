#!/usr/bin/env node
// Bench for `portwarden compile`: a policy allowing 5,000 distinct ports and ranges across 4 zones.
// Prints compile time, `nft -f` load time (inside a namespace of its own) and rule count, next to the
// same policy as one-rule-per-port iptables (iptables-restore load time and rule count) and
// portwarden's own iptables output (multiport chunks). Needs root. Usage: node bench/compile.mjs [n=5000]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const N = Number(process.argv[2] ?? 5000);
const BIN = fileURLToPath(new URL('../bin/portwarden.js', import.meta.url));
const NS = `pwbenchcmp${process.pid % 10000}`;
const dir = mkdtempSync(join(tmpdir(), 'pw-bench-compile-'));
process.on('exit', () => {
  spawnSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
});

// 5,000 distinct items: single ports and small ranges, spread over 4 zones, TCP and UDP.
const zones = [[], [], [], []];
for (let i = 0; i < N; i++) {
  const base = 1024 + i * 12;
  const item =
    i % 5 === 0 ? `${i % 2 ? 'udp' : 'tcp'}/${base}-${base + 3}` : `${i % 2 ? 'udp' : 'tcp'}/${base}`;
  zones[i % 4].push(item);
}
const policy = [
  'version: 1',
  'zones:',
  ...zones.flatMap((items, z) => [
    `  z${z}:`,
    `    interfaces: [eth${z}]`,
    '    inbound:',
    `      - allow: ${items.join(', ')}`,
  ]),
].join('\n');
const policyFile = join(dir, 'big.yaml');
writeFileSync(policyFile, `${policy}\n`);

function time(fn) {
  const start = process.hrtime.bigint();
  const r = fn();
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, r };
}
function run(cmd, args, input) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const nftFile = join(dir, 'big.nft');
const compileNft = time(() => run(process.execPath, [BIN, 'compile', policyFile, '-o', nftFile]));
const compileIpt = time(() =>
  run(process.execPath, [BIN, 'compile', policyFile, '-t', 'iptables', '-o', join(dir, 'big')]),
);
run('ip', ['netns', 'add', NS]);
const loadNft = time(() => run('ip', ['netns', 'exec', NS, 'nft', '-f', nftFile]));
const nftRules = run('ip', ['netns', 'exec', NS, 'nft', '-a', 'list', 'ruleset'])
  .split('\n')
  .filter((l) => /# handle \d+$/.test(l) && !/^\s*(chain|table|set)\b/.test(l.trim())).length;
run('ip', ['netns', 'exec', NS, 'nft', 'flush', 'ruleset']);

// The same policy, one iptables rule per port or range (what a naive generator writes).
const perPort = ['*filter', ':INPUT DROP [0:0]', ':FORWARD DROP [0:0]', ':OUTPUT ACCEPT [0:0]'];
zones.forEach((items, z) => {
  for (const item of items) {
    const [proto, ports] = item.split('/');
    perPort.push(`-A INPUT -i eth${z} -p ${proto} --dport ${ports.replace('-', ':')} -j ACCEPT`);
  }
});
perPort.push('COMMIT', '');
const loadPerPort = time(() => run('ip', ['netns', 'exec', NS, 'iptables-restore'], perPort.join('\n')));
const perPortRules = perPort.filter((l) => l.startsWith('-A')).length;
const ours = spawnSync('cat', [join(dir, 'big.v4')], { encoding: 'utf8' }).stdout;
const loadOurs = time(() => run('ip', ['netns', 'exec', NS, 'iptables-restore'], ours));
const oursRules = ours.split('\n').filter((l) => l.startsWith('-A')).length;

console.log(`policy: ${N} distinct ports/ranges in 4 zones (tcp and udp)`);
console.log(
  `portwarden compile -t nftables     ${compileNft.ms.toFixed(0)} ms   nft -f load ${loadNft.ms.toFixed(0)} ms   rules ${nftRules}`,
);
console.log(
  `portwarden compile -t iptables     ${compileIpt.ms.toFixed(0)} ms   iptables-restore ${loadOurs.ms.toFixed(0)} ms   rules ${oursRules} (multiport, 15 per rule)`,
);
console.log(
  `one rule per port (iptables)       -        iptables-restore ${loadPerPort.ms.toFixed(0)} ms   rules ${perPortRules}`,
);
