import { mergeRanges, rangesHas } from '../catalog/port-set.ts';
import { parsePortSpec } from '../catalog/port-spec.ts';
import { cidrContains } from '../catalog/address.ts';
import type { Policy } from '../policy/types.ts';
import type { PortRange } from '../catalog/types.ts';
import { emptySet, pointSet } from '../ruleset/addr-set.ts';
import { parseAddress } from '../catalog/address.ts';
import { evaluateSources, type Packet, type PathOptions } from '../ruleset/path.ts';
import { obj, type Ruleset } from '../ruleset/ruleset.ts';
import { withLegacy } from '../ruleset/parse.ts';
import { parseNftText } from '../ruleset/nft-text.ts';
import type { CompiledFile } from '../compile/backend.ts';
import { labSubnet, planExtraPeers, planLab, samplePorts, type LabZone } from './plan.ts';
import type { Question, Where } from './probes.ts';
import { planQuestions } from './questions.ts';

/**
 * A static verify (pure): the same questions verify asks of a lab, answered by the ruleset
 * evaluator instead of packets. Each port of each question is run through the compiled ruleset as
 * a probe packet would be, and the answer is held against what the policy expects — so every
 * backend that compiles to a ruleset the evaluator reads (nftables, iptables) must give the same
 * answer: the policy's.
 */

/** What the ruleset did with one probe. */
export type Observed = 'pass' | 'block' | 'unknown';

/** The ruleset's answer to one question: the ports it let through, and the ones it left undecided. */
export interface Answer {
  passed: readonly PortRange[];
  unknown: readonly { port: number; reason: string }[];
  /** For a port forward: where the accepted probe was sent, when not where the policy says. */
  misrouted?: string;
}

/** One port on which the ruleset and the policy disagree. */
export interface Disagreement extends Where {
  protocol: 'tcp' | 'udp';
  port: number;
  expected: 'pass' | 'block';
  observed: Observed;
  /** For a port forward: which one ("8443->198.51.100.20:8080"). */
  forward?: string;
  reason?: string;
}

/** The rulesets a backend's compiled files stand for, as the evaluator reads them. */
export function rulesetOfCompiled(backend: string, files: readonly CompiledFile[]): Ruleset {
  if (backend === 'nftables') return parseNftText(files.map((f) => f.content).join('\n'));
  if (backend === 'iptables') {
    const v4 = files.find((f) => f.suffix === '' || f.suffix === '.v4')?.content ?? '';
    const v6 = files.find((f) => f.suffix === '.v6')?.content ?? '';
    return withLegacy({ tables: [], chains: [], sets: [] }, { ip: v4, ip6: v6 });
  }
  throw new Error(`no evaluator reads ${backend} rulesets`);
}

function* portsOf(ranges: readonly PortRange[]): Generator<number> {
  for (const r of ranges) for (let p = r.from; p <= r.to; p++) yield p;
}

const has = rangesHas;

/**
 * Well-known TCP ports besides the ones the policy names (with their neighbours, which verify's
 * sample always has): the evaluator compares numbers and ranges, so a port between two of these
 * is answered like its neighbours and sweeping all of 1-1024 would only repeat answers.
 */
const TCP_SWEEP = '1,7,20-25,53,80,110,111,135-139,143,443,445,631,993,995,1024,3306,3389,8080,65535';

/** Port numbers in a right-hand side (a value, a range, an anonymous or named set). */
function portValues(json: unknown, ruleset: Ruleset, table: string, out: Set<number>): void {
  const edges = (a: number, b: number): void => {
    for (const p of [a - 1, a, b, b + 1]) if (p >= 1 && p <= 65535) out.add(p);
  };
  if (typeof json === 'number') return edges(json, json);
  if (typeof json === 'string' && json.startsWith('@')) {
    const set = ruleset.sets.find((x) => x.table === table && x.name === json.slice(1));
    for (const e of set?.elem ?? []) portValues(e, ruleset, table, out);
    return;
  }
  if (Array.isArray(json)) return json.forEach((x) => portValues(x, ruleset, table, out));
  const o = obj(json);
  const range = o?.['range'];
  if (Array.isArray(range) && typeof range[0] === 'number' && typeof range[1] === 'number')
    return edges(range[0], range[1]);
  if (o?.['set'] !== undefined) portValues(o['set'], ruleset, table, out);
}

/**
 * Every destination port a ruleset names, with its neighbours: the only places where its answer
 * can change, so a port the ruleset opens that the policy does not name is asked about too.
 */
export function rulesetPorts(ruleset: Ruleset): number[] {
  const out = new Set<number>();
  for (const chain of ruleset.chains)
    for (const rule of chain.rules)
      for (const e of rule.expr) {
        const m = obj(obj(e)?.['match']);
        const payload = obj(obj(m?.['left'])?.['payload']);
        if (payload?.['field'] === 'dport') portValues(m?.['right'], ruleset, chain.table, out);
      }
  return [...out].sort((a, b) => a - b);
}

function sample(policy: Policy, protocol: 'tcp' | 'udp', ruleset: Ruleset | null): PortRange[] {
  const spec = samplePorts(policy, protocol, protocol === 'tcp' ? TCP_SWEEP : undefined);
  const ports = [...parsePortSpec(spec, { defaultProtocols: [protocol] })[protocol]];
  return mergeRanges([...ports, ...(ruleset ? rulesetPorts(ruleset) : []).map((p) => ({ from: p, to: p }))]);
}

