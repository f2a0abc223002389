import ipaddr from 'ipaddr.js';
import { PortwardenError } from '../errors.ts';

/**
 * A static evaluator for the ruleset the kernel has loaded, read from `nft -j list ruleset` (which
 * also shows iptables-nft, ufw, firewalld and Docker rules). It decides what happens to the first
 * packet of a NEW connection with nftables semantics: every base chain of a hook runs in priority
 * order, an accept only ends its own chain, a drop or reject ends everything. Anything it cannot
 * model (xt extensions, concatenations, queue, ...) makes the answer `unknown`, with the reason —
 * unless both outcomes of that expression lead to the same verdict.
 */

export type Family = 4 | 6;
export type Verdict = 'accept' | 'drop' | 'reject' | 'unknown';
export type Hook = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';

type Json = unknown;

export interface NftChain {
  family: string;
  table: string;
  name: string;
  hook: Hook | null;
  type: string | null;
  prio: number;
  policy: 'accept' | 'drop';
  rules: NftRule[];
}

export interface NftRule {
  family: string;
  table: string;
  chain: string;
  handle: number;
  comment: string | null;
  expr: Json[];
  /** The same rule as `iptables-save` prints it, for rules with xt extensions nft shows only by name. */
  iptables: string | null;
}

/**
 * `iptables-save` / `ip6tables-save` output as rule lines per "family table chain", in order. nft
 * prints iptables extensions (conntrack, multiport, ...) only by name; the save output has them.
 */
export function parseIptablesSave(text: string, family: 'ip' | 'ip6'): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let table = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    const match = /^-A (\S+) (.*)$/.exec(line);
    if (!match?.[1] || !table) continue;
    const key = `${family} ${table} ${match[1]}`;
    const list = out.get(key);
    if (list) list.push(match[2] ?? '');
    else out.set(key, [match[2] ?? '']);
  }
  return out;
}

export interface NftSet {
  family: string;
  table: string;
  name: string;
  /** Elements: keys (sets) or [key, verdict] pairs (verdict maps). */
  elem: Json[];
  isMap: boolean;
}

export interface Ruleset {
  tables: { family: string; name: string }[];
  chains: NftChain[];
  sets: NftSet[];
}

function obj(value: Json): Record<string, Json> | null {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, Json>)
    : null;
}

/** Parses `nft -j list ruleset` output into the model the evaluator walks. */
export function parseNftJson(text: string, iptablesSave: ReadonlyMap<string, string[]> = new Map()): Ruleset {
  let data: Json;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new PortwardenError('RULESET_INVALID', `the ruleset is not JSON: ${(error as Error).message}`, {
      hint: 'pass the output of `nft -j list ruleset`',
    });
  }
  const list = obj(data)?.['nftables'];
  if (!Array.isArray(list)) {
    throw new PortwardenError('RULESET_INVALID', 'the ruleset JSON has no "nftables" array', {
      hint: 'pass the output of `nft -j list ruleset`',
    });
  }
  const ruleset: Ruleset = { tables: [], chains: [], sets: [] };
  const chainKey = (f: string, t: string, n: string): string => `${f}\u0000${t}\u0000${n}`;
  const chains = new Map<string, NftChain>();
  const rules: NftRule[] = [];
  for (const item of list) {
    const entry = obj(item);
    if (!entry) continue;
    const table = obj(entry['table']);
    const chain = obj(entry['chain']);
    const rule = obj(entry['rule']);
    const set = obj(entry['set']) ?? obj(entry['map']);
    if (table) ruleset.tables.push({ family: String(table['family']), name: String(table['name']) });
    if (chain) {
      const c: NftChain = {
        family: String(chain['family']),
        table: String(chain['table']),
        name: String(chain['name']),
        hook: typeof chain['hook'] === 'string' ? (chain['hook'] as Hook) : null,
        type: typeof chain['type'] === 'string' ? chain['type'] : null,
        prio: typeof chain['prio'] === 'number' ? chain['prio'] : 0,
        policy: chain['policy'] === 'drop' ? 'drop' : 'accept',
        rules: [],
      };
      chains.set(chainKey(c.family, c.table, c.name), c);
      ruleset.chains.push(c);
    }
    if (rule) {
      rules.push({
        family: String(rule['family']),
        table: String(rule['table']),
        chain: String(rule['chain']),
        handle: typeof rule['handle'] === 'number' ? rule['handle'] : 0,
        comment: typeof rule['comment'] === 'string' ? rule['comment'] : null,
        expr: Array.isArray(rule['expr']) ? rule['expr'] : [],
        iptables: null,
      });
    }
    if (set) {
      ruleset.sets.push({
        family: String(set['family']),
        table: String(set['table']),
        name: String(set['name']),
        elem: Array.isArray(set['elem']) ? set['elem'] : [],
        isMap: entry['map'] !== undefined,
      });
    }
  }
  for (const rule of rules) chains.get(chainKey(rule.family, rule.table, rule.chain))?.rules.push(rule);
  for (const chain of ruleset.chains) {
    const saved = iptablesSave.get(`${chain.family} ${chain.table} ${chain.name}`);
    // Same rules in the same order: pair them up only when the counts agree.
    if (saved && saved.length === chain.rules.length)
      chain.rules.forEach((r, i) => (r.iptables = saved[i] ?? null));
  }
  return ruleset;
}

