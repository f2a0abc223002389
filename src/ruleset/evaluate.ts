import {
  contains,
  emptySet,
  fromIntervals,
  intersect,
  isEmpty,
  subtract,
  union,
  type AddrSet,
} from './addr-set.ts';
import { parseAddress, prefixOf } from '../catalog/address.ts';
import type { DecidedMatch } from './iptables-rule.ts';
import {
  obj,
  tableLabel,
  type Family,
  type NftChain,
  type NftRule,
  type NftSet,
  type Ruleset,
} from './ruleset.ts';
import { describeExpr } from './rule-text.ts';

/**
 * The chain evaluator. It runs a concrete probe packet — a TCP SYN or UDP datagram with no
 * extension headers, the first of its connection, from a source never seen before — through nft
 * chains, with one exception: the peer's address is not one value but a set of them (an AddrSet).
 * Each address match splits that set, so one run answers for every possible source at once, and a
 * blocklist costs one merge. A match it cannot decide does not stop the run: the rule's verdict
 * becomes "pending" for those sources and the run goes on; if the rest of the chain ends the same
 * way the answer is still definite, otherwise it is unknown, naming the expression and why.
 */

type Json = unknown;

/** A JSON scalar as text ('' for objects, which never name a field). */
export function text(value: Json): string {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
    ? String(value)
    : '';
}

/** The first packet of a new connection (or its reply), as the evaluator sees it. */
export interface Packet {
  family: Family;
  /** icmpv6 only for the neighbor discovery a peer needs before any IPv6 connection. */
  protocol: 'tcp' | 'udp' | 'icmpv6';
  /** ICMPv6 type (135 neighbor solicitation, 136 advertisement). */
  icmpType?: number;
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  iifname?: string;
  oifname?: string;
  /** Whether daddr is an address of this host (fib daddr type local). */
  daddrLocal: boolean;
  /** Interfaces holding daddr (for `fib daddr . iif type local`); absent: any. */
  daddrOn?: readonly string[];
  /** Connection tracking status bits already set (e.g. dnat after a DNAT in prerouting). */
  ctStatus?: readonly string[];
  /** new for the first packet, established for the reply, untracked after notrack. */
  ctState?: 'new' | 'established' | 'untracked';
  ctDirection?: 'original' | 'reply';
  /** TCP flags set (default: a SYN). */
  tcpFlags?: readonly string[];
  /** Owner of the local socket (output path), when known. */
  skuid?: number;
  skgid?: number;
  /** cgroup v2 path of the local socket (output path), e.g. 'system.slice/x.service'; '' for none. */
  cgroup?: string;
  mark?: number;
  /** Which address is the remote peer, evaluated as a set (default saddr). */
  peer?: 'saddr' | 'daddr';
}

export type Kind = 'accept' | 'drop' | 'reject' | 'return' | 'next' | 'unknown' | 'dnat';

/** One rule or chain policy a packet met, for `portwarden trace`. */
export interface TraceStep {
  table: string;
  chain: string;
  hook: string | null;
  prio: number | null;
  /** Rule handle (nft) or position (legacy); null for the chain entry or its policy. */
  handle: number | null;
  text: string;
  result: 'enter' | 'no match' | 'match' | 'maybe' | 'policy' | 'skip';
  verdict?: string;
}

interface Pending {
  kind: Kind;
  why: string;
  depth: number;
  rule: NftRule | null;
  chain: NftChain;
}

export interface Flow {
  pkt: Packet;
  /** The peer addresses this flow stands for. */
  src: AddrSet;
  pending: Pending | null;
  /** Why an earlier chain may already have ended this flow (unknown verdicts). */
  doubt: string[];
  notes: string[];
  steps: TraceStep[] | null;
  nat: { addr: string | null; port: number | null } | null;
}

export interface Piece {
  flow: Flow;
  kind: Kind;
  rule: NftRule | null;
  chain: NftChain;
  why?: string;
}

export interface EvalContext {
  ruleset: Ruleset;
  depth: number;
}

export function withSrc(flow: Flow, src: AddrSet): Flow {
  return {
    ...flow,
    pkt: { ...flow.pkt },
    src,
    doubt: [...flow.doubt],
    notes: [...flow.notes],
    steps: flow.steps ? [...flow.steps] : null,
  };
}

function step(
  flow: Flow,
  chain: NftChain,
  rule: NftRule | null,
  result: TraceStep['result'],
  verdict?: string,
): void {
  flow.steps?.push({
    table: tableLabel(chain),
    chain: chain.name,
    hook: chain.hook,
    prio: chain.hook ? chain.prio : null,
    handle: rule?.handle ?? null,
    text: rule ? ruleText(rule) : `policy ${chain.policy}`,
    result,
    ...(verdict ? { verdict } : {}),
  });
}

export function ruleText(rule: NftRule): string {
  if (rule.iptables !== null) return `-A ${rule.chain} ${rule.iptables}`;
  return rule.expr.map(describeExpr).filter(Boolean).join(' ');
}

// ---------------------------------------------------------------------------------------------
// Values

