import ipaddr from 'ipaddr.js';

/**
 * Sets of IPv4 or IPv6 addresses as sorted, disjoint, non-adjacent closed intervals of integers.
 * The evaluator runs the ruleset once over every possible source at the same time, splitting this
 * set at each address match, so blocklists of 100,000 elements cost one linear merge, not one
 * evaluation per element.
 */

export type AddrFamily = 4 | 6;

export interface AddrSet {
  family: AddrFamily;
  /** Interval starts, ascending; `hi[i]` is the inclusive end of interval i. */
  lo: readonly bigint[];
  hi: readonly bigint[];
}

const BITS: Readonly<Record<AddrFamily, number>> = { 4: 32, 6: 128 };

export function maxAddress(family: AddrFamily): bigint {
  return (1n << BigInt(BITS[family])) - 1n;
}

export function emptySet(family: AddrFamily): AddrSet {
  return { family, lo: [], hi: [] };
}

export function universe(family: AddrFamily): AddrSet {
  return { family, lo: [0n], hi: [maxAddress(family)] };
}

export function isEmpty(set: AddrSet): boolean {
  return set.lo.length === 0;
}

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Hex digits of one IPv6 group, or -1. */
function hexDigit(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  const lower = code | 32;
  return lower >= 97 && lower <= 102 ? lower - 87 : -1;
}

const GROUPS = new Array<number>(8).fill(0);

/**
 * The 32 hex digits of an IPv6 address without an embedded IPv4 part, scanned once into a reused
 * buffer (a blocklist's 100,000 addresses would otherwise be 100,000 short-lived arrays); or null.
 */
function v6Hex(text: string): string | null {
  let count = 0;
  let gapAt = -1;
  let group = 0;
  let digits = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code !== 58) {
      const d = hexDigit(code);
      if (d < 0 || ++digits > 4) return null;
      group = group * 16 + d;
      continue;
    }
    if (digits > 0) {
      if (count === 8) return null;
      GROUPS[count++] = group;
    } else if (i > 0 && text.charCodeAt(i - 1) !== 58) return null;
    if (text.charCodeAt(i + 1) === 58) {
      if (gapAt >= 0 || text.charCodeAt(i + 2) === 58) return null;
      gapAt = count;
      i++;
    } else if (digits === 0 && i === 0) return null;
    group = 0;
    digits = 0;
  }
  if (digits > 0) {
    if (count === 8) return null;
    GROUPS[count++] = group;
  } else if (text.charCodeAt(text.length - 1) === 58 && text.charCodeAt(text.length - 2) !== 58) return null;
  if (gapAt < 0 ? count !== 8 : count > 7) return null;
  let hex = '0x';
  for (let i = 0; i < count; i++) {
    if (i === gapAt) hex += '0000'.repeat(8 - count);
    hex += ((GROUPS[i] ?? 0) + 0x10000).toString(16).slice(1);
  }
  if (gapAt === count) hex += '0000'.repeat(8 - count);
  return hex;
}

/** Plain IPv4 / IPv6 text without ipaddr's generality: blocklists hold 100,000 of them. */
function parseFast(text: string): { family: AddrFamily; value: bigint } | null {
  const v4 = V4.exec(text);
  if (v4) {
    const parts = v4.slice(1).map(Number);
    if (parts.some((p) => p > 255)) return null;
    return {
      family: 4,
      value: BigInt(
        (parts[0] ?? 0) * 16777216 + (parts[1] ?? 0) * 65536 + (parts[2] ?? 0) * 256 + (parts[3] ?? 0),
      ),
    };
  }
  const hex = v6Hex(text);
  return hex === null ? null : { family: 6, value: BigInt(hex) };
}

/** The address as an integer and its family, or null when it is not an address. */
export function parseAddress(text: string): { family: AddrFamily; value: bigint } | null {
  const fast = parseFast(text);
  if (fast) return fast;
  // ipaddr also reads "135" as 0.0.0.135: only dotted or colon forms are addresses here.
  if (!text.includes('.') && !text.includes(':')) return null;
  try {
    const parsed = ipaddr.parse(text.split('%')[0] ?? text);
    const bytes = parsed.toByteArray();
    let value = 0n;
    for (const b of bytes) value = (value << 8n) | BigInt(b);
    return { family: parsed.kind() === 'ipv4' ? 4 : 6, value };
  } catch {
    return null;
  }
}

export function formatAddress(family: AddrFamily, value: bigint): string {
  const bytes: number[] = [];
  for (let i = BITS[family] / 8 - 1; i >= 0; i--) bytes.push(Number((value >> BigInt(i * 8)) & 0xffn));
  return ipaddr.fromByteArray(bytes).toString();
}

/** [lo, hi] of the prefix value/len, or null when len does not fit the family. */
const HOST_MASKS: Record<AddrFamily, bigint[]> = {
  4: Array.from({ length: 33 }, (_, len) => (1n << BigInt(32 - len)) - 1n),
  6: Array.from({ length: 129 }, (_, len) => (1n << BigInt(128 - len)) - 1n),
};

export function prefixOf(family: AddrFamily, value: bigint, len: number): [bigint, bigint] | null {
  const host = HOST_MASKS[family][len];
  if (host === undefined) return null;
  const lo = value - (value & host);
  return [lo, lo + host];
}

/** [lo, hi] of a prefix `addr/len`, or null when addr is not of the family. */
export function prefixRange(family: AddrFamily, addr: string, len: number): [bigint, bigint] | null {
  const parsed = parseAddress(addr);
  if (!parsed || parsed.family !== family || !(len >= 0 && len <= BITS[family])) return null;
  const host = (1n << BigInt(BITS[family] - len)) - 1n;
  return [parsed.value & ~host & maxAddress(family), (parsed.value & ~host) | host];
}

