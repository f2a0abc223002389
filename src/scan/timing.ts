/**
 * Adaptive timing for the connect scanner, pure and clock-free: an RTT estimator (RFC 6298) that sets
 * each probe's timeout, and a congestion window that grows while answers come back and halves when
 * probes time out — the way nmap keeps fast links fast and lossy ones accurate.
 */

export interface TimingTemplate {
  /** Initial, minimum and maximum per-probe timeout in ms. */
  initialTimeoutMs: number;
  minTimeoutMs: number;
  maxTimeoutMs: number;
  /** Retransmissions of an unanswered probe. */
  retries: number;
  /** Upper bound of probes in flight (further capped by the file-descriptor limit). */
  maxParallel: number;
  /** Congestion window at the start. */
  initialWindow: number;
  /** Probes per second, 0 for no cap. */
  rate: number;
}

/** -T0 .. -T5, with nmap's spirit: T3 normal, T4 aggressive (the usual choice), T5 insane. */
export const TEMPLATES: readonly TimingTemplate[] = [
  {
    initialTimeoutMs: 5000,
    minTimeoutMs: 1000,
    maxTimeoutMs: 10000,
    retries: 10,
    maxParallel: 1,
    initialWindow: 1,
    rate: 1 / 300,
  },
  {
    initialTimeoutMs: 3000,
    minTimeoutMs: 500,
    maxTimeoutMs: 10000,
    retries: 10,
    maxParallel: 1,
    initialWindow: 1,
    rate: 1 / 15,
  },
  {
    initialTimeoutMs: 2000,
    minTimeoutMs: 300,
    maxTimeoutMs: 10000,
    retries: 10,
    maxParallel: 10,
    initialWindow: 1,
    rate: 2.5,
  },
  {
    initialTimeoutMs: 1000,
    minTimeoutMs: 100,
    maxTimeoutMs: 10000,
    retries: 2,
    maxParallel: 1024,
    initialWindow: 32,
    rate: 0,
  },
  {
    initialTimeoutMs: 500,
    minTimeoutMs: 100,
    maxTimeoutMs: 1250,
    retries: 2,
    maxParallel: 4096,
    initialWindow: 128,
    rate: 0,
  },
  {
    initialTimeoutMs: 250,
    minTimeoutMs: 50,
    maxTimeoutMs: 300,
    retries: 1,
    maxParallel: 8192,
    initialWindow: 512,
    rate: 0,
  },
];

/** RFC 6298 smoothed RTT and variance; `timeout()` is srtt + 4 * rttvar, clamped. */
export class RttEstimator {
  private srtt: number | null = null;
  private rttvar = 0;

  constructor(
    private readonly template: Pick<TimingTemplate, 'initialTimeoutMs' | 'minTimeoutMs' | 'maxTimeoutMs'>,
  ) {}

  /** Feeds one measured round trip (ms). */
  sample(rttMs: number): void {
    if (this.srtt === null) {
      this.srtt = rttMs;
      this.rttvar = rttMs / 2;
      return;
    }
    this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - rttMs);
    this.srtt = 0.875 * this.srtt + 0.125 * rttMs;
  }

  /** The timeout for the next probe. Until a sample arrives, the template's initial timeout. */
  timeout(): number {
    const { initialTimeoutMs, minTimeoutMs, maxTimeoutMs } = this.template;
    if (this.srtt === null) return initialTimeoutMs;
    return Math.min(maxTimeoutMs, Math.max(minTimeoutMs, Math.ceil(this.srtt + 4 * this.rttvar)));
  }

  get smoothed(): number | null {
    return this.srtt;
  }

  get variance(): number {
    return this.rttvar;
  }
}

/**
 * Probes allowed in flight: +1 per answer (slow start doubles below the threshold), halved on loss.
 * A timeout alone is not loss — a firewall that drops a port never answers it — so the scanner calls
 * onLoss() only when a retransmitted probe is answered: the first one was really lost.
 */
export class CongestionWindow {
  private window: number;
  private threshold: number;

  private readonly min: number;

  /** `min` is a floor the window never falls below (nmap's --min-parallelism). */
  constructor(
    initial: number,
    private readonly max: number,
    min = 1,
  ) {
    this.min = Math.max(1, Math.min(min, max));
    this.window = Math.max(this.min, Math.min(initial, max));
    this.threshold = max;
  }

  get size(): number {
    return Math.floor(this.window);
  }

  /** An answer (open or closed) came back. */
  onAnswer(): void {
    this.window = Math.min(
      this.max,
      this.window < this.threshold ? this.window + 1 : this.window + 1 / this.window,
    );
  }

  /** A probe was lost on the way (its retransmission was answered): back off. */
  onLoss(): void {
    this.threshold = Math.max(2, this.window / 2);
    this.window = Math.max(this.min, this.window / 2);
  }
}

/** A token bucket for --rate: returns how long to wait before the next probe may go (0 = now). */
export class RateLimiter {
  private next = 0;

  constructor(private readonly perSecond: number) {}

  delay(now: number): number {
    if (this.perSecond <= 0) return 0;
    const wait = Math.max(0, this.next - now);
    this.next = Math.max(now, this.next) + 1000 / this.perSecond;
    return wait;
  }
}
