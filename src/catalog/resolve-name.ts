import { curatedNames, findCuratedService, findGroup } from './curated.ts';
import { ianaNames, lookupIanaName } from './iana.ts';
import type { ProtocolPortRange } from './types.ts';

/**
 * The ports a service or group name stands for. Curated names win over IANA's, because IANA lists
 * both protocols for most services ("ssh" is tcp/22 and udp/22 there) while a firewall rule wants
 * what the server really listens on.
 */
export function resolveServiceName(name: string): readonly ProtocolPortRange[] | undefined {
  const key = name.toLowerCase();
  const curated = findCuratedService(key);
  if (curated) return curated.ports;
  const members = findGroup(key);
  if (members) return members.flatMap((member) => resolveServiceName(member) ?? []);
  return lookupIanaName(key);
}

/** Every name resolveServiceName accepts, curated ones first (for "did you mean"). */
export function* knownServiceNames(): Generator<string> {
  yield* curatedNames();
  yield* ianaNames();
}
