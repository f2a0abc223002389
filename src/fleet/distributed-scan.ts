import { randomUUID } from 'node:crypto';
import PgBoss from 'pg-boss';
import { scanTcpParallel } from '../scan/parallel.ts';
import type { HostResult, ScanTcpOptions } from '../scan/engine.ts';
import { PortwardenError } from '../errors.ts';

/**
 * Scans shared by several processes through a pg-boss queue in PostgreSQL. The coordinator splits the
 * targets into shards (a slice of the addresses, every port) and waits; `scan-worker` processes take
 * shards and return each shard's results as the job's output. A worker killed mid-shard leaves its job
 * active until the shard timeout; pg-boss's maintenance then puts it back (retry) for another worker.
 * Only a completed job's output is read, one per shard, so no port is lost or counted twice.
 */

export const SCAN_QUEUE = 'portwarden-scan-shard';

type Target = { address: string; hostname: string | null };

/** The probing options a shard carries: what changes the answer or the pace, never the sockets. */
export type ShardScanOptions = Pick<
  ScanTcpOptions,
  'template' | 'retries' | 'concurrency' | 'rate' | 'timeoutMs' | 'minParallel' | 'hostGroup'
>;

export interface ShardData {
  run: string;
  index: number;
  targets: Target[];
  ports: number[];
  options: ShardScanOptions;
}

export interface ShardOutput {
  hosts: HostResult[];
  worker: string;
}

/** Splits targets into shards of at most `size` addresses, in order (pure). */
export function splitShards<T>(targets: readonly T[], size: number): T[][] {
  const shards: T[][] = [];
  for (let i = 0; i < targets.length; i += size) shards.push(targets.slice(i, i + size));
  return shards;
}

export interface QueueOptions {
  /** How long a shard may stay with one worker before it is given to another (s). */
  shardTimeoutSeconds?: number;
  /** How often expired shards are looked for (s); the coordinator supervises. */
  maintenanceSeconds?: number;
}

/** Connects to the queue (pg-boss installs or upgrades its schema) and makes sure the queue exists. */
export async function openQueue(
  url: string,
  options: QueueOptions & { supervise: boolean },
): Promise<PgBoss> {
  const boss = new PgBoss({
    connectionString: url,
    max: 4,
    supervise: options.supervise,
    schedule: false,
    maintenanceIntervalSeconds: options.maintenanceSeconds ?? 2,
  });
  // pg-boss reports background failures as events; the next call fails with the same cause
  boss.on('error', () => undefined);
  try {
    await boss.start();
  } catch (error) {
    throw new PortwardenError('SOCKET_FAILED', `cannot open the scan queue: ${(error as Error).message}`, {
      hint: 'check the postgres:// URL of --queue: the server, the database and the user',
      cause: error,
    });
  }
  if (!(await boss.getQueue(SCAN_QUEUE))) await boss.createQueue(SCAN_QUEUE);
  return boss;
}

export interface DistributedScanOptions extends QueueOptions {
  targets: readonly Target[];
  ports: readonly number[];
  scan: ShardScanOptions;
  /** Addresses per shard (default 16). */
  shardSize?: number;
  signal?: AbortSignal;
  onProgress?: (doneShards: number, shards: number) => void;
  pollMs?: number;
}

/** Queues the shards and waits for every one; returns the hosts in target order. */
export async function runDistributedScan(
  boss: PgBoss,
  options: DistributedScanOptions,
): Promise<{ hosts: HostResult[]; shards: number; workers: string[] }> {
  const run = randomUUID();
  const shards = splitShards(options.targets, Math.max(1, options.shardSize ?? 16));
  const retryLimit = 10;
  const ids = await Promise.all(
    shards.map(async (targets, index) => {
      const data: ShardData = { run, index, targets, ports: [...options.ports], options: options.scan };
      const id = await boss.send(SCAN_QUEUE, data, {
        retryLimit,
        retryDelay: 1,
        expireInSeconds: options.shardTimeoutSeconds ?? 300,
      });
      if (id === null) throw new PortwardenError('INTERNAL', `the queue did not take shard ${index}`);
      return id;
    }),
  );
  const outputs = new Map<number, ShardOutput>();
  while (outputs.size < shards.length) {
    if (options.signal?.aborted) {
      await boss.cancel(SCAN_QUEUE, ids);
      break;
    }
    for (const [index, id] of ids.entries()) {
      if (outputs.has(index)) continue;
      const job = await boss.getJobById<ShardData>(SCAN_QUEUE, id);
      if (job?.state === 'completed') {
        outputs.set(index, job.output as ShardOutput);
        options.onProgress?.(outputs.size, shards.length);
      } else if (job?.state === 'failed' || job?.state === 'cancelled' || job === null)
        throw new PortwardenError(
          'TOOL_FAILED',
          `shard ${index + 1}/${shards.length} of the scan ${job?.state ?? 'vanished'} after ${job?.retryCount ?? 0} retries`,
          {
            hint: 'look at the scan-workers: each prints why a shard failed',
          },
        );
    }
    if (outputs.size < shards.length) await new Promise((r) => setTimeout(r, options.pollMs ?? 250));
  }
  const ordered = [...outputs.entries()].sort((a, b) => a[0] - b[0]).map(([, o]) => o);
  // a shard lists its hosts as they finish; the report lists them in target order
  const position = new Map(options.targets.map((t, i) => [t.address, i]));
  const at = (h: HostResult): number => position.get(h.address) ?? Number.MAX_SAFE_INTEGER;
  return {
    hosts: ordered.flatMap((o) => o.hosts).sort((a, b) => at(a) - at(b)),
    shards: shards.length,
    workers: [...new Set(ordered.map((o) => o.worker))],
  };
}

export interface ScanWorkerOptions {
  /** This worker's name in the results (host:pid by default). */
  name: string;
  fdLimit: number;
  signal: AbortSignal;
  onShard?: (shard: { run: string; index: number; addresses: number; ms: number }) => void;
  pollSeconds?: number;
}

/** Takes shards from the queue one at a time until the signal; then finishes the shard in hand. */
export async function runScanWorker(boss: PgBoss, options: ScanWorkerOptions): Promise<void> {
  let workerId: string | null = null;
  workerId = await boss.work<ShardData>(
    SCAN_QUEUE,
    { batchSize: 1, pollingIntervalSeconds: options.pollSeconds ?? 0.5 },
    async (jobs) => {
      const job = jobs[0];
      if (!job) return null;
      const started = Date.now();
      const { targets, ports, options: scan } = job.data;
      const hosts = await scanTcpParallel(targets, { ...scan, ports, fdLimit: options.fdLimit });
      options.onShard?.({
        run: job.data.run,
        index: job.data.index,
        addresses: targets.length,
        ms: Date.now() - started,
      });
      const output: ShardOutput = { hosts, worker: options.name };
      // a shard done: fetch the next at once instead of after the rest of the polling interval
      if (workerId !== null) boss.notifyWorker(workerId);
      return output;
    },
  );
  await new Promise<void>((resolve) => {
    if (options.signal.aborted) resolve();
    else options.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await boss.offWork(SCAN_QUEUE);
}