const TCP_FLAGS: Readonly<Record<string, number>> = {
  fin: 1,
  syn: 2,
  rst: 4,
  psh: 8,
  ack: 16,
  urg: 32,
  ecn: 64,
  cwr: 128,
};
const CT_STATE: Readonly<Record<string, number>> = {
  invalid: 1,
  established: 2,
  related: 4,
  new: 8,
  untracked: 64,
};
const CT_XT_STATE: Readonly<Record<string, number>> = { ...CT_STATE, snat: 256, dnat: 512 };
const CT_STATUS: Readonly<Record<string, number>> = {
  expected: 1,
  'seen-reply': 2,
  assured: 4,
  confirmed: 8,
  snat: 16,
  dnat: 32,
  dying: 512,
};
const L4: Readonly<Record<string, number>> = {
  tcp: 6,
  udp: 17,
  icmp: 1,
  'ipv6-icmp': 58,
  icmpv6: 58,
  sctp: 132,
  dccp: 33,
  esp: 50,
  ah: 51,
  gre: 47,
  igmp: 2,
  udplite: 136,
};

const ICMPV6: Readonly<Record<string, number>> = {
  'destination-unreachable': 1,
  'packet-too-big': 2,
  'time-exceeded': 3,
  'parameter-problem': 4,
  'echo-request': 128,
  'echo-reply': 129,
  'nd-router-solicit': 133,
  'nd-router-advert': 134,
  'nd-neighbor-solicit': 135,
  'nd-neighbor-advert': 136,
  'neighbour-solicitation': 135,
  'neighbour-advertisement': 136,
  'neighbor-solicitation': 135,
  'neighbor-advertisement': 136,
  'router-solicitation': 133,
  'router-advertisement': 134,
  'nd-redirect': 137,
};

const ICMPV6_CODE: Readonly<Record<string, number>> = {
  'no-route': 0,
  'admin-prohibited': 1,
  'addr-unreachable': 3,
  'port-unreachable': 4,
  'policy-fail': 5,
  'reject-route': 6,
};

type Symtab = Readonly<Record<string, number>> | null;

type V =
  | { t: 'num'; v: number; sym: Symtab; flags: boolean }
  | { t: 'str'; v: string }
  | { t: 'addr'; v: bigint; f: Family }
  | { t: 'peer'; f: Family }
  | { t: 'tuple'; parts: V[] };
type Field = V | { t: 'absent' } | { t: 'unknown'; why: string };

const num = (v: number, sym: Symtab = null, flags = false): V => ({ t: 'num', v, sym, flags });
const unknown = (why: string): Field => ({ t: 'unknown', why });
const ABSENT: Field = { t: 'absent' };

function flagBits(names: readonly string[], table: Readonly<Record<string, number>>): number {
  return names.reduce((n, name) => n | (table[name] ?? 0), 0);
}

function addressField(p: Packet, field: string): Field {
  const peerField = p.peer ?? 'saddr';
  if (field === peerField) return { t: 'peer', f: p.family };
  const text = field === 'saddr' ? p.saddr : p.daddr;
  const parsed = parseAddress(text);
  return parsed ? { t: 'addr', v: parsed.value, f: parsed.family } : unknown(`address ${text}`);
}

function metaField(key: string, p: Packet): Field {
  switch (key) {
    case 'iifname':
    case 'iif':
      return p.iifname === undefined ? ABSENT : { t: 'str', v: p.iifname };
    case 'oifname':
    case 'oif':
      return p.oifname === undefined ? ABSENT : { t: 'str', v: p.oifname };
    case 'l4proto':
      return num(L4[p.protocol] ?? 0, L4);
    case 'protocol':
      return { t: 'str', v: p.family === 4 ? 'ip' : 'ip6' };
    case 'nfproto':
      return { t: 'str', v: p.family === 4 ? 'ipv4' : 'ipv6' };
    case 'mark':
      return num(p.mark ?? 0);
    case 'pkttype':
      return { t: 'str', v: 'host' };
    case 'iiftype':
    case 'oiftype':
      return { t: 'str', v: 'ether' };
    case 'skuid':
    case 'skgid': {
      const id = key === 'skuid' ? p.skuid : p.skgid;
      if (p.ctDirection !== 'reply' && p.peer !== 'daddr') return ABSENT;
      return id === undefined ? unknown(`meta ${key} (the owner of the local socket is not known)`) : num(id);
    }
    default:
      return unknown(`meta ${key} (not a property of the probe packet)`);
  }
}

function payloadField(protocol: string, field: string, p: Packet): Field {
  if (protocol === 'ip' || protocol === 'ip6') {
    if ((protocol === 'ip') !== (p.family === 4)) return ABSENT;
    if (field === 'saddr' || field === 'daddr') return addressField(p, field);
    if (field === 'protocol' || field === 'nexthdr') return num(L4[p.protocol] ?? 0, L4);
    if (field === 'version') return num(p.family);
    // Neighbor discovery must arrive with hop limit 255 (RFC 4861); peers on the link send 64.
    if ((field === 'hoplimit' || field === 'ttl') && p.protocol === 'icmpv6') return num(255);
    return unknown(`${protocol} ${field} (not fixed for the probe)`);
  }
  if (protocol === 'icmpv6' && p.protocol === 'icmpv6') {
    if (field === 'type') return num(p.icmpType ?? 0, ICMPV6);
    if (field === 'code') return num(0, ICMPV6_CODE);
    return unknown(`icmpv6 ${field}`);
  }
  if (protocol === 'tcp' || protocol === 'udp' || protocol === 'th') {
    if (p.protocol === 'icmpv6') return ABSENT;
    if (protocol !== 'th' && protocol !== p.protocol) return ABSENT;
    if (field === 'dport') return num(p.dport);
    if (field === 'sport') return num(p.sport);
    if (field === 'flags' && p.protocol === 'tcp')
      return num(flagBits(p.tcpFlags ?? ['syn'], TCP_FLAGS), TCP_FLAGS, true);
    return unknown(`${protocol} ${field} (not fixed for the probe)`);
  }
  if (
    ['icmp', 'icmpv6', 'sctp', 'dccp', 'esp', 'ah', 'igmp', 'comp', 'gre', 'arp', 'udplite'].includes(
      protocol,
    )
  )
    return ABSENT;
  return unknown(`${protocol} ${field}`);
}

