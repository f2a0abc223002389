import { PortwardenError } from '../errors.ts';
import type { Hook, NftChain, NftRule, NftSet, Ruleset } from './ruleset.ts';

/**
 * Reads `nft -f` text — the subset portwarden's nftables backend writes — into the same model
 * `nft -j list ruleset` gives (see ruleset.ts), expression for expression as nft prints its JSON, so
 * the evaluator can run a compiled ruleset without loading it into a kernel. Anything outside the
 * subset is an error naming the line, never a silent guess.
 */

type Json = unknown;

const PRIORITY: Readonly<Record<string, number>> = {
  raw: -300,
  mangle: -150,
  dstnat: -100,
  filter: 0,
  security: 50,
  srcnat: 100,
};

const HOOKS: readonly Hook[] = [
  'ingress',
  'prerouting',
  'input',
  'forward',
  'output',
  'postrouting',
  'egress',
];

function unsupported(line: number, text: string, what: string): PortwardenError {
  return new PortwardenError('RULESET_INVALID', `line ${line}: ${what} in ${JSON.stringify(text.trim())}`, {
    hint: 'only the nft syntax portwarden compiles is read here; read a live ruleset with `nft -j list ruleset`',
    location: { line },
  });
}

/** Words of a rule line; a quoted string is one word (quotes kept) and `{ a, b }` one word. */
export function nftWords(text: string): string[] {
  const words: string[] = [];
  const re = /"(?:[^"\\]|\\.)*"|\{[^}]*\}|[^\s]+/g;
  for (const m of text.matchAll(re)) words.push(m[0]);
  return words;
}

function unquote(word: string): string {
  return word.startsWith('"') ? (JSON.parse(word) as string) : word;
}

/** One element or value: a number, a range, a prefix, a name. */
function value(word: string): Json {
  if (/^\d+$/.test(word)) return Number(word);
  const prefix = /^([0-9a-fA-F.:]+)\/(\d+)$/.exec(word);
  if (prefix) return { prefix: { addr: prefix[1], len: Number(prefix[2]) } };
  const range = /^(\d+)-(\d+)$/.exec(word);
  if (range) return { range: [Number(range[1]), Number(range[2])] };
  return unquote(word);
}

