import data from './data/services.json' with { type: 'json' };
import type { CuratedService, Protocol, ProtocolPortRange } from './types.ts';

/** The curated knowledge file. Its shape is checked by curated-schema.ts in the test suite. */
export interface CuratedCatalog {
  services: readonly CuratedService[];
  groups: ReadonlyMap<string, readonly string[]>;
  top: { tcp: readonly number[]; udp: readonly number[] };
}

interface RawService {
  id: string;
  name: string;
  aliases: string[];
  ports: string[];
  description: string;
  risk: string;
  reason: string;
  advice: string;
  alternative: string | null;
  tags: string[];
}

function portItem(item: string): ProtocolPortRange {
  const [protocol, range = ''] = item.split('/');
  const [from = '', to = from] = range.split('-');
  return { protocol: protocol as Protocol, from: Number(from), to: Number(to) };
}

/** Converts the (test-validated) data file into the runtime shape without a schema library. */
export function loadCuratedCatalog(raw: {
  services: RawService[];
  groups: Record<string, string[]>;
  top: { tcp: number[]; udp: number[] };
}): CuratedCatalog {
  const services = raw.services.map(({ risk, reason, ports, ...rest }): CuratedService => ({
    ...rest,
    ports: ports.map(portItem),
    risk: { level: risk as CuratedService['risk']['level'], reason },
  }));
  return { services, groups: new Map(Object.entries(raw.groups)), top: raw.top };
}

let catalog: CuratedCatalog | undefined;

export function curatedCatalog(): CuratedCatalog {
  catalog ??= loadCuratedCatalog(data);
  return catalog;
}

let byName: Map<string, CuratedService> | undefined;

function nameIndex(): Map<string, CuratedService> {
  if (byName) return byName;
  byName = new Map();
  for (const service of curatedCatalog().services) {
    for (const name of [service.id, ...service.aliases]) byName.set(name, service);
  }
  return byName;
}

/** The curated service with this id or alias. */
export function findCuratedService(name: string): CuratedService | undefined {
  return nameIndex().get(name.toLowerCase());
}

interface PortIndex {
  /** "tcp/22" -> services, for ranges of up to WIDE ports. */
  exact: Map<string, CuratedService[]>;
  /** Services with a wider range, checked one by one. */
  wide: { service: CuratedService; range: ProtocolPortRange }[];
}

const WIDE = 1024;
let portIndex: PortIndex | undefined;

function buildPortIndex(): PortIndex {
  const exact = new Map<string, CuratedService[]>();
  const wide: PortIndex['wide'] = [];
  for (const service of curatedCatalog().services) {
    for (const range of service.ports) {
      if (range.to - range.from >= WIDE) {
        wide.push({ service, range });
        continue;
      }
      for (let port = range.from; port <= range.to; port++) {
        const key = `${range.protocol}/${port}`;
        const list = exact.get(key) ?? [];
        if (!list.includes(service)) list.push(service);
        exact.set(key, list);
      }
    }
  }
  return { exact, wide };
}

const serviceOrder = (a: CuratedService, b: CuratedService): number =>
  curatedCatalog().services.indexOf(a) - curatedCatalog().services.indexOf(b);

/** All curated services whose ports include this port and protocol, in file order. */
export function findCuratedByPort(port: number, protocol: Protocol): CuratedService[] {
  portIndex ??= buildPortIndex();
  const found = [...(portIndex.exact.get(`${protocol}/${port}`) ?? [])];
  for (const { service, range } of portIndex.wide) {
    if (range.protocol === protocol && range.from <= port && port <= range.to && !found.includes(service)) {
      found.push(service);
    }
  }
  return portIndex.wide.length > 0 && found.length > 1 ? found.sort(serviceOrder) : found;
}

/** Every curated id, alias and group name (for suggestions). */
export function curatedNames(): string[] {
  return [...nameIndex().keys(), ...curatedCatalog().groups.keys()];
}

/** Members of a named group, or undefined. */
export function findGroup(name: string): readonly string[] | undefined {
  return curatedCatalog().groups.get(name.toLowerCase());
}