/** The first packet of a new connection, as the evaluator sees it. */
export interface Packet {
  family: Family;
  protocol: 'tcp' | 'udp';
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  iifname?: string;
  oifname?: string;
  /** Whether daddr is an address of this host (fib daddr type local). */
  daddrLocal: boolean;
  /** Connection tracking status bits already set (e.g. dnat after a DNAT in prerouting). */
  ctStatus?: readonly string[];
}

export interface Decision {
  verdict: Verdict;
  /** The rule that decided (or the chain policy when `rule` is null). */
  table: string | null;
  chain: string | null;
  handle: number | null;
  comment: string | null;
  /** What the evaluator could not model, when it matters to the verdict. */
  reasons: string[];
}

type Tri = true | false | 'unknown';

interface Ctx {
  ruleset: Ruleset;
  packet: Packet;
  reasons: Set<string>;
  depth: number;
}

// ---------------------------------------------------------------------------------------------
// Values

type Value = number | string | null;

/** The packet has no such field (an IPv6 packet has no `ip saddr`) / the evaluator cannot know it. */
const ABSENT = Symbol('absent');
const UNKNOWN = Symbol('unknown');

function fieldValue(left: Record<string, Json>, p: Packet): Value | typeof UNKNOWN | typeof ABSENT {
  const meta = obj(left['meta']);
  if (meta) {
    switch (meta['key']) {
      case 'iifname':
      case 'iif':
        return p.iifname ?? ABSENT;
      case 'oifname':
      case 'oif':
        return p.oifname ?? ABSENT;
      case 'l4proto':
      case 'protocol':
        return meta['key'] === 'protocol' ? (p.family === 4 ? 'ip' : 'ip6') : p.protocol;
      case 'nfproto':
        return p.family === 4 ? 'ipv4' : 'ipv6';
      case 'mark':
        return 0;
      case 'skuid':
      case 'skgid':
      case 'cgroup':
        return UNKNOWN;
      default:
        return UNKNOWN;
    }
  }
  const payload = obj(left['payload']);
  if (payload) {
    const proto = payload['protocol'];
    const field = payload['field'];
    if (proto === 'ip' || proto === 'ip6') {
      if ((proto === 'ip') !== (p.family === 4)) return ABSENT;
      if (field === 'saddr') return p.saddr;
      if (field === 'daddr') return p.daddr;
      if (field === 'protocol' || field === 'nexthdr') return p.protocol;
      return UNKNOWN;
    }
    if (proto === 'tcp' || proto === 'udp' || proto === 'th') {
      if (proto !== 'th' && proto !== p.protocol) return ABSENT;
      if (field === 'dport') return p.dport;
      if (field === 'sport') return p.sport;
      if (field === 'flags') return UNKNOWN;
      return UNKNOWN;
    }
    if (
      proto === 'icmp' ||
      proto === 'icmpv6' ||
      proto === 'sctp' ||
      proto === 'dccp' ||
      proto === 'esp' ||
      proto === 'ah'
    )
      return ABSENT;
    return UNKNOWN;
  }
  const ct = obj(left['ct']);
  if (ct) {
    if (ct['key'] === 'state') return 'new';
    if (ct['key'] === 'status') return (p.ctStatus ?? []).join(',') || 'none';
    if (ct['key'] === 'direction') return 'original';
    if (ct['key'] === 'helper') return null;
    return UNKNOWN;
  }
  const fib = obj(left['fib']);
  if (fib && fib['result'] === 'type') {
    const flags = Array.isArray(fib['flags']) ? fib['flags'] : [];
    if (flags.includes('daddr') && !flags.includes('iif') && !flags.includes('oif'))
      return p.daddrLocal ? 'local' : 'unicast';
    return UNKNOWN;
  }
  return UNKNOWN;
}

