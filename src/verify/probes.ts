import { countRanges, formatRanges, mergeRanges, rangesHas, rangesOf } from '../catalog/port-set.ts';

import type { PortRange } from '../catalog/types.ts';
import type { Difference } from './plan.ts';
import { countKey, probeKey, type KeyRange, type Records } from './recorder.ts';

/**
 * What verify asks of the lab (pure): each question is a set of probe packets from one address to
 * another, and for each port whether the policy lets it through. Decisions come from the recorder's
 * records only — never from answers or their absence.
 */

export type Where = Pick<Difference, 'zone' | 'direction' | 'family' | 'peer' | 'toZone'>;

export interface Question {
  where: Where;
  src: string;
  dst: string;
  protocol: 'tcp' | 'udp';
  /** Ports probed: sorted, merged ranges. */
  ports: readonly PortRange[];
  /** The ports of `ports` that the policy lets through: sorted, merged ranges. */
  expected: readonly PortRange[];
  /** A port forward: the probe must leave the ruleset addressed to `dst`:`port` (after DNAT). */
  translated?: { dst: string; port: number; label: string };
}

/** Ports no verdict could be had for, and why. */
export interface Undecided extends Where {
  protocol: 'tcp' | 'udp';
  ports: string;
  count: number;
  reason: string;
}

function intersect(a: readonly PortRange[], b: readonly PortRange[]): PortRange[] {
  const out: PortRange[] = [];
  for (const x of a)
    for (const y of b) {
      const from = Math.max(x.from, y.from);
      const to = Math.min(x.to, y.to);
      if (from <= to) out.push({ from, to });
    }
  return mergeRanges(out);
}

/** The recorder's expectation sets: which probes the policy expects to pass, before and after NAT. */
export function expectations(questions: readonly Question[]): {
  expectIn: KeyRange[];
  expectPass: KeyRange[];
} {
  const expectIn: KeyRange[] = [];
  const expectPass: KeyRange[] = [];
  for (const q of questions) {
    for (const r of intersect(q.expected, q.ports)) {
      const key = { src: q.src, dst: q.dst, protocol: q.protocol, from: r.from, to: r.to };
      expectIn.push(key);
      const t = q.translated;
      expectPass.push(t ? { ...key, dst: t.dst, from: t.port, to: t.port } : key);
    }
  }
  return { expectIn, expectPass };
}

/** Probe packets from one source to one destination and protocol. */
export interface PacketGroup {
  src: string;
  dst: string;
  protocol: 'tcp' | 'udp';
  ports: PortRange[];
}

function tripleOf(q: Pick<Question, 'src' | 'dst' | 'protocol'>): string {
  return `${q.src}|${q.dst}|${q.protocol}`;
}

/** The verdicts so far: per question, per port, 'pass' or 'block' once observed. */
export class Verdicts {
  readonly observed: Map<number, 'pass' | 'block'>[];
  /** Per (source, destination, protocol): the ports some question expects to pass (fixed for a run). */
  readonly expectIn: Map<string, PortRange[]>;
  constructor(readonly questions: readonly Question[]) {
    this.observed = questions.map(() => new Map<number, 'pass' | 'block'>());
    this.expectIn = expectationIndex(questions);
  }

  /** The packets still to send: every undecided port, grouped by (source, destination, protocol). */
  pending(): PacketGroup[] {
    const groups = new Map<string, { q: Question; ports: Set<number> }>();
    this.questions.forEach((q, i) => {
      const seen = this.observed[i] ?? new Map<number, 'pass' | 'block'>();
      const key = tripleOf(q);
      const group = groups.get(key) ?? { q, ports: new Set<number>() };
      for (const r of q.ports) for (let p = r.from; p <= r.to; p++) if (!seen.has(p)) group.ports.add(p);
      groups.set(key, group);
    });
    return [...groups.values()]
      .filter((g) => g.ports.size > 0)
      .map(({ q, ports }) => ({ src: q.src, dst: q.dst, protocol: q.protocol, ports: rangesOf(ports) }));
  }

  undecidedCount(): number {
    return this.questions.reduce((n, q, i) => n + countRanges(q.ports) - (this.observed[i]?.size ?? 0), 0);
  }
}

export interface RoundInput {
  /** What was sent this round, with the source port that marks the attempt. */
  sent: readonly PacketGroup[];
  sport: number;
  /** The records of *in*, read first. */
  arrivals: Records;
  /** The records of *pass*, read after the arrivals (so no probe is counted as arrived and not yet passed). */
  passes: Records;
  /** Whether conntrack dropped packets in the host during the round (then no probe counts as blocked). */
  conntrackTrouble: boolean;
  /** Whether every unexpected pass was read port by port (else only their counts were). */
  exact: boolean;
}

/** How many probes of each (source, destination, protocol) the policy expects blocked, sent this round. */
function blockClassSent(
  sent: readonly PacketGroup[],
  expectIn: Map<string, PortRange[]>,
): Map<string, number> {
  return new Map(
    sent.map((g) => [
      tripleOf(g),
      countRanges(g.ports) - countRanges(intersect(g.ports, expectIn.get(tripleOf(g)) ?? [])),
    ]),
  );
}

