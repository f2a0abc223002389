#!/usr/bin/env node
// Audit time next to `nft list ruleset` time on the same ruleset: an inet table whose input chain
// drops a set of N IPv6 prefixes (a blocklist as fail2ban / CrowdSec / country ipsets make them).
// Loads the ruleset in a network namespace it creates and always removes; needs root, ip and nft.
// Usage: npm run build && node bench/audit-sets.mjs [elements=100000] [runs=3]
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const elements = Number(process.argv[2] ?? 100_000);
const runs = Number(process.argv[3] ?? 3);
const ns = `pwbench${process.pid % 100_000}`;
const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'pw-bench-'));
const inNs = (cmd, args, opts = {}) =>
  execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], { maxBuffer: 1 << 30, ...opts });

function ruleset(n) {
  const prefixes = Array.from(
    { length: n },
    (_, i) => `2001:db8:${(i >> 12).toString(16)}:${(i & 4095).toString(16)}::/64`,
  );
  return [
    'table inet bench {',
    '  set blocklist { type ipv6_addr; flags interval;',
    `    elements = { ${prefixes.join(', ')} }`,
    '  }',
    '  chain input { type filter hook input priority 0; policy drop;',
    '    ct state established,related accept',
    '    iif "lo" accept',
    '    meta l4proto ipv6-icmp accept',
    '    ip6 saddr @blocklist drop',
    '    tcp dport 22 accept',
    '  }',
    '}',
  ].join('\n');
}

/** Milliseconds of the fastest of `runs` runs (the machine is shared; the minimum is the cost). */
function time(fn) {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    fn();
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e6);
  }
  return best;
}

let listener;
try {
  execFileSync('ip', ['netns', 'add', ns]);
  execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  execFileSync('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1']);
  execFileSync('ip', ['-n', ns, 'addr', 'add', '198.51.100.1/24', 'dev', 'eth0']);
  execFileSync('ip', ['-n', ns, 'addr', 'add', '2001:db8:ffff::1/64', 'dev', 'eth0', 'nodad']);
  execFileSync('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
  const file = join(dir, 'bench.nft');
  writeFileSync(file, ruleset(elements));
  inNs('nft', ['-f', file]);
  listener = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      join(root, 'test/fixtures/servers/listen.mjs'),
      'tcp:[::]:22',
      'tcp:[::]:23',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise((resolve) => listener.stdout.once('data', resolve));
  const nftText = time(() => inNs('nft', ['list', 'ruleset']));
  const nftJson = time(() => inNs('nft', ['-j', 'list', 'ruleset']));
  let report;
  const audit = time(() => {
    report = JSON.parse(
      inNs(process.execPath, [
        join(root, 'bin/portwarden.js'),
        'audit',
        '--json',
        '--profile',
        'server',
      ]).toString(),
    );
  });
  // The evaluator alone, in-process: parse + exposure on the captured data (no /proc, no nft).
  const phases = JSON.parse(
    inNs(process.execPath, [
      '--input-type=module',
      '-e',
      `import { readAuditData, auditFromData } from ${JSON.stringify(join(root, 'dist/audit/run.js'))};
       const data = await readAuditData();
       const { rulesetFromData } = await import(${JSON.stringify(join(root, 'dist/audit/run.js'))});
       const ms = (t) => Number(process.hrtime.bigint() - t) / 1e6;
       let t = process.hrtime.bigint(); JSON.parse(data.nftJson); const json = ms(t);
       t = process.hrtime.bigint(); rulesetFromData(data); const model = ms(t);
       t = process.hrtime.bigint(); auditFromData(data);
       console.log(JSON.stringify({ evaluate: ms(t), json, model }));`,
    ]).toString(),
  );
  const row = (name, ms) => `${name.padEnd(44)}${ms.toFixed(0).padStart(8)} ms`;
  const ssh = report.exposure.find((r) => r.localPort === 22);
  console.log(
    `ruleset: one inet input chain, ip6 saddr @blocklist drop, ${elements} IPv6 /64 prefixes (interval set)`,
  );
  console.log(row('nft list ruleset', nftText));
  console.log(row('nft -j list ruleset', nftJson));
  console.log(row('portwarden audit --json (whole command)', audit));
  console.log(row('  of which parse + evaluate (auditFromData)', phases.evaluate));
  console.log(row('    of which JSON.parse of the nft -j text', phases.json));
  console.log(row('    of which the ruleset model', phases.model));
  console.log(
    `tcp/22 reachable: ${ssh?.reachable}; tcp/23 reachable: ${report.exposure.find((r) => r.localPort === 23)?.reachable} (best of ${runs} runs)`,
  );
} finally {
  listener?.kill();
  try {
    execFileSync('ip', ['netns', 'del', ns]);
  } catch {
    // already gone
  }
  rmSync(dir, { recursive: true, force: true });
}
