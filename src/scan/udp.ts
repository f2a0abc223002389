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
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = options.now ?? (() => Date.now());
  const timeoutMs = options.timeoutMs ?? 1000;
  const perSecond = options.icmpPerSecond ?? 1;
  const burst = options.icmpBurst ?? 6;
  const start = now();
  const deadline = start + (options.deadlineMs ?? 120_000);
  const results = new Map<number, UdpPortResult>();
  const record = (r: UdpPortResult): void => {
    results.set(r.port, r);
    options.onResult?.(r);
  };
  const send = (port: number): Promise<UdpOutcome> =>
    probe(address, port, payloadFor(port).build(port * 7919), timeoutMs);

  // Pass 1: everything, fast. ICMP errors are budgeted: track when the bucket was last drained.
  let silent: number[] = [];
  let unreachables = 0;
  const queue = [...ports];
  const workers = Array.from({ length: Math.min(options.concurrency ?? 32, queue.length) }, async () => {
    for (let port = queue.shift(); port !== undefined; port = queue.shift()) {
      if (options.signal?.aborted) return;
      const outcome = await send(port);
      const result = resultOf(port, outcome);
      if (result) {
        if (result.state === 'closed') unreachables++;
        record(result);
      } else silent.push(port);
    }
  });
  await Promise.all(workers);
  silent.sort((a, b) => a - b);

  // Pass 2+: re-probe silent ports within the ICMP budget. The first pass may have drained it.
  let tokens = unreachables > 0 ? 0 : burst;
  let refilledAt = now();
  for (let round = 0; round <= (options.retries ?? 1) && silent.length > 0; round++) {
    const stillSilent: number[] = [];
    while (silent.length > 0) {
      if (options.signal?.aborted || now() > deadline) {
        stillSilent.push(...silent);
        silent = [];
        break;
      }
      const elapsed = (now() - refilledAt) / 1000;
      tokens = Math.min(burst, tokens + elapsed * perSecond);
      refilledAt = now();
      if (tokens < 1) {
        await sleep(Math.ceil(((1 - tokens) / perSecond) * 1000));
        continue;
      }
      const batch = silent.splice(0, Math.floor(tokens));
      const outcomes = await Promise.all(batch.map((port) => send(port)));
      batch.forEach((port, i) => {
        const outcome = outcomes[i] ?? { kind: 'silence' };
        const result = resultOf(port, outcome);
        if (result) {
          if (result.state === 'closed') tokens -= 1;
          record(result);
        } else stillSilent.push(port);
      });
    }
    silent = stillSilent;
  }
  for (const port of silent) record({ protocol: 'udp', port, state: 'open|filtered', reason: 'no-response' });
  return [...results.values()].sort((a, b) => a.port - b.port);
}
