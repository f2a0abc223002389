import type { PortRange, Protocol, ProtocolPortRange } from './types.ts';

/** Ports per protocol as sorted, merged, non-overlapping, non-adjacent inclusive ranges. */
export interface PortSet {
  tcp: readonly PortRange[];
  udp: readonly PortRange[];
}

export const EMPTY_PORT_SET: PortSet = { tcp: [], udp: [] };

/** Sorts and merges overlapping or adjacent ranges. */
export function mergeRanges(ranges: readonly PortRange[]): PortRange[] {
  const sorted = [...ranges].sort((a, b) => a.from - b.from || a.to - b.to);
  const merged: PortRange[] = [];
  for (const range of sorted) {
    const last = merged[merged.length - 1];
    if (last && range.from <= last.to + 1) last.to = Math.max(last.to, range.to);
    else merged.push({ from: range.from, to: range.to });
  }
  return merged;
}

export function portSetFromRanges(ranges: readonly ProtocolPortRange[]): PortSet {
  return {
    tcp: mergeRanges(ranges.filter((r) => r.protocol === 'tcp')),
    udp: mergeRanges(ranges.filter((r) => r.protocol === 'udp')),
  };
}

export function unionPortSets(...sets: readonly PortSet[]): PortSet {
  return {
    tcp: mergeRanges(sets.flatMap((s) => s.tcp)),
    udp: mergeRanges(sets.flatMap((s) => s.udp)),
  };
}

/** The ranges of a set as protocol-tagged ranges, tcp first. */
export function portSetRanges(set: PortSet): ProtocolPortRange[] {
  return [
    ...set.tcp.map((r) => ({ protocol: 'tcp' as const, ...r })),
    ...set.udp.map((r) => ({ protocol: 'udp' as const, ...r })),
  ];
}

/** How many ports sorted ranges hold. */
export function countRanges(ranges: readonly PortRange[]): number {
  return ranges.reduce((n, r) => n + r.to - r.from + 1, 0);
}

export function portSetSize(set: PortSet, protocol?: Protocol): number {
  if (protocol) return countRanges(set[protocol]);
  return countRanges(set.tcp) + countRanges(set.udp);
}

export function portSetHas(set: PortSet, protocol: Protocol, port: number): boolean {
  return rangesHas(set[protocol], port);
}

/** Whether sorted, merged ranges hold a port (binary search). */
export function rangesHas(ranges: readonly PortRange[], port: number): boolean {
  let low = 0;
  let high = ranges.length - 1;
  while (low <= high) {
    const mid = (low + high) >> 1;
    const range = ranges[mid];
    if (!range) break;
    if (port < range.from) high = mid - 1;
    else if (port > range.to) low = mid + 1;
    else return true;
  }
  return false;
}

/** Distinct ports, in any order, as sorted merged ranges. */
export function rangesOf(ports: Iterable<number>): PortRange[] {
  return mergeRanges([...ports].map((p) => ({ from: p, to: p })));
}

/** Yields every port of one protocol in ascending order without materialising the list. */
export function* iteratePorts(set: PortSet, protocol: Protocol): Generator<number> {
  for (const range of set[protocol]) {
    for (let port = range.from; port <= range.to; port++) yield port;
  }
}

/** Ranges as text: `1-19,21-65535`. */
export function formatRanges(ranges: readonly PortRange[]): string {
  return ranges.map((r) => (r.from === r.to ? `${r.from}` : `${r.from}-${r.to}`)).join(',');
}

/** Canonical nmap-style text: `T:20-21,80,U:53`; parsePortSpec reads it back to the same set. */
export function formatPortSet(set: PortSet): string {
  const parts: string[] = [];
  if (set.tcp.length > 0) parts.push(`T:${formatRanges(set.tcp)}`);
  if (set.udp.length > 0) parts.push(`U:${formatRanges(set.udp)}`);
  return parts.join(',');
}

/** Human text: `tcp/20-21,80 udp/53`. */
export function describePortSet(set: PortSet): string {
  const parts: string[] = [];
  if (set.tcp.length > 0) parts.push(`tcp/${formatRanges(set.tcp)}`);
  if (set.udp.length > 0) parts.push(`udp/${formatRanges(set.udp)}`);
  return parts.join(' ') || '(none)';
}
