/**
 * The zod schema of the curated knowledge file. Tests validate the shipped data with it; the runtime
 * loader (curated.ts) trusts the validated file and skips zod, whose import alone costs ~100 ms.
 */
import { z } from 'zod';
import { MAX_PORT } from './ranges.ts';
import type { CuratedCatalog } from './curated.ts';
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

/** Validates raw catalog data; throws a zod error naming the bad entry. Exported for tests. */
export function parseCuratedCatalog(raw: unknown): CuratedCatalog {
  const parsed = catalogSchema.parse(raw);
  const services = parsed.services.map(({ risk, reason, ...rest }): CuratedService => ({
    ...rest,
    risk: { level: risk, reason },
  }));
  return { services, groups: new Map(Object.entries(parsed.groups)), top: parsed.top };
}
