import { spawn } from 'node:child_process';
import type { WatchEvent } from './events.ts';

/** Where events go besides the database: stdout JSON lines, syslog/journald, a webhook. */
export interface AlertSink {
  send(event: WatchEvent): void;
  /** Waits (bounded) for queued deliveries, for a graceful stop. */
  flush(timeoutMs: number): Promise<void>;
}

export function stdoutSink(write: (line: string) => void): AlertSink {
  return {
    send: (event) => write(JSON.stringify(event)),
    flush: () => Promise.resolve(),
  };
}

/** syslog (and so journald) through logger(1): tag portwarden, facility auth, one line per event. */
export function syslogSink(): AlertSink {
  return {
    send: (event) => {
      const priority =
        event.kind === 'listener-closed' || event.kind === 'knock' ? 'auth.info' : 'auth.warning';
      const child = spawn(
        'logger',
        ['-t', 'portwarden', '-p', priority, '--', `${event.kind}: ${event.message}`],
        { stdio: 'ignore' },
      );
      child.on('error', () => undefined);
    },
    flush: () => Promise.resolve(),
  };
}

export interface WebhookOptions {
  url: string;
  /** Tries per event (default 5), with backoff doubling from `backoffMs` (default 500 ms). */
  tries?: number;
  backoffMs?: number;
  timeoutMs?: number;
  /** Events kept while the endpoint is down; the oldest are dropped beyond this (default 1000). */
  maxQueue?: number;
  onDrop?: (event: WatchEvent, why: string) => void;
}

/**
 * POSTs each event as JSON. Delivery runs beside sampling and never blocks it: a bounded queue, one
 * request at a time, retries with exponential backoff, and events dropped (and reported) only when the
 * queue overflows or every try failed.
 */
export function webhookSink(options: WebhookOptions): AlertSink {
  const queue: WatchEvent[] = [];
  let running: Promise<void> | null = null;
  const tries = options.tries ?? 5;
  const backoff = options.backoffMs ?? 500;
  const deliver = async (event: WatchEvent): Promise<void> => {
    for (let attempt = 0; attempt < tries; attempt++) {
      try {
        const response = await fetch(options.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'portwarden-watch' },
          body: JSON.stringify(event),
          signal: AbortSignal.timeout(options.timeoutMs ?? 5000),
        });
        if (response.ok) return;
      } catch {
        // connection refused, timeout: try again after the backoff
      }
      if (attempt < tries - 1) await new Promise((r) => setTimeout(r, backoff * 2 ** attempt));
    }
    options.onDrop?.(event, `webhook failed ${tries} times`);
  };
  const drain = async (): Promise<void> => {
    for (let event = queue.shift(); event; event = queue.shift()) await deliver(event);
    running = null;
  };
  return {
    send: (event) => {
      queue.push(event);
      const max = options.maxQueue ?? 1000;
      while (queue.length > max) {
        const dropped = queue.shift();
        if (dropped) options.onDrop?.(dropped, 'webhook queue full');
      }
      // started on the next turn of the event loop: send() itself never waits for the network
      running ??= new Promise<void>((resolve) => setImmediate(resolve)).then(drain);
    },
    flush: async (timeoutMs) => {
      if (running) await Promise.race([running, new Promise((r) => setTimeout(r, timeoutMs))]);
    },
  };
}
