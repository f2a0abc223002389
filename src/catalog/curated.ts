import { z } from 'zod';
import data from './data/services.json' with { type: 'json' };
import { MAX_PORT } from './ranges.ts';
import { RISK_LEVELS, type CuratedService, type Protocol, type ProtocolPortRange } from './types.ts';

const NAME = /^[a-z0-9][a-z0-9-]*$/;
const PORT_ITEM = /^(tcp|udp)\/(\d{1,5})(?:-(\d{1,5}))?$/;

function parsePortItem(item: string, ctx: z.RefinementCtx): ProtocolPortRange {
  const match = PORT_ITEM.exec(item);
  const from = Number(match?.[2]);
  const to = match?.[3] === undefined ? from : Number(match[3]);
  const protocol: Protocol = match?.[1] === 'udp' ? 'udp' : 'tcp';
  if (!match || from > to || to > MAX_PORT) {
    ctx.addIssue({ code: 'custom', message: `bad port item "${item}" (want tcp/N or udp/N-M)` });
  }
  return { protocol, from, to };
}

const serviceSchema = z.strictObject({
  id: z.string().regex(NAME),
  name: z.string().min(1),
  aliases: z.array(z.string().regex(NAME)),
  ports: z.array(z.string().transform(parsePortItem)).min(1),
  description: z.string().min(1),
  risk: z.enum(RISK_LEVELS),
  reason: z.string().min(1),
  advice: z.string().min(1),
  alternative: z.string().min(1).nullable(),
  tags: z.array(z.string()),
});

const catalogSchema = z.strictObject({
  services: z.array(serviceSchema),
  groups: z.record(z.string().regex(NAME), z.array(z.string().regex(NAME)).min(1)),
  top: z.strictObject({
    tcp: z.array(z.number().int().min(1).max(MAX_PORT)),
    udp: z.array(z.number().int().min(1).max(MAX_PORT)),
  }),
});

/** The curated knowledge file, validated. */
export interface CuratedCatalog {
  services: readonly CuratedService[];
  groups: ReadonlyMap<string, readonly string[]>;
  top: { tcp: readonly number[]; udp: readonly number[] };
}

/** Validates raw catalog data; throws a zod error naming the bad entry. Exported for tests. */
export function parseCuratedCatalog(raw: unknown): CuratedCatalog {
  const parsed = catalogSchema.parse(raw);
  const services = parsed.services.map(({ risk, reason, ...rest }): CuratedService => ({
    ...rest,
    risk: { level: risk, reason },
  }));
  return { services, groups: new Map(Object.entries(parsed.groups)), top: parsed.top };
}

let catalog: CuratedCatalog | undefined;

export function curatedCatalog(): CuratedCatalog {
  catalog ??= parseCuratedCatalog(data);
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

/** All curated services whose ports include this port and protocol, in file order. */
export function findCuratedByPort(port: number, protocol: Protocol): CuratedService[] {
  return curatedCatalog().services.filter((service) =>
    service.ports.some((range) => range.protocol === protocol && range.from <= port && port <= range.to),
  );
}

/** Every curated id, alias and group name (for suggestions). */
export function curatedNames(): string[] {
  return [...nameIndex().keys(), ...curatedCatalog().groups.keys()];
}

/** Members of a named group, or undefined. */
export function findGroup(name: string): readonly string[] | undefined {
  return curatedCatalog().groups.get(name.toLowerCase());
}
