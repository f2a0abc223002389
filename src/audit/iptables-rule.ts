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

function moduleOption(mod: string, opt: string, w: Words, not: boolean, s: State, raw: string): boolean {
  const th = s.protocol === 'tcp' || s.protocol === 'udp' ? s.protocol : 'th';
  switch (`${mod} ${opt}`) {
    case 'tcp --dport':
    case 'tcp --destination-port':
    case 'udp --dport':
    case 'udp --destination-port':
      s.expr.push(match(payload(mod, 'dport'), ports(w.value()[0]), not));
      return true;
    case 'tcp --sport':
    case 'tcp --source-port':
    case 'udp --sport':
    case 'udp --source-port':
      s.expr.push(match(payload(mod, 'sport'), ports(w.value()[0]), not));
      return true;
    case 'tcp --syn':
      s.expr.push(match({ '&': [payload('tcp', 'flags'), ['fin', 'syn', 'rst', 'ack']] }, 'syn', not));
      return true;
    case 'tcp --tcp-flags': {
      const [mask] = w.value();
      const comp = w.next() ?? '';
      s.expr.push(tcpFlags(mask, comp, not));
      return true;
    }
    case 'multiport --dports':
    case 'multiport --destination-ports':
    case 'multiport --sports':
    case 'multiport --source-ports': {
      const field = opt.includes('d') && !opt.includes('source') ? 'dport' : 'sport';
      const value = ports(w.value()[0]);
      s.expr.push(match(payload(th, field), obj(value) ? value : { set: [value] }, not));
      return true;
    }
    case 'multiport --ports': {
      // Either port: the probe's source port is never one a rule names unless chosen.
      const value = ports(w.value()[0]);
      s.expr.push(match(payload(th, 'dport'), obj(value) ? value : { set: [value] }, not));
      return true;
    }
    case 'conntrack --ctstate':
    case 'state --state': {
      const [list] = w.value();
      const states = list
        .split(',')
        .map((x) => CT_STATES[x] ?? x.toLowerCase())
        .filter((x) => x !== 'snat' && x !== 'dnat');
      const virtual = list
        .split(',')
        .filter((x) => x === 'SNAT' || x === 'DNAT')
        .map((x) => x.toLowerCase());
      if (virtual.length > 0 && states.length === 0)
        s.expr.push(match({ ct: { key: 'status' } }, virtual, not, 'in'));
      else s.expr.push(match({ ct: { key: 'state' } }, states, not, 'in'));
      return true;
    }
    case 'conntrack --ctstatus':
      s.expr.push(
        match(
          { ct: { key: 'status' } },
          w
            .value()[0]
            .toLowerCase()
            .split(',')
            .map((x) => (x === 'seen_reply' ? 'seen-reply' : x)),
          not,
          'in',
        ),
      );
      return true;
    case 'conntrack --ctdir':
      s.expr.push(match({ ct: { key: 'direction' } }, w.value()[0].toLowerCase(), not));
      return true;
    case 'comment --comment':
      w.value();
      return true;
    case 'iprange --src-range':
    case 'iprange --dst-range': {
      const [range] = w.value();
      const [a = '', b = a] = range.split('-');
      s.expr.push(
        match(payload(s.family, opt === '--src-range' ? 'saddr' : 'daddr'), { range: [a, b] }, not),
      );
      return true;
    }
    case 'mark --mark':
    case 'connmark --mark': {
      const [value] = w.value();
      const [v = '0', m] = value.split('/');
      const left = { [mod === 'mark' ? 'meta' : 'ct']: { key: 'mark' } };
      s.expr.push(match(m === undefined ? left : { '&': [left, Number(m)] }, Number(v), not));
      return true;
    }
    case 'addrtype --dst-type':
    case 'addrtype --src-type': {
      const [type] = w.value();
      const flags = opt === '--dst-type' ? ['daddr'] : ['saddr'];
      s.expr.push(match({ fib: { result: 'type', flags } }, type.toLowerCase().split(','), not, 'in'));
      return true;
    }
    case 'addrtype --limit-iface-in':
      s.expr.push(decided({ result: true, why: '--limit-iface-in' }));
      return true;
    case 'owner --uid-owner':
    case 'owner --gid-owner': {
      const [id] = w.value();
      s.expr.push(match(meta(opt === '--uid-owner' ? 'skuid' : 'skgid'), Number(id), not));
      return true;
    }
    case 'pkttype --pkt-type':
      s.expr.push(match(meta('pkttype'), w.value()[0] === 'unicast' ? 'host' : w.value()[0], not));
      return true;
    case 'icmp --icmp-type':
    case 'icmp6 --icmpv6-type':
      s.expr.push(match(payload(mod === 'icmp' ? 'icmp' : 'icmpv6', 'type'), w.value()[0], not));
      return true;
    case 'hl --hl-eq':
    case 'hl --hl-lt':
    case 'hl --hl-gt':
    case 'ttl --ttl-eq':
    case 'ttl --ttl-lt':
    case 'ttl --ttl-gt': {
      const op = opt.endsWith('-lt') ? '<' : opt.endsWith('-gt') ? '>' : '==';
      const left = payload(mod === 'hl' ? 'ip6' : 'ip', mod === 'hl' ? 'hoplimit' : 'ttl');
      s.expr.push(match(left, Number(w.value()[0]), not && op === '==', op));
      return true;
    }
    case 'policy --dir':
      w.value();
      return true;
    case 'policy --pol': {
      const [pol] = w.value();
      s.expr.push(
        decided({ result: (pol === 'none') !== not, why: `-m policy --pol ${pol} (the probe is not IPsec)` }),
      );
      return true;
    }
    default:
      return statefulOption(mod, opt, w, not, s, raw);
  }
}

