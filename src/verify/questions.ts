import type { PortSet } from '../catalog/port-set.ts';
import type { PortRange } from '../catalog/types.ts';
import { expectedInbound, expectedOutbound, expectedRouted, isZoneMember } from '../policy/expect.ts';
import { canonicalAddress, cidrContains } from '../catalog/address.ts';
import type { Forward, Policy } from '../policy/types.ts';
import { labSide, type ExtraPeer, type LabZone } from './plan.ts';
import type { Question } from './probes.ts';

/**
 * Every question verify asks of the lab, planned from the policy and the lab alone (pure): every TCP
 * port of the sweep in and out of each zone from its main peer, sampled TCP and UDP from and to every
 * extra peer, routed traffic between every pair of zone peers, and each port forward from the zone's
 * peers; IPv4 and IPv6. The expectation of each comes from the policy, never from a ruleset.
 */
export interface QuestionPlan {
  /** TCP ports swept between the host and each zone's main peer. */
  sweep: readonly PortRange[];
  /** TCP ports probed where a full sweep is not needed. */
  tcpSample: readonly PortRange[];
  udp: readonly PortRange[];
}

function question(
  where: Question['where'],
  src: string,
  dst: string,
  protocol: 'tcp' | 'udp',
  ports: readonly PortRange[],
  expected: PortSet,
): Question {
  return {
    where,
    src: canonicalAddress(src),
    dst: canonicalAddress(dst),
    protocol,
    ports,
    expected: expected[protocol],
  };
}

function both(
  where: Question['where'],
  src: string,
  dst: string,
  tcp: readonly PortRange[],
  udp: readonly PortRange[],
  expected: PortSet,
): Question[] {
  return [
    question(where, src, dst, 'tcp', tcp, expected),
    question(where, src, dst, 'udp', udp, expected),
  ].filter((q) => q.ports.length > 0);
}

function zoneQuestions(
  policy: Policy,
  lab: readonly LabZone[],
  zone: LabZone,
  ports: QuestionPlan,
): Question[] {
  const out: Question[] = [];
  for (const family of [4, 6] as const) {
    const a = labSide(zone, family);
    const inbound = { zone: zone.zone, direction: 'inbound' as const, family, peer: a.peer };
    out.push(
      ...both(
        inbound,
        a.peer,
        a.host,
        ports.sweep,
        ports.udp,
        expectedInbound(policy, zone.zone, family, a.peer),
      ),
    );
    const outbound = { zone: zone.zone, direction: 'outbound' as const, family, peer: a.peer };
    out.push(
      ...both(
        outbound,
        a.host,
        a.peer,
        ports.sweep,
        ports.udp,
        expectedOutbound(policy, zone.zone, family, a.peer),
      ),
    );
    for (const to of lab) {
      if (to === zone) continue;
      const dst = labSide(to, family).peer;
      const routed = { zone: zone.zone, toZone: to.zone, direction: 'routed' as const, family, peer: dst };
      const expected = expectedRouted(policy, zone.zone, to.zone, family, a.peer);
      out.push(...both(routed, a.peer, dst, ports.tcpSample, ports.udp, expected));
    }
  }
  return out;
}

function extraQuestions(
  policy: Policy,
  lab: readonly LabZone[],
  extra: ExtraPeer,
  ports: QuestionPlan,
): Question[] {
  const zone = lab.find((z) => z.zone === extra.zone);
  if (!zone) return [];
  const host = labSide(zone, extra.family).host;
  const where = { zone: extra.zone, family: extra.family, peer: extra.address };
  return [
    ...both(
      { ...where, direction: 'inbound' },
      extra.address,
      host,
      ports.tcpSample,
      ports.udp,
      expectedInbound(policy, extra.zone, extra.family, extra.address),
    ),
    ...both(
      { ...where, direction: 'outbound' },
      host,
      extra.address,
      ports.tcpSample,
      ports.udp,
      expectedOutbound(policy, extra.zone, extra.family, extra.address),
    ),
  ];
}

/** A forward's probe from a zone peer: through the host's address and listening port. */
function forwardQuestion(policy: Policy, zone: LabZone, forward: Forward, peer: string): Question {
  const family = forward.toFamily;
  const host = labSide(zone, family).host;
  const policyZone = policy.zones.find((z) => z.name === forward.zone);
  const member = policyZone !== undefined && isZoneMember(policyZone, peer);
  const allowed = forward.sources.length === 0 || forward.sources.some((c) => cidrContains(c, peer));
  const port = { from: forward.listenPort, to: forward.listenPort };
  return {
    where: { zone: forward.zone, direction: 'forward', family, peer },
    src: canonicalAddress(peer),
    dst: canonicalAddress(host),
    protocol: forward.protocol,
    ports: [port],
    expected: member && allowed ? [port] : [],
    translated: {
      dst: canonicalAddress(forward.toAddress),
      port: forward.toPort,
      label: `${forward.listenPort}->${forward.toFamily === 6 ? `[${forward.toAddress}]` : forward.toAddress}:${forward.toPort}`,
    },
  };
}

export function planQuestions(
  policy: Policy,
  lab: readonly LabZone[],
  extras: readonly ExtraPeer[],
  ports: QuestionPlan,
): Question[] {
  const out = lab.flatMap((zone) => zoneQuestions(policy, lab, zone, ports));
  for (const extra of extras) out.push(...extraQuestions(policy, lab, extra, ports));
  for (const forward of policy.forwards) {
    const zone = lab.find((z) => z.zone === forward.zone);
    if (!zone) continue;
    const peers = [labSide(zone, forward.toFamily).peer];
    for (const e of extras)
      if (e.zone === forward.zone && e.family === forward.toFamily) peers.push(e.address);
    for (const peer of peers) out.push(forwardQuestion(policy, zone, forward, peer));
  }
  return out;
}
