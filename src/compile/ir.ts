import type { PortRange, Protocol } from '../catalog/types.ts';
import type { Cidr, Policy, ProgramMatch, Verdict, Zone } from '../policy/types.ts';

/**
 * The backend-independent form of a policy: flat allow rules grouped per zone and direction, NAT
 * entries, and the implied essentials. Backends turn this into text and never look at the policy.
 */

/** One allow rule for one protocol and at most one address family. */
export interface IrRule {
  /** Stable id used for set and chain names: `in_external_1_tcp`. */
  id: string;
  protocol: Protocol;
  /** Destination ports; never empty. */
  ports: readonly PortRange[];
  /** 4 or 6 when the rule names addresses of one family; null when it matches both. */
  family: 4 | 6 | null;
  /** Source addresses (inbound, forward) — empty means any. */
  saddr: Cidr[];
  /** Destination addresses (outbound) — empty means any. */
  daddr: Cidr[];
  log: boolean;
  comment: string;
}

/** The allow rules of one zone in one direction, entered by interface (and source) match. */
export interface IrZoneChain {
  zone: string;
  direction: 'in' | 'out';
  interfaces: string[];
  /** Zone membership by address: saddr for inbound, daddr for outbound. Empty = everything. */
  members: Cidr[];
  rules: IrRule[];
}

export interface IrProgramRule extends IrRule {
  program: ProgramMatch;
  /** Index of the program in the policy's `programs:` list (a `path:` rule matches its mark). */
  programIndex: number;
}

export interface IrRoute extends IrRule {
  fromZone: string;
  toZone: string;
  iif: string[];
  oif: string[];
  fromMembers: Cidr[];
  toMembers: Cidr[];
}

export type IrNat =
  | {
      kind: 'dnat';
      zone: string;
      interfaces: string[];
      protocol: Protocol;
      port: number;
      toAddress: string;
      toFamily: 4 | 6;
      toPort: number;
      toLoopback: boolean;
      saddr: Cidr[];
      comment: string;
    }
  | { kind: 'masquerade'; fromZone: string; toZone: string; iif: string[]; oif: string[]; comment: string };

export interface Ir {
  policyName: string;
  policyFile: string;
  defaults: { input: Verdict; output: Verdict; forward: Verdict };
  log: boolean;
  icmpEcho: boolean;
  coexist: ('docker' | 'libvirt')[];
  input: IrZoneChain[];
  output: IrZoneChain[];
  programs: IrProgramRule[];
  forward: IrRoute[];
  nat: IrNat[];
  /** Attach the FTP conntrack helper to tcp/21 in these directions. */
  ftpHelper: { inbound: boolean; outbound: boolean };
  /** Zones whose declared passive FTP range is opened explicitly. */
  ftpPassive: { zone: string; range: PortRange }[];
}

/** Splits a rule's peers by family: no peers -> one rule for both families. */
function byFamily(peers: readonly Cidr[]): { family: 4 | 6 | null; cidrs: Cidr[] }[] {
  if (peers.length === 0) return [{ family: null, cidrs: [] }];
  return ([4, 6] as const)
    .map((family) => ({ family, cidrs: peers.filter((p) => p.family === family) }))
    .filter((g) => g.cidrs.length > 0);
}

interface RuleSource {
  ports: { readonly tcp: readonly PortRange[]; readonly udp: readonly PortRange[] };
  peers: Cidr[];
  spec: string;
  comment: string | null;
  log: boolean;
}

function expandRule(base: string, rule: RuleSource, peerSide: 'saddr' | 'daddr'): IrRule[] {
  const out: IrRule[] = [];
  for (const protocol of ['tcp', 'udp'] as const) {
    const ports = rule.ports[protocol];
    if (ports.length === 0) continue;
    for (const { family, cidrs } of byFamily(rule.peers)) {
      out.push({
        id: `${base}_${protocol}${family === null ? '' : family === 4 ? '_v4' : '_v6'}`,
        protocol,
        ports,
        family,
        saddr: peerSide === 'saddr' ? cidrs : [],
        daddr: peerSide === 'daddr' ? cidrs : [],
        log: rule.log,
        comment: rule.comment ?? rule.spec,
      });
    }
  }
  return out;
}

/** A zone's inbound chain: its rules, plus the passive FTP range when it declares one. */
function inboundChain(zone: Zone): IrZoneChain {
  const rules = zone.inbound.flatMap((r, i) => expandRule(`in_${zone.name}_${i + 1}`, r, 'saddr'));
  if (zone.ftpPassive) {
    const passive = {
      ports: { tcp: [zone.ftpPassive], udp: [] },
      peers: [],
      spec: 'ftp passive data',
      comment: 'FTP passive data range',
      log: false,
    };
    rules.push(...expandRule(`in_${zone.name}_ftp_passive`, passive, 'saddr'));
  }
  return { zone: zone.name, direction: 'in', interfaces: zone.interfaces, members: zone.sources, rules };
}

