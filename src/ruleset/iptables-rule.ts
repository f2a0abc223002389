import type { NftChain, NftRule } from './ruleset.ts';

/**
 * Translates iptables-save rule lines into the nft JSON expressions the evaluator already knows, so
 * iptables-legacy (x_tables) and the xt extensions iptables-nft shows only by name are evaluated by
 * the same code. Matches without an nft equivalent are decided here for the probe packet — the first
 * packet of a connection from a source never seen before — as `{ pw: { result, why, note } }`.
 */

type Json = unknown;

/** An already-decided match: true/false, or null (unknown) with why. */
export interface DecidedMatch {
  result: boolean | null;
  why: string;
  /** Said when the match is taken, e.g. "rate-limited". */
  note?: string;
  /** Said when it is not (a recent/hashlimit limit the first packet passes). */
  noteIfNot?: string;
}

export interface TranslatedRule {
  expr: Json[];
}

/** Splits a save line into words, keeping "quoted strings" whole. */
export function tokenize(line: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line))
    out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] ?? ''));
  return out;
}

const payload = (protocol: string, field: string) => ({ payload: { protocol, field } });
const meta = (key: string) => ({ meta: { key } });
const match = (left: Json, right: Json, not: boolean, op = '==') => ({
  match: { op: not ? '!=' : op, left, right },
});
const decided = (m: DecidedMatch) => ({ pw: m });

function address(text: string): Json {
  const [addr = '', len] = text.split('/');
  if (len === undefined) return addr;
  if (/^\d+$/.test(len)) return { prefix: { addr, len: Number(len) } };
  return { prefix: { addr, len: maskLength(len) } };
}

function maskLength(mask: string): number {
  return mask.split('.').reduce((n, octet) => n + Number(octet).toString(2).replace(/0/g, '').length, 0);
}

function ports(text: string): Json {
  const items = text.split(',').map((item) => {
    const [a = '', b] = item.split(':');
    return b === undefined ? Number(a) : { range: [Number(a || 0), Number(b || 65535)] };
  });
  return items.length === 1 ? items[0] : { set: items };
}

const CT_STATES: Readonly<Record<string, string>> = {
  NEW: 'new',
  ESTABLISHED: 'established',
  RELATED: 'related',
  INVALID: 'invalid',
  UNTRACKED: 'untracked',
};

/** Reads words one at a time, with the `!` that may precede an option. */
class Words {
  i = 0;
  constructor(readonly list: string[]) {}
  next(): string | undefined {
    return this.list[this.i++];
  }
  peek(): string | undefined {
    return this.list[this.i];
  }
  /** The option's value; `!` may also sit between option and value in older save output. */
  value(): [string, boolean] {
    let not = false;
    if (this.peek() === '!') {
      not = true;
      this.i++;
    }
    return [this.next() ?? '', not];
  }
}

interface State {
  expr: Json[];
  protocol: string | null;
  family: 'ip' | 'ip6';
}

function basicOption(opt: string, w: Words, not: boolean, s: State): boolean {
  const ipProto = s.family;
  switch (opt) {
    case '-s':
    case '--source':
      s.expr.push(match(payload(ipProto, 'saddr'), address(w.value()[0]), not));
      return true;
    case '-d':
    case '--destination':
      s.expr.push(match(payload(ipProto, 'daddr'), address(w.value()[0]), not));
      return true;
    case '-i':
    case '--in-interface':
    case '-o':
    case '--out-interface': {
      const name = w.value()[0].replace(/\+$/, '*');
      s.expr.push(
        match(meta(opt.startsWith('-i') || opt === '--in-interface' ? 'iifname' : 'oifname'), name, not),
      );
      return true;
    }
    case '-p':
    case '--protocol': {
      const proto = w.value()[0].toLowerCase();
      s.protocol = proto;
      if (proto !== 'all' && proto !== '0')
        s.expr.push(match(meta('l4proto'), proto === 'icmpv6' ? 'ipv6-icmp' : proto, not));
      return true;
    }
    case '-f':
    case '--fragment':
      s.expr.push(decided({ result: not, why: '-f (the probe is not a fragment)' }));
      return true;
    default:
      return false;
  }
}

function flagNames(list: string): string[] {
  if (list === 'ALL') return ['fin', 'syn', 'rst', 'psh', 'ack', 'urg'];
  return list === 'NONE' ? [] : list.toLowerCase().split(',');
}

