// Wall time of `portwarden verify` on the dual-homed example (2 zones, every TCP port, IPv4 and IPv6,
// plus UDP, extra peers, routing and FTP), for a few --parallel settings. Needs root; the lab is
// verify's own namespaces, removed when it ends. Usage: node bench/verify.mjs [parallel...]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const settings = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['2'];
console.log('verify examples/web-ftp-dual-homed.yaml (all TCP ports), nftables');
console.log('parallel  wall s   user s   sys s   probes   ok');
for (const parallel of settings) {
  const started = performance.now();
  const result = spawnSync(
    'bash',
    [
      '-c',
      `TIMEFORMAT='%U %S'; { time node bin/portwarden.js verify examples/web-ftp-dual-homed.yaml --parallel ${parallel} --json > /tmp/pw-bench-verify.json; } 2>&1`,
    ],
    { cwd: ROOT, encoding: 'utf8', timeout: 600_000 },
  );
  const wall = (performance.now() - started) / 1000;
  const [user = '?', sys = '?'] = result.stdout.trim().split(/\s+/);
  let probes = '?';
  let ok = '?';
  try {
    const json = JSON.parse(spawnSync('cat', ['/tmp/pw-bench-verify.json'], { encoding: 'utf8' }).stdout);
    probes = String(json.probes);
    ok = String(json.ok);
  } catch {
    // reported as ?
  }
  console.log(
    `${parallel.padEnd(9)} ${wall.toFixed(1).padStart(6)}  ${user.padStart(7)}  ${sys.padStart(6)}  ${probes.padStart(7)}   ${ok}`,
  );
}
process.exit(0);