function ctField(key: string, p: Packet): Field {
  switch (key) {
    case 'state':
      return num(CT_STATE[p.ctState ?? 'new'] ?? 8, CT_STATE, true);
    case 'pw state': {
      // iptables --ctstate: the real states plus the virtual SNAT/DNAT of a translated connection.
      const status = p.ctStatus ?? [];
      const bits =
        (CT_STATE[p.ctState ?? 'new'] ?? 8) |
        (status.includes('snat') ? 256 : 0) |
        (status.includes('dnat') ? 512 : 0);
      return num(bits, CT_XT_STATE, true);
    }
    case 'status':
      return num(flagBits(p.ctStatus ?? [], CT_STATUS), CT_STATUS, true);
    case 'direction':
      return { t: 'str', v: p.ctDirection ?? 'original' };
    case 'mark':
    case 'zone':
      return num(0);
    case 'helper':
      return { t: 'str', v: '' };
    case 'l3proto':
      return { t: 'str', v: p.family === 4 ? 'ipv4' : 'ipv6' };
    case 'protocol':
      return num(L4[p.protocol] ?? 0, L4);
    default:
      return unknown(`ct ${key} (not fixed for the probe)`);
  }
}

/**
 * `socket cgroupv2 level N "a/b"`: the local socket's cgroup path cut to N levels. Inbound it is the
 * listener's socket (nft looks it up), whose cgroup the probe does not know.
 */
function socketCgroup(level: number, p: Packet): Field {
  if (p.peer !== 'daddr' || p.cgroup === undefined)
    return unknown('socket cgroupv2 (the cgroup of the local socket is not known)');
  return { t: 'str', v: p.cgroup.split('/').slice(0, level).join('/') };
}

function fibField(fib: Record<string, Json>, p: Packet): Field {
  const flags = Array.isArray(fib['flags']) ? fib['flags'].map(String) : [];
  if (fib['result'] === 'type' && flags.includes('daddr')) {
    if (flags.includes('oif')) return unknown('fib daddr . oif type');
    const onIif = !flags.includes('iif') || p.daddrOn === undefined || p.daddrOn.includes(p.iifname ?? '');
    return { t: 'str', v: p.daddrLocal && onIif ? 'local' : 'unicast' };
  }
  if (fib['result'] === 'type' && flags.includes('saddr')) return { t: 'str', v: 'unicast' };
  // Reverse-path filtering (firewalld, ufw-nft): the prober's address routes back where it came from.
  if (fib['result'] === 'oif' && flags.includes('saddr') && flags.includes('iif'))
    return p.iifname === undefined ? ABSENT : { t: 'str', v: p.iifname };
  return unknown(`fib ${flags.join(' . ')} ${String(fib['result'])}`);
}

/** A SYN over Ethernet carries the MSS option (1460 over IPv4, 1440 over IPv6); other options are not known. */
function tcpOption(option: Record<string, Json>, p: Packet): Field {
  if (p.protocol !== 'tcp') return ABSENT;
  if (option['name'] === 'maxseg' && option['field'] === 'size' && (p.tcpFlags ?? ['syn']).includes('syn'))
    return num(p.family === 4 ? 1460 : 1440);
  return unknown(`tcp option ${text(option['name'])} (not fixed for the probe)`);
}

function binaryField(op: string, args: Json, p: Packet): Field {
  if (!Array.isArray(args) || args.length !== 2) return unknown(`${op} expression`);
  const left = fieldValue(args[0], p);
  if (left.t !== 'num')
    return left.t === 'absent' || left.t === 'unknown' ? left : unknown(`${op} on ${left.t}`);
  const right = toElem(args[1], left.sym);
  if (right.t !== 'num') return unknown(`${op} with ${JSON.stringify(args[1])}`);
  const a = left.v;
  const b = right.v;
  const v = op === '&' ? a & b : op === '|' ? a | b : op === '^' ? a ^ b : op === '<<' ? a << b : a >>> b;
  return num(v >>> 0, left.sym, left.flags);
}

/** The value of a left-hand expression for the packet. */
function fieldValue(json: Json, p: Packet): Field {
  const left = obj(json);
  if (!left) return unknown(`expression ${JSON.stringify(json)}`);
  const meta = obj(left['meta']);
  if (meta) return metaField(String(meta['key']), p);
  const payload = obj(left['payload']);
  if (payload) {
    if (payload['protocol'] === undefined) return unknown(`raw payload ${JSON.stringify(payload)}`);
    return payloadField(text(payload['protocol']), text(payload['field']), p);
  }
  const ct = obj(left['ct']);
  if (ct) return ctField(String(ct['key']), p);
  const fib = obj(left['fib']);
  if (fib) return fibField(fib, p);
  if (obj(left['exthdr']) || obj(left['rt'])?.['key'] === 'type') return ABSENT;
  const socket = obj(left['socket']);
  if (socket?.['key'] === 'cgroupv2') return socketCgroup(Number(socket['level']), p);
  const option = obj(left['tcp option']);
  if (option) return tcpOption(option, p);
  for (const op of ['&', '|', '^', '<<', '>>'])
    if (left[op] !== undefined) return binaryField(op, left[op], p);
  const concat = left['concat'];
  if (Array.isArray(concat)) {
    const parts: V[] = [];
    for (const part of concat) {
      const v = fieldValue(part, p);
      if (v.t === 'absent' || v.t === 'unknown') return v;
      parts.push(v);
    }
    return { t: 'tuple', parts };
  }
  return unknown(`expression ${describeExpr(left)}`);
}