/** `--tcp-flags MASK COMP`: (flags & MASK) == COMP, an equality (a list right-hand side would be "any of"). */
function tcpFlags(mask: string, comp: string, not: boolean): Json {
  const wanted = flagNames(comp);
  const right = wanted.length === 0 ? 0 : wanted.length === 1 ? wanted[0] : { '|': wanted };
  return match({ '&': [payload('tcp', 'flags'), flagNames(mask)] }, right, not);
}

/** One `-m MODULE` option: reads its value(s) from `w` and appends the match to `s`. */
type ModuleHandler = (mod: string, opt: string, w: Words, not: boolean, s: State, raw: string) => boolean;

function portOption(mod: string, opt: string, w: Words, not: boolean, s: State): boolean {
  if (['--dport', '--destination-port', '--sport', '--source-port'].includes(opt)) {
    const field = opt === '--dport' || opt === '--destination-port' ? 'dport' : 'sport';
    s.expr.push(match(payload(mod, field), ports(w.value()[0]), not));
    return true;
  }
  if (mod === 'tcp' && opt === '--syn') {
    s.expr.push(tcpFlags('FIN,SYN,RST,ACK', 'SYN', not));
    return true;
  }
  if (mod === 'tcp' && opt === '--tcp-flags') {
    const [mask] = w.value();
    s.expr.push(tcpFlags(mask, w.next() ?? '', not));
    return true;
  }
  return false;
}

function multiportOption(_mod: string, opt: string, w: Words, not: boolean, s: State): boolean {
  const fields: Readonly<Record<string, string>> = {
    '--dports': 'dport',
    '--destination-ports': 'dport',
    '--sports': 'sport',
    '--source-ports': 'sport',
    // Either port: the probe's source port is never one a rule names unless chosen.
    '--ports': 'dport',
  };
  const field = fields[opt];
  if (field === undefined) return false;
  const th = s.protocol === 'tcp' || s.protocol === 'udp' ? s.protocol : 'th';
  const value = ports(w.value()[0]);
  s.expr.push(match(payload(th, field), obj(value) ? value : { set: [value] }, not));
  return true;
}

/** conntrack/state: --ctstate may name the virtual states SNAT and DNAT, which are status bits. */
function conntrackOption(_mod: string, opt: string, w: Words, not: boolean, s: State): boolean {
  if (opt === '--ctstate' || opt === '--state') {
    const names = w
      .value()[0]
      .split(',')
      .map((x) => CT_STATES[x] ?? x.toLowerCase());
    s.expr.push(match({ ct: { key: 'pw state' } }, names, not, 'in'));
    return true;
  }
  if (opt === '--ctstatus') {
    const names = w.value()[0].toLowerCase().split(',');
    s.expr.push(
      match(
        { ct: { key: 'status' } },
        names.map((x) => (x === 'seen_reply' ? 'seen-reply' : x)),
        not,
        'in',
      ),
    );
    return true;
  }
  if (opt === '--ctdir') {
    s.expr.push(match({ ct: { key: 'direction' } }, w.value()[0].toLowerCase(), not));
    return true;
  }
  return false;
}

function addressOption(mod: string, opt: string, w: Words, not: boolean, s: State): boolean {
  if (mod === 'iprange' && (opt === '--src-range' || opt === '--dst-range')) {
    const [a = '', b = a] = w.value()[0].split('-');
    s.expr.push(match(payload(s.family, opt === '--src-range' ? 'saddr' : 'daddr'), { range: [a, b] }, not));
    return true;
  }
  if (mod === 'addrtype' && (opt === '--dst-type' || opt === '--src-type')) {
    const flags = opt === '--dst-type' ? ['daddr'] : ['saddr'];
    s.expr.push(match({ fib: { result: 'type', flags } }, w.value()[0].toLowerCase().split(','), not, 'in'));
    return true;
  }
  if (mod === 'addrtype' && opt === '--limit-iface-in') {
    s.expr.push(decided({ result: true, why: '--limit-iface-in' }));
    return true;
  }
  return false;
}

function markOption(mod: string, opt: string, w: Words, not: boolean, s: State): boolean {
  if (opt !== '--mark') return false;
  const [v = '0', m] = w.value()[0].split('/');
  const left = { [mod === 'mark' ? 'meta' : 'ct']: { key: 'mark' } };
  s.expr.push(match(m === undefined ? left : { '&': [left, Number(m)] }, Number(v), not));
  return true;
}

