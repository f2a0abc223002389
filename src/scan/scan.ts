import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { curatedCatalog } from '../catalog/curated.ts';
import { formatPortSet, iteratePorts, portSetFromRanges, type PortSet } from '../catalog/port-set.ts';
import { parsePortSpec } from '../catalog/port-spec.ts';
import { PortwardenError } from '../errors.ts';
import { parseFdLimit, type HostResult, type PortResult } from './engine.ts';
import { CONFIRM_OVER } from './limits.ts';
import { scanTcpParallel } from './parallel.ts';
import type { ScanSummary } from './report.ts';
import { detectService, type ServiceInfo } from './service-detect.ts';
import { countTarget, parseTarget, streamTargets, type Resolver, type TargetSpec } from './targets.ts';
import { scanUdp } from './udp.ts';

export { CONFIRM_OVER };

/** Service detection connections open at the same time. */
const DETECT_WORKERS = 16;

export interface ScanOptions {
  /**
   * Ports as `portwarden scan -p` takes them (`22,80,1000-2000`, `-` for all, names, `T:`/`U:` prefixes),
   * or a parsed PortSet. Default: 1-1023 plus every curated TCP service above it (with `udp`: the
   * catalog's common UDP ports).
   */
  ports?: string | PortSet;
  /** The n most commonly exposed ports from the catalog, instead of `ports`. */
  top?: number;
  /** UDP scan (nmap's -sU): bare port numbers, `top` and the default mean UDP ports. Default false. */
  udp?: boolean;
  /** Service detection on open TCP ports (nmap's -sV). Default false. */
  banners?: boolean;
  /** Targets to skip, in the same forms as the targets. */
  exclude?: readonly string[];
  /** Timing template 0 (paranoid) .. 5 (insane). Default 4. */
  timing?: number;
  /** Retransmissions of an unanswered probe (default: the template's). */
  retries?: number;
  /** Fixed per-probe timeout in ms instead of the adaptive one. */
  timeoutMs?: number;
  /** Cap on TCP probes in flight. */
  concurrency?: number;
  /** TCP probes kept in flight at least, even when nothing answers. */
  minParallel?: number;
  /** Cap on TCP probes per second. */
  rate?: number;
  /** Every address a hostname resolves to, not only the first. Default false. */
  resolveAll?: boolean;
  /** Allow more than CONFIRM_OVER addresses. Default false. */
  allowLarge?: boolean;
  /** Name resolution. Default: the system resolver (getaddrinfo). */
  resolve?: Resolver;
  /** File descriptors the scan may use. Default: this process's soft limit. */
  fdLimit?: number;
  /** Stops the scan; the result then has `summary.interrupted` and what was scanned so far. */
  signal?: AbortSignal;
  /** Called as TCP ports finish, with the totals so far. */
  onProgress?: (done: number, total: number) => void;
  /** The command line recorded in the report (nmap's args). Default `portwarden scan TARGETS`. */
  commandLine?: string;
  /** portwarden's version in the report. Default empty. */
  version?: string;
  /**
   * Who scans the TCP ports: this process's worker pool by default; `scan --queue` gives one whose
   * shards are done by scan-worker processes (same arguments, same answer).
   */
  tcpScanner?: typeof scanTcpParallel;
}

/** A scan's hosts and summary: what renderScanText, renderScanJson and renderScanXml take. */
export interface ScanResult {
  hosts: HostResult[];
  summary: ScanSummary;
}

/** The ports of a scan, per protocol, in scan order. */
export interface PortSelection {
  tcp: number[];
  udp: number[];
}

interface Targets {
  specs: TargetSpec[];
  exclude: TargetSpec[];
}

async function resolveName(name: string): Promise<string[]> {
  const results = await lookup(name, { all: true, verbatim: true });
  return results.map((r) => r.address);
}

function readFdLimit(): number {
  try {
    return parseFdLimit(readFileSync('/proc/self/limits', 'utf8')) ?? 1024;
  } catch {
    return 1024;
  }
}

