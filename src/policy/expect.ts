import { cidrContains, familyOf } from '../catalog/address.ts';
import { EMPTY_PORT_SET, unionPortSets, type PortSet } from '../catalog/port-set.ts';
import type { Policy, PolicyRule, Zone } from './types.ts';

/**
 * What the policy itself says must get through — computed from the policy, never from a compiled
 * ruleset, so `verify` can hold any ruleset against it.
 */

/** Whether a rule applies to a peer: rules without peers apply to everyone of either family. */
function applies(rule: PolicyRule, family: 4 | 6, peer: string | undefined): boolean {
  if (rule.peers.length === 0) return true;
  if (peer === undefined) return false;
  return familyOf(peer) === family && rule.peers.some((c) => cidrContains(c, peer));
}

function zoneNamed(policy: Policy, name: string): Zone {
  const zone = policy.zones.find((z) => z.name === name);
  if (!zone) throw new Error(`no zone "${name}" in policy "${policy.name}"`);
  return zone;
}

/** Whether an address belongs to a zone's sources (every address does when it has none). */
export function isZoneMember(zone: Zone, address: string): boolean {
  return zone.sources.length === 0 || zone.sources.some((c) => cidrContains(c, address));
}

/**
 * Ports a NEW connection from `source` (or from an arbitrary address when omitted) may open on this
 * host through the zone's interfaces, for one family.
 */
export function expectedInbound(policy: Policy, zoneName: string, family: 4 | 6, source?: string): PortSet {
  const zone = zoneNamed(policy, zoneName);
  if (source !== undefined && (familyOf(source) !== family || !isZoneMember(zone, source)))
    return EMPTY_PORT_SET;
  if (source === undefined && zone.sources.length > 0) return EMPTY_PORT_SET;
  const sets = zone.inbound.filter((r) => applies(r, family, source)).map((r) => r.ports);
  if (zone.ftpPassive) sets.push({ tcp: [zone.ftpPassive], udp: [] });
  return unionPortSets(...sets);
}

/** Ports this host may open NEW connections to through the zone's interfaces (to `destination`). */
export function expectedOutbound(
  policy: Policy,
  zoneName: string,
  family: 4 | 6,
  destination?: string,
): PortSet {
  const zone = zoneNamed(policy, zoneName);
  return unionPortSets(...zone.outbound.filter((r) => applies(r, family, destination)).map((r) => r.ports));
}

/** Ports forwarded between zones for hosts in `from` reaching hosts in `to`. */
export function expectedRouted(
  policy: Policy,
  from: string,
  to: string,
  family: 4 | 6,
  source?: string,
): PortSet {
  const fromZone = zoneNamed(policy, from);
  if (source !== undefined && (familyOf(source) !== family || !isZoneMember(fromZone, source)))
    return EMPTY_PORT_SET;
  return unionPortSets(...policy.routing.filter((r) => r.from === from && r.to === to).map((r) => r.ports));
}

/** The port forwards a peer in `zoneName` can use, for one family of the listening side. */
export function expectedForwards(policy: Policy, zoneName: string, family: 4 | 6): Policy['forwards'] {
  return policy.forwards.filter((f) => f.zone === zoneName && f.toFamily === family);
}
