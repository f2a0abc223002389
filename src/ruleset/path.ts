import { emptySet, isEmpty, pointSet, union, universe, type AddrSet } from './addr-set.ts';
import { parseAddress } from '../catalog/address.ts';
import {
  runBaseChain,
  ruleText,
  withSrc,
  type EvalContext,
  type Flow,
  type Packet,
  type Piece,
  type TraceStep,
} from './evaluate.ts';
import { translateIptablesRule } from './iptables-rule.ts';
import { tableLabel, type Family, type Hook, type NftChain, type Ruleset, type Verdict } from './ruleset.ts';

/**
 * The hooks a packet meets, in kernel order: ingress (netdev) on its device, prerouting (raw,
 * conntrack, mangle, DNAT), the routing decision, then input — and for TCP the SYN-ACK back through
 * output and postrouting — or forward and postrouting. nftables and x_tables (iptables-legacy) base
 * chains of a hook run together by priority; an accept ends only its own chain, a drop ends all.
 */

export type { Packet, TraceStep } from './evaluate.ts';

export interface Decision {
  verdict: Verdict;
  /** The rule that decided (or the chain policy when `handle` is null). */
  table: string | null;
  chain: string | null;
  handle: number | null;
  comment: string | null;
  /** The deciding rule as text. */
  text?: string | null;
  /** What the evaluator could not decide, when it matters to the verdict: each names the expression. */
  reasons: string[];
  /** Facts about an accept that a reader should know: rate limits, DNAT, the source port used. */
  notes?: string[];
}

/** A decision nothing decided: no rule, only the reason why. */
export function undecided(reason: string): Decision {
  return { verdict: 'unknown', table: null, chain: null, handle: null, comment: null, reasons: [reason] };
}

/** The outcome for a set of peer addresses. */
export interface SourceOutcome {
  sources: AddrSet;
  decision: Decision;
  steps: TraceStep[];
  /** Where a DNAT sent the packet, when one did. */
  dnat: { addr: string | null; port: number | null } | null;
}

export interface PathOptions {
  /** Whether an address belongs to this host (after DNAT). Default: never. */
  isLocal?: (address: string) => boolean;
  /** The interface a forwarded packet to this address leaves by (null: not known). */
  routeOif?: (address: string) => string | null;
  /** Record every chain and rule met. */
  trace?: boolean;
  /** Send the SYN-ACK of a locally accepted TCP SYN through output (default true). */
  reply?: boolean;
}

const baseCache = new WeakMap<Ruleset, Map<string, NftChain[]>>();

function familyApplies(chainFamily: string, family: Family): boolean {
  return (
    chainFamily === 'inet' ||
    chainFamily === 'netdev' ||
    (chainFamily === 'ip' && family === 4) ||
    (chainFamily === 'ip6' && family === 6)
  );
}

/** Base chains of a hook for a family, nft and legacy, in the order the kernel runs them. */
export function baseChains(ruleset: Ruleset, hook: Hook, family: Family): NftChain[] {
  let byHook = baseCache.get(ruleset);
  if (!byHook) {
    byHook = new Map<string, NftChain[]>();
    baseCache.set(ruleset, byHook);
  }
  const key = `${hook}/${family}`;
  let list = byHook.get(key);
  if (!list) {
    list = ruleset.chains
      .filter(
        (c) =>
          c.hook === hook &&
          familyApplies(c.family, family) &&
          (c.family !== 'netdev' || hook === 'ingress' || hook === 'egress'),
      )
      .sort((a, b) => a.prio - b.prio);
    byHook.set(key, list);
  }
  return list;
}

interface Stage {
  hook: Hook;
  /** nat chains take part (DNAT in prerouting/output); elsewhere they only do SNAT. */
  nat: boolean;
}

interface Done {
  flow: Flow;
  verdict: Verdict;
  piece: Piece | null;
  why: string[];
}