// ---------------------------------------------------------------------------------------------
// Right-hand sides: elements and compiled sets

type Elem =
  | { t: 'num'; v: number }
  | { t: 'range'; lo: number; hi: number }
  | { t: 'str'; v: string }
  | { t: 'addrs'; f: Family; set: AddrSet }
  | { t: 'tuple'; parts: Elem[] }
  | { t: 'bool'; v: boolean }
  | { t: 'unknown'; why: string };

function addrElem(lo: string, hi: string): Elem | null {
  const a = parseAddress(lo);
  const b = parseAddress(hi);
  if (!a || !b || a.family !== b.family) return null;
  return { t: 'addrs', f: a.family, set: fromIntervals(a.family, [[a.value, b.value]]) };
}

function symbol(name: string, sym: Symtab): number | undefined {
  return sym?.[name];
}

function toElem(json: Json, sym: Symtab): Elem {
  if (typeof json === 'number') return { t: 'num', v: json };
  if (typeof json === 'boolean') return { t: 'bool', v: json };
  if (typeof json === 'string') {
    const s = symbol(json, sym);
    if (s !== undefined) return { t: 'num', v: s };
    if (/^\d+$/.test(json)) return { t: 'num', v: Number(json) };
    if (/^0x[0-9a-f]+$/i.test(json)) return { t: 'num', v: Number(json) };
    if (json.includes('.') || json.includes(':')) return addrElem(json, json) ?? { t: 'str', v: json };
    return { t: 'str', v: json };
  }
  if (Array.isArray(json)) {
    let bits = 0;
    for (const item of json) {
      const e = toElem(item, sym);
      if (e.t !== 'num') return { t: 'unknown', why: `list ${JSON.stringify(json)}` };
      bits |= e.v;
    }
    return { t: 'num', v: bits };
  }
  const e = obj(json);
  if (!e) return { t: 'unknown', why: 'null element' };
  const inner = obj(e['elem']);
  if (inner) return toElem(inner['val'] ?? null, sym);
  if (e['|'] !== undefined) return toElem(e['|'], sym);
  const prefix = obj(e['prefix']);
  if (prefix) {
    const parsed = parseAddress(text(prefix['addr']));
    const range = parsed ? prefixOf(parsed.family, parsed.value, Number(prefix['len'])) : null;
    if (parsed && range)
      return { t: 'addrs', f: parsed.family, set: { family: parsed.family, lo: [range[0]], hi: [range[1]] } };
    return { t: 'unknown', why: `prefix ${JSON.stringify(prefix)}` };
  }
  const range = e['range'];
  if (Array.isArray(range) && range.length === 2) {
    const [lo, hi] = range.map((x) => toElem(x, sym));
    if (lo?.t === 'num' && hi?.t === 'num') return { t: 'range', lo: lo.v, hi: hi.v };
    return (
      addrElem(String(range[0]), String(range[1])) ?? { t: 'unknown', why: `range ${JSON.stringify(range)}` }
    );
  }
  if (Array.isArray(e['concat'])) return { t: 'tuple', parts: e['concat'].map((x) => toElem(x, null)) };
  return { t: 'unknown', why: `element ${describeExpr(e)}` };
}

/** A set's elements, indexed once: exact values, ranges, address intervals per family. */
interface Compiled {
  nums: Set<number>;
  ranges: [number, number][];
  strs: Set<string>;
  wild: string[];
  addrs: Record<Family, AddrSet>;
  tuples: Elem[][];
  bools: boolean[];
  unknown: string | null;
}

function compile(elements: readonly Json[], sym: Symtab): Compiled {
  const c: Compiled = {
    nums: new Set(),
    ranges: [],
    strs: new Set(),
    wild: [],
    addrs: { 4: emptySet(4), 6: emptySet(6) },
    tuples: [],
    bools: [],
    unknown: null,
  };
  const intervals: Record<Family, [bigint, bigint][]> = { 4: [], 6: [] };
  for (const element of elements) {
    if (addressElement(element, intervals)) continue;
    const e = toElem(element, sym);
    if (e.t === 'num') c.nums.add(e.v);
    else if (e.t === 'range') c.ranges.push([e.lo, e.hi]);
    else if (e.t === 'str' && e.v.endsWith('*')) c.wild.push(e.v.slice(0, -1));
    else if (e.t === 'str') c.strs.add(e.v);
    else if (e.t === 'addrs')
      for (let i = 0; i < e.set.lo.length; i++) intervals[e.f].push([e.set.lo[i] ?? 0n, e.set.hi[i] ?? 0n]);
    else if (e.t === 'tuple') c.tuples.push(e.parts);
    else if (e.t === 'bool') c.bools.push(e.v);
    else c.unknown ??= e.why;
  }
  c.addrs = { 4: fromIntervals(4, intervals[4]), 6: fromIntervals(6, intervals[6]) };
  return c;
}

/** The common blocklist element (an address or a prefix) straight into intervals: no garbage. */
function addressElement(element: Json, intervals: Record<Family, [bigint, bigint][]>): boolean {
  if (typeof element === 'string') {
    const a = parseAddress(element);
    if (a) intervals[a.family].push([a.value, a.value]);
    return a !== null;
  }
  const prefix = obj(obj(element)?.['prefix']);
  if (!prefix || typeof prefix['addr'] !== 'string') return false;
  const a = parseAddress(prefix['addr']);
  const range = a ? prefixOf(a.family, a.value, Number(prefix['len'])) : null;
  if (a && range) intervals[a.family].push(range);
  return range !== null;
}