function addrIn(address: string, family: Family, addr: string, len: number): boolean {
  try {
    const a = ipaddr.parse(address);
    const b = ipaddr.parse(addr);
    if (a.kind() !== b.kind()) return false;
    return a.match(b, len);
  } catch {
    return false;
  }
}

function toBig(address: string): bigint | null {
  try {
    const bytes = ipaddr.parse(address).toByteArray();
    return bytes.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
  } catch {
    return null;
  }
}

/** Whether a concrete value equals / is inside one element of nft JSON. */
function elementMatches(value: Value, element: Json, family: Family): Tri {
  if (value === null) return false;
  if (typeof element === 'number' || typeof element === 'string') {
    if (typeof element === 'string' && typeof value === 'string' && element.endsWith('*'))
      return value.startsWith(element.slice(0, -1));
    if (
      typeof value === 'string' &&
      typeof element === 'string' &&
      value.includes(':') === element.includes(':') &&
      ipaddr.isValid(value) &&
      ipaddr.isValid(element)
    ) {
      return ipaddr.parse(value).toString() === ipaddr.parse(element).toString();
    }
    return value === element;
  }
  const e = obj(element);
  if (!e) return 'unknown';
  const inner = obj(e['elem']);
  if (inner) return elementMatches(value, inner['val'] ?? null, family);
  const prefix = obj(e['prefix']);
  if (prefix && typeof value === 'string')
    return addrIn(value, family, String(prefix['addr']), Number(prefix['len']));
  const range = e['range'];
  if (Array.isArray(range) && range.length === 2) {
    const [lo, hi] = range as [Json, Json];
    if (typeof value === 'number' && typeof lo === 'number' && typeof hi === 'number')
      return lo <= value && value <= hi;
    if (typeof value === 'string' && typeof lo === 'string' && typeof hi === 'string') {
      const v = toBig(value);
      const l = toBig(lo);
      const h = toBig(hi);
      if (v === null || l === null || h === null) return false;
      return l <= v && v <= h;
    }
    return 'unknown';
  }
  if (e['concat'] !== undefined) return 'unknown';
  return 'unknown';
}

function findSet(ctx: Ctx, rule: NftRule, name: string): NftSet | undefined {
  return ctx.ruleset.sets.find((s) => s.family === rule.family && s.table === rule.table && s.name === name);
}

function inElements(value: Value, elements: readonly Json[], family: Family): Tri {
  let unknown = false;
  for (const element of elements) {
    const r = elementMatches(value, element, family);
    if (r === true) return true;
    if (r === 'unknown') unknown = true;
  }
  return unknown ? 'unknown' : false;
}

