import { formatMark } from '../compile/program-mark.ts';
import type { Attempt, ProgramsMode } from './types.ts';

/**
 * The gate: portwarden's own nft table for `watch --programs` (pure text in, text out). Its output
 * chain runs before the policy's table (priority filter - 10) and only ever restricts: it accepts what
 * the daemon admitted or what is not a new outbound TCP/UDP connection, and for everything else it
 * adds the 5-tuple to the `attempts` set the daemon polls. In ask and enforce it then drops the packet,
 * so the kernel keeps the machine closed for undecided programs whether the daemon runs or not; the
 * client's own retransmission (TCP SYN after ~1 s, a UDP retry) passes once the daemon has added the
 * exact tuple to `admitted`. In learn nothing is dropped, with or without the daemon.
 */

export const GATE_TABLE = 'portwarden_programs';
/** How long a held attempt stays in the set; the daemon deletes those it has read long before. */
export const ATTEMPT_TIMEOUT_S = 60;
/** How long an admitted tuple is let through: long enough for the SYN retransmissions of one connect. */
export const ADMIT_TIMEOUT_S = 20;

const KEY4 = 'ipv4_addr . inet_service . ipv4_addr . inet_service . inet_proto';
const KEY6 = 'ipv6_addr . inet_service . ipv6_addr . inet_service . inet_proto';
const TUPLE4 = 'ip saddr . th sport . ip daddr . th dport . meta l4proto';
const TUPLE6 = 'ip6 saddr . th sport . ip6 daddr . th dport . meta l4proto';

/** The nft script that (re)creates the gate in one transaction. */
export function gateRuleset(mode: ProgramsMode): string {
  const hold = mode === 'learn' ? '' : ' drop';
  return [
    `table inet ${GATE_TABLE}`,
    `delete table inet ${GATE_TABLE}`,
    `table inet ${GATE_TABLE} {`,
    `\tmap admitted4 { type ${KEY4} : mark; flags timeout; timeout ${ADMIT_TIMEOUT_S}s; size 65536; }`,
    `\tmap admitted6 { type ${KEY6} : mark; flags timeout; timeout ${ADMIT_TIMEOUT_S}s; size 65536; }`,
    `\tset attempts4 { type ${KEY4}; flags timeout; timeout ${ATTEMPT_TIMEOUT_S}s; size 65536; }`,
    `\tset attempts6 { type ${KEY6}; flags timeout; timeout ${ATTEMPT_TIMEOUT_S}s; size 65536; }`,
    `\tchain output {`,
    `\t\ttype filter hook output priority filter - 10; policy accept;`,
    `\t\tct state established,related accept`,
    `\t\toif "lo" accept`,
    `\t\tmeta l4proto != { tcp, udp } accept`,
    // the map's value is the mark a policy path: rule matches; a tuple not in the map ends the rule
    `\t\tmeta nfproto ipv4 meta mark set ${TUPLE4} map @admitted4 accept`,
    `\t\tmeta nfproto ipv6 meta mark set ${TUPLE6} map @admitted6 accept`,
    `\t\tmeta nfproto ipv4 add @attempts4 { ${TUPLE4} }${hold}`,
    `\t\tmeta nfproto ipv6 add @attempts6 { ${TUPLE6} }${hold}`,
    // a full attempts set makes `add` fail; the packet must still not pass undecided
    ...(mode === 'learn' ? [] : ['\t\tdrop']),
    `\t}`,
    `}`,
    '',
  ].join('\n');
}

function tupleText(a: Attempt): string {
  const proto = a.protocol;
  return `${a.localAddress} . ${a.localPort} . ${a.remoteAddress} . ${a.remotePort} . ${proto}`;
}

/** One nft script that admits some tuples (with their marks) and forgets attempts already read. */
export function gateUpdate(
  admit: readonly { attempt: Attempt; mark: number }[],
  forget: readonly Attempt[],
): string {
  const lines: string[] = [];
  for (const family of [4, 6] as const) {
    const adds = admit.filter((a) => a.attempt.family === family);
    if (adds.length > 0)
      lines.push(
        `add element inet ${GATE_TABLE} admitted${family} { ${adds
          .map((a) => `${tupleText(a.attempt)} : ${formatMark(a.mark)}`)
          .join(', ')} }`,
      );
    const gone = forget.filter((a) => a.family === family);
    // `delete` of an element that expired meanwhile fails the whole batch: destroy would not, but
    // needs nft 1.0.8; the daemon runs deletes in a batch of their own and ignores that failure.
    if (gone.length > 0)
      lines.push(`delete element inet ${GATE_TABLE} attempts${family} { ${gone.map(tupleText).join(', ')} }`);
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

interface NftJsonSet {
  set?: {
    name?: string;
    elem?: ({ elem?: { val?: { concat?: unknown[] } } } | { concat?: unknown[] })[];
  };
}

function toAttempt(values: unknown[], family: 4 | 6): Attempt | null {
  const [saddr, sport, daddr, dport, proto] = values;
  if (typeof saddr !== 'string' || typeof daddr !== 'string') return null;
  if (typeof sport !== 'number' || typeof dport !== 'number') return null;
  if (proto !== 'tcp' && proto !== 'udp') return null;
  return {
    protocol: proto,
    family,
    localAddress: saddr,
    localPort: sport,
    remoteAddress: daddr,
    remotePort: dport,
  };
}

/** The attempts in `nft -j list table inet portwarden_programs` (elements with and without expiry data). */
export function parseGateListing(json: string): Attempt[] {
  const parsed = JSON.parse(json) as { nftables?: NftJsonSet[] };
  const out: Attempt[] = [];
  for (const item of parsed.nftables ?? []) {
    const name = item.set?.name;
    if (name !== 'attempts4' && name !== 'attempts6') continue;
    const family = name === 'attempts4' ? 4 : 6;
    for (const e of item.set?.elem ?? []) {
      const concat = 'elem' in e ? e.elem?.val?.concat : 'concat' in e ? e.concat : undefined;
      const attempt = Array.isArray(concat) ? toAttempt(concat, family) : null;
      if (attempt) out.push(attempt);
    }
  }
  return out;
}
