import ipaddr from 'ipaddr.js';

/**
 * Addresses and address blocks, one model for every domain: an address is its family and a bigint,
 * a block (CIDR) the interval [first, last] of such bigints. The policy keeps its CIDRs as text
 * (it is printed as JSON, which has no bigint); their bigint bounds are computed once per CIDR object
 * and cached. The ruleset evaluator's address sets (ruleset/addr-set.ts) build on the same numbers.
 */

export type AddrFamily = 4 | 6;

export const BITS: Readonly<Record<AddrFamily, number>> = { 4: 32, 6: 128 };

export function maxAddress(family: AddrFamily): bigint {
  return (1n << BigInt(BITS[family])) - 1n;
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

/** The family of an address in any form ipaddr reads; throws on text that is not an address. */
export function familyOf(address: string): AddrFamily {
  return ipaddr.parse(address).kind() === 'ipv4' ? 4 : 6;
}

/** The canonical text of an address (IPv6 in RFC 5952 form); throws on text that is not one. */
export function canonicalAddress(address: string): string {
  return ipaddr.parse(address).toString();
}

/** A CIDR block as the policy keeps it: the network address as text and the prefix length. */
export interface CidrText {
  address: string;
  prefix: number;
}

/** A CIDR block parsed: its family and the first and last address as bigints. */
export interface CidrBounds {
  family: AddrFamily;
  prefix: number;
  first: bigint;
  last: bigint;
}

const BOUNDS = new WeakMap<CidrText, CidrBounds>();

/** The bigint bounds of a CIDR, computed once per CIDR object. Throws when its address is not one. */
export function cidrBounds(cidr: CidrText): CidrBounds {
  const known = BOUNDS.get(cidr);
  if (known) return known;
  const parsed = parseAddress(cidr.address);
  const range = parsed ? prefixOf(parsed.family, parsed.value, cidr.prefix) : null;
  if (!parsed || !range) throw new Error(`"${cidr.address}/${cidr.prefix}" is not a CIDR block`);
  const bounds = { family: parsed.family, prefix: cidr.prefix, first: range[0], last: range[1] };
  BOUNDS.set(cidr, bounds);
  return bounds;
}

/** Whether an address lies in a block (false across families and for text that is not an address). */
export function cidrContains(cidr: CidrText, address: string): boolean {
  const parsed = parseAddress(address);
  const bounds = cidrBounds(cidr);
  return (
    parsed !== null &&
    parsed.family === bounds.family &&
    parsed.value >= bounds.first &&
    parsed.value <= bounds.last
  );
}

/** Whether block `outer` holds all of block `inner` (false across families). */
export function cidrCovers(outer: CidrText, inner: CidrText): boolean {
  const a = cidrBounds(outer);
  const b = cidrBounds(inner);
  return a.family === b.family && a.first <= b.first && b.last <= a.last;
}

/** Whether two blocks share an address. */
export function cidrsOverlap(a: CidrText, b: CidrText): boolean {
  return cidrCovers(a, b) || cidrCovers(b, a);
}

/** The address `offset` places after the block's network address (198.51.100.0/24, 5 → 198.51.100.5). */
export function addressInside(cidr: CidrText, offset: number): string {
  const bounds = cidrBounds(cidr);
  return formatAddress(bounds.family, bounds.first + BigInt(offset));
}

/** A CIDR block parsed from text, canonical: the network address (198.51.100.7/24 → 198.51.100.0/24). */
export interface ParsedCidr extends CidrText {
  family: AddrFamily;
  /** The canonical form: the bare address for a single host, else address/prefix. */
  text: string;
}

/** Parses "198.51.100.0/24", "2001:db8::/32" or a bare address; throws an Error saying why not. */
export function parseCidr(text: string): ParsedCidr {
  const trimmed = text.trim();
  const slash = trimmed.indexOf('/');
  const addressText = slash < 0 ? trimmed : trimmed.slice(0, slash);
  const prefixText = slash < 0 ? null : trimmed.slice(slash + 1);
  const parsed = /^[0-9a-fA-F:.]+$/.test(addressText) ? parseAddress(addressText) : null;
  if (!parsed || (prefixText !== null && !/^\d{1,3}$/.test(prefixText)))
    throw new Error('not an address or CIDR block');
  const prefix = prefixText === null ? BITS[parsed.family] : Number(prefixText);
  const range = prefixOf(parsed.family, parsed.value, prefix);
  if (!range) throw new Error('not an address or CIDR block');
  const address = formatAddress(parsed.family, range[0]);
  return {
    family: parsed.family,
    address,
    prefix,
    text: prefix === BITS[parsed.family] ? address : `${address}/${prefix}`,
  };
}

/** The bigint of an address; throws on text that is not one (check it first where input is untrusted). */
export function addressValue(text: string): bigint {
  const parsed = parseAddress(text);
  if (!parsed) throw new Error(`"${text}" is not an IP address`);
  return parsed.value;
}