/** A zone's outbound chain: `sources` says who may send into the zone; egress is chosen by interface alone. */
function outboundChain(zone: Zone): IrZoneChain {
  const rules = zone.outbound.flatMap((r, i) => expandRule(`out_${zone.name}_${i + 1}`, r, 'daddr'));
  return { zone: zone.name, direction: 'out', interfaces: zone.interfaces, members: [], rules };
}

function programRules(policy: Policy): IrProgramRule[] {
  return policy.programs.flatMap((p, i) =>
    p.outbound.flatMap((r, j) =>
      expandRule(`prog_${i + 1}_${j + 1}`, r, 'daddr').map((rule) => ({
        ...rule,
        program: p.match,
        programIndex: i,
      })),
    ),
  );
}

function routes(policy: Policy, zoneByName: ReadonlyMap<string, Zone>): IrRoute[] {
  return policy.routing.flatMap((route, i) => {
    const from = zoneByName.get(route.from);
    const to = zoneByName.get(route.to);
    if (!from || !to) return [];
    const rule = {
      ports: route.ports,
      peers: [],
      spec: route.spec,
      comment: `${route.from} -> ${route.to}: ${route.spec}`,
      log: false,
    };
    return expandRule(`fwd_${i + 1}`, rule, 'saddr').map((r) => ({
      ...r,
      fromZone: from.name,
      toZone: to.name,
      iif: from.interfaces,
      oif: to.interfaces,
      fromMembers: from.sources,
      toMembers: to.sources,
    }));
  });
}

function natRules(policy: Policy, zoneByName: ReadonlyMap<string, Zone>): IrNat[] {
  const dnat = policy.forwards.map((f): IrNat => ({
    kind: 'dnat',
    zone: f.zone,
    interfaces: zoneByName.get(f.zone)?.interfaces ?? [],
    protocol: f.protocol,
    port: f.listenPort,
    toAddress: f.toAddress,
    toFamily: f.toFamily,
    toPort: f.toPort,
    toLoopback: f.toLoopback,
    saddr: f.sources,
    comment: `${f.zone}: ${f.protocol}/${f.listenPort} -> ${f.toFamily === 6 ? `[${f.toAddress}]` : f.toAddress}:${f.toPort}`,
  }));
  const masquerade = policy.routing
    .filter((r) => r.masquerade)
    .map((r): IrNat => ({
      kind: 'masquerade',
      fromZone: r.from,
      toZone: r.to,
      iif: zoneByName.get(r.from)?.interfaces ?? [],
      oif: zoneByName.get(r.to)?.interfaces ?? [],
      comment: `masquerade ${r.from} -> ${r.to}`,
    }));
  return [...dnat, ...masquerade];
}

function allowsFtpControl(rules: readonly IrRule[]): boolean {
  return rules.some((r) => r.protocol === 'tcp' && r.ports.some((p) => p.from <= 21 && 21 <= p.to));
}

/** Builds the IR. Pure: the same policy always gives the same IR (and so the same ruleset text). */
export function buildIr(policy: Policy): Ir {
  const zoneByName = new Map(policy.zones.map((z) => [z.name, z]));
  const input = policy.zones.map(inboundChain);
  const output = policy.zones.map(outboundChain);
  const programs = programRules(policy);
  const forward = routes(policy, zoneByName);
  return {
    policyName: policy.name,
    policyFile: policy.file,
    defaults: {
      input: policy.defaults.inbound,
      output: policy.defaults.outbound,
      forward: policy.defaults.forward,
    },
    log: policy.defaults.log,
    icmpEcho: policy.icmpEcho,
    coexist: policy.coexist,
    input,
    output,
    programs,
    forward,
    nat: natRules(policy, zoneByName),
    ftpHelper: {
      inbound: input.some((c) => allowsFtpControl(c.rules)) || forward.some((r) => allowsFtpControl([r])),
      outbound: output.some((c) => allowsFtpControl(c.rules)) || allowsFtpControl(programs),
    },
    ftpPassive: policy.zones.flatMap((z) => (z.ftpPassive ? [{ zone: z.name, range: z.ftpPassive }] : [])),
  };
}

/** Every interface any zone names, for the lock-out guard and the verify lab. */
export function irInterfaces(ir: Ir): string[] {
  return [...new Set(ir.input.flatMap((c) => c.interfaces))];
}