function runStage(ctx: EvalContext, stage: Stage, flows: Flow[], done: Done[], opts: PathOptions): Flow[] {
  let live = flows;
  for (const chain of baseChains(ctx.ruleset, stage.hook, flows[0]?.pkt.family ?? 4)) {
    if (live.length === 0) break;
    if (chain.type === 'nat' && !stage.nat) continue;
    const applies = live.filter((f) => chainApplies(chain, f));
    const next: Flow[] = live.filter((f) => !chainApplies(chain, f));
    for (const p of applies.length ? runBaseChain(ctx, chain, applies) : []) {
      if (p.kind === 'accept' || p.kind === 'next' || p.kind === 'return') next.push(accepted(p));
      else if (p.kind === 'dnat') next.push(translate(p, opts));
      else if (p.kind === 'unknown') next.push(doubted(p));
      else if ((chain.hook === 'ingress' || chain.hook === 'egress') && chain.devices === null)
        next.push(
          doubted({
            ...p,
            why: `${chain.hook} chain on a device not known (it ${p.kind}s the packet if the device is ${(chain.hook === 'ingress' ? p.flow.pkt.iifname : p.flow.pkt.oifname) ?? '?'}; see nft list chains)`,
          }),
        );
      else done.push({ flow: p.flow, verdict: p.kind === 'reject' ? 'reject' : 'drop', piece: p, why: [] });
    }
    live = next;
  }
  return live;
}

function chainApplies(chain: NftChain, flow: Flow): boolean {
  if (chain.hook !== 'ingress' && chain.hook !== 'egress') return true;
  const device = chain.hook === 'ingress' ? flow.pkt.iifname : flow.pkt.oifname;
  return chain.devices === null || chain.devices.includes(device ?? '');
}

const lastAccept = new WeakMap<Flow, Piece>();

function accepted(p: Piece): Flow {
  lastAccept.set(p.flow, p);
  return p.flow;
}

function doubted(p: Piece): Flow {
  p.flow.doubt.push(
    `${tableLabel(p.chain)} chain ${p.chain.name}${p.rule ? ` rule ${p.rule.handle} (${ruleText(p.rule)})` : ''}: ${p.why ?? 'not decidable'}`,
  );
  lastAccept.set(p.flow, p);
  return p.flow;
}

function translate(p: Piece, opts: PathOptions): Flow {
  const f = p.flow;
  const nat = f.nat;
  lastAccept.set(f, p);
  if (!nat) return f;
  if (nat.addr !== null) {
    f.pkt.daddr = nat.addr;
    f.pkt.daddrLocal = opts.isLocal?.(nat.addr) ?? false;
  }
  if (nat.port !== null) f.pkt.dport = nat.port;
  f.pkt.ctStatus = [...(f.pkt.ctStatus ?? []), 'dnat'];
  f.notes.push(
    `DNAT to ${nat.addr ?? 'this host'}${nat.port !== null ? `:${nat.port}` : ''} by ${tableLabel(p.chain)} chain ${p.chain.name}${p.rule ? ` rule ${p.rule.handle}` : ''}`,
  );
  return f;
}

/** The SYN-ACK a local listener answers with: it must leave through output and postrouting. */
function replyFlow(f: Flow): Flow {
  const r = withSrc(f, f.src);
  const p = f.pkt;
  r.pkt = {
    family: p.family,
    protocol: p.protocol,
    saddr: p.daddr,
    daddr: p.saddr,
    sport: p.dport,
    dport: p.sport,
    ...(p.iifname !== undefined ? { oifname: p.iifname } : {}),
    daddrLocal: false,
    ctState: 'established',
    ctDirection: 'reply',
    ctStatus: ['seen-reply', 'confirmed', ...(p.ctStatus ?? [])],
    tcpFlags: ['syn', 'ack'],
    ...(p.skuid !== undefined ? { skuid: p.skuid } : {}),
    ...(p.skgid !== undefined ? { skgid: p.skgid } : {}),
    peer: (p.peer ?? 'saddr') === 'saddr' ? 'daddr' : 'saddr',
  };
  r.steps?.push({
    table: '',
    chain: '',
    hook: 'output',
    prio: null,
    handle: null,
    text: `reply ${p.daddr}:${p.dport} -> ${p.saddr}:${p.sport} [syn,ack]`,
    result: 'enter',
  });
  return r;
}