function describe(expr: Json): string {
  const text = JSON.stringify(expr);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

function evalMatch(ctx: Ctx, rule: NftRule, match: Record<string, Json>): Tri {
  const left = obj(match['left']);
  const op = typeof match['op'] === 'string' ? match['op'] : '==';
  if (!left) {
    ctx.reasons.add(`match ${describe(match)}`);
    return 'unknown';
  }
  const value = fieldValue(left, ctx.packet);
  // nft adds an implicit protocol dependency: `ip saddr != x` never matches an IPv6 packet.
  if (value === ABSENT) return false;
  if (value === UNKNOWN) {
    ctx.reasons.add(`expression ${describe(left)}`);
    return 'unknown';
  }
  const right = match['right'];
  let result: Tri;
  if (obj(left['ct']) && (obj(left['ct'])?.['key'] === 'state' || obj(left['ct'])?.['key'] === 'status')) {
    const wanted = Array.isArray(right) ? right.map(String) : [String(right)];
    const have = String(value).split(',');
    result = wanted.some((w) => have.includes(w));
    return op === '!=' ? !result : result;
  }
  if (typeof right === 'string' && right.startsWith('@')) {
    const set = findSet(ctx, rule, right.slice(1));
    if (!set) {
      ctx.reasons.add(`set ${right} not found`);
      return 'unknown';
    }
    result = inElements(value, set.elem, ctx.packet.family);
  } else if (obj(right)?.['set'] !== undefined) {
    const elements = obj(right)?.['set'];
    result = inElements(value, Array.isArray(elements) ? elements : [elements ?? null], ctx.packet.family);
  } else if (op === '<' || op === '>' || op === '<=' || op === '>=') {
    if (typeof value !== 'number' || typeof right !== 'number') {
      ctx.reasons.add(`comparison ${describe(match)}`);
      return 'unknown';
    }
    return op === '<'
      ? value < right
      : op === '>'
        ? value > right
        : op === '<='
          ? value <= right
          : value >= right;
  } else {
    result = elementMatches(value, right ?? null, ctx.packet.family);
  }
  if (result === 'unknown') {
    ctx.reasons.add(`match ${describe(match)}`);
    return 'unknown';
  }
  return op === '!=' ? !result : result;
}

// ---------------------------------------------------------------------------------------------
// Chains

interface Outcome {
  kind: 'accept' | 'drop' | 'reject' | 'return' | 'next' | 'unknown';
  rule: NftRule | null;
}

const VERDICT_KEYS = ['accept', 'drop', 'reject', 'return', 'continue', 'jump', 'goto', 'queue'] as const;

function findChain(ctx: Ctx, rule: NftRule, name: string): NftChain | undefined {
  return ctx.ruleset.chains.find(
    (c) => c.family === rule.family && c.table === rule.table && c.name === name,
  );
}

function applyVerdict(ctx: Ctx, rule: NftRule, verdict: Record<string, Json>): Outcome {
  if ('accept' in verdict) return { kind: 'accept', rule };
  if ('drop' in verdict) return { kind: 'drop', rule };
  if ('reject' in verdict) return { kind: 'reject', rule };
  if ('return' in verdict) return { kind: 'return', rule };
  if ('continue' in verdict) return { kind: 'next', rule };
  const jump = obj(verdict['jump']) ?? obj(verdict['goto']);
  if (jump) {
    const target = findChain(ctx, rule, String(jump['target']));
    if (!target || ctx.depth > 32) {
      ctx.reasons.add(`jump to ${String(jump['target'])}`);
      return { kind: 'unknown', rule };
    }
    ctx.depth++;
    const result = runRules(ctx, target.rules, 0);
    ctx.depth--;
    if (result.kind === 'return' || result.kind === 'next')
      return 'goto' in verdict ? { kind: 'return', rule } : { kind: 'next', rule };
    return result;
  }
  ctx.reasons.add(`verdict ${describe(verdict)}`);
  return { kind: 'unknown', rule };
}

/** Runs rules[from..] of a chain; `next` means "fell off the end". */
function runRules(ctx: Ctx, rules: readonly NftRule[], from: number): Outcome {
  for (let i = from; i < rules.length; i++) {
    const rule = rules[i];
    if (!rule) continue;
    const out = runRule(ctx, rule, 0);
    if (out.kind === 'next') continue;
    if (out.kind === 'unknown-match') {
      // Explore both ways: the rule matched (continue its expressions) or did not (next rule).
      const matched = runRule(ctx, rule, out.index + 1);
      const taken =
        matched.kind === 'next' || matched.kind === 'unknown-match' ? runRules(ctx, rules, i + 1) : matched;
      const skipped = runRules(ctx, rules, i + 1);
      if (taken.kind === skipped.kind) return skipped;
      return { kind: 'unknown', rule };
    }
    return out;
  }
  return { kind: 'next', rule: null };
}

type RuleOutcome = Outcome | { kind: 'unknown-match'; index: number };

function runRule(ctx: Ctx, rule: NftRule, start: number): RuleOutcome {
  for (let i = start; i < rule.expr.length; i++) {
    const expr = obj(rule.expr[i]);
    if (!expr) continue;
    const match = obj(expr['match']);
    if (match) {
      const r = evalMatch(ctx, rule, match);
      if (r === false) return { kind: 'next', rule };
      if (r === 'unknown') return { kind: 'unknown-match', index: i };
      continue;
    }
    const vmap = obj(expr['vmap']);
    if (vmap) {
      const key = obj(vmap['key']);
      const value = key ? fieldValue(key, ctx.packet) : UNKNOWN;
      const data = vmap['data'];
      const pairs: Json[] =
        typeof data === 'string' && data.startsWith('@')
          ? (findSet(ctx, rule, data.slice(1))?.elem ?? [])
          : Array.isArray(obj(data)?.['set'])
            ? (obj(data)?.['set'] as Json[])
            : [];
      if (value === UNKNOWN) {
        ctx.reasons.add(`vmap key ${describe(key)}`);
        return { kind: 'unknown', rule };
      }
      if (value === ABSENT) return { kind: 'next', rule };
      for (const pair of pairs) {
        if (!Array.isArray(pair) || pair.length !== 2) continue;
        const hit = elementMatches(value, pair[0] as Json, ctx.packet.family);
        if (hit === 'unknown') return { kind: 'unknown', rule };
        if (hit) {
          const verdict = obj(pair[1] as Json);
          return verdict ? applyVerdict(ctx, rule, verdict) : { kind: 'unknown', rule };
        }
      }
      return { kind: 'next', rule };
    }
    const key = Object.keys(expr)[0] ?? '';
    if ((VERDICT_KEYS as readonly string[]).includes(key)) {
      if (key === 'queue') {
        ctx.reasons.add('queue verdict (userspace decides)');
        return { kind: 'unknown', rule };
      }
      return applyVerdict(ctx, rule, expr);
    }
    if (key === 'xt') {
      const xt = obj(expr['xt']);
      const name = String(xt?.['name']);
      if (xt?.['type'] === 'match') {
        const known = xtMatch(name, rule.iptables, ctx.packet);
        if (known === true) continue;
        if (known === false) return { kind: 'next', rule };
      } else if (
        xt?.['type'] === 'target' &&
        [
          'DNAT',
          'SNAT',
          'MASQUERADE',
          'LOG',
          'MARK',
          'CT',
          'TCPMSS',
          'CONNMARK',
          'NOTRACK',
          'RETURN',
        ].includes(name)
      ) {
        if (name === 'RETURN') return { kind: 'return', rule };
        continue; // nat and bookkeeping targets do not decide a filter verdict
      } else if (xt?.['type'] === 'target' && name === 'REJECT') {
        return { kind: 'reject', rule };
      }
      ctx.reasons.add(
        `iptables extension ${String(xt?.['type'])} ${name}${rule.iptables ? ` (${rule.iptables})` : ' (run iptables-save to see it)'}`,
      );
      return xt?.['type'] === 'match' ? { kind: 'unknown-match', index: i } : { kind: 'unknown', rule };
    }
    if (key === 'limit') {
      // A rate limit matches until the rate is exceeded; one first packet is under it.
      continue;
    }
    // counter, log, comment, meta/ct set, mangle, nat statements: no effect on the filter verdict.
  }
  return { kind: 'next', rule };
}

function portList(text: string): [number, number][] {
  return text.split(',').map((item) => {
    const [a = '', b = a] = item.split(':');
    return [Number(a), Number(b)];
  });
}

/**
 * Decides the iptables extension matches that matter for a NEW packet from the rule's
 * iptables-save text; undefined when it cannot (the caller then says unknown).
 */
export function xtMatch(name: string, text: string | null, packet: Packet): boolean | undefined {
  if (text === null) return undefined;
  const arg = (flag: string): string | undefined => {
    const match = new RegExp(`(!\\s+)?${flag}\\s+(\\S+)`).exec(text);
    return match?.[2] === undefined ? undefined : `${match[1] ? '!' : ''}${match[2]}`;
  };
  const negated = (value: string): [boolean, string] =>
    value.startsWith('!') ? [true, value.slice(1)] : [false, value];
  switch (name) {
    case 'conntrack':
    case 'state': {
      const value = arg(name === 'state' ? '--state' : '--ctstate');
      if (value === undefined)
        return text.includes('--ctstatus') && text.includes('DNAT')
          ? (packet.ctStatus ?? []).includes('dnat')
          : undefined;
      const [not, states] = negated(value);
      const hit = states.split(',').includes('NEW');
      return not ? !hit : hit;
    }
    case 'multiport': {
      const value = arg('--dports') ?? arg('--destination-ports') ?? arg('--ports');
      if (value === undefined) return undefined;
      const [not, list] = negated(value);
      const hit = portList(list).some(([a, b]) => a <= packet.dport && packet.dport <= b);
      return not ? !hit : hit;
    }
    case 'comment':
    case 'limit':
    case 'hashlimit':
    case 'recent':
      return name === 'recent' ? undefined : true;
    case 'addrtype': {
      const value = arg('--dst-type');
      if (value === undefined) return undefined;
      const [not, type] = negated(value);
      const hit = type === 'LOCAL' ? packet.daddrLocal : type === 'UNICAST' ? true : false;
      return not ? !hit : hit;
    }
    case 'tcp':
    case 'udp': {
      if (packet.protocol !== name) return false;
      const value = arg('--dport') ?? arg('--destination-port');
      if (value === undefined)
        return text.includes('--tcp-flags') || text.includes('--syn') ? undefined : true;
      const [not, list] = negated(value);
      const hit = portList(list).some(([a, b]) => a <= packet.dport && packet.dport <= b);
      return not ? !hit : hit;
    }
    default:
      return undefined;
  }
}

function runChain(ctx: Ctx, chain: NftChain): Outcome {
  const out = runRules(ctx, chain.rules, 0);
  if (out.kind === 'next' || out.kind === 'return') return { kind: chain.policy, rule: null };
  return out;
}

function familyApplies(chainFamily: string, family: Family): boolean {
  return (
    chainFamily === 'inet' ||
    (chainFamily === 'ip' && family === 4) ||
    (chainFamily === 'ip6' && family === 6)
  );
}

/** Base chains (filter-like, not nat) of a hook for a family, in the order the kernel runs them. */
export function baseChains(ruleset: Ruleset, hook: Hook, family: Family): NftChain[] {
  return ruleset.chains
    .filter((c) => c.hook === hook && c.type !== 'nat' && familyApplies(c.family, family))
    .sort((a, b) => a.prio - b.prio);
}

/** What the hooks do to the packet: accepted only if every base chain of every hook accepts it. */
export function evaluate(ruleset: Ruleset, hooks: readonly Hook[], packet: Packet): Decision {
  const ctx: Ctx = { ruleset, packet, reasons: new Set(), depth: 0 };
  let unknown: Decision | null = null;
  for (const hook of hooks) {
    for (const chain of baseChains(ruleset, hook, packet.family)) {
      const out = runChain(ctx, chain);
      const decision: Decision = {
        verdict: out.kind === 'accept' || out.kind === 'drop' || out.kind === 'reject' ? out.kind : 'unknown',
        table: `${chain.family} ${chain.table}`,
        chain: chain.name,
        handle: out.rule?.handle ?? null,
        comment: out.rule?.comment ?? (out.rule ? null : `policy ${chain.policy}`),
        reasons: [...ctx.reasons],
      };
      if (decision.verdict === 'drop' || decision.verdict === 'reject') return decision;
      if (decision.verdict === 'unknown') unknown ??= decision;
    }
  }
  if (unknown) return { ...unknown, reasons: [...ctx.reasons] };
  return {
    verdict: 'accept',
    table: null,
    chain: null,
    handle: null,
    comment: null,
    reasons: [...ctx.reasons],
  };
}

/** Inbound: prerouting filter chains, then input. */
export function evaluateInbound(ruleset: Ruleset, packet: Packet): Decision {
  return evaluate(ruleset, ['prerouting', 'input'], packet);
}

/** Outbound from a local process: output, then postrouting filter chains. */
export function evaluateOutbound(ruleset: Ruleset, packet: Packet): Decision {
  return evaluate(ruleset, ['output', 'postrouting'], packet);
}

/** Forwarded (e.g. DNAT'ed to a container): prerouting, forward, postrouting. */
export function evaluateForward(ruleset: Ruleset, packet: Packet): Decision {
  return evaluate(ruleset, ['prerouting', 'forward', 'postrouting'], {
    ...packet,
    ctStatus: [...(packet.ctStatus ?? []), 'dnat'],
  });
}

/** A DNAT found in a nat prerouting chain: which port goes where. */
export interface DnatRule {
  table: string;
  chain: string;
  handle: number;
  protocol: 'tcp' | 'udp' | null;
  port: number | null;
  iifname: string | null;
  /** Translated destination, or null when the rule is an xt target whose details nft cannot show. */
  toAddress: string | null;
  toPort: number | null;
  family: Family | null;
}

/** Lists the DNAT rules of nat prerouting chains (native and iptables-nft). */
export function findDnatRules(ruleset: Ruleset): DnatRule[] {
  const out: DnatRule[] = [];
  for (const chain of ruleset.chains.filter((c) => c.type === 'nat')) {
    const walk = (rules: readonly NftRule[], depth: number): void => {
      for (const rule of rules) {
        let protocol: DnatRule['protocol'] = null;
        let port: number | null = null;
        let iifname: string | null = null;
        for (const e of rule.expr) {
          const m = obj(obj(e)?.['match']);
          const left = obj(m?.['left']);
          const payload = obj(left?.['payload']);
          if (
            payload &&
            (payload['protocol'] === 'tcp' || payload['protocol'] === 'udp') &&
            payload['field'] === 'dport' &&
            typeof m?.['right'] === 'number'
          ) {
            protocol = payload['protocol'];
            port = m['right'];
          }
          if (
            obj(left?.['meta'])?.['key'] === 'iifname' &&
            typeof m?.['right'] === 'string' &&
            m['op'] === '=='
          )
            iifname = m['right'];
          const dnat = obj(obj(e)?.['dnat']);
          const xt = obj(obj(e)?.['xt']);
          const jump = obj(obj(e)?.['jump']);
          if (dnat) {
            const addr = typeof dnat['addr'] === 'string' ? dnat['addr'] : null;
            out.push({
              table: `${chain.family} ${chain.table}`,
              chain: rule.chain,
              handle: rule.handle,
              protocol,
              port,
              iifname,
              toAddress: addr,
              toPort: typeof dnat['port'] === 'number' ? dnat['port'] : port,
              family: dnat['family'] === 'ip6' || (addr?.includes(':') ?? false) ? 6 : 4,
            });
          } else if (xt?.['type'] === 'target' && xt['name'] === 'DNAT') {
            // Details come from iptables-save when it was read: --to-destination 172.17.0.2:80
            const to = /--to-destination (\[[^\]]+\]|[^:\s]+)(?::(\d+))?/.exec(rule.iptables ?? '');
            const savedPort = /--dport (\d+)/.exec(rule.iptables ?? '')?.[1];
            const savedProto = /-p (tcp|udp)/.exec(rule.iptables ?? '')?.[1];
            out.push({
              table: `${chain.family} ${chain.table}`,
              chain: rule.chain,
              handle: rule.handle,
              protocol: protocol ?? (savedProto === 'tcp' || savedProto === 'udp' ? savedProto : null),
              port: port ?? (savedPort ? Number(savedPort) : null),
              iifname,
              toAddress: to?.[1]?.replace(/^\[|\]$/g, '') ?? null,
              toPort: to?.[2] ? Number(to[2]) : null,
              family: chain.family === 'ip6' ? 6 : 4,
            });
          } else if (jump && depth < 8) {
            const target = ruleset.chains.find(
              (c) => c.family === rule.family && c.table === rule.table && c.name === jump['target'],
            );
            if (target) walk(target.rules, depth + 1);
          }
        }
      }
    };
    if (chain.hook === 'prerouting' || chain.hook === 'output') walk(chain.rules, 0);
  }
  return out;
}

