import dgram from 'node:dgram';
import { payloadFor } from './udp-payloads.ts';
import { settleOnce } from '../system/settle.ts';

export type UdpState = 'open' | 'closed' | 'open|filtered';

export interface UdpPortResult {
  protocol: 'udp';
  port: number;
  state: UdpState;
  /** nmap's reasons: udp-response, port-unreach, no-response. */
  reason: string;
  service?: string;
  banner?: string;
}

/** What one probe saw. */
export type UdpOutcome = { kind: 'reply'; data: Buffer } | { kind: 'unreachable' } | { kind: 'silence' };

/** Sends one datagram from a connected socket; an ICMP port unreachable comes back as ECONNREFUSED. */
export type UdpProber = (
  address: string,
  port: number,
  payload: Buffer,
  timeoutMs: number,
) => Promise<UdpOutcome>;

export const udpProbe: UdpProber = (address, port, payload, timeoutMs) => {
  const socket = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
  const silence = (): UdpOutcome => ({ kind: 'silence' });
  return settleOnce<UdpOutcome>(
    { timeoutMs, onTimeout: silence, cleanup: () => socket.close() },
    (finish) => {
      socket.on('message', (data) => finish({ kind: 'reply', data }));
      socket.on('error', (error: NodeJS.ErrnoException) =>
        finish(error.code === 'ECONNREFUSED' ? { kind: 'unreachable' } : { kind: 'silence' }),
      );
      socket.connect(port, address, () =>
        socket.send(payload, (error) => error && finish({ kind: 'silence' })),
      );
    },
  );
};

export interface UdpScanOptions {
  /** Wait for an answer this long (ms). Default 1000. */
  timeoutMs?: number;
  /** Extra tries for ports that stay silent once the ICMP budget is known to be there. Default 1. */
  retries?: number;
  /** Probes in flight during the first, fast pass. Default 32. */
  concurrency?: number;
  /**
   * The target's ICMP error budget: Linux sends one ICMP error per second per peer after a burst of
   * 6 (net.ipv4.icmp_ratelimit=1000, the inet_peer token bucket). Silent ports are re-probed only
   * as fast as this allows, so a closed port is never mistaken for a filtered one.
   */
  icmpPerSecond?: number;
  icmpBurst?: number;
  /** Give up re-probing after this long (ms); remaining silent ports stay open|filtered. */
  deadlineMs?: number;
  signal?: AbortSignal;
  probe?: UdpProber;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  onResult?: (result: UdpPortResult) => void;
}

function resultOf(port: number, outcome: UdpOutcome): UdpPortResult | null {
  if (outcome.kind === 'unreachable')
    return { protocol: 'udp', port, state: 'closed', reason: 'port-unreach' };
  if (outcome.kind === 'reply') {
    const id = port * 7919;
    const parsed = payloadFor(port).parse(outcome.data, id);
    return {
      protocol: 'udp',
      port,
      state: 'open',
      reason: 'udp-response',
      ...(parsed?.service ? { service: parsed.service } : {}),
      ...(parsed?.banner ? { banner: parsed.banner } : {}),
    };
  }
  return null;
}

/**
 * UDP scan of one host. A fast first pass sends each port its protocol's payload; replies are open,
 * ICMP port unreachable is closed. A Linux target answers only ~1 unreachable per second after a
 * burst of 6, so ports that stayed silent are probed again in batches no larger than the ICMP budget
 * the target has had time to refill: silence then really means open|filtered.
 */
export async function scanUdp(
  address: string,
  ports: readonly number[],
  options: UdpScanOptions = {},
): Promise<UdpPortResult[]> {
  const probe = options.probe ?? udpProbe;
  const timeoutMs = options.timeoutMs ?? 1000;
  const now = options.now ?? (() => Date.now());
  const results = new Map<number, UdpPortResult>();
  const scan: UdpScan = {
    options,
    now,
    sleep: options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms))),
    perSecond: options.icmpPerSecond ?? 1,
    burst: options.icmpBurst ?? 6,
    deadline: now() + (options.deadlineMs ?? 120_000),
    send: (port) => probe(address, port, payloadFor(port).build(port * 7919), timeoutMs),
    record: (r) => {
      results.set(r.port, r);
      options.onResult?.(r);
    },
  };
  const first = await firstPass(scan, ports);
  let silent = first.silent.sort((a, b) => a - b);
  // Pass 2+: re-probe silent ports within the ICMP budget. The first pass may have drained it.
  const bucket: IcmpBucket = { tokens: first.unreachables > 0 ? 0 : scan.burst, refilledAt: now() };
  for (let round = 0; round <= (options.retries ?? 1) && silent.length > 0; round++) {
    silent = await reprobe(scan, silent, bucket);
  }
  for (const port of silent)
    scan.record({ protocol: 'udp', port, state: 'open|filtered', reason: 'no-response' });
  return [...results.values()].sort((a, b) => a.port - b.port);
}

/** What every pass of one host's UDP scan shares. */
interface UdpScan {
  options: UdpScanOptions;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  perSecond: number;
  burst: number;
  /** Re-probing stops at this time. */
  deadline: number;
  send: (port: number) => Promise<UdpOutcome>;
  record: (result: UdpPortResult) => void;
}

/** The tokens the target's ICMP rate limiter is believed to hold, and when they were last counted. */
interface IcmpBucket {
  tokens: number;
  refilledAt: number;
}

/** Pass 1: everything, fast. ICMP errors are budgeted: count the unreachables that drained the bucket. */
async function firstPass(
  scan: UdpScan,
  ports: readonly number[],
): Promise<{ silent: number[]; unreachables: number }> {
  const silent: number[] = [];
  let unreachables = 0;
  const queue = [...ports];
  const workers = Array.from({ length: Math.min(scan.options.concurrency ?? 32, queue.length) }, async () => {
    for (let port = queue.shift(); port !== undefined; port = queue.shift()) {
      if (scan.options.signal?.aborted) return;
      const outcome = await scan.send(port);
      const result = resultOf(port, outcome);
      if (result) {
        if (result.state === 'closed') unreachables++;
        scan.record(result);
      } else silent.push(port);
    }
  });
  await Promise.all(workers);
  return { silent, unreachables };
}

/** One round over the silent ports in batches the bucket allows; returns the ports still silent. */
async function reprobe(scan: UdpScan, ports: readonly number[], bucket: IcmpBucket): Promise<number[]> {
  const silent = [...ports];
  const stillSilent: number[] = [];
  while (silent.length > 0) {
    if (scan.options.signal?.aborted || scan.now() > scan.deadline) {
      stillSilent.push(...silent.splice(0));
      break;
    }
    const elapsed = (scan.now() - bucket.refilledAt) / 1000;
    bucket.tokens = Math.min(scan.burst, bucket.tokens + elapsed * scan.perSecond);
    bucket.refilledAt = scan.now();
    if (bucket.tokens < 1) {
      await scan.sleep(Math.ceil(((1 - bucket.tokens) / scan.perSecond) * 1000));
      continue;
    }
    const batch = silent.splice(0, Math.floor(bucket.tokens));
    const outcomes = await Promise.all(batch.map((port) => scan.send(port)));
    batch.forEach((port, i) => {
      const outcome = outcomes[i] ?? { kind: 'silence' };
      const result = resultOf(port, outcome);
      if (result) {
        if (result.state === 'closed') bucket.tokens -= 1;
        scan.record(result);
      } else stillSilent.push(port);
    });
  }
  return stillSilent;
}
