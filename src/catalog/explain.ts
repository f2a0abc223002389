import { PortwardenError } from '../errors.ts';
import { curatedCatalog, findCuratedByPort } from './curated.ts';
import { lookupIana } from './iana.ts';
import { iteratePorts, portSetSize, type PortSet } from './port-set.ts';
import { parsePortSpec } from './port-spec.ts';
import { rangeCategory } from './ranges.ts';
import {
  PROTOCOLS,
  RISK_LEVELS,
  type CuratedService,
  type PortRangeCategory,
  type Protocol,
  type RiskLevel,
} from './types.ts';

/** What portwarden knows of one port and protocol. */
export interface PortExplanation {
  port: number;
  protocol: Protocol;
  /** IANA's service name first, then curated ids. Empty when nothing is known. */
  names: string[];
  description: string;
  range: PortRangeCategory;
  /** Whether IANA registers this port and protocol. */
  assigned: boolean;
  risk: { level: RiskLevel; reason: string; advice: string; alternative: string | null } | null;
}

/** Most severe first; `a` before `b` when a is more severe. */
export function compareRisk(a: RiskLevel, b: RiskLevel): number {
  return RISK_LEVELS.indexOf(a) - RISK_LEVELS.indexOf(b);
}

function riskiest(services: readonly CuratedService[]): CuratedService | undefined {
  return [...services].sort((a, b) => compareRisk(a.risk.level, b.risk.level))[0];
}

/** Explains one port and protocol from IANA's registry and the curated catalog. */
export function explainPort(port: number, protocol: Protocol): PortExplanation {
  const iana = lookupIana(port, protocol);
  const curated = findCuratedByPort(port, protocol);
  const top = riskiest(curated);
  const names = [...new Set([...(iana ? [iana.name] : []), ...curated.map((s) => s.id)])];
  return {
    port,
    protocol,
    names,
    description: curated[0]?.description ?? iana?.description ?? 'unassigned: IANA registers no service here',
    range: rangeCategory(port),
    assigned: iana !== undefined,
    risk: top
      ? { level: top.risk.level, reason: top.risk.reason, advice: top.advice, alternative: top.alternative }
      : null,
  };
}

/** The most entries `explainSpecs` returns; `explain -` would otherwise print 131,070. */
export const EXPLAIN_LIMIT = 10_000;

function* explainSet(set: PortSet): Generator<PortExplanation> {
  for (const protocol of PROTOCOLS) {
    for (const port of iteratePorts(set, protocol)) yield explainPort(port, protocol);
  }
}

/**
 * Explains each query (a port, a range, a service name or any port spec). A bare number means both
 * protocols, so `111` shows tcp/111 and udp/111.
 */
export function explainSpecs(queries: readonly string[]): PortExplanation[] {
  const sets = queries.map((query) => parsePortSpec(query, { defaultProtocols: PROTOCOLS }));
  const total = sets.reduce((n, set) => n + portSetSize(set), 0);
  if (total > EXPLAIN_LIMIT) {
    throw new PortwardenError(
      'PORT_SPEC_INVALID',
      `"${queries.join(' ')}" names ${total} ports, more than ${EXPLAIN_LIMIT}`,
      {
        hint: 'explain a narrower range, or use `portwarden explain --risky` for the services that matter',
      },
    );
  }
  return sets.flatMap((set) => [...explainSet(set)]);
}

/** Curated services at medium risk or above, most severe first. */
export function riskyServices(): CuratedService[] {
  return curatedCatalog()
    .services.filter((s) => compareRisk(s.risk.level, 'medium') <= 0)
    .sort(
      (a, b) => compareRisk(a.risk.level, b.risk.level) || (a.ports[0]?.from ?? 0) - (b.ports[0]?.from ?? 0),
    );
}
