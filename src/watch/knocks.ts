import type { WatchEvent } from './events.ts';

/**
 * The knock log (pure): portwarden's rulesets log dropped packets, rate-limited, with the prefix
 * `pw:<in|out|fwd>:<zone>: ` (see compile/log-prefix.ts). These functions read such kernel log lines and
 * spot port scans: one source touching many ports in a short window.
 */

export interface Knock {
  at: number;
  direction: string;
  zone: string;
  source: string;
  destination: string;
  protocol: string;
  port: number;
  interface: string;
}

const FIELD = /\b(IN|OUT|SRC|DST|PROTO|DPT)=(\S*)/g;

/** Parses one kernel log line of portwarden's drop logging, or null for any other line. */
export function parseKnock(line: string, at: number): Knock | null {
  const prefix = /pw:(in|out|fwd):([^:\s]+):/.exec(line);
  if (!prefix) return null;
  const fields = new Map<string, string>();
  for (const m of line.slice(prefix.index).matchAll(FIELD)) fields.set(m[1] ?? '', m[2] ?? '');
  const port = Number(fields.get('DPT'));
  const source = fields.get('SRC');
  if (!source || !Number.isInteger(port)) return null;
  return {
    at,
    direction: prefix[1] ?? '',
    zone: prefix[2] ?? '',
    source,
    destination: fields.get('DST') ?? '',
    protocol: (fields.get('PROTO') ?? '').toLowerCase(),
    port,
    interface: fields.get('IN') || fields.get('OUT') || '',
  };
}

/**
 * Flags a port scan once per burst: a source that knocks on `threshold` distinct ports within
 * `windowMs`. It is flagged again only after it was quiet for a whole window. Memory is bounded: old
 * knocks fall out of the window and at most `maxSources` sources are tracked.
 */
export class ScanDetector {
  private readonly seen = new Map<
    string,
    { knocks: { at: number; port: number }[]; flagged: boolean; last: number }
  >();

  constructor(
    private readonly threshold = 10,
    private readonly windowMs = 60_000,
    private readonly maxSources = 10_000,
  ) {}

  add(knock: Knock): WatchEvent | null {
    let entry = this.seen.get(knock.source);
    if (entry && knock.at - entry.last > this.windowMs) entry = undefined;
    if (!entry) {
      if (this.seen.size >= this.maxSources) {
        const oldest = this.seen.keys().next().value;
        if (oldest !== undefined) this.seen.delete(oldest);
      }
      entry = { knocks: [], flagged: false, last: knock.at };
      this.seen.delete(knock.source);
      this.seen.set(knock.source, entry);
    }
    entry.last = knock.at;
    entry.knocks = entry.knocks.filter((k) => knock.at - k.at <= this.windowMs);
    entry.knocks.push({ at: knock.at, port: knock.port });
    if (entry.flagged) return null;
    const ports = [...new Set(entry.knocks.map((k) => k.port))].sort((a, b) => a - b);
    if (ports.length < this.threshold) return null;
    entry.flagged = true;
    return {
      at: new Date(knock.at).toISOString(),
      kind: 'port-scan',
      key: `scan|${knock.source}`,
      message: `port scan: ${knock.source} knocked on ${ports.length} ports of zone ${knock.zone} within ${this.windowMs / 1000} s`,
      knock: {
        source: knock.source,
        destination: knock.destination,
        protocol: knock.protocol,
        port: knock.port,
        zone: knock.zone,
        direction: knock.direction,
      },
      ports,
    };
  }
}

/**
 * A dropped packet can be logged twice (by its zone's chain, then by the base chain as zone `-`): the
 * same packet seen again within `windowMs` is one knock. Bounded memory.
 */
export class KnockDeduper {
  private readonly last = new Map<string, number>();

  constructor(
    private readonly windowMs = 1000,
    private readonly max = 10_000,
  ) {}

  /** True when this knock is new (record it), false when it repeats one just seen. */
  fresh(knock: Knock): boolean {
    const key = `${knock.direction}|${knock.source}|${knock.destination}|${knock.protocol}|${knock.port}`;
    const seen = this.last.get(key);
    if (seen !== undefined && knock.at - seen <= this.windowMs) return false;
    if (this.last.size >= this.max) this.last.clear();
    this.last.set(key, knock.at);
    return true;
  }
}
