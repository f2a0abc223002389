import { parentPort } from 'node:worker_threads';
import { scanTcp, type ScanTcpOptions } from './engine.ts';

/** A scan worker: runs the connect engine on its share of the ports and posts the results back. */
export interface WorkerRequest {
  targets: { address: string; hostname: string | null }[];
  options: Omit<ScanTcpOptions, 'signal' | 'connect' | 'onProgress' | 'now'>;
}

export type WorkerMessage =
  { kind: 'progress'; done: number } | { kind: 'done'; hosts: Awaited<ReturnType<typeof scanTcp>> };

const port = parentPort;
if (port) {
  const controller = new AbortController();
  port.on('message', (message: WorkerRequest | 'abort') => {
    if (message === 'abort') {
      controller.abort();
      return;
    }
    let reported = 0;
    void scanTcp(message.targets, {
      ...message.options,
      signal: controller.signal,
      onProgress: (done) => {
        if (done - reported >= 256) {
          port.postMessage({ kind: 'progress', done: done - reported } satisfies WorkerMessage);
          reported = done;
        }
      },
    }).then((hosts) => {
      const total = hosts.reduce((n, h) => n + h.ports.length, 0);
      if (total > reported)
        port.postMessage({ kind: 'progress', done: total - reported } satisfies WorkerMessage);
      port.postMessage({ kind: 'done', hosts } satisfies WorkerMessage);
    });
  });
}