const compiledCache = new WeakMap<object, Map<Symtab | 'none', Compiled>>();

function compiled(key: object, elements: readonly Json[], sym: Symtab): Compiled {
  let bySym = compiledCache.get(key);
  if (!bySym) {
    bySym = new Map<Symtab | 'none', Compiled>();
    compiledCache.set(key, bySym);
  }
  let c = bySym.get(sym ?? 'none');
  if (!c) bySym.set(sym ?? 'none', (c = compile(elements, sym)));
  return c;
}

/** Which of `src` matches: a three-way split of the peer addresses. */
interface Split {
  yes: AddrSet;
  no: AddrSet;
  maybe: AddrSet;
  why: string;
  note?: string;
  /** Said of the sources that do not match. */
  noteNo?: string;
}

function uniform(src: AddrSet, r: boolean | null, why = '', note?: string): Split {
  const none = emptySet(src.family);
  return {
    yes: r === true ? src : none,
    no: r === false ? src : none,
    maybe: r === null ? src : none,
    why,
    ...(note && r === true ? { note } : {}),
  };
}

function elemHas(e: Elem, v: V): boolean | null {
  if (e.t === 'unknown') return null;
  // Concatenation elements are read without the field's symbols: "tcp" . 30080.
  if (v.t === 'num' && e.t === 'str') return v.sym?.[e.v] === v.v;
  if (v.t === 'num')
    return e.t === 'num' ? e.v === v.v : e.t === 'range' ? e.lo <= v.v && v.v <= e.hi : false;
  if (v.t === 'str')
    return e.t === 'str' ? (e.v.endsWith('*') ? v.v.startsWith(e.v.slice(0, -1)) : e.v === v.v) : false;
  if (v.t === 'addr') return e.t === 'addrs' && e.f === v.f && contains(e.set, v.v);
  return null;
}

/** The sources for which value `v` is in the compiled set. */
function member(v: V, c: Compiled, src: AddrSet): Split {
  const none = emptySet(src.family);
  if (v.t === 'peer') {
    const yes = v.f === src.family ? intersect(src, c.addrs[v.f]) : none;
    const rest = subtract(src, yes);
    return c.unknown
      ? { yes, no: none, maybe: rest, why: c.unknown }
      : { yes, no: rest, maybe: none, why: '' };
  }
  if (v.t === 'tuple') return tupleMember(v, c, src);
  let hit = false;
  if (v.t === 'num') hit = c.nums.has(v.v) || c.ranges.some(([a, b]) => a <= v.v && v.v <= b);
  else if (v.t === 'str') hit = c.strs.has(v.v) || c.wild.some((w) => v.v.startsWith(w));
  else if (v.t === 'addr') hit = contains(c.addrs[v.f], v.v);
  if (hit) return uniform(src, true);
  return c.unknown ? uniform(src, null, c.unknown) : uniform(src, false);
}

function tupleMember(v: Extract<V, { t: 'tuple' }>, c: Compiled, src: AddrSet): Split {
  let yes = emptySet(src.family);
  let maybe = emptySet(src.family);
  let why = c.unknown ?? '';
  for (const parts of c.tuples) {
    if (parts.length !== v.parts.length) continue;
    let part: AddrSet | null = src;
    let doubtful = false;
    v.parts.forEach((pv, i) => {
      const e = parts[i];
      if (!e || part === null) return;
      if (pv.t === 'peer') part = e.t === 'addrs' && e.f === pv.f ? intersect(part, e.set) : null;
      else {
        const r = elemHas(e, pv);
        if (r === false) part = null;
        else if (r === null) doubtful = true;
      }
    });
    if (part === null) continue;
    if (doubtful) {
      maybe = union(maybe, part);
      why ||= 'concatenation element';
    } else yes = union(yes, part);
  }
  maybe = subtract(maybe, yes);
  if (c.unknown) maybe = subtract(src, yes);
  return { yes, no: subtract(subtract(src, yes), maybe), maybe, why };
}

function negate(s: Split): Split {
  return { ...s, yes: s.no, no: s.yes };
}

function namedSet(ctx: EvalContext, rule: NftRule, name: string): NftSet | undefined {
  return ctx.ruleset.sets.find((s) => s.family === rule.family && s.table === rule.table && s.name === name);
}

function compareNums(op: string, a: number, b: number): boolean {
  return op === '<' ? a < b : op === '>' ? a > b : op === '<=' ? a <= b : a >= b;
}