/** owner, pkttype, icmp, hl/ttl, policy, comment: one value each, one match. */
function fieldOption(mod: string, opt: string, w: Words, not: boolean, s: State): boolean {
  const [value] = w.value();
  const op = opt.endsWith('-lt') ? '<' : opt.endsWith('-gt') ? '>' : '==';
  const hop = mod === 'hl' ? payload('ip6', 'hoplimit') : payload('ip', 'ttl');
  const byOption: Record<string, () => Json> = {
    'owner --uid-owner': () => match(meta('skuid'), Number(value), not),
    'owner --gid-owner': () => match(meta('skgid'), Number(value), not),
    'pkttype --pkt-type': () => match(meta('pkttype'), value === 'unicast' ? 'host' : value, not),
    'icmp --icmp-type': () => match(payload('icmp', 'type'), value, not),
    'icmp6 --icmpv6-type': () => match(payload('icmpv6', 'type'), value, not),
    'policy --pol': () =>
      decided({
        result: (value === 'none') !== not,
        why: `-m policy --pol ${value} (the probe is not IPsec)`,
      }),
  };
  for (const o of ['--hl-eq', '--hl-lt', '--hl-gt', '--ttl-eq', '--ttl-lt', '--ttl-gt'])
    byOption[`${mod} ${o}`] ??= () => match(hop, Number(value), not && op === '==', op);
  if (['comment --comment', 'policy --dir'].includes(`${mod} ${opt}`)) return true;
  const make = byOption[`${mod} ${opt}`];
  if (make) s.expr.push(make());
  return make !== undefined;
}

/** -m recent: a fresh source has no entry, so only --set (which records it) matches. */
function recentOption(_mod: string, opt: string, w: Words, not: boolean, s: State, raw: string): boolean {
  if (['--set', '--rcheck', '--update', '--remove'].includes(opt)) {
    const limits = opt === '--update' || opt === '--rcheck';
    s.expr.push(
      decided({
        result: (opt === '--set') !== not,
        why: `-m recent ${opt} (a source never seen has no entry)`,
        ...(limits
          ? {
              noteIfNot: `rate-limited: later new connections from one source are stopped by -m recent (${raw})`,
            }
          : {}),
      }),
    );
    return true;
  }
  if (['--rttl', '--rsource', '--rdest', '--reap'].includes(opt)) return true;
  if (!['--name', '--seconds', '--hitcount', '--mask'].includes(opt)) return false;
  w.value();
  return true;
}

/** limit, hashlimit, connlimit: the first packet of a fresh source is under every rate and count. */
function limitOption(mod: string, opt: string, w: Words, _not: boolean, s: State, raw: string): boolean {
  if (mod === 'limit' && opt !== '--limit' && opt !== '--limit-burst') return false;
  if (mod !== 'limit' && !opt.startsWith(`--${mod}`)) return false;
  const [value] = w.value();
  const rated = (why: string) => decided({ result: true, why, note: `rate-limited (${why})` });
  if (opt === '--limit') s.expr.push(rated(`-m limit ${raw}`));
  if (opt === '--hashlimit-upto' || opt === '--hashlimit') s.expr.push(rated(`-m hashlimit ${value}`));
  if (opt === '--hashlimit-above')
    s.expr.push(
      decided({ result: false, why: '-m hashlimit --hashlimit-above (one first packet is under any rate)' }),
    );
  if (opt === '--connlimit-above')
    s.expr.push(
      decided({ result: Number(value) < 1, why: '-m connlimit (a fresh source has no connection yet)' }),
    );
  if (opt === '--connlimit-upto') s.expr.push(decided({ result: Number(value) >= 1, why: '-m connlimit' }));
  return true;
}

/** rt, frag, hbh, dst, ah, esp, ipv6header: the probe has no extension headers, so none matches. */
function extensionHeaderOption(mod: string, opt: string, w: Words, _not: boolean, s: State): boolean {
  if (opt === '--soft') return true;
  w.value();
  s.expr.push(decided({ result: false, why: `-m ${mod} (the probe has no extension headers)` }));
  return true;
}

/** A SYN over Ethernet carries MSS 1460 (IPv4) or 1440 (IPv6): the probe's, as a peer's stack sends it. */
export const PROBE_MSS: Readonly<Record<'ip' | 'ip6', number>> = { ip: 1460, ip6: 1440 };

function tcpmssOption(_mod: string, opt: string, w: Words, not: boolean, s: State): boolean {
  if (opt !== '--mss') return false;
  const [a = '0', b = a] = w.value()[0].split(':');
  const mss = PROBE_MSS[s.family];
  const hit = Number(a) <= mss && mss <= Number(b);
  s.expr.push(decided({ result: hit !== not, why: `-m tcpmss (the probe's SYN carries MSS ${mss})` }));
  return true;
}

