import type { Connector, ProbeOutcome } from './tcp.ts';
import { defaultConnector } from './tcp-fast.ts';
import { CongestionWindow, RateLimiter, RttEstimator, TEMPLATES, type TimingTemplate } from './timing.ts';

/** nmap's state words for a TCP connect scan. */
export type TcpState = 'open' | 'closed' | 'filtered';

export interface PortResult {
  protocol: 'tcp' | 'udp';
  port: number;
  state: TcpState | 'open|filtered';
  /** nmap's reason: syn-ack, conn-refused, no-response, host-unreach, udp-response, port-unreach, ... */
  reason: string;
  /** What answered, when a probe could tell (UDP payload replies, -sV). */
  service?: string;
  banner?: string;
  product?: string;
  version?: string;
  extraInfo?: string;
  tunnel?: 'ssl';
  tls?: { version: string; subject: string; notAfter: string; selfSigned: boolean };
}

export interface HostResult {
  address: string;
  hostname: string | null;
  ports: PortResult[];
  startedAt: number;
  endedAt: number;
  timing: { srttMs: number | null; rttvarMs: number; timeoutMs: number };
}

export interface ScanTcpOptions {
  ports: readonly number[];
  /** -T0..-T5; default 4 (aggressive, the usual choice for local networks). */
  template?: number;
  retries?: number;
  /** Cap on probes in flight (besides the congestion window and the fd limit). */
  concurrency?: number;
  /** Probes per second across the scan. */
  rate?: number;
  /** Fixed per-probe timeout in ms instead of the adaptive one. */
  timeoutMs?: number;
  /** Probes kept in flight at least (nmap's --min-parallelism), for targets known to drop nothing. */
  minParallel?: number;
  /** Hosts scanned at the same time. */
  hostGroup?: number;
  /** File descriptors this process may open (soft RLIMIT_NOFILE); probes stay below it. */
  fdLimit?: number;
  signal?: AbortSignal;
  connect?: Connector;
  /** Called after every finished port with the totals so far. */
  onProgress?: (done: number, total: number) => void;
  now?: () => number;
}

interface Probe {
  port: number;
  attempt: number;
}

/** FIFO of probes with O(1) take (Array#shift is O(n): quadratic over 65,535 ports). */
class ProbeQueue {
  private head = 0;
  private readonly urgent: Probe[] = [];

  constructor(private items: Probe[]) {}

  get length(): number {
    return this.items.length - this.head + this.urgent.length;
  }

  push(probe: Probe): void {
    this.items.push(probe);
  }

  /** Goes before everything else (a probe that never left because of EMFILE). */
  retryFirst(probe: Probe): void {
    this.urgent.push(probe);
  }

  shift(): Probe | undefined {
    const urgent = this.urgent.pop();
    if (urgent) return urgent;
    const probe = this.items[this.head];
    if (probe === undefined) return undefined;
    this.head++;
    if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return probe;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
    this.urgent.length = 0;
  }
}

/** Shared across hosts: the global in-flight limit and its back-off after EMFILE. */
class Budget {
  inFlight = 0;
  constructor(public limit: number) {}
}

function templateOf(options: ScanTcpOptions): TimingTemplate {
  const base = TEMPLATES[options.template ?? 4] ?? TEMPLATES[4];
  if (!base) throw new Error('timing templates missing');
  return {
    ...base,
    ...(options.retries !== undefined ? { retries: options.retries } : {}),
    ...(options.concurrency !== undefined ? { maxParallel: options.concurrency } : {}),
    ...(options.rate !== undefined ? { rate: options.rate } : {}),
    ...(options.timeoutMs !== undefined
      ? {
          initialTimeoutMs: options.timeoutMs,
          minTimeoutMs: options.timeoutMs,
          maxTimeoutMs: options.timeoutMs,
        }
      : {}),
  };
}

function stateOf(outcome: ProbeOutcome): { state: TcpState; reason: string } | null {
  switch (outcome.kind) {
    case 'open':
      return { state: 'open', reason: 'syn-ack' };
    case 'closed':
      return { state: 'closed', reason: outcome.reason };
    case 'unreachable':
      return { state: 'filtered', reason: outcome.reason };
    default:
      return null;
  }
}

/** One host's scan while it runs: its probe queue, RTT estimate, congestion window and results. */
class HostScan {
  readonly results = new Map<number, PortResult>();
  readonly rtt: RttEstimator;
  private readonly connect: Connector;
  private readonly now: () => number;
  private readonly window: CongestionWindow;
  private readonly queue: ProbeQueue;
  private inFlight = 0;
  private waking = false;
  /** The limiter's slot was reserved by the delay a timer waited out: the next probe goes at once. */
  private reserved = false;
  private done: () => void = () => undefined;

  constructor(
    private readonly address: string,
    private readonly options: ScanTcpOptions,
    private readonly template: TimingTemplate,
    private readonly budget: Budget,
    private readonly limiter: RateLimiter,
    private readonly progress: { done: number; total: number },
  ) {
    this.connect = options.connect ?? defaultConnector;
    this.now = options.now ?? (() => performance.now());
    this.rtt = new RttEstimator(template);
    this.window = new CongestionWindow(template.initialWindow, template.maxParallel, options.minParallel);
    this.queue = new ProbeQueue(options.ports.map((port) => ({ port, attempt: 0 })));
  }

  /** Resolves when every port has a state (or the scan was aborted and nothing is in flight). */
  run(): Promise<void> {
    return new Promise((resolve) => {
      this.done = resolve;
      this.pump();
    });
  }

