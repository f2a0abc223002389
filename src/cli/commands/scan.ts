import { readFileSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import { Option, type Command } from 'commander';
import type { TargetSpec } from '../../scan/targets.ts';
import { PortwardenError } from '../../errors.ts';
import { numberOption } from '../options.ts';
import { toJson, type CliContext } from '../context.ts';
import { readInputFile, writeOutputFiles, type OutputFile } from '../files.ts';
import { VERSION } from '../version.ts';

interface ScanOptions {
  ports?: string;
  top?: string;
  inputList?: string;
  exclude?: string;
  excludeFile?: string;
  timing: string;
  retries?: string;
  icmpBudget?: string;
  minParallelism?: string;
  timeout?: string;
  concurrency?: string;
  rate?: string;
  resolveAll?: boolean;
  yes?: boolean;
  json?: boolean;
  showAll?: boolean;
  xml?: string;
  normal?: string;
  allFormats?: string;
  udp?: boolean;
  banners?: boolean;
  queue?: string;
  shardSize?: string;
  shardTimeout?: string;
}

/** Above this many addresses a scan needs --yes: nobody scans a /8 by accident. */
export const CONFIRM_OVER = 65_536n;

/** nmap's spellings accepted by `portwarden scan` and what they become (empty: accepted, nothing to do). */
export const NMAP_SPELLINGS: Readonly<Record<string, readonly string[]>> = {
  '-oX': ['--xml'],
  '-oN': ['--normal'],
  '-oA': ['--all-formats'],
  '-iL': ['--input-list'],
  '-sU': ['--udp'],
  '-sV': ['--banners'],
  '-sT': [],
  '-Pn': [],
  '-n': [],
  '-p-': ['-p', '-'],
  '--max-retries': ['--retries'],
  '--max-rate': ['--rate'],
  '--max-parallelism': ['--concurrency'],
  '--top-ports': ['--top'],
  '--excludefile': ['--exclude-file'],
};

/** Rewrites nmap's spellings (-oX, -iL, -p-, -sU, ...) to portwarden's options when the verb is scan. */
export function normalizeScanArgs(argv: readonly string[]): string[] {
  if (!argv.includes('scan')) return [...argv];
  return argv.flatMap((arg) => NMAP_SPELLINGS[arg] ?? [arg]);
}

function integer(name: string, value: string | undefined, min: number, max: number): number | undefined {
  return value === undefined ? undefined : numberOption(name, value, { min, max, integer: true });
}

function readList(path: string, what: string): string {
  return readInputFile(path, { what, hint: 'give a file of targets, one per line (- for stdin)' });
}

function fdLimit(): number {
  try {
    const match = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return match?.[1] ? Number(match[1]) : 1024;
  } catch {
    return 1024;
  }
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

async function resolveName(name: string): Promise<string[]> {
  const results = await lookup(name, { all: true, verbatim: true });
  return results.map((r) => r.address);
}

async function scanAction(ctx: CliContext, targetArgs: string[], options: ScanOptions): Promise<void> {
  const { parseTarget, countTarget, parseTargetList, streamTargets } = await import('../../scan/targets.ts');
  const { scanTcpParallel: scanHere } = await import('../../scan/parallel.ts');
  // --queue: the same scan, its shards done by scan-worker processes
  const scanTcpParallel =
    options.queue === undefined
      ? scanHere
      : await (await import('./scan-queue.ts')).queuedScanner(ctx, options);
  const { parsePortSpec } = await import('../../catalog/port-spec.ts');
  const { curatedCatalog } = await import('../../catalog/curated.ts');
  const { iteratePorts, portSetFromRanges, formatPortSet } = await import('../../catalog/port-set.ts');
  const report = await import('../../scan/report.ts');

  const texts = [
    ...targetArgs,
    ...(options.inputList ? parseTargetList(readList(options.inputList, 'target list')) : []),
  ];
  if (texts.length === 0) {
    throw new PortwardenError('TARGET_EMPTY', 'no targets given', {
      hint: 'name what to scan, e.g. `portwarden scan 127.0.0.1 -p 1-1024`',
    });
  }
  const specs: TargetSpec[] = texts.map(parseTarget);
  const exclude = [
    ...(options.exclude ? options.exclude.split(',').filter(Boolean) : []),
    ...(options.excludeFile ? parseTargetList(readList(options.excludeFile, 'exclude list')) : []),
  ].map(parseTarget);
  const total = specs.reduce((n, s) => n + countTarget(s), 0n);
  if (total > CONFIRM_OVER && !options.yes) {
    throw new PortwardenError('TARGET_TOO_MANY', `the targets cover ${total} addresses`, {
      hint: 'scan only networks you own; add --yes if you really mean it',
    });
  }

  // -sU alone makes bare port numbers UDP, as in nmap; T:/U: prefixes choose per item.
  const udpOnly = options.udp === true;
  let ports: number[];
  let udpPorts: number[] = [];
  if (options.top !== undefined) {
    const n = integer('--top', options.top, 1, 65535) ?? 100;
    ports = udpOnly ? [] : curatedCatalog().top.tcp.slice(0, n);
    udpPorts = udpOnly ? curatedCatalog().top.udp.slice(0, n) : [];
  } else if (options.ports !== undefined) {
    const set = parsePortSpec(options.ports, { defaultProtocols: [udpOnly ? 'udp' : 'tcp'] });
    ports = [...iteratePorts(set, 'tcp')];
    udpPorts = [...iteratePorts(set, 'udp')];
  } else if (udpOnly) {
    ports = [];
    udpPorts = [...curatedCatalog().top.udp];
  } else {
    // Default: the well-known range plus every curated service above it.
    const curated = curatedCatalog().services.flatMap((s) =>
      s.ports.filter((r) => r.protocol === 'tcp' && r.to - r.from < 1024),
    );
    ports = [...iteratePorts(portSetFromRanges([{ protocol: 'tcp', from: 1, to: 1023 }, ...curated]), 'tcp')];
  }
  const listText = (list: number[], protocol: 'tcp' | 'udp'): string =>
    formatPortSet(portSetFromRanges(list.map((p) => ({ protocol, from: p, to: p })))).replace(/^[TU]:/, '');
  const portText = [
    ports.length > 0 ? `T:${listText(ports, 'tcp')}` : '',
    udpPorts.length > 0 ? `U:${listText(udpPorts, 'udp')}` : '',
  ]
    .filter(Boolean)
    .join(',');

  const controller = new AbortController();
  const onInterrupt = (): void => controller.abort();
  process.once('SIGINT', onInterrupt);
  const startedAt = Date.now();
  let lastDraw = 0;
  const progress = ctx.progress
    ? (done: number, all: number): void => {
        const t = Date.now();
        if (t - lastDraw < 100 && done < all) return;
        lastDraw = t;
        const fraction = all === 0 ? 1 : done / all;
        const eta = fraction > 0 ? ((t - startedAt) / fraction - (t - startedAt)) / 1000 : 0;
        const bar = '#'.repeat(Math.round(fraction * 30)).padEnd(30, '.');
        ctx.io.stderr.write(
          `\r[${bar}] ${(fraction * 100).toFixed(0).padStart(3)}% ${done}/${all} ETA ${eta.toFixed(0)}s `,
        );
      }
    : undefined;
  let hosts;
  const retries = integer('--retries', options.retries, 0, 50);
  const timeoutMs = integer('--timeout', options.timeout, 1, 600_000);
  const icmpBudget = integer('--icmp-budget', options.icmpBudget, 1, 10_000_000);
  try {
    const timing = integer('-T', options.timing.replace(/^T/, ''), 0, 5) ?? 4;
    const concurrency = integer('--concurrency', options.concurrency, 1, 100_000);
    const minParallel = integer('--min-parallelism', options.minParallelism, 1, 100_000);
    const rate = integer('--rate', options.rate, 1, 10_000_000);
    hosts =
      ports.length === 0
        ? []
        : await scanTcpParallel(
            streamTargets(specs, {
              exclude,
              resolve: resolveName,
              ...(options.resolveAll ? { resolveAll: true } : {}),
            }),
            {
              ports,
              template: timing,
              fdLimit: fdLimit(),
              signal: controller.signal,
              ...(retries !== undefined ? { retries } : {}),
              ...(timeoutMs !== undefined ? { timeoutMs } : {}),
              ...(concurrency !== undefined ? { concurrency } : {}),
              ...(minParallel !== undefined ? { minParallel } : {}),
              ...(rate !== undefined ? { rate } : {}),
              ...(progress ? { onProgress: progress } : {}),
            },
          );
  } finally {
    process.removeListener('SIGINT', onInterrupt);
    if (ctx.progress) ctx.io.stderr.write('\r\u001b[K');
  }
  if (udpPorts.length > 0 && !controller.signal.aborted) {
    const { scanUdp } = await import('../../scan/udp.ts');
    const targetsUdp =
      ports.length > 0
        ? hosts.map((h) => ({ address: h.address, hostname: h.hostname }))
        : await collect(
            streamTargets(specs, {
              exclude,
              resolve: resolveName,
              ...(options.resolveAll ? { resolveAll: true } : {}),
            }),
          );
    for (const target of targetsUdp) {
      const udp = await scanUdp(target.address, udpPorts, {
        signal: controller.signal,
        ...(retries !== undefined ? { retries } : {}),
        ...(timeoutMs !== undefined ? { timeoutMs } : {}),
        // a target known to answer every ICMP error at once (the verify lab turns the limit off)
        ...(icmpBudget !== undefined ? { icmpPerSecond: icmpBudget, icmpBurst: icmpBudget } : {}),
      });
      const host = hosts.find((h) => h.address === target.address);
      if (host) host.ports.push(...udp);
      else
        hosts.push({
          address: target.address,
          hostname: target.hostname,
          ports: udp,
          startedAt,
          endedAt: Date.now(),
          timing: { srttMs: null, rttvarMs: 0, timeoutMs: 1000 },
        });
    }
  }
  if (options.banners && !controller.signal.aborted) {
    const { detectService } = await import('../../scan/service-detect.ts');
    const jobs = hosts.flatMap((h) =>
      h.ports.filter((p) => p.protocol === 'tcp' && p.state === 'open').map((p) => ({ host: h, port: p })),
    );
    const workers = Array.from({ length: Math.min(16, jobs.length) }, async () => {
      for (let job = jobs.shift(); job; job = jobs.shift()) {
        const info = await detectService(job.host.address, job.port.port, { signal: controller.signal });
        if (!info) continue;
        Object.assign(
          job.port,
          { service: info.name },
          info.banner ? { banner: info.banner } : {},
          info.product ? { product: info.product } : {},
          info.version ? { version: info.version } : {},
          info.extraInfo ? { extraInfo: info.extraInfo } : {},
          info.tunnel ? { tunnel: info.tunnel } : {},
          info.tls ? { tls: info.tls } : {},
        );
      }
    });
    await Promise.all(workers);
  }
  if (hosts.length === 0) {
    throw new PortwardenError('TARGET_EMPTY', 'every target was excluded', {
      hint: 'check --exclude / --exclude-file',
    });
  }
  const summary = {
    args: ['portwarden', 'scan', ...process.argv.slice(3)].join(' '),
    startedAt,
    endedAt: Date.now(),
    version: VERSION,
    ports: portText,
    portCount: ports.length + udpPorts.length,
    protocols: [
      ...(ports.length > 0
        ? [{ protocol: 'tcp' as const, count: ports.length, services: listText(ports, 'tcp') }]
        : []),
      ...(udpPorts.length > 0
        ? [{ protocol: 'udp' as const, count: udpPorts.length, services: listText(udpPorts, 'udp') }]
        : []),
    ],
    interrupted: controller.signal.aborted,
  };
  const outputs: OutputFile[] = [];
  const xml = (path: string): number => outputs.push({ path, content: report.renderScanXml(hosts, summary) });
  const text = (path: string): number =>
    outputs.push({ path, content: `${report.renderScanText(hosts, summary)}\n` });
  if (options.xml) xml(options.xml);
  if (options.normal) text(options.normal);
  if (options.allFormats) {
    xml(`${options.allFormats}.xml`);
    outputs.push({
      path: `${options.allFormats}.json`,
      content: `${JSON.stringify(report.renderScanJson(hosts, summary), null, 2)}\n`,
    });
    text(`${options.allFormats}.txt`);
  }
  writeOutputFiles(outputs);
  ctx.out(
    options.json
      ? toJson(report.renderScanJson(hosts, summary, options.showAll === true))
      : report.renderScanText(hosts, summary),
  );
  if (controller.signal.aborted) ctx.exitCode = 130;
}

export function registerScan(program: Command, ctx: CliContext): void {
  program
    .command('scan')
    .description("TCP connect scan of hosts you own: the attacker's view, nmap-style (-p, -T4, -oX, -iL)")
    .argument('[targets...]', 'addresses, CIDR blocks (v4/v6), octet ranges (198.51.100.1-20), hostnames')
    .option('-p, --ports <spec>', 'ports: 22,80,1000-2000, -p- for all, names (ssh,http)')
    .option('--top <n>', 'the n most commonly exposed TCP ports from the catalog (also --top-ports)')
    .option('--input-list <file>', 'targets from a file, - for stdin (also -iL)')
    .option('--exclude <targets>', 'comma-separated targets to skip')
    .option('--exclude-file <file>', 'targets to skip, from a file')
    .option('-T, --timing <0-5>', 'timing template: 0 paranoid .. 3 normal, 4 aggressive, 5 insane', '4')
    .option('--retries <n>', 'retransmissions of an unanswered probe (also --max-retries)')
    .option('--timeout <ms>', 'fixed per-probe timeout instead of the adaptive one')
    .option('--concurrency <n>', 'cap on probes in flight (also --max-parallelism)')
    .option('--min-parallelism <n>', 'probes kept in flight at least, even when nothing answers')
    .option('--rate <n>', 'cap on probes per second (also --max-rate)')
    .option('--resolve-all', 'scan every address a hostname resolves to, not only the first')
    .option('--yes', `allow scans of more than ${CONFIRM_OVER} addresses`)
    .option('--xml <file>', 'also write nmap-compatible XML (also -oX)')
    .option('--normal <file>', 'also write the text report (also -oN)')
    .option('--all-formats <base>', 'write BASE.xml, BASE.json and BASE.txt (also -oA)')
    .option('--udp', 'UDP scan (-sU)')
    .option('--banners', 'service detection (-sV)')
    .option('--json', 'machine-readable output (schema in README)')
    .addOption(
      new Option('--icmp-budget <n>', 'ICMP errors per second the target sends (UDP; default 1)').hideHelp(),
    )
    .option('--show-all', 'with --json: list every port instead of counting the common states in extraPorts')
    .option(
      '--queue <url>',
      'share the scan with `portwarden scan-worker` processes through this PostgreSQL queue',
    )
    .option('--shard-size <n>', 'with --queue: addresses per shard', '16')
    .option(
      '--shard-timeout <seconds>',
      'with --queue: a shard not done by then goes to another worker',
      '300',
    )
    .action((targets: string[], options: ScanOptions) => scanAction(ctx, targets, options));
}