function elements(word: string): Json[] {
  return word
    .replace(/^\{|\}$/g, '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(value);
}

/** A right-hand side: `@set`, `{ a, b }`, `a,b` (flags), or one value. */
function right(word: string): Json {
  if (word.startsWith('@')) return word;
  if (word.startsWith('{')) return { set: elements(word) };
  if (word.includes(',') && !word.startsWith('"')) return word.split(',');
  return value(word);
}

const META_KEYS = new Set([
  'iif',
  'oif',
  'iifname',
  'oifname',
  'nfproto',
  'l4proto',
  'skuid',
  'skgid',
  'mark',
]);
const PAYLOADS = new Set(['ip', 'ip6', 'tcp', 'udp', 'icmp', 'icmpv6', 'th']);

interface Cursor {
  words: string[];
  i: number;
}

function match(left: Json, c: Cursor, flagsKey: boolean): Json {
  let op = '==';
  if (c.words[c.i] === '!=') {
    op = '!=';
    c.i++;
  }
  const word = c.words[c.i++] ?? '';
  const r = right(word);
  // nft prints a flag list (ct state a,b) with op "in": any of the bits.
  if (flagsKey && op === '==') op = 'in';
  return { match: { op, left, right: r } };
}

/** The left-hand side starting at the cursor, or null when the word starts a statement. */
function leftSide(c: Cursor): { left: Json; flags: boolean } | null {
  const w = c.words[c.i] ?? '';
  const next = c.words[c.i + 1] ?? '';
  if (META_KEYS.has(w)) {
    c.i += 1;
    return { left: { meta: { key: w } }, flags: false };
  }
  if (w === 'meta' && META_KEYS.has(next)) {
    c.i += 2;
    return { left: { meta: { key: next } }, flags: false };
  }
  if (w === 'ct' && (next === 'state' || next === 'status')) {
    c.i += 2;
    return { left: { ct: { key: next } }, flags: true };
  }
  if (w === 'fib') {
    // fib daddr type local
    const flags = [next];
    c.i += 3;
    return { left: { fib: { result: c.words[c.i - 1] ?? '', flags } }, flags: false };
  }
  if (w === 'socket' && next === 'cgroupv2') {
    const level = Number(c.words[c.i + 3]);
    c.i += 4;
    return { left: { socket: { key: 'cgroupv2', level } }, flags: false };
  }
  if (PAYLOADS.has(w) && /^[a-z]+$/.test(next) && next !== 'to') {
    c.i += 2;
    return { left: { payload: { protocol: w, field: next } }, flags: false };
  }
  return null;
}

function natTarget(kind: 'dnat' | 'snat', c: Cursor): Json {
  const family = c.words[c.i] === 'ip' || c.words[c.i] === 'ip6' ? c.words[c.i++] : undefined;
  if (c.words[c.i] === 'to') c.i++;
  const target = c.words[c.i++] ?? '';
  const parts = /^([\d.]+)(?::(\d+))?$/.exec(target) ?? /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(target);
  const addr = parts?.[1] ?? target;
  const port = parts?.[2];
  return { [kind]: { ...(family ? { family } : {}), addr, ...(port ? { port: Number(port) } : {}) } };
}

/** One statement at the cursor (counter, log, limit, verdicts, nat, ct helper set). */
function statementJson(c: Cursor, line: number, text: string): Json {
  const w = c.words[c.i++] ?? '';
  const take = (): string => c.words[c.i++] ?? '';
  switch (w) {
    case 'counter':
      return { counter: { packets: 0, bytes: 0 } };
    case 'accept':
    case 'drop':
    case 'return':
    case 'masquerade':
      return { [w]: null };
    case 'jump':
    case 'goto':
      return { [w]: { target: take() } };
    case 'reject': {
      if (c.words[c.i] !== 'with') return { reject: null };
      c.i++;
      const words: string[] = [];
      while (c.i < c.words.length && c.words[c.i] !== 'comment') words.push(take());
      return { reject: { type: words.slice(0, -1).join(' '), expr: words.at(-1) } };
    }
    case 'log': {
      const log: Record<string, Json> = {};
      while (c.words[c.i] === 'prefix' || c.words[c.i] === 'level') {
        const key = take();
        log[key] = unquote(take());
      }
      return { log };
    }
    case 'limit': {
      // limit rate 5/second burst 10 packets
      take();
      const [rate, per] = take().split('/');
      const limit: Record<string, Json> = { rate: Number(rate), per };
      if (c.words[c.i] === 'burst') {
        take();
        limit['burst'] = Number(take());
        if (c.words[c.i] === 'packets') take();
      }
      return { limit };
    }
    case 'dnat':
    case 'snat':
      return natTarget(w, c);
    case 'ct':
      if (take() === 'helper' && take() === 'set') return { 'ct helper': unquote(take()) };
      throw unsupported(line, text, 'an unknown ct statement');
    default:
      throw unsupported(line, text, `the unknown word "${w}"`);
  }
}

/** One rule line as nft's JSON rule expressions and its comment. */
export function parseNftRule(text: string, line = 0): { expr: Json[]; comment: string | null } {
  const c: Cursor = { words: nftWords(text), i: 0 };
  const expr: Json[] = [];
  let comment: string | null = null;
  while (c.i < c.words.length) {
    const left = leftSide(c);
    if (left) {
      expr.push(match(left.left, c, left.flags));
      continue;
    }
    if (c.words[c.i] === 'comment') {
      comment = unquote(c.words[c.i + 1] ?? '""');
      c.i += 2;
    } else expr.push(statementJson(c, line, text));
  }
  return { expr, comment };
}

interface Block {
  kind: 'table' | 'chain' | 'set' | 'skip';
  family: string;
  table: string;
  name: string;
}

function chainHead(chain: NftChain, text: string): void {
  const m = /^type (\w+) hook (\w+) priority ([\w-]+); policy (accept|drop);$/.exec(text);
  if (!m) return;
  chain.type = m[1] ?? null;
  chain.hook = HOOKS.find((h) => h === m[2]) ?? null;
  const prio = m[3] ?? '0';
  chain.prio = PRIORITY[prio] ?? Number(prio);
  chain.policy = m[4] === 'drop' ? 'drop' : 'accept';
}

function setLine(set: NftSet, text: string): void {
  const m = /^elements = (\{.*\})$/.exec(text);
  if (m?.[1]) set.elem = elements(m[1]);
}

/**
 * Parses the nft text portwarden compiles (tables with sets and chains; the `table`/`delete table`
 * lines that replace it are skipped) into a Ruleset the evaluator can walk.
 */
export function parseNftText(source: string): Ruleset {
  const ruleset: Ruleset = { tables: [], chains: [], sets: [] };
  const stack: Block[] = [];
  let chain: NftChain | null = null;
  let set: NftSet | null = null;
  let handle = 0;
  source.split('\n').forEach((raw, index) => {
    const line = index + 1;
    const text = raw.trim();
    if (text === '' || text.startsWith('#')) return;
    const top = stack.at(-1);
    if (text === '}') {
      const closed = stack.pop();
      if (closed?.kind === 'chain') chain = null;
      if (closed?.kind === 'set') set = null;
      return;
    }
    const table = /^table (\w+) (\w+) \{$/.exec(text);
    if (table && !top) {
      const [, family = '', name = ''] = table;
      ruleset.tables.push({ family, name, origin: 'nft' });
      stack.push({ kind: 'table', family, table: name, name });
      return;
    }
    if (!top && /^(delete )?table \w+ \w+$/.test(text)) return;
    if (!top) throw unsupported(line, text, 'a statement outside a table');
    const block = /^(chain|set|map|ct helper) (\S+) \{$/.exec(text);
    if (block && top.kind === 'table') {
      const [, kind = '', name = ''] = block;
      if (kind === 'chain') {
        chain = {
          family: top.family,
          table: top.table,
          name,
          hook: null,
          type: null,
          prio: 0,
          policy: 'accept',
          rules: [],
          devices: null,
          origin: 'nft',
        };
        ruleset.chains.push(chain);
      } else if (kind === 'set' || kind === 'map') {
        set = { family: top.family, table: top.table, name, elem: [], isMap: kind === 'map' };
        ruleset.sets.push(set);
      }
      stack.push({ ...top, kind: kind === 'chain' ? 'chain' : kind === 'ct helper' ? 'skip' : 'set', name });
      return;
    }
    if (top.kind === 'skip') return;
    if (top.kind === 'set' && set) return setLine(set, text);
    if (top.kind === 'chain' && chain) {
      if (text.startsWith('type ')) return chainHead(chain, text);
      const rule: NftRule = {
        family: chain.family,
        table: chain.table,
        chain: chain.name,
        handle: ++handle,
        iptables: null,
        origin: 'nft',
        ...parseNftRule(text, line),
      };
      chain.rules.push(rule);
      return;
    }
    throw unsupported(line, text, 'an unknown block');
  });
  return ruleset;
}
