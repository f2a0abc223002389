import { portSetHas } from '../../src/catalog/port-set.ts';
import { expectedInbound } from '../../src/policy/expect.ts';
import type { Cidr, Policy } from '../../src/policy/types.ts';
import {
  planExtraPeers,
  planLab,
  samplePorts,
  type Difference,
  type LabZone,
} from '../../src/verify/plan.ts';
import { type Question } from '../../src/verify/probes.ts';
import { rangesHas } from '../../src/catalog/port-set.ts';
import { planQuestions } from '../../src/verify/questions.ts';
import { parsePortSpec } from '../../src/catalog/port-spec.ts';

/**
 * Mutants of a compiled nftables ruleset, each opening or closing exactly one thing, with the verdict
 * the mutated ruleset gives every probe verify sends. The expected differences are computed from
 * verify's own question plan, so a mutant that verify misses (or a difference it invents) shows.
 */
export interface Mutant {
  example: string;
  name: string;
  edit: (nft: string) => string;
  /** The mutant's verdict for one probe, given what the policy expects. */
  verdict: (q: Question, port: number, expected: boolean) => boolean;
}

/** TCP ports every mutation run sweeps (small, so a run stays a few seconds; mutants pick from it). */
export const MUTATION_SWEEP = '1-1100,3306,8080,47777,65535';

function insertTop(nft: string, chain: string, rule: string): string {
  const anchor = `\tchain ${chain} {\n`;
  if (!nft.includes(anchor)) throw new Error(`no chain ${chain} in the ruleset`);
  // base chains start with their type line; the rule goes after it
  const at = nft.indexOf(anchor) + anchor.length;
  const typeLine = /^\t\ttype filter hook [^\n]*\n/.exec(nft.slice(at));
  const cut = at + (typeLine?.[0].length ?? 0);
  return `${nft.slice(0, cut)}\t\t${rule}\n${nft.slice(cut)}`;
}

function replaceOnce(nft: string, from: string | RegExp, to: string): string {
  const out = nft.replace(from, to);
  if (out === nft) throw new Error(`mutation anchor ${String(from)} not found`);
  return out;
}

type Proto = 'tcp' | 'udp';

function hits(
  q: Question,
  direction: Difference['direction'],
  zone: string,
  proto: Proto,
  port: number,
  p: number,
  family?: 4 | 6,
): boolean {
  return (
    q.where.direction === direction &&
    q.where.zone === zone &&
    q.protocol === proto &&
    p === port &&
    (family === undefined || q.where.family === family)
  );
}

function famRule(family: 4 | 6 | undefined): string {
  return family === undefined ? '' : `meta nfproto ipv${family} `;
}

function portMutants(
  example: string,
  zone: LabZone,
  direction: 'inbound' | 'outbound',
  questions: readonly Question[],
): Mutant[] {
  const chain = `${direction === 'inbound' ? 'in' : 'out'}_${zone.zone}`;
  const mine = questions.filter((q) => q.where.zone === zone.zone && q.where.direction === direction);
  const main = mine.filter((q) => q.where.peer === zone.v4.peer || q.where.peer === zone.v6.peer);
  const allowed = (proto: Proto): number[] =>
    [
      ...new Set(
        main.filter((q) => q.protocol === proto).flatMap((q) => q.expected.flatMap((r) => [r.from, r.to])),
      ),
    ].filter((p) => p !== 20 && p !== 21 && main.some((q) => q.protocol === proto && rangesHas(q.ports, p)));
  const out: Mutant[] = [];
  const open = (proto: Proto, port: number, family?: 4 | 6): void => {
    out.push({
      example,
      name: `open ${direction} ${proto}/${port}${family ? ` IPv${family} only` : ''} on ${zone.zone}`,
      edit: (nft) => insertTop(nft, chain, `${famRule(family)}${proto} dport ${port} accept`),
      verdict: (q, p, expected) => (hits(q, direction, zone.zone, proto, port, p, family) ? true : expected),
    });
  };
  const close = (proto: Proto, port: number): void => {
    out.push({
      example,
      name: `close ${direction} ${proto}/${port} on ${zone.zone}`,
      edit: (nft) => insertTop(nft, chain, `${proto} dport ${port} drop`),
      verdict: (q, p, expected) => (hits(q, direction, zone.zone, proto, port, p) ? false : expected),
    });
  };
  for (const port of [1, 81, 1023, 3306, 47777, 65535]) open('tcp', port);
  open('tcp', 1024, 6);
  open('tcp', 8080, 4);
  for (const port of [161, 5353]) open('udp', port);
  for (const port of allowed('tcp').slice(0, 3)) close('tcp', port);
  for (const port of allowed('udp').slice(0, 2)) close('udp', port);
  return out;
}

function routedMutants(example: string, lab: readonly LabZone[]): Mutant[] {
  const out: Mutant[] = [];
  for (const from of lab)
    for (const to of lab) {
      if (from === to) continue;
      out.push({
        example,
        name: `route ${from.zone} -> ${to.zone} tcp/3306`,
        edit: (nft) =>
          insertTop(nft, 'forward', `iifname "${from.hostIf}" oifname "${to.hostIf}" tcp dport 3306 accept`),
        verdict: (q, p, expected) =>
          q.where.direction === 'routed' &&
          q.where.zone === from.zone &&
          q.where.toZone === to.zone &&
          q.protocol === 'tcp' &&
          p === 3306
            ? true
            : expected,
      });
    }
  return out;
}

const ANY4: Cidr = { family: 4, address: '0.0.0.0', prefix: 0, text: '0.0.0.0/0' };

