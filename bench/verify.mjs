// verify's figures: wall time of the full dual-homed verify (2 zones, every TCP port in and out,
// IPv4 and IPv6, UDP, extra peers, routing, FTP), and the mutation detection table (mutants caught /
// mutants) idle and with both cores kept busy by a CPU hog. Needs root; every lab is verify's own
// namespaces, removed when it ends. Usage: node bench/verify.mjs [runs=3] [--no-mutants] [--sample N]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const runs = Number(args.find((a) => /^\d+$/.test(a)) ?? 3);
const sampleAt = args.indexOf('--sample');
const sample = sampleAt >= 0 ? Number(args[sampleAt + 1]) : 0;

console.log('portwarden verify examples/web-ftp-dual-homed.yaml (all TCP ports), nftables, 2 cores');
console.log('run  wall s   user s   sys s   probes   rounds  ok');
for (let run = 1; run <= runs; run++) {
  const started = performance.now();
  const result = spawnSync(
    'bash',
    [
      '-c',
      `TIMEFORMAT='%U %S'; { time node bin/portwarden.js verify examples/web-ftp-dual-homed.yaml --json > /tmp/pw-bench-verify.json; } 2>&1`,
    ],
    { cwd: ROOT, encoding: 'utf8', timeout: 600_000 },
  );
  const wall = (performance.now() - started) / 1000;
  const [user = '?', sys = '?'] = result.stdout.trim().split(/\s+/);
  let json = {};
  try {
    json = JSON.parse(spawnSync('cat', ['/tmp/pw-bench-verify.json'], { encoding: 'utf8' }).stdout);
  } catch {
    // reported as ?
  }
  console.log(
    `${String(run).padEnd(4)} ${wall.toFixed(1).padStart(6)}  ${user.padStart(7)}  ${sys.padStart(6)}  ${String(json.probes ?? '?').padStart(7)}  ${String(json.rounds ?? '?').padStart(6)}  ${json.ok ?? '?'}`,
  );
}

if (!args.includes('--no-mutants')) {
  // The mutation suite itself (test/verify/mutants.root.test.ts): every mutant of every example must be
  // reported with exactly its difference. Run once idle and once with a CPU hog on both cores.
  console.log(
    '\nmutation detection (every example, every mutant; verify must report exactly the difference)',
  );
  console.log('load        caught/mutants  wall s');
  for (const [label, hog] of [
    ['idle', '0'],
    ['2 CPU hogs', '1'],
  ]) {
    const started = performance.now();
    const env = { ...process.env, PORTWARDEN_MUTANT_HOG: hog, PORTWARDEN_MUTANTS: sample > 0 ? '' : 'all' };
    if (sample > 0) env.PORTWARDEN_MUTANT_SAMPLE = String(sample);
    const result = spawnSync(
      'npx',
      ['vitest', 'run', 'test/verify/mutants.root.test.ts', '-t', 'reports exactly', '--reporter', 'json'],
      { cwd: ROOT, encoding: 'utf8', env, timeout: 3_600_000, maxBuffer: 64 << 20 },
    );
    const wall = (performance.now() - started) / 1000;
    let caught = '?';
    let total = '?';
    try {
      const report = JSON.parse(result.stdout);
      const tests = report.testResults
        .flatMap((f) => f.assertionResults)
        .filter((t) => t.title.includes('reports exactly'));
      total = String(tests.length);
      caught = String(tests.filter((t) => t.status === 'passed').length);
      for (const t of tests.filter((x) => x.status !== 'passed')) console.log(`  missed: ${t.title}`);
    } catch {
      // reported as ?
    }
    console.log(`${label.padEnd(11)} ${`${caught}/${total}`.padStart(14)}  ${wall.toFixed(0).padStart(6)}`);
  }
}
process.exit(0);