function helperOption(_mod: string, opt: string, w: Words, not: boolean, s: State): boolean {
  if (opt !== '--helper') return false;
  w.value();
  s.expr.push(decided({ result: not, why: '-m helper (a new connection has no helper yet)' }));
  return true;
}

/** The iptables match modules this translator knows, each deciding or translating its options. */
const MODULES: Readonly<Record<string, ModuleHandler>> = {
  tcp: portOption,
  udp: portOption,
  multiport: multiportOption,
  conntrack: conntrackOption,
  state: conntrackOption,
  iprange: addressOption,
  addrtype: addressOption,
  mark: markOption,
  connmark: markOption,
  comment: fieldOption,
  owner: fieldOption,
  pkttype: fieldOption,
  icmp: fieldOption,
  icmp6: fieldOption,
  hl: fieldOption,
  ttl: fieldOption,
  policy: fieldOption,
  recent: recentOption,
  limit: limitOption,
  hashlimit: limitOption,
  connlimit: limitOption,
  rt: extensionHeaderOption,
  frag: extensionHeaderOption,
  hbh: extensionHeaderOption,
  dst: extensionHeaderOption,
  ah: extensionHeaderOption,
  esp: extensionHeaderOption,
  ipv6header: extensionHeaderOption,
  helper: helperOption,
  cgroup: cgroupOption,
  tcpmss: tcpmssOption,
};

/** `-m cgroup --path a/b`: the socket's cgroup v2 path, as nft's `socket cgroupv2 level 2 "a/b"`. */
function cgroupOption(_mod: string, opt: string, w: Words, not: boolean, s: State): boolean {
  if (opt !== '--path') return false;
  const path = w.value()[0];
  const level = path.split('/').filter(Boolean).length;
  s.expr.push(match({ socket: { key: 'cgroupv2', level } }, path, not));
  return true;
}

function moduleOption(mod: string, opt: string, w: Words, not: boolean, s: State, raw: string): boolean {
  const handler = MODULES[mod];
  if (!handler) return false;
  const start = w.i;
  if (handler(mod, opt, w, not, s, raw)) return true;
  w.i = start;
  return false;
}

function obj(value: Json): Record<string, Json> | null {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, Json>)
    : null;
}

const NO_EFFECT_TARGETS = new Set([
  'LOG',
  'NFLOG',
  'ULOG',
  'TCPMSS',
  'TOS',
  'DSCP',
  'TTL',
  'HL',
  'CHECKSUM',
  'CLASSIFY',
  'AUDIT',
  'TRACE',
  'SNAT',
  'MASQUERADE',
  'SECMARK',
  'CONNSECMARK',
  'IDLETIMER',
  'LED',
  'TEE',
  'RATEEST',
]);

function target(name: string, w: Words, goto: boolean): Json[] {
  const rest = w.list.slice(w.i);
  const arg = (flag: string) => {
    const i = rest.indexOf(flag);
    return i >= 0 ? rest[i + 1] : undefined;
  };
  switch (name) {
    case 'ACCEPT':
      return [{ accept: null }];
    case 'DROP':
      return [{ drop: null }];
    case 'REJECT':
      return [{ reject: null }];
    case 'RETURN':
      return [{ return: null }];
    case 'DNAT': {
      const to = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?/.exec(arg('--to-destination') ?? '');
      const addr = to?.[1]?.replace(/^\[|\]$/g, '');
      return [{ dnat: { addr, ...(to?.[2] ? { port: Number(to[2]) } : {}) } }];
    }
    case 'REDIRECT':
      return [{ redirect: { port: Number((arg('--to-ports') ?? '').split('-')[0]) || undefined } }];
    case 'MARK': {
      const spec = arg('--set-xmark') ?? arg('--set-mark');
      if (spec !== undefined) {
        const [v = '0', m = '0xffffffff'] = spec.split('/');
        return [{ pwmark: { value: Number(v), mask: Number(m) } }];
      }
      const or = arg('--or-mark');
      if (or !== undefined) return [{ pwmark: { value: Number(or), mask: Number(or) } }];
      const and = arg('--and-mark');
      if (and !== undefined) return [{ pwmark: { value: 0, mask: ~Number(and) >>> 0 } }];
      return [];
    }
    case 'CONNMARK':
      return [];
    case 'NOTRACK':
      return [{ notrack: null }];
    case 'CT':
      return rest.includes('--notrack') ? [{ notrack: null }] : [];
    case 'NFQUEUE':
    case 'QUEUE':
      return [{ queue: null }];
    default:
      if (NO_EFFECT_TARGETS.has(name)) return [];
      if (/^[A-Z]+$/.test(name) && ['TPROXY', 'SYNPROXY', 'NETMAP', 'SET', 'DNPT', 'SNPT'].includes(name))
        return [{ pw: { result: null, why: `target ${name}` } }, { queue: null }];
      return [goto ? { goto: { target: name } } : { jump: { target: name } }];
  }
}

