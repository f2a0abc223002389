import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { scanTcp, type HostResult, type ScanTcpOptions } from './engine.ts';
import type { WorkerMessage, WorkerRequest } from './worker.ts';

type Target = { address: string; hostname: string | null };

/** Below this many probes per batch, starting workers costs more than it saves. */
const PARALLEL_FROM = 4096;

/** Whether worker threads can run here: the compiled worker must exist next to this module. */
function workerUrl(): URL | null {
  return import.meta.url.endsWith('.js') ? new URL('./worker.js', import.meta.url) : null;
}

function runWorker(
  url: URL,
  request: WorkerRequest,
  signal: AbortSignal | undefined,
  onDone: (n: number) => void,
): Promise<HostResult[]> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(url);
    const abort = (): void => worker.postMessage('abort');
    signal?.addEventListener('abort', abort, { once: true });
    worker.on('message', (message: WorkerMessage) => {
      if (message.kind === 'progress') onDone(message.done);
      else {
        signal?.removeEventListener('abort', abort);
        void worker.terminate();
        resolve(message.hosts);
      }
    });
    worker.once('error', reject);
    worker.postMessage(request);
  });
}

/** Probes finished and probes asked for so far, across batches. */
interface Progress {
  done: number;
  total: number;
}

/** One batch split by port between `workers` threads; one host list per worker. */
function scanInWorkers(
  url: URL,
  workers: number,
  batch: Target[],
  options: ScanTcpOptions,
  progress: Progress,
): Promise<HostResult[][]> {
  const shares = Array.from({ length: workers }, (_, w) =>
    options.ports.filter((_p, i) => i % workers === w),
  );
  const { signal, onProgress, connect: _connect, now: _now, ...plain } = options;
  return Promise.all(
    shares.map((ports) =>
      runWorker(
        url,
        {
          targets: batch,
          options: { ...plain, ports, fdLimit: Math.floor((options.fdLimit ?? 1024) / workers) },
        },
        signal,
        (n) => {
          progress.done += n;
          onProgress?.(progress.done, progress.total);
        },
      ),
    ),
  );
}

/** Each host's pieces from the workers as one result: all ports, the earliest start, the latest end. */
function mergeHosts(batch: readonly Target[], parts: readonly HostResult[][]): HostResult[] {
  const hosts: HostResult[] = [];
  for (const target of batch) {
    const pieces = parts
      .map((list) => list.find((h) => h.address === target.address))
      .filter((h): h is HostResult => h !== undefined);
    const first = pieces[0];
    if (!first) continue;
    hosts.push({
      ...first,
      ports: pieces.flatMap((h) => h.ports).sort((a, b) => a.port - b.port),
      startedAt: Math.min(...pieces.map((h) => h.startedAt)),
      endedAt: Math.max(...pieces.map((h) => h.endedAt)),
    });
  }
  return hosts;
}

/** One batch of hosts: in this thread when it is small, else across the workers. */
async function scanBatch(
  url: URL,
  workers: number,
  batch: Target[],
  options: ScanTcpOptions,
  progress: Progress,
): Promise<HostResult[]> {
  progress.total += batch.length * options.ports.length;
  if (batch.length * options.ports.length < PARALLEL_FROM)
    return scanTcp(batch, {
      ...options,
      onProgress: () => options.onProgress?.(++progress.done, progress.total),
    });
  return mergeHosts(batch, await scanInWorkers(url, workers, batch, options, progress));
}

/**
 * scanTcp across CPU cores: each batch of hosts is split by port between worker threads (each with
 * its own sockets, timing and share of the fd budget) and the results are merged per host. A
 * connect() costs a syscall plus a JS object either way; two cores halve the wall time.
 */
export async function scanTcpParallel(
  targets: AsyncIterable<Target> | Iterable<Target>,
  options: ScanTcpOptions & { workers?: number },
): Promise<HostResult[]> {
  const url = workerUrl();
  const workers = Math.max(1, Math.min(options.workers ?? availableParallelism(), 8));
  if (!url || workers < 2 || options.connect) return scanTcp(targets, options);
  const group = Math.max(1, options.hostGroup ?? 8);
  const hosts: HostResult[] = [];
  const progress: Progress = { done: 0, total: 0 };
  let batch: Target[] = [];
  for await (const target of targets) {
    if (options.signal?.aborted) break;
    batch.push(target);
    if (batch.length >= group) {
      hosts.push(...(await scanBatch(url, workers, batch, options, progress)));
      batch = [];
    }
  }
  if (batch.length > 0) hosts.push(...(await scanBatch(url, workers, batch, options, progress)));
  return hosts;
}