/** Who wrote which tables, and whether input is filtered at all. */
export interface RulesetSummary {
  loaded: boolean;
  inputChains: number;
  /** True when no input base chain drops or rejects anything: default accept. */
  inputDefaultAccept: boolean;
  tools: string[];
  tables: string[];
}

export function summarizeRuleset(ruleset: Ruleset): RulesetSummary {
  const input = ruleset.chains.filter((c) => c.hook === 'input' && c.type !== 'nat');
  const dropsSomething = input.some(
    (c) =>
      c.policy === 'drop' ||
      c.rules.some((r) =>
        r.expr.some(
          (e) =>
            ['drop', 'reject'].includes(Object.keys(obj(e) ?? {})[0] ?? '') ||
            JSON.stringify(e).includes('"DROP"') ||
            JSON.stringify(e).includes('"REJECT"') ||
            obj(e)?.['jump'] !== undefined,
        ),
      ),
  );
  const names = ruleset.chains.map((c) => `${c.table}/${c.name}`).join(' ');
  const tools: string[] = [];
  if (/ufw-/.test(names)) tools.push('ufw');
  if (/DOCKER/.test(names)) tools.push('docker');
  if (ruleset.tables.some((t) => t.name === 'firewalld')) tools.push('firewalld');
  if (/LIBVIRT_/.test(names)) tools.push('libvirt');
  if (ruleset.tables.some((t) => t.name === 'portwarden')) tools.push('portwarden');
  if (
    ruleset.tables.some(
      (t) => (t.family === 'ip' || t.family === 'ip6') && ['filter', 'nat', 'mangle', 'raw'].includes(t.name),
    ) &&
    !tools.includes('ufw')
  )
    tools.push('iptables');
  return {
    loaded: ruleset.chains.some((c) => c.hook !== null),
    inputChains: input.length,
    inputDefaultAccept: !dropsSomething,
    tools,
    tables: ruleset.tables.map((t) => `${t.family} ${t.name}`),
  };
}