/**
 * Whether the unexpected passes must be read port by port: some group had some but not all of its
 * blocked-class probes pass, or a pass was counted for a group that was not sent as such (a probe
 * that DNAT took elsewhere). Otherwise the counts say it all, and large sets need no reading.
 */
export function needsFullRecords(
  verdicts: Verdicts,
  sent: readonly PacketGroup[],
  sport: number,
  passes: Records,
): boolean {
  const blocked = blockClassSent(sent, verdicts.expectIn);
  const known = new Set<string>();
  for (const [triple, total] of blocked) {
    const key = `${triple}|${sport}`;
    known.add(key);
    const passed = passes.passedCount.get(key) ?? 0;
    if (passed > 0 && passed < total) return true;
  }
  return [...passes.passedCount.keys()].some((key) => key.endsWith(`|${sport}`) && !known.has(key));
}

/**
 * Settles what one round's records prove. Passed: recorded after the ruleset. Blocked: provably arrived
 * (recorded per port, or its whole group counted at *in*) and not recorded after the ruleset. Anything
 * else stays undecided and is sent again.
 */
export function settleRound(verdicts: Verdicts, round: RoundInput): void {
  const expectIn = verdicts.expectIn;
  const blocked = blockClassSent(round.sent, expectIn);
  const allArrived = new Set<string>();
  for (const g of round.sent) {
    let expectedArrived = 0;
    for (const r of intersect(g.ports, expectIn.get(tripleOf(g)) ?? []))
      for (let p = r.from; p <= r.to; p++)
        if (round.arrivals.arrivedExpected.has(probeKey(g.src, g.dst, g.protocol, p))) expectedArrived += 1;
    const counted = round.arrivals.arrivedCount.get(countKey(g.src, g.dst, g.protocol, round.sport)) ?? 0;
    if (counted - expectedArrived >= (blocked.get(tripleOf(g)) ?? 0)) allArrived.add(tripleOf(g));
  }
  const sentPorts = new Map(round.sent.map((g) => [tripleOf(g), g.ports]));
  // without the port-by-port records, a group's unexpected passes are none or all of its class
  const allPassed = (q: Question): boolean =>
    (round.passes.passedCount.get(`${tripleOf(q)}|${round.sport}`) ?? 0) === blocked.get(tripleOf(q)) &&
    (blocked.get(tripleOf(q)) ?? 0) > 0;
  verdicts.questions.forEach((q, i) => {
    const seen = verdicts.observed[i];
    const sent = sentPorts.get(tripleOf(q));
    if (!seen || !sent) return;
    const exp = expectIn.get(tripleOf(q)) ?? [];
    for (const r of q.ports)
      for (let p = r.from; p <= r.to; p++) {
        if (seen.has(p) || !rangesHas(sent, p)) continue;
        const out = q.translated
          ? probeKey(q.src, q.translated.dst, q.protocol, q.translated.port)
          : probeKey(q.src, q.dst, q.protocol, p);
        const unexpectedClass = !rangesHas(exp, p) && !q.translated;
        if (round.passes.passed.has(out) || (unexpectedClass && !round.exact && allPassed(q))) {
          seen.set(p, 'pass');
          continue;
        }
        const arrived = rangesHas(exp, p)
          ? round.arrivals.arrivedExpected.has(probeKey(q.src, q.dst, q.protocol, p))
          : allArrived.has(tripleOf(q));
        if (arrived && !round.conntrackTrouble) seen.set(p, 'block');
      }
  });
}

function expectationIndex(questions: readonly Question[]): Map<string, PortRange[]> {
  const index = new Map<string, PortRange[]>();
  for (const q of questions) {
    const key = tripleOf(q);
    index.set(key, mergeRanges([...(index.get(key) ?? []), ...intersect(q.expected, q.ports)]));
  }
  return index;
}

/** The differences between the policy and the records, and what stayed undecided. */
export function summarise(
  verdicts: Verdicts,
  reason: string,
): { differences: Difference[]; undecided: Undecided[] } {
  const differences: Difference[] = [];
  const undecided: Undecided[] = [];
  verdicts.questions.forEach((q, i) => {
    const seen = verdicts.observed[i] ?? new Map<number, 'pass' | 'block'>();
    const wrong = { pass: [] as number[], block: [] as number[] };
    const unknown: number[] = [];
    for (const r of q.ports)
      for (let p = r.from; p <= r.to; p++) {
        const got = seen.get(p);
        const want = rangesHas(q.expected, p) ? 'pass' : 'block';
        if (got === undefined) unknown.push(p);
        else if (got !== want) wrong[want].push(p);
      }
    for (const want of ['pass', 'block'] as const) {
      if (wrong[want].length === 0) continue;
      const ports = q.translated ? q.translated.label : formatRanges(rangesOf(wrong[want]));
      differences.push({
        ...q.where,
        protocol: q.protocol,
        ports,
        count: wrong[want].length,
        expected: want,
        observed: want === 'pass' ? 'block' : 'pass',
      });
    }
    if (unknown.length > 0)
      undecided.push({
        ...q.where,
        protocol: q.protocol,
        ports: q.translated ? q.translated.label : formatRanges(rangesOf(unknown)),
        count: unknown.length,
        reason,
      });
  });
  return { differences, undecided };
}