function evalMatch(ctx: EvalContext, rule: NftRule, m: Record<string, Json>, flow: Flow): Split {
  const src = flow.src;
  const op = typeof m['op'] === 'string' ? m['op'] : '==';
  const value = fieldValue(m['left'], flow.pkt);
  // nft's implicit protocol dependency: `ip saddr != x` never matches an IPv6 packet.
  if (value.t === 'absent') return uniform(src, m['right'] === false);
  if (value.t === 'unknown') return uniform(src, null, value.why);
  const right = m['right'];
  const sym = value.t === 'num' ? value.sym : null;
  let c: Compiled;
  if (typeof right === 'string' && right.startsWith('@')) {
    const set = namedSet(ctx, rule, right.slice(1));
    if (!set) return uniform(src, null, `set ${right} not found`);
    c = compiled(set, set.elem, sym);
  } else if (obj(right)?.['set'] !== undefined) {
    const elements = obj(right)?.['set'];
    c = Array.isArray(elements) ? compiled(elements, elements, sym) : compile([elements ?? null], sym);
  } else if (Array.isArray(right) && value.t !== 'num') {
    c = compile(right, sym);
  } else {
    const e = toElem(right, sym);
    if (e.t === 'unknown') return uniform(src, null, `${describeExpr(m)}: ${e.why}`);
    if (value.t === 'num' && e.t === 'num') {
      // `ct state established,related` (op in) is "any of them" and its negation "none of them";
      // `tcp flags fin,syn / fin,syn` (op ==, a list) compares with the flags OR'ed: equality, below.
      if (op === 'in' || (value.flags && op === '!=' && Array.isArray(right))) {
        const hit = (value.v & e.v) !== 0;
        return uniform(src, op === '!=' ? !hit : hit);
      }
      if (['<', '>', '<=', '>='].includes(op)) return uniform(src, compareNums(op, value.v, e.v));
    }
    if (value.t === 'str' && typeof right === 'boolean') return uniform(src, (value.v !== '') === right);
    c = compile([right ?? null], sym);
  }
  const split = member(value, c, src);
  if (split.why) split.why = `${describeExpr(m)}: ${split.why}`;
  return op === '!=' ? negate(split) : split;
}

/** limit, quota and ct count statements: the first packet from a fresh source. */
function evalStateful(key: string, body: Record<string, Json>, src: AddrSet): Split | null {
  const over = body['inv'] === true;
  if (key === 'limit')
    return over
      ? {
          ...uniform(src, false),
          noteNo: `rate-limited (limit rate over ${text(body['rate'])}/${text(body['per'])})`,
        }
      : uniform(src, true, '', `rate-limited (limit rate ${String(body['rate'])}/${String(body['per'])})`);
  if (key === 'quota') return uniform(src, !over);
  if (key === 'ct count') return uniform(src, !over || Number(body['val']) < 1);
  return null;
}

function evalDecided(d: DecidedMatch, src: AddrSet): Split {
  const split = uniform(src, d.result, d.why, d.note);
  // A rate limit that does not stop this first packet still limits the next ones: say so.
  if (d.result === false && d.noteIfNot) split.noteNo = d.noteIfNot;
  return split;
}

// ---------------------------------------------------------------------------------------------
// Statements and verdicts

const VERDICTS = new Set([
  'accept',
  'drop',
  'reject',
  'return',
  'continue',
  'jump',
  'goto',
  'queue',
  'vmap',
  'dnat',
  'redirect',
]);

function findChain(ctx: EvalContext, chain: NftChain, name: string): NftChain | undefined {
  return ctx.ruleset.chains.find(
    (c) =>
      c.family === chain.family && c.table === chain.table && c.name === name && c.origin === chain.origin,
  );
}

function terminal(flow: Flow, kind: Kind, rule: NftRule | null, chain: NftChain, why?: string): Piece {
  return { flow, kind, rule, chain, ...(why ? { why } : {}) };
}

function jumpTo(
  ctx: EvalContext,
  chain: NftChain,
  rule: NftRule,
  target: string,
  isGoto: boolean,
  flow: Flow,
): Piece[] {
  const sub = findChain(ctx, chain, target);
  if (!sub || ctx.depth > 32)
    return [terminal(flow, 'unknown', rule, chain, `jump to ${target} (no such chain)`)];
  ctx.depth++;
  step(flow, sub, null, 'enter');
  const pieces = runRules(ctx, sub, [flow]);
  ctx.depth--;
  return pieces.map((p) =>
    p.kind === 'next' || p.kind === 'return'
      ? { ...p, kind: isGoto ? 'return' : 'next', rule: null, chain }
      : p,
  );
}

function vmapVerdict(
  ctx: EvalContext,
  chain: NftChain,
  rule: NftRule,
  vmap: Record<string, Json>,
  flow: Flow,
): Piece[] {
  const key = fieldValue(vmap['key'], flow.pkt);
  if (key.t === 'absent') return [terminal(flow, 'next', rule, chain)];
  const data = vmap['data'];
  const pairs: Json[] =
    typeof data === 'string' && data.startsWith('@')
      ? (namedSet(ctx, rule, data.slice(1))?.elem ?? [])
      : Array.isArray(obj(data)?.['set'])
        ? (obj(data)?.['set'] as Json[])
        : [];
  if (key.t === 'unknown') return anyPair(ctx, chain, rule, pairs, flow, `vmap key ${key.why}`);
  const out: Piece[] = [];
  let rest = flow.src;
  for (const pair of pairs) {
    if (isEmpty(rest)) break;
    if (!Array.isArray(pair) || pair.length !== 2) continue;
    const split = member(key, compile([pair[0] as Json], key.t === 'num' ? key.sym : null), rest);
    if (!isEmpty(split.maybe))
      out.push(terminal(withSrc(flow, split.maybe), 'unknown', rule, chain, split.why));
    if (!isEmpty(split.yes)) {
      const verdict = obj(pair[1] as Json);
      const taken = withSrc(flow, split.yes);
      out.push(
        ...(verdict
          ? applyVerdict(ctx, chain, rule, verdict, taken)
          : [terminal(taken, 'unknown', rule, chain)]),
      );
    }
    rest = split.no;
  }
  if (!isEmpty(rest)) out.push(terminal(withSrc(flow, rest), 'next', rule, chain));
  return out;
}

/**
 * A vmap whose key cannot be known (numgen: a random endpoint): if every entry ends the same way
 * (each endpoint a DNAT), that is the answer; otherwise unknown.
 */