/** One iptables-save rule (the text after `-A CHAIN`) as nft JSON expressions. */
export function translateIptablesRule(line: string, family: 'ip' | 'ip6'): TranslatedRule {
  const w = new Words(tokenize(line));
  const s: State = { expr: [], protocol: null, family };
  let mod = '';
  for (let word = w.next(); word !== undefined; word = w.next()) {
    let not = false;
    if (word === '!') {
      not = true;
      word = w.next() ?? '';
    }
    if (word === '-m' || word === '--match') {
      mod = w.next() ?? '';
      continue;
    }
    if (word === '-j' || word === '--jump' || word === '-g' || word === '--goto') {
      s.expr.push(...target(w.next() ?? '', w, word === '-g' || word === '--goto'));
      break;
    }
    if (basicOption(word, w, not, s)) continue;
    if (mod && word.startsWith('--') && moduleOption(mod, word, w, not, s, line)) continue;
    // `-p tcp --dport 22` loads the protocol's match implicitly (iptables-restore input; -save adds `-m tcp`).
    const implicit = s.protocol === 'ipv6-icmp' || s.protocol === 'icmpv6' ? 'icmp6' : s.protocol;
    if (
      implicit &&
      implicit !== mod &&
      word.startsWith('--') &&
      moduleOption(implicit, word, w, not, s, line)
    )
      continue;
    // An option this translator does not know: the rule stays unknown, naming it.
    s.expr.push(decided({ result: null, why: `iptables ${mod ? `-m ${mod} ` : ''}${word} (${line})` }));
    while (w.peek() !== undefined && !w.peek()?.startsWith('-') && w.peek() !== '!') w.next();
  }
  return { expr: s.expr };
}

const LEGACY_HOOKS: Readonly<Record<string, NftChain['hook']>> = {
  PREROUTING: 'prerouting',
  INPUT: 'input',
  FORWARD: 'forward',
  OUTPUT: 'output',
  POSTROUTING: 'postrouting',
};

/** x_tables priorities (NF_IP_PRI_*): raw -300, mangle -150, nat -100 / 100, filter 0, security 50. */
function legacyPrio(table: string, hook: string): number {
  if (table === 'raw') return -300;
  if (table === 'mangle') return -150;
  if (table === 'nat') return hook === 'postrouting' || hook === 'input' ? 100 : -100;
  if (table === 'security') return 50;
  return 0;
}

function legacyChain(family: 'ip' | 'ip6', table: string, name: string, policy: string): NftChain {
  const hook = LEGACY_HOOKS[name] ?? null;
  return {
    family,
    table,
    name,
    hook,
    type: hook === null ? null : table === 'nat' ? 'nat' : 'filter',
    prio: hook === null ? 0 : legacyPrio(table, hook),
    policy: policy === 'DROP' ? 'drop' : 'accept',
    rules: [],
    devices: null,
    origin: 'legacy',
  };
}

/** One `-A CHAIN ...` line; its handle is its position in the chain (`iptables -L --line-numbers`). */
function legacyRule(chain: NftChain, text: string): NftRule {
  return {
    family: chain.family,
    table: chain.table,
    chain: chain.name,
    handle: chain.rules.length + 1,
    comment: /--comment "?([^"]*)"?/.exec(text)?.[1] ?? null,
    expr: translateIptablesRule(text, chain.family === 'ip6' ? 'ip6' : 'ip').expr,
    iptables: text,
    origin: 'legacy',
  };
}

/** `iptables-legacy-save` text as chains (policy lines included), marked origin `legacy`. */
export function parseLegacySave(text: string, family: 'ip' | 'ip6'): NftChain[] {
  const chains: NftChain[] = [];
  let table = '';
  const byName = new Map<string, NftChain>();
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      table = line.slice(1).trim();
      byName.clear();
    }
    const head = /^:(\S+) (\S+)/.exec(line);
    if (head && table) {
      const chain = legacyChain(family, table, head[1] ?? '', head[2] ?? '');
      byName.set(chain.name, chain);
      chains.push(chain);
    }
    const rule = /^-A (\S+) (.*)$/.exec(line);
    const chain = byName.get(rule?.[1] ?? '');
    if (rule && chain) chain.rules.push(legacyRule(chain, rule[2] ?? ''));
  }
  return chains;
}