function stagesFor(direction: 'inbound' | 'outbound' | 'forward' | Hook[]): Stage[] {
  if (Array.isArray(direction)) return direction.map((hook) => ({ hook, nat: false }));
  if (direction === 'outbound')
    return [
      { hook: 'output', nat: true },
      { hook: 'postrouting', nat: false },
      { hook: 'egress', nat: false },
    ];
  if (direction === 'forward')
    return [
      { hook: 'prerouting', nat: false },
      { hook: 'forward', nat: false },
      { hook: 'postrouting', nat: false },
      { hook: 'egress', nat: false },
    ];
  return [
    { hook: 'ingress', nat: false },
    { hook: 'prerouting', nat: true },
  ];
}

/** Runs flows through the stages, then (inbound) routes them to input or forward. */
function runPath(
  ctx: EvalContext,
  direction: 'inbound' | 'outbound' | 'forward' | Hook[],
  flows: Flow[],
  opts: PathOptions,
): Done[] {
  const done: Done[] = [];
  let live = flows;
  for (const stage of stagesFor(direction)) live = runStage(ctx, stage, live, done, opts);
  if (direction !== 'inbound') {
    finish(live, done);
    return done;
  }
  const local = live.filter((f) => f.pkt.daddrLocal);
  const forwarded = live.filter((f) => !f.pkt.daddrLocal);
  let input = runStage(ctx, { hook: 'input', nat: false }, local, done, opts);
  if (opts.reply !== false) input = replyPath(ctx, input, done, opts);
  finish(input, done);
  for (const f of forwarded) {
    const oif = opts.routeOif?.(f.pkt.daddr) ?? null;
    if (oif !== null) f.pkt.oifname = oif;
    else f.doubt.push(`the interface a packet to ${f.pkt.daddr} leaves by is not known`);
  }
  let fwd = runStage(ctx, { hook: 'forward', nat: false }, forwarded, done, opts);
  fwd = runStage(ctx, { hook: 'postrouting', nat: false }, fwd, done, opts);
  fwd = runStage(ctx, { hook: 'egress', nat: false }, fwd, done, opts);
  finish(fwd, done);
  return done;
}

function replyPath(ctx: EvalContext, flows: Flow[], done: Done[], opts: PathOptions): Flow[] {
  const tcp = flows.filter((f) => f.pkt.protocol === 'tcp');
  const out: Flow[] = flows.filter((f) => f.pkt.protocol !== 'tcp');
  for (const f of tcp) {
    const r = replyFlow(f);
    const before = done.length;
    let passed = [r];
    for (const hook of ['output', 'postrouting', 'egress'] as const)
      passed = runStage(ctx, { hook, nat: false }, passed, done, opts);
    for (let i = before; i < done.length; i++) {
      const d = done[i];
      // The SYN was accepted, its SYN-ACK dropped: the handshake cannot complete.
      if (d) d.why.push('the SYN-ACK is dropped on the output path');
      if (d) d.flow.pkt = f.pkt;
    }
    for (const p of passed) {
      const back = withSrc(f, p.src);
      back.steps = p.steps;
      back.doubt.push(...p.doubt.filter((x) => !f.doubt.includes(x)));
      back.notes = [...new Set([...f.notes, ...p.notes])];
      lastAccept.set(back, lastAccept.get(f) ?? lastAccept.get(p) ?? (undefined as never));
      out.push(back);
    }
  }
  return out;
}

function finish(flows: Flow[], done: Done[]): void {
  for (const f of flows)
    done.push({
      flow: f,
      verdict: f.doubt.length > 0 ? 'unknown' : 'accept',
      piece: lastAccept.get(f) ?? null,
      why: [],
    });
}

function toDecision(d: Done): Decision {
  const p = d.piece;
  const policy = p !== null && p.rule === null;
  const reasons = d.verdict === 'unknown' ? [...new Set(d.flow.doubt)] : [];
  return {
    verdict: d.verdict,
    table: p ? tableLabel(p.chain) : null,
    chain: p ? p.chain.name : null,
    handle: p?.rule ? p.rule.handle : null,
    comment: p?.rule ? p.rule.comment : policy && p ? `policy ${p.chain.policy}` : null,
    text: p?.rule ? ruleText(p.rule) : null,
    reasons,
    notes: [...new Set([...d.flow.notes, ...d.why])],
  };
}

function startFlow(packet: Packet, src: AddrSet, trace: boolean): Flow {
  return {
    pkt: { ...packet },
    src,
    pending: null,
    doubt: [],
    notes: [],
    steps: trace ? [] : null,
    nat: null,
  };
}