function anyPair(
  ctx: EvalContext,
  chain: NftChain,
  rule: NftRule,
  pairs: Json[],
  flow: Flow,
  why: string,
): Piece[] {
  const results = pairs
    .map((pair) => (Array.isArray(pair) && pair.length === 2 ? obj(pair[1] as Json) : null))
    .map((verdict) => (verdict ? applyVerdict(ctx, chain, rule, verdict, withSrc(flow, flow.src)) : null));
  const kinds = new Set(results.flatMap((r) => (r ? r.map((p) => p.kind) : ['unknown'])));
  const [first] = results;
  const [kind] = [...kinds];
  if (!first || kinds.size !== 1 || kind === 'unknown' || kind === 'next')
    return [terminal(flow, 'unknown', rule, chain, why)];
  for (const p of first)
    p.flow.notes.push(`one of ${pairs.length} entries chosen at random (${why.replace(/^vmap key /, '')})`);
  return first;
}

function applyVerdict(
  ctx: EvalContext,
  chain: NftChain,
  rule: NftRule,
  v: Record<string, Json>,
  flow: Flow,
): Piece[] {
  for (const kind of ['accept', 'drop', 'reject', 'return'] as const)
    if (kind in v) return [terminal(flow, kind, rule, chain)];
  if ('continue' in v) return [terminal(flow, 'next', rule, chain)];
  if ('queue' in v) return [terminal(flow, 'unknown', rule, chain, 'queue (a userspace program decides)')];
  const jump = obj(v['jump']) ?? obj(v['goto']);
  if (jump) return jumpTo(ctx, chain, rule, String(jump['target']), 'goto' in v, flow);
  const vmap = obj(v['vmap']);
  if (vmap) return vmapVerdict(ctx, chain, rule, vmap, flow);
  const dnat = obj(v['dnat']) ?? obj(v['redirect']);
  if (dnat) {
    flow.nat = {
      addr: typeof dnat['addr'] === 'string' ? dnat['addr'] : null,
      port: typeof dnat['port'] === 'number' ? dnat['port'] : null,
    };
    return [terminal(flow, 'dnat', rule, chain)];
  }
  return [terminal(flow, 'unknown', rule, chain, `verdict ${describeExpr(v)}`)];
}

/** A verdict taken only if an undecidable match matched: pending for those sources. */
function maybeVerdict(
  ctx: EvalContext,
  chain: NftChain,
  rule: NftRule,
  v: Record<string, Json>,
  flow: Flow,
  why: string,
): Piece[] {
  const taken = applyVerdict(ctx, chain, rule, v, withSrc(flow, flow.src));
  const out: Piece[] = [];
  let rest = flow.src;
  for (const p of taken) {
    if (p.kind === 'next') continue; // falling through is the same as not matching
    rest = subtract(rest, p.flow.src);
    const f = withSrc(flow, p.flow.src);
    if (f.pending && f.pending.kind === p.kind) {
      f.pending = { ...f.pending, why: `${f.pending.why}; ${why}` };
      out.push(terminal(f, 'next', rule, chain));
      continue;
    }
    if (p.kind === 'unknown' || f.pending) {
      out.push(terminal(f, 'unknown', rule, chain, `${why}${p.why ? `; ${p.why}` : ''}`));
      continue;
    }
    f.pending = { kind: p.kind, why, depth: ctx.depth, rule: p.rule, chain: p.chain };
    if (p.kind === 'dnat') f.pending.why = `${why} (dnat to ${p.flow.nat?.addr ?? 'local'})`;
    out.push(terminal(f, 'next', rule, chain));
  }
  if (!isEmpty(rest)) out.push(terminal(withSrc(flow, rest), 'next', rule, chain));
  return out;
}

function applyStatement(expr: Record<string, Json>, flow: Flow): void {
  const mangle = obj(expr['mangle']);
  if (mangle && obj(obj(mangle['key'])?.['meta'])?.['key'] === 'mark') {
    const value = fieldValue(mangle['value'], flow.pkt);
    const direct = mangle['value'];
    if (typeof direct === 'number') flow.pkt.mark = direct;
    else if (value.t === 'num') flow.pkt.mark = value.v;
  }
  const mark = obj(expr['pwmark']);
  if (mark) {
    const m = Number(mark['mask']);
    flow.pkt.mark = (((flow.pkt.mark ?? 0) & ~m) | (Number(mark['value']) & m)) >>> 0;
  }
  if ('notrack' in expr) flow.pkt.ctState = 'untracked';
}

// ---------------------------------------------------------------------------------------------
// Rules and chains

interface Live {
  flow: Flow;
  maybe: string | null;
}

function matcher(ctx: EvalContext, rule: NftRule, expr: Record<string, Json>, flow: Flow): Split | null {
  const m = obj(expr['match']);
  if (m) return evalMatch(ctx, rule, m, flow);
  const decided = obj(expr['pw']);
  if (decided) return evalDecided(decidedOf(decided), flow.src);
  for (const key of ['limit', 'quota', 'ct count']) {
    const body = obj(expr[key]);
    if (body) return evalStateful(key, body, flow.src);
  }
  const xt = obj(expr['xt']);
  if (xt && xt['type'] === 'match') {
    const name = String(xt['name']);
    return uniform(flow.src, null, `iptables extension match ${name} (run iptables-save to see it)`);
  }
  return null;
}