/** Source prefixes the ruleset names in saddr matches: candidates for "reachable only from". */
export function mentionedSources(ruleset: Ruleset, family: Family): string[] {
  const out = new Set<string>();
  const visit = (value: Json): void => {
    const e = obj(value);
    const prefix = obj(e?.['prefix']);
    if (prefix) out.add(`${String(prefix['addr'])}/${String(prefix['len'])}`);
    else if (typeof value === 'string' && ipaddr.isValid(value)) out.add(value);
    else if (Array.isArray(value)) value.forEach(visit);
    else if (e?.['set'] !== undefined) visit(e['set']);
  };
  for (const chain of ruleset.chains) {
    for (const rule of chain.rules) {
      for (const e of rule.expr) {
        const m = obj(obj(e)?.['match']);
        const payload = obj(obj(m?.['left'])?.['payload']);
        if (payload?.['field'] !== 'saddr') continue;
        const right = m?.['right'];
        if (typeof right === 'string' && right.startsWith('@')) {
          const set = ruleset.sets.find(
            (s) => s.family === rule.family && s.table === rule.table && s.name === right.slice(1),
          );
          set?.elem.forEach(visit);
        } else visit(right ?? null);
      }
    }
  }
  return [...out].filter((s) => (s.includes(':') ? 6 : 4) === family);
}
