import { PortwardenError } from '../errors.ts';
import type { Hook, NftChain, Ruleset } from './ruleset.ts';

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

/** `log prefix "x" level info` */
function logStatement(c: Cursor): Json {
  const log: Record<string, Json> = {};
  while (c.words[c.i] === 'prefix' || c.words[c.i] === 'level') {
    const key = c.words[c.i] ?? '';
    log[key] = unquote(c.words[c.i + 1] ?? '""');
    c.i += 2;
  }
  return { log };
}

/** `limit rate 5/second burst 10 packets` */
function limitStatement(c: Cursor): Json {
  const [rate, per] = (c.words[c.i + 1] ?? '').split('/');
  c.i += 2;
  const limit: Record<string, Json> = { rate: Number(rate), per };
  if (c.words[c.i] === 'burst') {
    limit['burst'] = Number(c.words[c.i + 1]);
    c.i += c.words[c.i + 2] === 'packets' ? 3 : 2;
  }
  return { limit };
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
    case 'log':
      return logStatement(c);
    case 'limit':
      return limitStatement(c);
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

/** The reader's state: the model so far and the blocks open at this line. */
interface Reader {
  ruleset: Ruleset;
  stack: Block[];
  handle: number;
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

function emptyChain(table: Block, name: string): NftChain {
  return {
    family: table.family,
    table: table.table,
    name,
    hook: null,
    type: null,
    prio: 0,
    policy: 'accept',
    rules: [],
    devices: null,
    origin: 'nft',
  };
}

/** `chain x {`, `set x {`, `map x {` or `ct helper x {` inside a table. */
function openBlock(r: Reader, table: Block, kind: string, name: string): void {
  if (kind === 'chain') r.ruleset.chains.push(emptyChain(table, name));
  else if (kind === 'set' || kind === 'map')
    r.ruleset.sets.push({ family: table.family, table: table.table, name, elem: [], isMap: kind === 'map' });
  const as: Block['kind'] = kind === 'chain' ? 'chain' : kind === 'ct helper' ? 'skip' : 'set';
  r.stack.push({ ...table, kind: as, name });
}

/** A line inside a chain (its head or a rule) or a set (its elements). */
function blockLine(r: Reader, top: Block, text: string, line: number): void {
  if (top.kind === 'set') {
    const m = /^elements = (\{.*\})$/.exec(text);
    const set = r.ruleset.sets.at(-1);
    if (m?.[1] && set) set.elem = elements(m[1]);
    return;
  }
  const chain = r.ruleset.chains.at(-1);
  if (!chain) return;
  if (text.startsWith('type ')) return chainHead(chain, text);
  chain.rules.push({
    family: chain.family,
    table: chain.table,
    chain: chain.name,
    handle: ++r.handle,
    iptables: null,
    origin: 'nft',
    ...parseNftRule(text, line),
  });
}

function readLine(r: Reader, text: string, line: number): void {
  const top = r.stack.at(-1);
  if (text === '}') {
    r.stack.pop();
    return;
  }
  if (!top) {
    const table = /^table (\w+) (\w+) \{$/.exec(text);
    if (table) {
      const [, family = '', name = ''] = table;
      r.ruleset.tables.push({ family, name, origin: 'nft' });
      r.stack.push({ kind: 'table', family, table: name, name });
    } else if (!/^(delete )?table \w+ \w+$/.test(text))
      throw unsupported(line, text, 'a statement outside a table');
    return;
  }
  const block = /^(chain|set|map|ct helper) (\S+) \{$/.exec(text);
  if (block && top.kind === 'table') return openBlock(r, top, block[1] ?? '', block[2] ?? '');
  if (top.kind === 'chain' || top.kind === 'set') return blockLine(r, top, text, line);
  if (top.kind !== 'skip') throw unsupported(line, text, 'an unknown block');
}

/**
 * Parses the nft text portwarden compiles (tables with sets and chains; the `table`/`delete table`
 * lines that replace it are skipped) into a Ruleset the evaluator can walk.
 */
export function parseNftText(source: string): Ruleset {
  const reader: Reader = { ruleset: { tables: [], chains: [], sets: [] }, stack: [], handle: 0 };
  source.split('\n').forEach((raw, index) => {
    const text = raw.trim();
    if (text !== '' && !text.startsWith('#')) readLine(reader, text, index + 1);
  });
  return reader.ruleset;
}
