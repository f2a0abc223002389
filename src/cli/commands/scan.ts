import { type Command } from 'commander';
import { CONFIRM_OVER } from '../../scan/limits.ts';
import type { ScanOptions, ScanResult } from '../../scan/scan.ts';
import { numberOption } from '../options.ts';
import { toJson, type CliContext } from '../context.ts';
import { readInputFile, writeOutputFiles, type OutputFile } from '../files.ts';
import { VERSION } from '../version.ts';

interface ScanFlags {
  ports?: string;
  top?: string;
  inputList?: string;
  exclude?: string;
  excludeFile?: string;
  timing: string;
  retries?: string;
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

export { CONFIRM_OVER };

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

/** The library's scan options from the command line; numbers are checked here, with the flag's name. */
async function scanOptions(flags: ScanFlags): Promise<ScanOptions> {
  const { parseTargetList } = await import('../../scan/targets.ts');
  const top = integer('--top', flags.top, 1, 65535);
  return {
    ...(flags.ports !== undefined ? { ports: flags.ports } : {}),
    ...(top !== undefined ? { top } : {}),
    udp: flags.udp === true,
    banners: flags.banners === true,
    exclude: [
      ...(flags.exclude ? flags.exclude.split(',').filter(Boolean) : []),
      ...(flags.excludeFile ? parseTargetList(readList(flags.excludeFile, 'exclude list')) : []),
    ],
    retries: integer('--retries', flags.retries, 0, 50),
    timeoutMs: integer('--timeout', flags.timeout, 1, 600_000),
    timing: integer('-T', flags.timing.replace(/^T/, ''), 0, 5) ?? 4,
    concurrency: integer('--concurrency', flags.concurrency, 1, 100_000),
    minParallel: integer('--min-parallelism', flags.minParallelism, 1, 100_000),
    rate: integer('--rate', flags.rate, 1, 10_000_000),
    resolveAll: flags.resolveAll === true,
    allowLarge: flags.yes === true,
    commandLine: ['portwarden', 'scan', ...process.argv.slice(3)].join(' '),
    version: VERSION,
  };
}

/** --queue: the same TCP scan, its shards done by `portwarden scan-worker` processes. */
async function queueOption(ctx: CliContext, flags: ScanFlags): Promise<Pick<ScanOptions, 'tcpScanner'>> {
  if (flags.queue === undefined) return {};
  const { queuedScanner } = await import('./scan-queue.ts');
  return { tcpScanner: await queuedScanner(ctx, flags) };
}

/** A progress bar with an ETA on stderr, drawn at most every 100 ms. */
function progressBar(ctx: CliContext): (done: number, all: number) => void {
  const startedAt = Date.now();
  let lastDraw = 0;
  return (done, all) => {
    const t = Date.now();
    if (t - lastDraw < 100 && done < all) return;
    lastDraw = t;
    const fraction = all === 0 ? 1 : done / all;
    const eta = fraction > 0 ? ((t - startedAt) / fraction - (t - startedAt)) / 1000 : 0;
    const bar = '#'.repeat(Math.round(fraction * 30)).padEnd(30, '.');
    ctx.io.stderr.write(
      `\r[${bar}] ${(fraction * 100).toFixed(0).padStart(3)}% ${done}/${all} ETA ${eta.toFixed(0)}s `,
    );
  };
}

/** Runs the library's scan with Ctrl-C stopping it (what was found so far is still reported). */
async function runScan(ctx: CliContext, targets: string[], options: ScanOptions): Promise<ScanResult> {
  const { scan } = await import('../../scan/scan.ts');
  const controller = new AbortController();
  const onInterrupt = (): void => controller.abort();
  process.once('SIGINT', onInterrupt);
  try {
    return await scan(targets, {
      ...options,
      signal: controller.signal,
      ...(ctx.progress ? { onProgress: progressBar(ctx) } : {}),
    });
  } finally {
    process.removeListener('SIGINT', onInterrupt);
    if (ctx.progress) ctx.io.stderr.write('\r\u001b[K');
  }
}

/** The -oX / -oN / -oA files. */
async function outputFiles(result: ScanResult, flags: ScanFlags): Promise<OutputFile[]> {
  const report = await import('../../scan/report.ts');
  const { hosts, summary } = result;
  const outputs: OutputFile[] = [];
  const xml = (path: string): number => outputs.push({ path, content: report.renderScanXml(hosts, summary) });
  const text = (path: string): number =>
    outputs.push({ path, content: `${report.renderScanText(hosts, summary)}\n` });
  if (flags.xml) xml(flags.xml);
  if (flags.normal) text(flags.normal);
  if (flags.allFormats) {
    xml(`${flags.allFormats}.xml`);
    outputs.push({
      path: `${flags.allFormats}.json`,
      content: `${JSON.stringify(report.renderScanJson(hosts, summary), null, 2)}\n`,
    });
    text(`${flags.allFormats}.txt`);
  }
  return outputs;
}

async function scanAction(ctx: CliContext, targetArgs: string[], flags: ScanFlags): Promise<void> {
  const { parseTargetList } = await import('../../scan/targets.ts');
  const targets = [
    ...targetArgs,
    ...(flags.inputList ? parseTargetList(readList(flags.inputList, 'target list')) : []),
  ];
  const options = { ...(await scanOptions(flags)), ...(await queueOption(ctx, flags)) };
  const result = await runScan(ctx, targets, options);
  writeOutputFiles(await outputFiles(result, flags));
  const report = await import('../../scan/report.ts');
  ctx.out(
    flags.json
      ? toJson(report.renderScanJson(result.hosts, result.summary, flags.showAll === true))
      : report.renderScanText(result.hosts, result.summary),
  );
  if (result.summary.interrupted) ctx.exitCode = 130;
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
    .action((targets: string[], flags: ScanFlags) => scanAction(ctx, targets, flags));
}
