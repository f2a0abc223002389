#!/usr/bin/env node
// Bench for `portwarden scan` vs `nmap -sT`, side by side, same targets and ports, states compared
// port by port (from both XML files). Needs root: cases 2 and 3 use namespaces this script creates.
//   1. 127.0.0.1, all 65,535 TCP ports, ~30 listeners            vs nmap -sT -n -Pn -T4 -p-
//   2. a namespace target over a veth pair, no firewall, -p-      vs the same
//   3. the same target, nft input policy drop except a few open and a few reject ports, -p-
//                                                                  vs nmap -sT -n -Pn -T4 --max-retries 1 -p-
//   4. UDP: 100 ports on the namespace target (10 open with DNS/NTP/SNMP-like responders, 60 closed,
//      30 dropped by nft)                                          vs nmap -sU -n -Pn -T4 --max-retries 1
// Usage: node bench/scan.mjs [cases=1,2,3,4]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CASES = (process.argv[2] ?? '1,2,3,4').split(',').map(Number);
const BIN = fileURLToPath(new URL('../bin/portwarden.js', import.meta.url));
const LISTEN = fileURLToPath(new URL('../test/fixtures/servers/listen.mjs', import.meta.url));
const TAG = `pwbs${process.pid % 10000}`;
const SCANNER = `${TAG}s`;
const TARGET = `${TAG}t`;
const dir = mkdtempSync(join(tmpdir(), 'pw-bench-scan-'));
const children = [];

function cleanup() {
  for (const c of children) c.kill('SIGKILL');
  for (const ns of [SCANNER, TARGET]) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));
const sh = (args) => execFileSync(args[0], args.slice(1), { encoding: 'utf8' });

function xmlStates(xml) {
  const out = new Map();
  for (const m of xml.matchAll(/<port protocol="tcp" portid="(\d+)"><state state="([^"]+)"/g))
    out.set(Number(m[1]), m[2]);
  for (const m of xml.matchAll(/<extraports state="([^"]+)"[^>]*>([\s\S]*?)<\/extraports>/g)) {
    for (const r of m[2].matchAll(/ports="([^"]+)"/g)) {
      for (const part of r[1].split(',')) {
        const [a, b = a] = part.split('-');
        for (let p = Number(a); p <= Number(b); p++) out.set(p, m[1]);
      }
    }
  }
  return out;
}

function run(label, ns, argv) {
  const prefix = ns ? ['ip', 'netns', 'exec', ns] : [];
  const [cmd, ...args] = [...prefix, ...argv];
  const start = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`${label} failed: ${r.stderr}`);
  return seconds;
}

function listen(ns, ports, host) {
  const argv = [process.execPath, LISTEN, ...ports.map((p) => `tcp:${host}:${p}`)];
  const child = spawn(ns ? 'ip' : argv[0], ns ? ['netns', 'exec', ns, ...argv] : argv.slice(1), {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve) => child.stdout.once('data', resolve));
}

async function compare(name, ns, target, nmapExtra) {
  const pwXml = join(dir, `${name}-pw.xml`);
  const nmXml = join(dir, `${name}-nmap.xml`);
  const pw = run('portwarden', ns, [process.execPath, BIN, 'scan', target, '-p-', '--xml', pwXml]);
  const nm = run('nmap', ns, ['nmap', '-sT', '-n', '-Pn', '-T4', ...nmapExtra, '-p-', target, '-oX', nmXml]);
  const a = xmlStates(readFileSync(pwXml, 'utf8'));
  const b = xmlStates(readFileSync(nmXml, 'utf8'));
  let differ = 0;
  for (let p = 1; p <= 65535; p++) if (a.get(p) !== b.get(p)) differ++;
  const open = [...a].filter(([, s]) => s === 'open').length;
  console.log(
    `${name.padEnd(34)} portwarden ${pw.toFixed(2)} s   nmap ${nm.toFixed(2)} s   (${(nm / pw).toFixed(2)}x)   open ${open}   ports differing: ${differ}`,
  );
}

