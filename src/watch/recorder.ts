import type { Listener } from '../inventory/listeners.ts';
import type { WatchEvent } from './events.ts';
import type { Knock } from './knocks.ts';
import { describeStorageError, type Batch } from './store.ts';

/**
 * Storage that cannot silence watch. A failed write (disk full, a damaged page, a read-only remount)
 * never throws into the daemon: what could not be stored waits in memory (bounded) and goes in with the
 * next write that succeeds, in the same transaction as the listener set, so a restart after recovery
 * still neither repeats nor loses an event. The caller hears once when an outage starts and once when
 * it ends.
 */

export interface StorageTarget {
  readonly path: string;
  record(batch: Batch): void;
}

export interface StorageOutage {
  /** The first error of the outage, in words. */
  reason: string;
  error: unknown;
}

export interface RecorderOptions {
  onFailed: (outage: StorageOutage) => void;
  onRecovered: (info: { stored: number; dropped: number; since: number }) => void;
  /** Events and knocks each kept in memory while storage fails; the oldest go beyond (default 10,000). */
  maxPending?: number;
  now?: () => number;
}

export class Recorder {
  private events: WatchEvent[] = [];
  private knocks: Knock[] = [];
  private listeners: ReadonlyMap<string, Listener> | undefined;
  private failingSince: number | null = null;
  private dropped = 0;

  constructor(
    private readonly store: StorageTarget,
    private readonly options: RecorderOptions,
  ) {}

  get failing(): boolean {
    return this.failingSince !== null;
  }

  /**
   * A last try at a stop; returns how many events and knocks are still not stored (lost with the
   * process).
   */
  close(): number {
    if (this.failing) this.flush();
    return this.events.length + this.knocks.length;
  }

  /** Records a sample's events with the listener set they lead to. */
  sample(events: readonly WatchEvent[], listeners: ReadonlyMap<string, Listener>): void {
    this.listeners = listeners;
    this.events.push(...events);
    this.flush();
  }

  event(event: WatchEvent): void {
    this.events.push(event);
    this.flush();
  }

  /** Keeps an event for the next write without writing now (an outage's own alert). */
  keep(event: WatchEvent): void {
    this.events.push(event);
  }

  knock(knock: Knock): void {
    this.knocks.push(knock);
    this.flush();
  }

  /**
   * Runs other storage work (snapshots, pruning) under the same outage tracking; returns whether it
   * succeeded. Skipped while storage is failing: the next sample retries first.
   */
  maintain(work: () => void): boolean {
    if (this.failing) return false;
    try {
      work();
      return true;
    } catch (error) {
      this.fail(error);
      return false;
    }
  }

  private flush(): void {
    this.trim();
    const stored = this.events.length + this.knocks.length;
    try {
      this.store.record({
        events: this.events,
        knocks: this.knocks,
        ...(this.listeners ? { listeners: this.listeners } : {}),
      });
    } catch (error) {
      this.fail(error);
      return;
    }
    this.events = [];
    this.knocks = [];
    if (this.failingSince !== null) {
      const info = { stored, dropped: this.dropped, since: this.failingSince };
      this.failingSince = null;
      this.dropped = 0;
      this.options.onRecovered(info);
    }
  }

  private fail(error: unknown): void {
    if (this.failingSince !== null) return;
    this.failingSince = (this.options.now ?? Date.now)();
    this.options.onFailed({ reason: describeStorageError(error), error });
  }

  private trim(): void {
    const max = this.options.maxPending ?? 10_000;
    for (const list of [this.events, this.knocks]) {
      if (list.length <= max) continue;
      this.dropped += list.length - max;
      list.splice(0, list.length - max);
    }
  }
}
