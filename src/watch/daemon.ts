import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { ReachOf } from '../audit/reachability.ts';
import type { Socket } from '../inventory/types.ts';
import type { Policy } from '../policy/types.ts';
import type { AlertSink } from './alerts.ts';
import { listenersOf, type Listener } from '../inventory/listeners.ts';
import { diffListeners, type WatchEvent } from './events.ts';
import { KnockDeduper, parseKnock, ScanDetector } from './knocks.ts';
import { Recorder } from './recorder.ts';
import { describeStorageError, unusableDatabase, type WatchStore } from './store.ts';
import { pause } from '../system/settle.ts';

export interface WatchOptions {
  store: WatchStore;
  /** Reads the current sockets (the live inventory; injected for tests). */
  sample: () => Promise<Socket[]>;
  /**
   * Whether a peer gets through the loaded firewall to each of those sockets (audit's evaluator, the
   * ruleset read at each sample); without it every listener beyond loopback is `unknown`.
   */
  reach?: (sockets: readonly Socket[]) => Promise<ReachOf>;
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

/**
 * A stop (SIGTERM) ends within 5 s, as README promises: 4 s for queued alerts, the rest for the sample
 * in flight and closing the database. What a sink cannot deliver by then is dropped and counted.
 */
const FLUSH_AT_STOP_MS = 4000;

/** The command whose output is the kernel log, from now on. */
function kernelLogCommand(source: string): [string, string[]] | null {
  if (source === 'none') return null;
  if (source === 'journal' || (source === 'auto' && existsSync('/run/systemd/journal/socket')))
    return ['journalctl', ['-k', '-f', '-n', '0', '-o', 'cat']];
  if (source === 'kmsg' || source === 'auto') return ['dmesg', ['--follow-new', '--notime']];
  return ['tail', ['-F', '-n', '0', source]];
}

/** Follows the kernel log: knocks are stored, and a port scan is stored and alerted. */
function followKernelLog(
  options: WatchOptions,
  recorder: Recorder,
  emit: (event: WatchEvent) => void,
): ChildProcess | null {
  const command = kernelLogCommand(options.kernelLog ?? 'auto');
  if (!command) return null;
  const detector = new ScanDetector(options.scanThreshold, options.scanWindowMs);
  const dedupe = new KnockDeduper();
  const reader = spawn(command[0], command[1], { stdio: ['ignore', 'pipe', 'ignore'] });
  reader.on('error', (error) => options.onError?.(new Error(`knock log: ${error.message}`)));
  if (reader.stdout) {
    createInterface({ input: reader.stdout }).on('line', (line) => {
      const knock = parseKnock(line, Date.now());
      if (!knock || !dedupe.fresh(knock)) return;
      recorder.knock(knock);
      const scan = detector.add(knock);
      if (scan) {
        recorder.event(scan);
        emit(scan);
      }
    });
  }
  return reader;
}

/**
 * Storage failures become alerts, on every sink, and a line through onError: which file, why, and
 * where the alerts still go.
 */
function storageRecorder(options: WatchOptions, emit: (event: WatchEvent) => void): Recorder {
  const { store } = options;
  const sinks = options.sinks.map((s) => s.name).join(', ') || 'no sink';
  const alert = (kind: 'storage-failed' | 'storage-recovered', message: string): WatchEvent => {
    const event: WatchEvent = { at: new Date().toISOString(), kind, key: `storage|${store.path}`, message };
    emit(event);
    options.onError?.(new Error(`${message} (alerted on: ${sinks})`));
    return event;
  };
  const recorder: Recorder = new Recorder(store, {
    onFailed: ({ reason }) => {
      const message = `cannot write the watch database "${store.path}": ${reason}; alerts still go out (to ${sinks}), and events wait in memory (up to 10000) until it can be written`;
      // stored with the events it held back, once the database takes writes again
      recorder.keep(alert('storage-failed', message));
    },
    onRecovered: ({ stored, dropped, since }) => {
      const lost = dropped > 0 ? `; ${dropped} beyond the memory limit were lost` : '';
      const message = `the watch database "${store.path}" takes writes again: ${stored} events and knocks held since ${new Date(since).toISOString()} are stored${lost}`;
      recorder.event(alert('storage-recovered', message));
    },
  });
  return recorder;
}

/** The listener set to diff against, and whether the database has a baseline; exit 3 if unreadable. */
function readStart(store: WatchStore): { previous: Map<string, Listener>; baseline: boolean } {
  try {
    return { previous: store.lastListeners(), baseline: store.hasBaseline() };
  } catch (error) {
    throw unusableDatabase(store.path, describeStorageError(error), error);
  }
}

/**
 * The watch loop: samples the inventory every interval, records the differences with the listener set
 * in one transaction, alerts, snapshots, prunes; and follows the kernel log for knocks and port scans.
 * Alerts go out whether or not the database takes the write (see Recorder). Resolves when `signal`
 * aborts (SIGTERM) or after `maxSamples`, with queued alerts flushed for at most 4 s.
 */
export async function runWatch(options: WatchOptions): Promise<{ samples: number }> {
  const emit = (event: WatchEvent): void => {
    for (const sink of options.sinks) sink.send(event);
  };
  const start = readStart(options.store);
  const loop: WatchLoop = { ...start, samples: 0, lastSnapshot: 0, lastPrune: 0 };
  // the stop's 5 s run from SIGTERM: a sample still in flight then eats into the alerts' 4 s
  let stopAt: number | null = null;
  options.signal.addEventListener('abort', () => (stopAt = Date.now()), { once: true });
  const recorder = storageRecorder(options, emit);
  const reader = followKernelLog(options, recorder, emit);
  try {
    while (!options.signal.aborted) {
      const started = Date.now();
      try {
        await sampleOnce(options, recorder, emit, loop, started);
      } catch (error) {
        options.onError?.(error instanceof Error ? error : new Error(String(error)));
      }
      loop.samples++;
      if (options.maxSamples !== undefined && loop.samples >= options.maxSamples) break;
      await pause(Math.max(0, options.intervalMs - (Date.now() - started)), options.signal);
    }
  } finally {
    await stopWatch(options, reader, recorder, stopAt);
  }
  return { samples: loop.samples };
}

/** What the watch loop carries from one sample to the next. */
interface WatchLoop {
  /** The listener set to diff against. */
  previous: Map<string, Listener>;
  /** Whether the database had a baseline when the watch started. */
  baseline: boolean;
  samples: number;
  lastSnapshot: number;
  lastPrune: number;
}

/** One sample: diff against the previous listener set, record, alert, and keep the database tidy. */
async function sampleOnce(
  options: WatchOptions,
  recorder: Recorder,
  emit: (event: WatchEvent) => void,
  loop: WatchLoop,
  started: number,
): Promise<void> {
  const sockets = await options.sample();
  const current = listenersOf(sockets, options.reach ? await options.reach(sockets) : undefined);
  // The first sample of a new database is the baseline: recorded, not alerted.
  const events =
    loop.samples === 0 && !loop.baseline
      ? []
      : diffListeners(loop.previous, current, new Date(started).toISOString(), options.policy);
  recorder.sample(events, current);
  for (const event of events) emit(event);
  loop.previous = current;
  maintainStore(options, recorder, loop, started, current);
  options.onSample?.({
    samples: loop.samples + 1,
    listeners: current.size,
    events: events.length,
    ms: Date.now() - started,
  });
}

/** A snapshot for the history chart every snapshotEveryMs; old rows pruned once an hour. */
function maintainStore(
  options: WatchOptions,
  recorder: Recorder,
  loop: WatchLoop,
  started: number,
  current: Map<string, Listener>,
): void {
  const { store } = options;
  if (started - loop.lastSnapshot >= (options.snapshotEveryMs ?? 300_000)) {
    if (recorder.maintain(() => store.snapshot(started, current))) loop.lastSnapshot = started;
  }
  if (started - loop.lastPrune >= 3_600_000) {
    const before = started - (options.retentionMs ?? 30 * 86_400_000);
    if (recorder.maintain(() => store.prune(before))) loop.lastPrune = started;
  }
}

/**
 * Stops the kernel log reader, says what was never stored, and gives the sinks what is left of the
 * 4 s for alerts, counted from the abort (`stopAt`, null when the loop ended by itself).
 */
async function stopWatch(
  options: WatchOptions,
  reader: ChildProcess | null,
  recorder: Recorder,
  stopAt: number | null,
): Promise<void> {
  reader?.kill('SIGTERM');
  const unstored = recorder.close();
  if (unstored > 0)
    options.onError?.(
      new Error(
        `stopping with ${unstored} events and knocks never stored in "${options.store.path}" (they were alerted)`,
      ),
    );
  const left = FLUSH_AT_STOP_MS - (stopAt === null ? 0 : Date.now() - stopAt);
  await Promise.all(options.sinks.map((s) => s.flush(Math.max(100, left))));
}