function parseTargets(targets: readonly string[], options: ScanOptions): Targets {
  if (targets.length === 0) {
    throw new PortwardenError('TARGET_EMPTY', 'no targets given', {
      hint: 'name what to scan, e.g. `portwarden scan 127.0.0.1 -p 1-1024`',
    });
  }
  const specs = targets.map(parseTarget);
  const exclude = (options.exclude ?? []).map(parseTarget);
  const total = specs.reduce((n, s) => n + countTarget(s), 0n);
  if (total > CONFIRM_OVER && options.allowLarge !== true) {
    throw new PortwardenError('TARGET_TOO_MANY', `the targets cover ${total} addresses`, {
      hint: 'scan only networks you own; add --yes if you really mean it',
    });
  }
  return { specs, exclude };
}

/** The default TCP ports: the well-known range plus every curated service above it. */
function defaultTcpPorts(): number[] {
  const curated = curatedCatalog().services.flatMap((s) =>
    s.ports.filter((r) => r.protocol === 'tcp' && r.to - r.from < 1024),
  );
  return [...iteratePorts(portSetFromRanges([{ protocol: 'tcp', from: 1, to: 1023 }, ...curated]), 'tcp')];
}

/** Which ports to scan; `udp` alone makes bare port numbers UDP, as in nmap, while T:/U: choose per item. */
export function selectPorts(options: Pick<ScanOptions, 'ports' | 'top' | 'udp'>): PortSelection {
  const selection = choosePorts(options);
  if (selection.tcp.length + selection.udp.length === 0)
    throw new PortwardenError('PORT_SPEC_EMPTY', 'no ports to scan', { hint: 'give ports, e.g. 22,80,443' });
  return selection;
}

function choosePorts(options: Pick<ScanOptions, 'ports' | 'top' | 'udp'>): PortSelection {
  const udpOnly = options.udp === true;
  if (options.top !== undefined) {
    if (!Number.isInteger(options.top) || options.top < 1)
      throw new PortwardenError('OPTION_INVALID', `top ${options.top} is not a whole number above 0`, {
        hint: 'e.g. top: 100, the 100 most commonly exposed ports',
      });
    const top = curatedCatalog().top;
    return udpOnly
      ? { tcp: [], udp: top.udp.slice(0, options.top) }
      : { tcp: top.tcp.slice(0, options.top), udp: [] };
  }
  if (options.ports !== undefined) {
    const set =
      typeof options.ports === 'string'
        ? parsePortSpec(options.ports, { defaultProtocols: [udpOnly ? 'udp' : 'tcp'] })
        : options.ports;
    return { tcp: [...iteratePorts(set, 'tcp')], udp: [...iteratePorts(set, 'udp')] };
  }
  if (udpOnly) return { tcp: [], udp: [...curatedCatalog().top.udp] };
  return { tcp: defaultTcpPorts(), udp: [] };
}

function listText(list: readonly number[], protocol: 'tcp' | 'udp'): string {
  return formatPortSet(portSetFromRanges(list.map((p) => ({ protocol, from: p, to: p })))).replace(
    /^[TU]:/,
    '',
  );
}

function streamOf(targets: Targets, options: ScanOptions): ReturnType<typeof streamTargets> {
  return streamTargets(targets.specs, {
    exclude: targets.exclude,
    resolve: options.resolve ?? resolveName,
    ...(options.resolveAll ? { resolveAll: true } : {}),
  });
}

