import { spawn } from 'node:child_process';
import type { WatchEvent } from './events.ts';
import { pause } from '../system/settle.ts';

/** Where events go besides the database: stdout JSON lines, syslog/journald, a webhook. */
export interface AlertSink {
  /** Where the alerts go, for messages such as "alerted on stdout, webhook". */
  readonly name: string;
  send(event: WatchEvent): void;
  /**
   * For a graceful stop: waits at most `timeoutMs` for queued deliveries, then abandons what is left
   * (in-flight requests are aborted). The sink delivers nothing afterwards.
   */
  flush(timeoutMs: number): Promise<void>;
}

export function stdoutSink(write: (line: string) => void): AlertSink {
  return {
    name: 'stdout',
    send: (event) => write(JSON.stringify(event)),
    flush: () => Promise.resolve(),
  };
}

/** syslog (and so journald) through logger(1): tag portwarden, facility auth, one line per event. */
export function syslogSink(): AlertSink {
  return {
    name: 'syslog',
    send: (event) => {
      const quiet: readonly string[] = ['listener-closed', 'knock', 'storage-recovered'];
      const priority = quiet.includes(event.kind) ? 'auth.info' : 'auth.warning';
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
  /** At a stop: how many events were still queued or in flight when flush gave up on them. */
  onAbandon?: (count: number) => void;
}

/**
 * POSTs each event as JSON. Delivery runs beside sampling and never blocks it: a bounded queue, one
 * request at a time, retries with exponential backoff, and events dropped (and reported) only when the
 * queue overflows or every try failed. A stop aborts the request in flight: an endpoint that never
 * answers cannot hold the daemon past its flush timeout.
 */
export function webhookSink(options: WebhookOptions): AlertSink {
  const queue: WatchEvent[] = [];
  const stop = new AbortController();
  let running: Promise<void> | null = null;
  let inFlight = 0;
  const tries = options.tries ?? 5;
  const backoff = options.backoffMs ?? 500;
  const post = async (event: WatchEvent): Promise<boolean> => {
    try {
      const response = await fetch(options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'portwarden-watch' },
        body: JSON.stringify(event),
        signal: AbortSignal.any([stop.signal, AbortSignal.timeout(options.timeoutMs ?? 5000)]),
      });
      return response.ok;
    } catch {
      return false; // connection refused, timeout, stopped: the caller decides
    }
  };
  const deliver = async (event: WatchEvent): Promise<void> => {
    for (let attempt = 0; attempt < tries && !stop.signal.aborted; attempt++) {
      if (await post(event)) return;
      if (attempt < tries - 1) await pause(backoff * 2 ** attempt, stop.signal);
    }
    if (!stop.signal.aborted) options.onDrop?.(event, `webhook failed ${tries} times`);
  };
  const drain = async (): Promise<void> => {
    for (let event = queue.shift(); event && !stop.signal.aborted; event = queue.shift()) {
      inFlight = 1;
      await deliver(event);
      inFlight = 0;
    }
    running = null;
  };
  return {
    name: 'webhook',
    send: (event) => {
      if (stop.signal.aborted) return;
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
      const deadline = new AbortController();
      if (running) await Promise.race([running, pause(timeoutMs, deadline.signal)]);
      deadline.abort();
      const abandoned = queue.length + inFlight;
      queue.length = 0;
      stop.abort();
      await running;
      if (abandoned > 0) options.onAbandon?.(abandoned);
    },
  };
}