  /** Sends probes while the window, the shared budget and the rate allow. */
  private pump(): void {
    const { queue, budget } = this;
    if (this.options.signal?.aborted) queue.clear();
    while (queue.length > 0 && this.inFlight < this.window.size && budget.inFlight < budget.limit) {
      // a timer will pump again; asking the limiter now would reserve a slot nobody uses
      if (this.waking) return;
      // delay() reserves the next slot: after waiting for it, the probe goes without asking again
      const delay = this.reserved ? 0 : this.limiter.delay(this.now());
      this.reserved = false;
      if (delay > 0) {
        this.wakeAfter(delay, true);
        return;
      }
      const probe = queue.shift();
      if (!probe) break;
      this.launch(probe);
    }
    if (queue.length === 0 && this.inFlight === 0) this.done();
    else if (this.inFlight === 0 && !this.waking && queue.length > 0) {
      // The global budget is held by other hosts: look again shortly.
      this.wakeAfter(5);
    }
  }

  private wakeAfter(ms: number, reserved = false): void {
    if (this.waking) return;
    this.waking = true;
    setTimeout(() => {
      this.waking = false;
      this.reserved = reserved;
      this.pump();
    }, ms);
  }

  private launch(probe: Probe): void {
    this.inFlight++;
    this.budget.inFlight++;
    void this.connect(this.address, probe.port, this.rtt.timeout()).then(
      (outcome) => this.settle(probe, outcome),
      () => this.settle(probe, { kind: 'timeout' }),
    );
  }

  private settle(probe: Probe, outcome: ProbeOutcome): void {
    this.inFlight--;
    this.budget.inFlight--;
    if (outcome.kind === 'resource') {
      // Out of sockets or ports: never read as closed; retry the probe with fewer in flight.
      this.budget.limit = Math.max(8, Math.floor(this.budget.limit * 0.8));
      this.queue.retryFirst(probe);
    } else if (outcome.kind === 'self-connect') {
      this.queue.push(probe); // try again: the next attempt gets another source port
    } else if (outcome.kind === 'timeout') {
      // Silence is what a dropping firewall answers; it is loss only if a retransmission gets an
      // answer (handled below), so it lets the window grow like an answer does.
      this.window.onAnswer();
      if (probe.attempt < this.template.retries)
        this.queue.push({ port: probe.port, attempt: probe.attempt + 1 });
      else this.finishPort(probe.port, { state: 'filtered', reason: 'no-response' });
    } else {
      this.rtt.sample(outcome.rttMs);
      this.window.onAnswer();
      if (probe.attempt > 0) this.window.onLoss(); // the first attempt was really lost on the way
      const state = stateOf(outcome);
      if (state) this.finishPort(probe.port, state);
    }
    this.pump();
  }

  private finishPort(port: number, state: { state: TcpState; reason: string }): void {
    this.results.set(port, { protocol: 'tcp', port, ...state });
    this.progress.done++;
    this.options.onProgress?.(this.progress.done, this.progress.total);
  }
}

async function scanHost(
  target: { address: string; hostname: string | null },
  options: ScanTcpOptions,
  template: TimingTemplate,
  budget: Budget,
  limiter: RateLimiter,
  progress: { done: number; total: number },
): Promise<HostResult> {
  const scan = new HostScan(target.address, options, template, budget, limiter, progress);
  const startedAt = Date.now();
  await scan.run();
  const { rtt } = scan;
  return {
    address: target.address,
    hostname: target.hostname,
    ports: [...scan.results.values()].sort((a, b) => a.port - b.port),
    startedAt,
    endedAt: Date.now(),
    timing: { srttMs: rtt.smoothed, rttvarMs: rtt.variance, timeoutMs: rtt.timeout() },
  };
}

/**
 * TCP connect scan (no raw sockets, works unprivileged). States as nmap defines them: open (the
 * handshake completed), closed (RST: ECONNREFUSED), filtered (no answer after retries, or an ICMP
 * unreachable). Hosts are scanned in groups; each has its own RTT estimate and congestion window;
 * all share one in-flight budget below the file-descriptor limit.
 */
export async function scanTcp(
  targets:
    | AsyncIterable<{ address: string; hostname: string | null }>
    | Iterable<{ address: string; hostname: string | null }>,
  options: ScanTcpOptions,
): Promise<HostResult[]> {
  const template = templateOf(options);
  // Every refused connect() creates an Error; capturing 65,535 stack traces costs ~0.8 s.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return await scanAll(targets, options, template);
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
}

async function scanAll(
  targets:
    | AsyncIterable<{ address: string; hostname: string | null }>
    | Iterable<{ address: string; hostname: string | null }>,
  options: ScanTcpOptions,
  template: TimingTemplate,
): Promise<HostResult[]> {
  const budget = new Budget(Math.max(8, Math.min(template.maxParallel, (options.fdLimit ?? 1024) - 64)));
  const limiter = new RateLimiter(template.rate);
  const group = Math.max(1, options.hostGroup ?? 8);
  const hosts: HostResult[] = [];
  const running = new Set<Promise<void>>();
  const progress = { done: 0, total: 0 };
  for await (const target of targets) {
    if (options.signal?.aborted) break;
    progress.total += options.ports.length;
    const task: Promise<void> = scanHost(target, options, template, budget, limiter, progress).then((r) => {
      hosts.push(r);
      running.delete(task);
    });
    running.add(task);
    if (running.size >= group) await Promise.race(running);
  }
  await Promise.all(running);
  return hosts;
}

/** The soft RLIMIT_NOFILE of this process, from /proc/self/limits text ("Max open files"). */
export function parseFdLimit(limitsText: string): number | null {
  const match = /^Max open files\s+(\d+|unlimited)/m.exec(limitsText);
  if (!match?.[1]) return null;
  return match[1] === 'unlimited' ? 1 << 20 : Number(match[1]);
}