async function scanTcpPhase(targets: Targets, ports: number[], options: ScanOptions): Promise<HostResult[]> {
  if (ports.length === 0) return [];
  return (options.tcpScanner ?? scanTcpParallel)(streamOf(targets, options), {
    ports,
    template: options.timing ?? 4,
    fdLimit: options.fdLimit ?? readFdLimit(),
    // engines read an undefined option as "use the default"
    signal: options.signal,
    retries: options.retries,
    timeoutMs: options.timeoutMs,
    concurrency: options.concurrency,
    minParallel: options.minParallel,
    rate: options.rate,
    onProgress: options.onProgress,
  });
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/** UDP after TCP, host by host: the hosts TCP found, or every target when only UDP is scanned. */
async function scanUdpPhase(
  hosts: HostResult[],
  targets: Targets,
  selection: PortSelection,
  options: ScanOptions & { startedAt: number },
): Promise<void> {
  if (selection.udp.length === 0 || options.signal?.aborted) return;
  const list =
    selection.tcp.length > 0
      ? hosts.map((h) => ({ address: h.address, hostname: h.hostname }))
      : await collect(streamOf(targets, options));
  for (const target of list) {
    const udp = await scanUdp(target.address, selection.udp, {
      signal: options.signal,
      retries: options.retries,
      timeoutMs: options.timeoutMs,
    });
    const host = hosts.find((h) => h.address === target.address);
    if (host) host.ports.push(...udp);
    else
      hosts.push({
        ...target,
        ports: udp,
        startedAt: options.startedAt,
        endedAt: Date.now(),
        timing: { srttMs: null, rttvarMs: 0, timeoutMs: 1000 },
      });
  }
}

function describeService(port: PortResult, info: ServiceInfo): void {
  Object.assign(
    port,
    { service: info.name },
    info.banner ? { banner: info.banner } : {},
    info.product ? { product: info.product } : {},
    info.version ? { version: info.version } : {},
    info.extraInfo ? { extraInfo: info.extraInfo } : {},
    info.tunnel ? { tunnel: info.tunnel } : {},
    info.tls ? { tls: info.tls } : {},
  );
}

/** Service detection on every open TCP port, a bounded pool of connections at a time. */
async function detectServices(hosts: readonly HostResult[], signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return;
  const jobs = hosts.flatMap((h) =>
    h.ports.filter((p) => p.protocol === 'tcp' && p.state === 'open').map((p) => ({ host: h, port: p })),
  );
  const workers = Array.from({ length: Math.min(DETECT_WORKERS, jobs.length) }, async () => {
    for (let job = jobs.shift(); job; job = jobs.shift()) {
      const info = await detectService(job.host.address, job.port.port, { signal });
      if (info) describeService(job.port, info);
    }
  });
  await Promise.all(workers);
}

function summarise(
  targets: readonly string[],
  selection: PortSelection,
  options: ScanOptions & { startedAt: number },
): ScanSummary {
  const { tcp, udp } = selection;
  const protocols = [
    ...(tcp.length > 0
      ? [{ protocol: 'tcp' as const, count: tcp.length, services: listText(tcp, 'tcp') }]
      : []),
    ...(udp.length > 0
      ? [{ protocol: 'udp' as const, count: udp.length, services: listText(udp, 'udp') }]
      : []),
  ];
  return {
    args: options.commandLine ?? ['portwarden', 'scan', ...targets].join(' '),
    startedAt: options.startedAt,
    endedAt: Date.now(),
    version: options.version ?? '',
    ports: protocols.map((p) => `${p.protocol === 'tcp' ? 'T' : 'U'}:${p.services}`).join(','),
    portCount: tcp.length + udp.length,
    protocols,
    interrupted: options.signal?.aborted === true,
  };
}

/**
 * Scans hosts you own, as `portwarden scan` does: targets (addresses, CIDR blocks, octet ranges,
 * hostnames) minus the exclusions, a TCP connect scan with nmap's timing, then UDP and service
 * detection when asked. Targets and ports are checked before any packet is sent (PortwardenError
 * TARGET_EMPTY, TARGET_INVALID, TARGET_TOO_MANY, PORT_*); an aborted scan returns what it has
 * (perhaps no host) with `summary.interrupted`.
 * Render the result with renderScanText, renderScanJson or renderScanXml.
 */
export async function scan(targets: readonly string[], options: ScanOptions = {}): Promise<ScanResult> {
  const parsed = parseTargets(targets, options);
  const selection = selectPorts(options);
  const run = { ...options, startedAt: Date.now() };
  const hosts = await scanTcpPhase(parsed, selection.tcp, run);
  await scanUdpPhase(hosts, parsed, selection, run);
  if (options.banners) await detectServices(hosts, options.signal);
  // no host at all is an exclusion list that left nothing, unless the scan was stopped before the first
  if (hosts.length === 0 && options.signal?.aborted !== true) {
    throw new PortwardenError('TARGET_EMPTY', 'every target was excluded', {
      hint: 'check --exclude / --exclude-file',
    });
  }
  return { hosts, summary: summarise(targets, selection, run) };
}
