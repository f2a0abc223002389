import { hostname } from 'node:os';
import type { Command } from 'commander';
import type { HostResult, ScanTcpOptions } from '../../scan/engine.ts';

type Target = { address: string; hostname: string | null };
import { PortwardenError } from '../../errors.ts';
import { toJson, type CliContext } from '../context.ts';
import { numberOption } from '../options.ts';

/** What each shard's worker scans with: the caller's timing, not its sockets or callbacks. */
function shardScanOptions(scan: ScanTcpOptions) {
  return {
    ...(scan.template !== undefined ? { template: scan.template } : {}),
    ...(scan.retries !== undefined ? { retries: scan.retries } : {}),
    ...(scan.timeoutMs !== undefined ? { timeoutMs: scan.timeoutMs } : {}),
    ...(scan.concurrency !== undefined ? { concurrency: scan.concurrency } : {}),
    ...(scan.minParallel !== undefined ? { minParallel: scan.minParallel } : {}),
    ...(scan.rate !== undefined ? { rate: scan.rate } : {}),
  };
}

/**
 * scan --queue postgres://…: a drop-in for scanTcpParallel (same arguments, same answer) whose shards
 * are done by scan-worker processes.
 */
export async function queuedScanner(
  ctx: CliContext,
  options: {
    queue?: string;
    shardSize?: string;
    shardTimeout?: string;
    udp?: boolean;
    banners?: boolean;
    ports?: string;
  },
): Promise<
  (targets: AsyncIterable<Target> | Iterable<Target>, scan: ScanTcpOptions) => Promise<HostResult[]>
> {
  const url = options.queue ?? '';
  if (options.udp || options.banners || /(^|,)\s*U:/i.test(options.ports ?? ''))
    throw new PortwardenError('FEATURE_UNSUPPORTED', '--queue shares TCP connect scans only', {
      hint: 'leave out --udp/--banners/U: ports, or scan without --queue',
    });
  const { isPostgresUrl } = await import('../../fleet/db.ts');
  if (!isPostgresUrl(url))
    throw new PortwardenError('OPTION_INVALID', `--queue "${url}" is not a postgres:// URL`, {
      hint: 'e.g. --queue postgres://portwarden@db.example/portwarden',
    });
  const shardSize = numberOption('--shard-size', options.shardSize ?? '16', {
    min: 1,
    max: 65_536,
    integer: true,
  });
  const shardTimeoutSeconds = numberOption('--shard-timeout', options.shardTimeout ?? '300', {
    min: 1,
    max: 86_400,
    integer: true,
  });
  const { openQueue, runDistributedScan } = await import('../../fleet/distributed-scan.ts');
  return async (targetStream, scan) => {
    const targets: Target[] = [];
    for await (const t of targetStream) targets.push(t);
    const boss = await openQueue(url, { supervise: true, shardTimeoutSeconds });
    try {
      const result = await runDistributedScan(boss, {
        targets,
        ports: scan.ports,
        scan: shardScanOptions(scan),
        shardSize,
        shardTimeoutSeconds,
        ...(scan.signal ? { signal: scan.signal } : {}),
        ...(ctx.progress
          ? { onProgress: (done: number, all: number) => ctx.io.stderr.write(`\rshards ${done}/${all} `) }
          : {}),
      });
      ctx.err(
        `scan: ${result.shards} shards done by ${result.workers.length} worker(s): ${result.workers.join(', ')}`,
      );
      return result.hosts;
    } finally {
      await boss.stop({ graceful: false, wait: true });
    }
  };
}

interface WorkerCliOptions {
  queue: string;
  name?: string;
  json?: boolean;
}

async function workerAction(ctx: CliContext, options: WorkerCliOptions): Promise<void> {
  const { isPostgresUrl } = await import('../../fleet/db.ts');
  if (!isPostgresUrl(options.queue))
    throw new PortwardenError('OPTION_INVALID', `--queue "${options.queue}" is not a postgres:// URL`, {
      hint: 'e.g. --queue postgres://portwarden@db.example/portwarden',
    });
  const { openQueue, runScanWorker } = await import('../../fleet/distributed-scan.ts');
  const { readFileSync } = await import('node:fs');
  const { parseFdLimit } = await import('../../scan/engine.ts');
  let fdLimit = 1024;
  try {
    fdLimit = parseFdLimit(readFileSync('/proc/self/limits', 'utf8')) ?? 1024;
  } catch {
    // not Linux: the default soft limit
  }
  const boss = await openQueue(options.queue, { supervise: false });
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  const name = options.name ?? `${hostname()}:${process.pid}`;
  if (options.json) ctx.out(toJson({ worker: name, ready: true }));
  else ctx.err(`scan-worker ${name}: waiting for shards`);
  try {
    await runScanWorker(boss, {
      name,
      fdLimit,
      signal: controller.signal,
      onShard: (s) =>
        options.json
          ? ctx.out(toJson({ worker: name, ...s }))
          : ctx.err(
              `scan-worker ${name}: shard ${s.index + 1} of ${s.run.slice(0, 8)} (${s.addresses} addresses) in ${s.ms} ms`,
            ),
    });
  } finally {
    process.removeListener('SIGTERM', stop);
    process.removeListener('SIGINT', stop);
    await boss.stop({ graceful: true, wait: true, timeout: 30_000 });
  }
}

export function registerScanWorker(program: Command, ctx: CliContext): void {
  program
    .command('scan-worker')
    .description(
      'take shards of `scan --queue` scans from the PostgreSQL queue and scan them (SIGTERM stops it)',
    )
    .requiredOption('--queue <url>', "the queue, postgres://… (the same as the scan's --queue)")
    .option('--name <name>', "this worker's name in the scan's summary (default host:pid)")
    .option('--json', 'one JSON line per shard done')
    .action((options: WorkerCliOptions) => workerAction(ctx, options));
}
