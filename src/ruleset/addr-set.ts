import { BITS, formatAddress, maxAddress, type AddrFamily } from '../catalog/address.ts';

/**
 * Sets of IPv4 or IPv6 addresses as sorted, disjoint, non-adjacent closed intervals of integers.
 * The evaluator runs the ruleset once over every possible source at the same time, splitting this
 * set at each address match, so blocklists of 100,000 elements cost one linear merge, not one
 * evaluation per element.
 */

export interface AddrSet {
  family: AddrFamily;
  /** Interval starts, ascending; `hi[i]` is the inclusive end of interval i. */
  lo: readonly bigint[];
  hi: readonly bigint[];
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