function decidedOf(d: Record<string, Json>): DecidedMatch {
  return {
    result: typeof d['result'] === 'boolean' ? d['result'] : null,
    why: text(d['why']),
    ...(typeof d['note'] === 'string' ? { note: d['note'] } : {}),
    ...(typeof d['noteIfNot'] === 'string' ? { noteIfNot: d['noteIfNot'] } : {}),
  };
}

function isMatcher(expr: Record<string, Json>): boolean {
  const key = Object.keys(expr)[0] ?? '';
  return (
    ['match', 'pw', 'limit', 'quota', 'ct count'].includes(key) ||
    (key === 'xt' && obj(expr['xt'])?.['type'] === 'match')
  );
}

function verdictOf(expr: Record<string, Json>): boolean {
  const key = Object.keys(expr)[0] ?? '';
  if (key === 'xt') return obj(expr['xt'])?.['type'] === 'target';
  return VERDICTS.has(key);
}

function xtTarget(expr: Record<string, Json>): Record<string, Json> {
  const name = String(obj(expr['xt'])?.['name']);
  if (name === 'REJECT') return { reject: null };
  if (name === 'RETURN') return { return: null };
  if (
    ['DNAT', 'SNAT', 'MASQUERADE', 'LOG', 'MARK', 'CT', 'TCPMSS', 'CONNMARK', 'NOTRACK', 'NFLOG'].includes(
      name,
    )
  )
    return { continue: null };
  return { queue: null, why: name };
}

function splitLive(
  ctx: EvalContext,
  chain: NftChain,
  rule: NftRule,
  live: Live[],
  split: (f: Flow) => Split,
  out: Piece[],
): Live[] {
  const next: Live[] = [];
  for (const l of live) {
    const s = split(l.flow);
    if (!isEmpty(s.no)) {
      const f = withSrc(l.flow, s.no);
      if (s.noteNo) f.notes.push(s.noteNo);
      step(f, chain, rule, 'no match');
      out.push(terminal(f, 'next', rule, chain));
    }
    if (!isEmpty(s.yes)) {
      const f = withSrc(l.flow, s.yes);
      if (s.note) f.notes.push(s.note);
      next.push({ flow: f, maybe: l.maybe });
    }
    if (!isEmpty(s.maybe)) next.push({ flow: withSrc(l.flow, s.maybe), maybe: l.maybe ?? s.why });
  }
  return next;
}

function runRule(ctx: EvalContext, chain: NftChain, rule: NftRule, flow: Flow): Piece[] {
  let live: Live[] = [{ flow, maybe: null }];
  const out: Piece[] = [];
  for (const item of rule.expr) {
    const expr = obj(item);
    if (!expr || live.length === 0) continue;
    if (verdictOf(expr)) {
      const v = obj(expr['xt']) ? xtTarget(expr) : expr;
      for (const l of live) {
        step(l.flow, chain, rule, l.maybe === null ? 'match' : 'maybe', describeExpr(v));
        out.push(
          ...(l.maybe === null
            ? applyVerdict(ctx, chain, rule, v, l.flow)
            : maybeVerdict(ctx, chain, rule, v, l.flow, l.maybe)),
        );
      }
      return out;
    }
    if (isMatcher(expr)) {
      live = splitLive(
        ctx,
        chain,
        rule,
        live,
        (f) => matcher(ctx, rule, expr, f) ?? uniform(f.src, true),
        out,
      );
      continue;
    }
    for (const l of live) if (l.maybe === null) applyStatement(expr, l.flow);
  }
  for (const l of live) {
    step(l.flow, chain, rule, l.maybe === null ? 'match' : 'maybe');
    out.push(terminal(l.flow, 'next', rule, chain));
  }
  return out;
}

/** A terminal verdict meets an earlier pending one: the same verdict agrees, another is unknown. */
function settle(p: Piece): Piece {
  const pending = p.flow.pending;
  if (!pending || p.kind === 'next' || p.kind === 'unknown') return p;
  p.flow.pending = null;
  if (pending.kind === p.kind) return p;
  return { ...p, kind: 'unknown', why: `${pending.why} (then ${pending.kind}, else ${p.kind})` };
}

/** Runs a chain's rules over flows; `next` pieces fell off the end. */
export function runRules(ctx: EvalContext, chain: NftChain, flows: Flow[]): Piece[] {
  let live = flows;
  const out: Piece[] = [];
  for (const rule of chain.rules) {
    if (live.length === 0) break;
    const next: Flow[] = [];
    for (const f of live)
      for (const p of runRule(ctx, chain, rule, f)) {
        if (p.kind === 'next') next.push(p.flow);
        else out.push(p);
      }
    live = next;
  }
  for (const f of live) out.push(terminal(f, 'next', null, chain));
  return out.map((p) => {
    const pending = p.flow.pending;
    // A pending return of this chain agrees with leaving it.
    if (
      (p.kind === 'next' || p.kind === 'return') &&
      pending?.kind === 'return' &&
      pending.depth === ctx.depth
    ) {
      p.flow.pending = null;
      return p;
    }
    if (p.kind === 'return' && pending?.depth === ctx.depth) return p;
    return p.kind === 'return' ? p : settle(p);
  });
}

/** Runs a base chain: falling off the end or a return applies its policy. */
export function runBaseChain(ctx: EvalContext, chain: NftChain, flows: Flow[]): Piece[] {
  for (const f of flows) step(f, chain, null, 'enter');
  return runRules(ctx, chain, flows).map((p) => {
    if (p.kind !== 'next' && p.kind !== 'return') return p;
    step(p.flow, chain, null, 'policy', chain.policy);
    return settle({ ...p, kind: chain.policy, rule: null });
  });
}
