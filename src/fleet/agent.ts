import { randomUUID } from 'node:crypto';
import { reachabilityFrom } from '../audit/reachability.ts';
import type { AuditData, AuditReport } from '../audit/run.ts';
import type { Socket } from '../inventory/types.ts';
import { listenersOf, type Listener } from '../inventory/listeners.ts';
import { diffListeners } from '../watch/events.ts';
import type { Outbox } from './outbox.ts';
import {
  fleetListenerKey,
  type FleetEvent,
  type FleetListener,
  type FleetSnapshot,
  type IngestBatch,
} from './schema.ts';

/**
 * The agent: audits this machine, queues snapshots (and, with watch, listener events) in its outbox,
 * and uploads the outbox to the server whenever it answers. It only ever sends: the server's answer is
 * read for its status and counts, never for anything to do, so the server cannot change this machine.
 */

export const AGENT_BATCH_ITEMS = 50;
export const AGENT_BATCH_BYTES = 1024 * 1024;
const UPLOAD_TIMEOUT_MS = 15_000;

function fleetListener(l: Listener): FleetListener {
  const p = l.processes[0];
  return {
    protocol: l.protocol,
    localAddress: l.localAddress,
    localPort: l.localPort,
    netns: l.netns,
    exposure: l.exposure,
    reachable: l.reachable,
    service: l.service,
    risk: l.risk,
    process: p?.name ?? null,
    pid: p?.pid ?? null,
    user: p?.user ?? null,
    unit: p?.unit ?? null,
    container: p?.container ?? null,
  };
}

/** A snapshot of one audit (pure): the listeners and the findings, with a fresh idempotency key. */
export function snapshotFromAudit(
  data: AuditData,
  report: AuditReport,
  options: { watched?: boolean; key?: string } = {},
): FleetSnapshot {
  return {
    key: options.key ?? randomUUID(),
    ...(options.watched ? { watched: true } : {}),
    takenAt: report.generatedAt,
    method: report.method,
    policy: report.policy?.name ?? null,
    // bound to and reachable through the firewall, as `ports` and the dashboard say it
    listeners: [
      ...listenersOf(
        data.sockets,
        reachabilityFrom(report.exposure, { method: report.method, reason: data.rulesetReason }),
      ).values(),
    ].map(fleetListener),
    findings: report.findings.map((f) => ({
      id: f.id,
      rule: f.rule,
      severity: f.severity,
      message: f.message,
    })),
  };
}

/** Watch events between two samples, each with its own idempotency key. */
export function eventsBetween(
  previous: ReadonlyMap<string, Listener>,
  current: ReadonlyMap<string, Listener>,
  at: Date,
): FleetEvent[] {
  return diffListeners(previous, current, at.toISOString()).map((e) => ({
    key: randomUUID(),
    at: e.at,
    kind: e.kind,
    listenerKey: e.listener ? fleetListenerKey(fleetListener(e.listener)) : e.key,
    message: e.message,
    ...(e.listener ? { listener: fleetListener(e.listener) } : {}),
  }));
}

export type UploadOutcome =
  { ok: true; sent: number } | { ok: false; offline: boolean; status: number | null; message: string };

export interface UploadTarget {
  server: string;
  token: string;
  version: string;
  fetch?: typeof fetch;
}

async function postBatch(target: UploadTarget, batch: IngestBatch): Promise<UploadOutcome> {
  const url = new URL('/api/fleet/ingest', target.server);
  let response: Response;
  try {
    response = await (target.fetch ?? fetch)(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${target.token}` },
      body: JSON.stringify(batch),
      signal: AbortSignal.timeout(UPLOAD_TIMEOUT_MS),
      redirect: 'error',
    });
  } catch (error) {
    const cause = (error as Error & { cause?: { message?: string } }).cause?.message;
    return { ok: false, offline: true, status: null, message: cause ?? (error as Error).message };
  }
  const text = await response.text().catch(() => '');
  if (response.ok) return { ok: true, sent: batch.snapshots.length + batch.events.length };
  let message = text.slice(0, 300);
  try {
    message = (JSON.parse(text) as { error?: string }).error ?? message;
  } catch {
    // not JSON: the start of the body says enough
  }
  // 5xx and 429: the server is there but cannot take it now; try again later like offline
  const offline = response.status >= 500 || response.status === 429;
  return { ok: false, offline, status: response.status, message };
}

/**
 * Sends the outbox, oldest first, batch by batch, deleting each batch once acknowledged. Stops at the
 * first failure (the rest waits for the next try).
 */
export async function uploadOutbox(outbox: Outbox, target: UploadTarget): Promise<UploadOutcome> {
  let sent = 0;
  let limit = AGENT_BATCH_ITEMS;
  for (;;) {
    const items = outbox.peek(limit, AGENT_BATCH_BYTES);
    if (items.length === 0) return { ok: true, sent };
    const batch: IngestBatch = { agentVersion: target.version, snapshots: [], events: [] };
    for (const i of items) {
      if (i.kind === 'snapshot') batch.snapshots.push(i.item);
      else batch.events.push(i.item);
    }
    const outcome = await postBatch(target, batch);
    // too large for the server or a proxy: half as many for the rest of this upload (one item too
    // large stays in the outbox, and is reported)
    if (!outcome.ok && outcome.status === 413 && items.length > 1) {
      limit = Math.ceil(items.length / 2);
      continue;
    }
    if (!outcome.ok) return outcome;
    outbox.remove(items.map((i) => i.seq));
    sent += outcome.sent;
  }
}

export interface AgentOptions extends UploadTarget {
  outbox: Outbox;
  /** One audit of this machine (readAuditData + auditFromData; injected for tests). */
  audit: () => Promise<{ data: AuditData; report: AuditReport }>;
  /** With watch: the current sockets, sampled every watchIntervalMs. */
  sample?: () => Promise<readonly Socket[]>;
  intervalMs: number;
  watchIntervalMs?: number;
  /** Stop after this many snapshots (the CLI's --once is 1). */
  maxSnapshots?: number;
  signal: AbortSignal;
  onUpload?: (outcome: UploadOutcome, pending: { snapshots: number; events: number }) => void;
  onError?: (error: Error) => void;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Audits, watches and uploads until the signal (or maxSnapshots); returns the last upload outcome. */
export async function runAgent(options: AgentOptions): Promise<UploadOutcome | null> {
  const tick = options.sample
    ? Math.min(options.intervalMs, options.watchIntervalMs ?? 2000)
    : options.intervalMs;
  let nextSnapshot = 0;
  let snapshots = 0;
  let previous: Map<string, Listener> | null = null;
  let last: UploadOutcome | null = null;
  while (!options.signal.aborted) {
    const now = Date.now();
    try {
      if (options.sample) {
        const current = listenersOf(await options.sample());
        if (previous) options.outbox.add([], eventsBetween(previous, current, new Date()));
        previous = current;
      }
      if (now >= nextSnapshot) {
        const { data, report } = await options.audit();
        options.outbox.add([snapshotFromAudit(data, report, { watched: options.sample !== undefined })], []);
        snapshots++;
        nextSnapshot = now + options.intervalMs;
      }
    } catch (error) {
      options.onError?.(error instanceof Error ? error : new Error(String(error)));
    }
    last = await uploadOutbox(options.outbox, options);
    options.onUpload?.(last, options.outbox.pending());
    if (options.maxSnapshots !== undefined && snapshots >= options.maxSnapshots) break;
    await sleep(tick - (Date.now() - now), options.signal);
  }
  return last;
}