/** A policy where one zone's v4 `from:` ranges (or its v4 sources) admit every address. */
function widened(policy: Policy, zoneName: string, what: 'from' | 'sources'): Policy {
  return {
    ...policy,
    zones: policy.zones.map((z) => {
      if (z.name !== zoneName) return z;
      if (what === 'sources') return { ...z, sources: [...z.sources.filter((c) => c.family === 6), ANY4] };
      return {
        ...z,
        inbound: z.inbound.map((r) =>
          r.peers.some((c) => c.family === 4)
            ? { ...r, peers: [...r.peers.filter((c) => c.family === 6), ANY4] }
            : r,
        ),
      };
    }),
  };
}

function addressMutants(example: string, policy: Policy, nft: string): Mutant[] {
  const out: Mutant[] = [];
  for (const zone of policy.zones) {
    const inboundAs =
      (mutated: Policy) =>
      (q: Question, p: number, expected: boolean): boolean =>
        q.where.direction === 'inbound' && q.where.zone === zone.name && q.where.family === 4 && q.where.peer
          ? portSetHas(expectedInbound(mutated, zone.name, 4, q.where.peer), q.protocol, p)
          : expected;
    const peersSet = new RegExp(
      `(set in_${zone.name}_\\d+_(tcp|udp)_v4_peers \\{[^}]*elements = \\{ )[^}]*( \\})`,
    );
    if (peersSet.test(nft))
      out.push({
        example,
        name: `widen the v4 from: ranges of ${zone.name} to everyone`,
        edit: (text) => replaceOnce(text, new RegExp(peersSet.source, 'g'), '$10.0.0.0/0$3'),
        verdict: inboundAs(widened(policy, zone.name, 'from')),
      });
    const members = `\t\tip saddr != @in_${zone.name}_members_v4 return\n`;
    if (nft.includes(members))
      out.push({
        example,
        name: `ignore the v4 sources of ${zone.name}`,
        edit: (text) => replaceOnce(text, members, ''),
        verdict: inboundAs(widened(policy, zone.name, 'sources')),
      });
  }
  return out;
}

function forwardMutants(example: string, policy: Policy): Mutant[] {
  return policy.forwards.map((f) => ({
    example,
    name: `forward ${f.listenPort} DNATs to the wrong port`,
    edit: (nft) =>
      replaceOnce(nft, `dnat ip to ${f.toAddress}:${f.toPort}`, `dnat ip to ${f.toAddress}:${f.toPort + 1}`),
    verdict: (q, p, expected) =>
      q.translated && q.where.zone === f.zone && p === f.listenPort ? false : expected,
  }));
}

/** The questions verify asks for this policy with the mutation sweep. */
export function mutationQuestions(policy: Policy, sweep = MUTATION_SWEEP): Question[] {
  const lab = planLab(policy);
  const ranges = (spec: string, protocol: Proto): { from: number; to: number }[] => [
    ...parsePortSpec(spec, { defaultProtocols: [protocol] })[protocol],
  ];
  return planQuestions(policy, lab, planExtraPeers(policy, lab), {
    sweep: ranges(sweep, 'tcp'),
    tcpSample: ranges(samplePorts(policy, 'tcp', sweep), 'tcp'),
    udp: ranges(samplePorts(policy, 'udp'), 'udp'),
  });
}

/** Every probe the mutant's verdict differs from the policy on, as comparable strings. */
export function expectedDifferences(mutant: Mutant, questions: readonly Question[]): string[] {
  const out: string[] = [];
  for (const q of questions)
    for (const r of q.ports)
      for (let p = r.from; p <= r.to; p++) {
        const want = rangesHas(q.expected, p);
        if (mutant.verdict(q, p, want) !== want)
          out.push(cell(q.where, q.protocol, q.translated ? q.translated.label : String(p), want));
      }
  return out.sort();
}

function cell(
  w: Pick<Difference, 'zone' | 'toZone' | 'direction' | 'family' | 'peer'>,
  protocol: string,
  port: string,
  want: boolean,
): string {
  return `${w.zone}${w.toZone ? `->${w.toZone}` : ''} ${w.direction} IPv${w.family} ${protocol} ${w.peer ?? ''} ${port} expected ${want ? 'pass' : 'block'}`;
}

/** verify's differences in the same form, one string per port. */
export function reportedDifferences(differences: readonly Difference[]): string[] {
  const out: string[] = [];
  for (const d of differences) {
    const want = d.expected === 'pass';
    if (d.direction === 'forward' || d.protocol === 'ftp') {
      out.push(cell(d, d.protocol, d.ports, want));
      continue;
    }
    for (const part of d.ports.split(',')) {
      const [a, b] = part.split('-').map(Number);
      for (let p = a ?? 0; p <= (b ?? a ?? 0); p++) out.push(cell(d, d.protocol, String(p), want));
    }
  }
  return out.sort();
}

/** At least 20 mutants of the example's compiled ruleset, each changing what verify must see. */
export function mutantsOf(example: string, policy: Policy, nft: string): Mutant[] {
  const lab = planLab(policy);
  const questions = mutationQuestions(policy);
  const all = [
    ...lab.flatMap((z) => [
      ...portMutants(example, z, 'inbound', questions),
      ...portMutants(example, z, 'outbound', questions),
    ]),
    ...routedMutants(example, lab),
    ...addressMutants(example, policy, nft),
    ...forwardMutants(example, policy),
  ];
  // a mutant that changes no probe's verdict (it opens what the policy opens) proves nothing
  return all.filter((m) => expectedDifferences(m, questions).length > 0);
}
