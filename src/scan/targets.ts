import ipaddr from 'ipaddr.js';
import { addressValue, formatAddress, prefixOf } from '../catalog/address.ts';
import { PortwardenError } from '../errors.ts';

/**
 * Scan targets as nmap writes them: addresses (v4, v6), CIDR blocks of either family, octet ranges
 * (198.51.100.1-20, 198.51.100-101.1-5) and hostnames. Ranges are generated lazily — a /8 or a /64
 * is never materialised — and counted with bigints.
 */

/** One parsed target expression. */
export type TargetSpec =
  | { kind: 'range'; family: 4 | 6; first: bigint; last: bigint; text: string }
  | { kind: 'octets'; octets: [number, number][]; text: string }
  | { kind: 'hostname'; name: string; text: string };

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

function invalid(text: string, why: string): PortwardenError {
  return new PortwardenError('TARGET_INVALID', `invalid target "${text}": ${why}`, {
    hint: 'targets are addresses (198.51.100.7, 2001:db8::7), CIDR blocks (198.51.100.0/24), octet ranges (198.51.100.1-20) or hostnames',
  });
}

/** A CIDR block target, `198.51.100.0/24` or `2001:db8::/120`. */
function parseBlock(text: string): TargetSpec {
  const [addr = '', len = '', ...extra] = text.split('/');
  if (extra.length > 0) throw invalid(text, 'it has more than one "/"');
  if (!/^\d{1,3}$/.test(len)) throw invalid(text, `"/${len}" is not a prefix length`);
  if (!ipaddr.isValid(addr)) {
    if (HOSTNAME.test(addr))
      throw invalid(text, 'hostname/prefix is not supported; give the network address');
    throw invalid(text, `"${addr}" is not an IP address`);
  }
  const family = ipaddr.parse(addr).kind() === 'ipv4' ? 4 : 6;
  const bits = family === 4 ? 32 : 128;
  const prefix = Number(len);
  if (prefix > bits) throw invalid(text, `prefix /${prefix} is longer than ${bits} bits`);
  if (family === 4 && !ipaddr.IPv4.isValidFourPartDecimal(addr))
    throw invalid(text, 'write IPv4 addresses as four decimal parts');
  const [first, last] = prefixOf(family, addressValue(addr), prefix) ?? [0n, 0n];
  return { kind: 'range', family, first, last, text };
}

/** Parses one target expression (no I/O: hostnames are resolved later). */
export function parseTarget(input: string): TargetSpec {
  const text = input.trim();
  if (text === '') throw invalid(input, 'it is empty');
  if (text.includes('%')) throw invalid(text, 'scoped (link-local %iface) targets are not supported');
  if (text.includes('/')) return parseBlock(text);
  if (/^[\d,.*-]+$/.test(text) && text.split('.').length === 4 && /[-,*]/.test(text)) {
    const octets = text.split('.').map((part): [number, number][] => {
      if (part === '*') return [[0, 255]];
      return part.split(',').map((item) => {
        const [a = '', b] = item.split('-');
        const from = a === '' ? 0 : Number(a);
        const to = b === undefined ? from : b === '' ? 255 : Number(b);
        if (
          !/^\d{0,3}$/.test(a) ||
          (b !== undefined && !/^\d{0,3}$/.test(b)) ||
          from > 255 ||
          to > 255 ||
          from > to
        ) {
          throw invalid(text, `bad octet range "${item}"`);
        }
        return [from, to];
      });
    });
    // Octet lists are stored as one [from,to] per octet when simple; lists become several specs.
    if (octets.some((o) => o.length !== 1)) {
      throw invalid(
        text,
        'comma lists inside an octet are not supported; use ranges (1-20) or several targets',
      );
    }
    return { kind: 'octets', octets: octets.map((o) => o[0] ?? [0, 0]), text };
  }
  if (ipaddr.isValid(text)) {
    const parsed = ipaddr.parse(text);
    if (parsed.kind() === 'ipv4' && !ipaddr.IPv4.isValidFourPartDecimal(text))
      throw invalid(text, 'write IPv4 addresses as four decimal parts');
    const value = addressValue(text);
    return { kind: 'range', family: parsed.kind() === 'ipv4' ? 4 : 6, first: value, last: value, text };
  }
  if (/^[\d.]+$/.test(text)) throw invalid(text, 'not a valid IPv4 address');
  if (!HOSTNAME.test(text)) throw invalid(text, 'not an address, CIDR block, range or hostname');
  return { kind: 'hostname', name: text, text };
}