function obj(value: Json): Record<string, Json> | null {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, Json>)
    : null;
}

/** Matches with memory (recent, limit, hashlimit, connlimit): decided for a fresh source. */
function statefulOption(mod: string, opt: string, w: Words, not: boolean, s: State, raw: string): boolean {
  if (mod === 'recent') {
    if (['--set', '--rcheck', '--update', '--remove'].includes(opt)) {
      // A fresh source has no entry: only --set (which records it) matches.
      const hit = opt === '--set';
      s.expr.push(
        decided({
          result: hit !== not,
          why: `-m recent ${opt} (a source never seen has no entry)`,
          ...(opt === '--update' || opt === '--rcheck'
            ? {
                noteIfNot: `rate-limited: later new connections from one source are stopped by -m recent (${raw})`,
              }
            : {}),
        }),
      );
      return true;
    }
    if (
      ['--name', '--seconds', '--hitcount', '--mask', '--reap', '--rttl', '--rsource', '--rdest'].includes(
        opt,
      )
    ) {
      if (!['--rttl', '--rsource', '--rdest', '--reap'].includes(opt)) w.value();
      return true;
    }
  }
  if (mod === 'limit') {
    if (opt === '--limit' || opt === '--limit-burst') {
      w.value();
      if (opt === '--limit')
        s.expr.push(decided({ result: true, why: '-m limit', note: `rate-limited (-m limit ${raw})` }));
      return true;
    }
  }
  if (mod === 'hashlimit' && opt.startsWith('--hashlimit')) {
    const [value] = w.value();
    if (opt === '--hashlimit-upto' || opt === '--hashlimit')
      s.expr.push(
        decided({ result: true, why: '-m hashlimit', note: `rate-limited (-m hashlimit ${value})` }),
      );
    if (opt === '--hashlimit-above')
      s.expr.push(
        decided({
          result: false,
          why: '-m hashlimit --hashlimit-above (one first packet is under any rate)',
        }),
      );
    return true;
  }
  if (mod === 'connlimit' && opt.startsWith('--connlimit')) {
    const [value] = w.value();
    if (opt === '--connlimit-above')
      s.expr.push(
        decided({ result: Number(value) < 1, why: '-m connlimit (a fresh source has no connection yet)' }),
      );
    if (opt === '--connlimit-upto') s.expr.push(decided({ result: Number(value) >= 1, why: '-m connlimit' }));
    return true;
  }
  if (
    mod === 'rt' ||
    mod === 'frag' ||
    mod === 'hbh' ||
    mod === 'dst' ||
    mod === 'ah' ||
    mod === 'esp' ||
    mod === 'ipv6header'
  ) {
    w.value();
    if (opt !== '--soft')
      s.expr.push(decided({ result: false, why: `-m ${mod} (the probe has no extension headers)` }));
    return true;
  }
  if (mod === 'helper' && opt === '--helper') {
    w.value();
    s.expr.push(decided({ result: not, why: '-m helper (a new connection has no helper yet)' }));
    return true;
  }
  return false;
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

/** `iptables-legacy-save` text as chains (policy lines included), marked origin `legacy`. */
export function parseLegacySave(text: string, family: 'ip' | 'ip6'): NftChain[] {
  const chains: NftChain[] = [];
  let table = '';
  const byName = new Map<string, NftChain>();
  let handle = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      table = line.slice(1).trim();
      byName.clear();
      continue;
    }
    const head = /^:(\S+) (\S+)/.exec(line);
    if (head && table) {
      const name = head[1] ?? '';
      const hook = LEGACY_HOOKS[name] ?? null;
      const chain: NftChain = {
        family,
        table,
        name,
        hook,
        type: hook === null ? null : table === 'nat' ? 'nat' : 'filter',
        prio: hook === null ? 0 : legacyPrio(table, hook),
        policy: head[2] === 'DROP' ? 'drop' : 'accept',
        rules: [],
        devices: null,
        origin: 'legacy',
      };
      byName.set(name, chain);
      chains.push(chain);
      continue;
    }
    const rule = /^-A (\S+) (.*)$/.exec(line);
    const chain = byName.get(rule?.[1] ?? '');
    if (!rule || !chain) continue;
    const r: NftRule = {
      family,
      table,
      chain: chain.name,
      handle: ++handle,
      comment: /--comment "?([^"]*)"?/.exec(rule[2] ?? '')?.[1] ?? null,
      expr: translateIptablesRule(rule[2] ?? '', family).expr,
      iptables: rule[2] ?? '',
      origin: 'legacy',
    };
    chain.rules.push(r);
  }
  return chains;
}