const OPEN = Array.from({ length: 30 }, (_, i) => 20000 + i * 997);
if (CASES.includes(1)) {
  await listen(null, OPEN, '127.0.0.1');
  await compare('1. loopback, -p-', null, '127.0.0.1', []);
}
if (CASES.includes(2) || CASES.includes(3) || CASES.includes(4)) {
  sh(['ip', 'netns', 'add', SCANNER]);
  sh(['ip', 'netns', 'add', TARGET]);
  sh([
    'ip',
    'link',
    'add',
    `${TAG}a`,
    'netns',
    SCANNER,
    'type',
    'veth',
    'peer',
    'name',
    `${TAG}b`,
    'netns',
    TARGET,
  ]);
  for (const [ns, ifname, addr] of [
    [SCANNER, `${TAG}a`, '198.51.100.1/24'],
    [TARGET, `${TAG}b`, '198.51.100.2/24'],
  ]) {
    sh(['ip', '-n', ns, 'addr', 'add', addr, 'dev', ifname]);
    sh(['ip', '-n', ns, 'link', 'set', ifname, 'up']);
    sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  }
  await listen(TARGET, OPEN, '0.0.0.0');
  if (CASES.includes(2)) await compare('2. veth, no firewall, -p-', SCANNER, '198.51.100.2', []);
  if (CASES.includes(3)) {
    const rules = join(dir, 'drop.nft');
    const open = OPEN.slice(0, 5).join(', ');
    writeFileSync(
      rules,
      `table inet bench {\n chain input { type filter hook input priority 0; policy drop; ct state established,related accept; iif "lo" accept; tcp dport { ${open} } accept; tcp dport { 7, 9, 13 } reject with tcp reset; }\n}\n`,
    );
    sh(['ip', 'netns', 'exec', TARGET, 'nft', '-f', rules]);
    await compare('3. veth, drop policy, -p-', SCANNER, '198.51.100.2', ['--max-retries', '1']);
  }
  if (CASES.includes(4)) {
    spawnSync('ip', ['netns', 'exec', TARGET, 'nft', 'flush', 'ruleset']);
    const open = [53, 123, 161, ...Array.from({ length: 7 }, (_, i) => 30000 + i)];
    const closed = Array.from({ length: 60 }, (_, i) => 31000 + i);
    const dropped = Array.from({ length: 30 }, (_, i) => 32000 + i);
    const rules = join(dir, 'udp.nft');
    writeFileSync(
      rules,
      `table inet bench {\n chain input { type filter hook input priority 0; policy accept; udp dport 32000-32029 drop; }\n}\n`,
    );
    sh(['ip', 'netns', 'exec', TARGET, 'nft', '-f', rules]);
    const responder = `const d=require('dgram');for(const p of ${JSON.stringify(open)}){const s=d.createSocket('udp4');s.on('message',(m,r)=>{let b=Buffer.from(m);if(p===53&&b.length>=12)b[2]|=0x80;else if(p===123){b=Buffer.alloc(48);b[0]=0x24;}else if(!b.length)b=Buffer.from('hi');s.send(b,r.port,r.address)});s.bind(p)}setTimeout(()=>console.log('ready'),200);setInterval(()=>{},1<<30)`;
    const child = spawn('ip', ['netns', 'exec', TARGET, process.execPath, '-e', responder], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    await new Promise((resolve) => child.stdout.once('data', resolve));
    const ports = [...open, ...closed, ...dropped].join(',');
    const pwXml = join(dir, 'udp-pw.xml');
    const nmXml = join(dir, 'udp-nmap.xml');
    const pw = run('portwarden', SCANNER, [
      process.execPath,
      BIN,
      'scan',
      '198.51.100.2',
      '-sU',
      '-p',
      ports,
      '--xml',
      pwXml,
    ]);
    const nm = run('nmap', SCANNER, [
      'nmap',
      '-sU',
      '-n',
      '-Pn',
      '-T4',
      '--max-retries',
      '1',
      '-p',
      ports,
      '198.51.100.2',
      '-oX',
      nmXml,
    ]);
    const truth = new Map([
      ...open.map((p) => [p, 'open']),
      ...closed.map((p) => [p, 'closed']),
      ...dropped.map((p) => [p, 'open|filtered']),
    ]);
    const wrong = (xml) =>
      [...truth].filter(
        ([p, s]) =>
          xmlStates(readFileSync(xml, 'utf8').replaceAll('protocol="udp"', 'protocol="tcp"')).get(p) !== s,
      ).length;
    console.log(
      `4. veth, 100 UDP ports               portwarden ${pw.toFixed(2)} s   nmap ${nm.toFixed(2)} s   (${(nm / pw).toFixed(2)}x)   wrong states: portwarden ${wrong(pwXml)}, nmap ${wrong(nmXml)} of 100`,
    );
  }
}

// Children keep the event loop alive; leave explicitly so the exit handler removes everything.
process.exit(0);
