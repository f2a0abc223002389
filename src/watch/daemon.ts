import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Socket } from '../inventory/types.ts';
import type { Policy } from '../policy/types.ts';
import type { AlertSink } from './alerts.ts';
import { diffListeners, listenersOf, type WatchEvent } from './events.ts';
import { KnockDeduper, parseKnock, ScanDetector } from './knocks.ts';
import type { WatchStore } from './store.ts';

export interface WatchOptions {
  store: WatchStore;
  /** Reads the current sockets (the live inventory; injected for tests). */
  sample: () => Promise<Socket[]>;
  intervalMs: number;
  /** A snapshot of all listeners for the history chart this often (default 5 min). */
  snapshotEveryMs?: number;
  /** Rows older than this are deleted (default 30 days). */
  retentionMs?: number;
  policy?: Policy;
  sinks: readonly AlertSink[];
  /** Where the knock log comes from: 'auto', 'journal', 'kmsg', 'none', or a file to follow. */
  kernelLog?: string;
  scanThreshold?: number;
  scanWindowMs?: number;
  /** Stop after this many samples (tests, benchmarks). */
  maxSamples?: number;
  signal: AbortSignal;
  onSample?: (info: { samples: number; listeners: number; events: number; ms: number }) => void;
  onError?: (error: Error) => void;
}

/** The command whose output is the kernel log, from now on. */
function kernelLogCommand(source: string): [string, string[]] | null {
  if (source === 'none') return null;
  if (source === 'journal' || (source === 'auto' && existsSync('/run/systemd/journal/socket')))
    return ['journalctl', ['-k', '-f', '-n', '0', '-o', 'cat']];
  if (source === 'kmsg' || source === 'auto') return ['dmesg', ['--follow-new', '--notime']];
  return ['tail', ['-F', '-n', '0', source]];
}

/**
 * The watch loop: samples the inventory every interval, records the differences with the listener set
 * in one transaction, alerts, snapshots, prunes; and follows the kernel log for knocks and port scans.
 * Resolves when `signal` aborts (SIGTERM) or after `maxSamples`, with queued alerts flushed.
 */
export async function runWatch(options: WatchOptions): Promise<{ samples: number }> {
  const { store } = options;
  const emit = (event: WatchEvent): void => {
    for (const sink of options.sinks) sink.send(event);
  };
  let reader: ChildProcess | null = null;
  const command = kernelLogCommand(options.kernelLog ?? 'auto');
  if (command) {
    const detector = new ScanDetector(options.scanThreshold, options.scanWindowMs);
    const dedupe = new KnockDeduper();
    reader = spawn(command[0], command[1], { stdio: ['ignore', 'pipe', 'ignore'] });
    reader.on('error', (error) => options.onError?.(new Error(`knock log: ${error.message}`)));
    if (reader.stdout) {
      createInterface({ input: reader.stdout }).on('line', (line) => {
        const knock = parseKnock(line, Date.now());
        if (!knock || !dedupe.fresh(knock)) return;
        store.recordKnock(knock);
        const scan = detector.add(knock);
        if (scan) {
          store.recordEvent(scan);
          emit(scan);
        }
      });
    }
  }
  let previous = store.lastListeners();
  const baseline = !store.hasBaseline();
  let samples = 0;
  let lastSnapshot = 0;
  let lastPrune = 0;
  // One abort listener per wait, removed when the wait ends: days of samples must not pile them up.
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        options.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      options.signal.addEventListener('abort', done, { once: true });
    });
  try {
    while (!options.signal.aborted) {
      const started = Date.now();
      try {
        const current = listenersOf(await options.sample());
        // The first sample of a new database is the baseline: recorded, not alerted.
        const events =
          samples === 0 && baseline ? [] : diffListeners(previous, current, started, options.policy);
        store.recordSample(events, current);
        for (const event of events) emit(event);
        previous = current;
        if (started - lastSnapshot >= (options.snapshotEveryMs ?? 300_000)) {
          store.snapshot(started, current);
          lastSnapshot = started;
        }
        if (started - lastPrune >= 3_600_000) {
          store.prune(started - (options.retentionMs ?? 30 * 86_400_000));
          lastPrune = started;
        }
        options.onSample?.({
          samples: samples + 1,
          listeners: current.size,
          events: events.length,
          ms: Date.now() - started,
        });
      } catch (error) {
        options.onError?.(error as Error);
      }
      samples++;
      if (options.maxSamples !== undefined && samples >= options.maxSamples) break;
      await sleep(Math.max(0, options.intervalMs - (Date.now() - started)));
    }
  } finally {
    reader?.kill('SIGTERM');
    await Promise.all(options.sinks.map((s) => s.flush(5000)));
  }
  return { samples };
}