/** How many addresses a spec covers (a hostname counts as one). */
export function countTarget(spec: TargetSpec): bigint {
  if (spec.kind === 'range') return spec.last - spec.first + 1n;
  if (spec.kind === 'octets') return spec.octets.reduce((n, [a, b]) => n * BigInt(b - a + 1), 1n);
  return 1n;
}

/** Lazily yields the addresses of an address spec (not hostnames). */
export function* expandSpec(spec: TargetSpec): Generator<string> {
  if (spec.kind === 'range') {
    for (let v = spec.first; v <= spec.last; v++) yield formatAddress(spec.family, v);
  } else if (spec.kind === 'octets') {
    const [[a0, a1], [b0, b1], [c0, c1], [d0, d1]] = spec.octets as [
      [number, number],
      [number, number],
      [number, number],
      [number, number],
    ];
    for (let a = a0; a <= a1; a++)
      for (let b = b0; b <= b1; b++)
        for (let c = c0; c <= c1; c++) for (let d = d0; d <= d1; d++) yield `${a}.${b}.${c}.${d}`;
  }
}

/** Whether an address falls inside an exclusion spec. */
export function specContains(spec: TargetSpec, address: string): boolean {
  if (!ipaddr.isValid(address)) return spec.kind === 'hostname' && spec.name === address;
  const parsed = ipaddr.parse(address);
  if (spec.kind === 'range') {
    if ((parsed.kind() === 'ipv4' ? 4 : 6) !== spec.family) return false;
    const v = addressValue(address);
    return spec.first <= v && v <= spec.last;
  }
  if (spec.kind === 'octets') {
    if (parsed.kind() !== 'ipv4') return false;
    return address.split('.').every((o, i) => {
      const [lo, hi] = spec.octets[i] ?? [0, -1];
      return Number(o) >= lo && Number(o) <= hi;
    });
  }
  return false;
}

/** Target and exclusion lists read from files: one or more targets per line, `#` comments. */
export function parseTargetList(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter((line) => line !== '')
    .flatMap((line) => line.split(/[\s,]+/).filter(Boolean));
}

export type Resolver = (name: string) => Promise<string[]>;

/**
 * Streams every address to scan: specs in order, hostnames resolved (all addresses or the first,
 * like nmap's --resolve-all), exclusions skipped, duplicates of a hostname's addresses kept once.
 */
export async function* streamTargets(
  specs: readonly TargetSpec[],
  options: { exclude?: readonly TargetSpec[]; resolve: Resolver; resolveAll?: boolean },
): AsyncGenerator<{ address: string; hostname: string | null }> {
  const excluded = (address: string): boolean =>
    (options.exclude ?? []).some((e) => specContains(e, address));
  for (const spec of specs) {
    if (spec.kind === 'hostname') {
      let addresses: string[];
      try {
        addresses = await options.resolve(spec.name);
      } catch {
        addresses = [];
      }
      if (addresses.length === 0) {
        throw new PortwardenError('TARGET_INVALID', `cannot resolve "${spec.name}"`, {
          hint: 'check the name, or give an address',
        });
      }
      for (const address of options.resolveAll ? [...new Set(addresses)] : addresses.slice(0, 1)) {
        if (!excluded(address)) yield { address, hostname: spec.name };
      }
      continue;
    }
    for (const address of expandSpec(spec)) if (!excluded(address)) yield { address, hostname: null };
  }
}