/** Builds a normalized set from intervals in any order, overlapping or not. */
export function fromIntervals(family: AddrFamily, intervals: [bigint, bigint][]): AddrSet {
  const valid = intervals.filter(([a, b]) => a <= b);
  // nft lists set elements in order: check before paying for a sort.
  const inOrder = valid.every((x, i) => i === 0 || (valid[i - 1]?.[0] ?? 0n) <= x[0]);
  const sorted = inOrder ? valid : valid.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  const lo: bigint[] = [];
  const hi: bigint[] = [];
  for (const [a, b] of sorted) {
    const last = hi.length - 1;
    if (last >= 0 && a <= (hi[last] ?? 0n) + 1n) {
      if (b > (hi[last] ?? 0n)) hi[last] = b;
    } else {
      lo.push(a);
      hi.push(b);
    }
  }
  return { family, lo, hi };
}

export function pointSet(family: AddrFamily, value: bigint): AddrSet {
  return { family, lo: [value], hi: [value] };
}

/** Index of the last interval starting at or before value, or -1. */
function floorIndex(set: AddrSet, value: bigint): number {
  let a = 0;
  let b = set.lo.length - 1;
  let found = -1;
  while (a <= b) {
    const mid = (a + b) >> 1;
    if ((set.lo[mid] ?? 0n) <= value) {
      found = mid;
      a = mid + 1;
    } else b = mid - 1;
  }
  return found;
}

export function contains(set: AddrSet, value: bigint): boolean {
  const i = floorIndex(set, value);
  return i >= 0 && value <= (set.hi[i] ?? -1n);
}

/** The parts of `big` overlapping [a, b], found by binary search: cheap when the other side is small. */
function clip(big: AddrSet, a: bigint, b: bigint, lo: bigint[], hi: bigint[]): void {
  let i = Math.max(floorIndex(big, a), 0);
  for (; i < big.lo.length && (big.lo[i] ?? 0n) <= b; i++) {
    const l = big.lo[i] ?? 0n;
    const h = big.hi[i] ?? 0n;
    if (h < a) continue;
    lo.push(l > a ? l : a);
    hi.push(h < b ? h : b);
  }
}

export function intersect(x: AddrSet, y: AddrSet): AddrSet {
  const [small, big] = x.lo.length <= y.lo.length ? [x, y] : [y, x];
  const lo: bigint[] = [];
  const hi: bigint[] = [];
  for (let i = 0; i < small.lo.length; i++) clip(big, small.lo[i] ?? 0n, small.hi[i] ?? 0n, lo, hi);
  return { family: x.family, lo, hi };
}

/** x minus y. */
export function subtract(x: AddrSet, y: AddrSet): AddrSet {
  const lo: bigint[] = [];
  const hi: bigint[] = [];
  for (let i = 0; i < x.lo.length; i++) {
    let a = x.lo[i] ?? 0n;
    const b = x.hi[i] ?? 0n;
    const cut: bigint[] = [];
    const cutHi: bigint[] = [];
    clip(y, a, b, cut, cutHi);
    for (let j = 0; j < cut.length; j++) {
      const c = cut[j] ?? 0n;
      if (c > a) {
        lo.push(a);
        hi.push(c - 1n);
      }
      a = (cutHi[j] ?? 0n) + 1n;
    }
    if (a <= b) {
      lo.push(a);
      hi.push(b);
    }
  }
  return { family: x.family, lo, hi };
}

export function union(x: AddrSet, y: AddrSet): AddrSet {
  if (isEmpty(x)) return y;
  if (isEmpty(y)) return x;
  const pairs: [bigint, bigint][] = [];
  for (const s of [x, y]) for (let i = 0; i < s.lo.length; i++) pairs.push([s.lo[i] ?? 0n, s.hi[i] ?? 0n]);
  return fromIntervals(x.family, pairs);
}

export function sameSet(x: AddrSet, y: AddrSet): boolean {
  return x.lo.length === y.lo.length && x.lo.every((v, i) => v === y.lo[i] && x.hi[i] === y.hi[i]);
}

/** The interval [a, b] as the fewest CIDR prefixes. */
function intervalToCidrs(family: AddrFamily, a: bigint, b: bigint, out: string[], limit: number): void {
  const bits = BITS[family];
  while (a <= b && out.length < limit) {
    let len = bits;
    while (len > 0) {
      const size = 1n << BigInt(bits - len + 1);
      if (a % size !== 0n || a + size - 1n > b) break;
      len--;
    }
    out.push(`${formatAddress(family, a)}/${len}`);
    a += 1n << BigInt(bits - len);
  }
}

/** The set as merged CIDR prefixes (single addresses without /len), at most `limit` of them. */
export function toCidrs(set: AddrSet, limit = Infinity): string[] {
  const out: string[] = [];
  for (let i = 0; i < set.lo.length && out.length < limit; i++)
    intervalToCidrs(set.family, set.lo[i] ?? 0n, set.hi[i] ?? 0n, out, limit);
  const full = `/${BITS[set.family]}`;
  return out.map((c) => (c.endsWith(full) ? c.slice(0, -full.length) : c));
}

/** Number of addresses (for "how much of the space"). */
export function size(set: AddrSet): bigint {
  let n = 0n;
  for (let i = 0; i < set.lo.length; i++) n += (set.hi[i] ?? 0n) - (set.lo[i] ?? 0n) + 1n;
  return n;
}