/**
 * Evaluates a packet for every peer address in `sources` at once (default: all of them). Each
 * outcome covers a disjoint part of the sources.
 */
export function evaluateSources(
  ruleset: Ruleset,
  direction: 'inbound' | 'outbound' | 'forward' | Hook[],
  packet: Packet,
  options: PathOptions = {},
  sources: AddrSet = universe(packet.family),
): SourceOutcome[] {
  const ctx: EvalContext = { ruleset, depth: 0 };
  const done = runPath(ctx, direction, [startFlow(packet, sources, options.trace === true)], options);
  return done
    .filter((d) => !isEmpty(d.flow.src))
    .map((d) => ({
      sources: d.flow.src,
      decision: toDecision(d),
      steps: d.flow.steps ?? [],
      dnat: d.flow.nat,
    }));
}

/** The sources each verdict covers, merged. */
export function sourcesBy(
  outcomes: readonly SourceOutcome[],
  verdicts: readonly Verdict[],
  family: Family,
): AddrSet {
  return outcomes
    .filter((o) => verdicts.includes(o.decision.verdict))
    .reduce((acc, o) => union(acc, o.sources), emptySet(family));
}

function peerOf(packet: Packet): AddrSet {
  const text = (packet.peer ?? 'saddr') === 'saddr' ? packet.saddr : packet.daddr;
  const parsed = parseAddress(text);
  return parsed && parsed.family === packet.family
    ? pointSet(parsed.family, parsed.value)
    : emptySet(packet.family);
}

/** The decision for one concrete packet along a path (or a list of hooks). */
export function evaluate(
  ruleset: Ruleset,
  hooks: readonly Hook[] | 'inbound' | 'outbound' | 'forward',
  packet: Packet,
  options: PathOptions = {},
): Decision & { steps: TraceStep[] } {
  const [first] = evaluateSources(
    ruleset,
    typeof hooks === 'string' ? hooks : [...hooks],
    packet,
    options,
    peerOf(packet),
  );
  if (!first) return { ...undecided('the peer address is not an address of the packet family'), steps: [] };
  return { ...first.decision, steps: first.steps };
}

/** Inbound: ingress, prerouting (with DNAT), input, and for TCP the SYN-ACK through output. */
export function evaluateInbound(ruleset: Ruleset, packet: Packet, options: PathOptions = {}): Decision {
  return evaluate(ruleset, 'inbound', packet, options);
}

/** Outbound from a local process: output, then postrouting. */
export function evaluateOutbound(ruleset: Ruleset, packet: Packet, options: PathOptions = {}): Decision {
  return evaluate(ruleset, 'outbound', packet, options);
}

/** Forwarded after a DNAT to a container: prerouting filters, forward, postrouting. */
export function evaluateForward(ruleset: Ruleset, packet: Packet, options: PathOptions = {}): Decision {
  return evaluate(ruleset, 'forward', { ...packet, ctStatus: [...(packet.ctStatus ?? []), 'dnat'] }, options);
}

/**
 * Whether the matches of an iptables-save rule (its text after `-A CHAIN`, target dropped) match the
 * packet: true, false, or undefined when they cannot be decided. `name` is kept for the call sites
 * that ask about one extension; the whole rule text is evaluated.
 */
export function xtMatch(_name: string, text: string | null, packet: Packet): boolean | undefined {
  if (text === null) return undefined;
  const body = text.replace(/\s(-j|-g|--jump|--goto)\s.*$/, '');
  const expr = [...translateIptablesRule(body, packet.family === 6 ? 'ip6' : 'ip').expr, { accept: null }];
  const chain: NftChain = {
    family: packet.family === 6 ? 'ip6' : 'ip',
    table: 'xt',
    name: 'x',
    hook: 'input',
    type: 'filter',
    prio: 0,
    policy: 'drop',
    rules: [],
    devices: null,
    origin: 'nft',
  };
  chain.rules.push({
    family: chain.family,
    table: 'xt',
    chain: 'x',
    handle: 1,
    comment: null,
    expr,
    iptables: null,
  });
  const verdict = evaluate({ tables: [], chains: [chain], sets: [] }, ['input'], packet).verdict;
  return verdict === 'accept' ? true : verdict === 'unknown' ? undefined : false;
}