/** Compares the ruleset's answers with the policy's expectation, port by port (pure). */
export function compareAnswers(questions: readonly Question[], answers: readonly Answer[]): Disagreement[] {
  const out: Disagreement[] = [];
  questions.forEach((q, i) => {
    const answer = answers[i] ?? { passed: [], unknown: [] };
    const unknown = new Map(answer.unknown.map((u) => [u.port, u.reason]));
    for (const port of portsOf(q.ports)) {
      const expected = has(q.expected, port) ? 'pass' : 'block';
      const why = unknown.get(port);
      const observed: Observed = why !== undefined ? 'unknown' : has(answer.passed, port) ? 'pass' : 'block';
      const reason = why ?? (observed === 'pass' && answer.misrouted) ?? undefined;
      if (observed !== expected || (observed === 'pass' && answer.misrouted))
        out.push({
          ...q.where,
          protocol: q.protocol,
          port,
          expected,
          observed,
          ...(q.translated ? { forward: q.translated.label } : {}),
          ...(reason ? { reason } : {}),
        });
    }
  });
  return out;
}

/**
 * Where the lab's addresses live: the host's own, and which interface leads to each subnet. A
 * forward's target outside every lab subnet is routed as verify's lab places it: behind the first
 * zone other than the forward's own.
 */
function pathOptions(policy: Policy, lab: readonly LabZone[]): PathOptions {
  const local = new Set(['127.0.0.1', '::1', ...lab.flatMap((z) => [z.v4.host, z.v6.host])]);
  const targets = new Map(
    policy.forwards.map((f) => [f.toAddress, (lab.find((z) => z.zone !== f.zone) ?? lab[0])?.hostIf]),
  );
  return {
    isLocal: (a) => local.has(a),
    routeOif: (a) => {
      const family = parseAddress(a)?.family ?? 4;
      return lab.find((z) => cidrContains(labSubnet(z, family), a))?.hostIf ?? targets.get(a) ?? null;
    },
  };
}

function packetFor(q: Question, lab: readonly LabZone[], port: number): Packet {
  const zone = lab.find((z) => z.zone === q.where.zone);
  const base = {
    family: q.where.family,
    protocol: q.protocol,
    saddr: q.src,
    daddr: q.dst,
    sport: 40000,
    dport: port,
  };
  const hostIf = zone?.hostIf ?? '';
  if (q.where.direction === 'outbound')
    // Verify's probes come from root, in no unit's cgroup: program rules do not apply to them.
    return { ...base, oifname: hostIf, daddrLocal: false, peer: 'daddr', skuid: 0, skgid: 0, cgroup: '' };
  if (q.where.direction === 'routed') {
    const to = lab.find((z) => z.zone === q.where.toZone)?.hostIf ?? '';
    return { ...base, iifname: hostIf, oifname: to, daddrLocal: false };
  }
  return { ...base, iifname: hostIf, daddrLocal: true };
}

/** Runs every port of one question through the ruleset. */
export function answerQuestion(
  ruleset: Ruleset,
  lab: readonly LabZone[],
  q: Question,
  options: PathOptions,
): Answer {
  const passed: PortRange[] = [];
  const unknown: { port: number; reason: string }[] = [];
  let misrouted: string | undefined;
  for (const port of portsOf(q.ports)) {
    const packet = packetFor(q, lab, port);
    const peer = parseAddress(packet.peer === 'daddr' ? packet.daddr : packet.saddr);
    const sources = peer ? pointSet(peer.family, peer.value) : emptySet(packet.family);
    const direction =
      q.where.direction === 'routed' ? 'forward' : q.where.direction === 'outbound' ? 'outbound' : 'inbound';
    const [outcome] = evaluateSources(ruleset, direction, packet, options, sources);
    const verdict = outcome?.decision.verdict ?? 'unknown';
    if (verdict === 'unknown')
      unknown.push({ port, reason: outcome?.decision.reasons.join('; ') ?? 'no outcome' });
    else if (verdict === 'accept') {
      const t = q.translated;
      const sent = outcome?.dnat;
      // A probe that a port forward took elsewhere never reached this host's port (its forward
      // question answers for it).
      if (!t && sent) continue;
      passed.push({ from: port, to: port });
      if (t && (sent?.addr !== t.dst || sent.port !== t.port))
        misrouted = `forwarded to ${sent ? `${sent.addr ?? 'this host'}:${sent.port ?? port}` : 'nowhere'}, not ${t.dst}:${t.port}`;
    }
  }
  return { passed, unknown, ...(misrouted ? { misrouted } : {}) };
}

/**
 * The questions a static verify asks: verify's own, over the ports the policy and the ruleset name
 * (with their neighbours) and a sample of well-known ones.
 */
export function staticQuestions(
  policy: Policy,
  ruleset: Ruleset | null = null,
  lab: readonly LabZone[] = planLab(policy),
): Question[] {
  const tcp = sample(policy, 'tcp', ruleset);
  return planQuestions(policy, lab, planExtraPeers(policy, lab), {
    sweep: tcp,
    tcpSample: tcp,
    udp: sample(policy, 'udp', ruleset),
  });
}

/**
 * Holds a ruleset against its policy without a kernel: every disagreement names the zone,
 * direction, family, protocol and port.
 */
export function verifyStatically(policy: Policy, ruleset: Ruleset): Disagreement[] {
  const lab = planLab(policy);
  const questions = staticQuestions(policy, ruleset, lab);
  const options = pathOptions(policy, lab);
  return compareAnswers(
    questions,
    questions.map((q) => answerQuestion(ruleset, lab, q, options)),
  );
}
