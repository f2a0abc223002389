import { PortwardenError } from '../errors.ts';
import { curatedCatalog, findCuratedByPort } from './curated.ts';
import { lookupIana, lookupIanaNote } from './iana.ts';
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

/** IANA's word on a port: registered under a name, reserved (e.g. 0, 1023), or free to assign. */
export type IanaStatus = 'assigned' | 'reserved' | 'unassigned';

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
  status: IanaStatus;
  risk: { level: RiskLevel; reason: string; advice: string; alternative: string | null } | null;
}

/** Most severe first; `a` before `b` when a is more severe. */
export function compareRisk(a: RiskLevel, b: RiskLevel): number {
  return RISK_LEVELS.indexOf(a) - RISK_LEVELS.indexOf(b);
}

function riskiest(services: readonly CuratedService[]): CuratedService | undefined {
  return [...services].sort((a, b) => compareRisk(a.risk.level, b.risk.level))[0];
}

/** IANA's status of a port without a registered name, and the sentence that says so. */
function unnamedPort(port: number, protocol: Protocol): { status: IanaStatus; description: string } {
  const note = lookupIanaNote(port, protocol);
  if (note !== undefined && /^reserved/i.test(note)) {
    return {
      status: 'reserved',
      description: 'reserved: IANA keeps this port out of assignment; no service should use it',
    };
  }
  const extra = note !== undefined && !/^unassigned$/i.test(note) ? ` (IANA's note: ${note})` : '';
  return { status: 'unassigned', description: `unassigned: IANA registers no service here${extra}` };
}

/** Explains one port and protocol from IANA's registry and the curated catalog. */
export function explainPort(port: number, protocol: Protocol): PortExplanation {
  const iana = lookupIana(port, protocol);
  const curated = findCuratedByPort(port, protocol);
  const top = riskiest(curated);
  const names = [...new Set([...(iana ? [iana.name] : []), ...curated.map((s) => s.id)])];
  const unnamed = iana
    ? { status: 'assigned' as const, description: iana.description }
    : unnamedPort(port, protocol);
  return {
    port,
    protocol,
    names,
    description: curated[0]?.description ?? unnamed.description,
    range: rangeCategory(port),
    assigned: iana !== undefined,
    status: unnamed.status,
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

/**
 * `explain --risky --json`: every port of every risky service (medium and above), riskiest first, in
 * the same shape as `explain PORT --json` (one vocabulary), each port once.
 */
export function riskyExplanations(): PortExplanation[] {
  const seen = new Set<string>();
  const out: PortExplanation[] = [];
  for (const service of riskyServices()) {
    const set: PortSet = {
      tcp: service.ports.filter((p) => p.protocol === 'tcp'),
      udp: service.ports.filter((p) => p.protocol === 'udp'),
    };
    for (const entry of explainSet(set)) {
      const key = `${entry.protocol}/${entry.port}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(entry);
    }
  }
  return out;
}

/** Consecutive ports of one protocol that explain the same way: one row of `explain`'s table. */
export interface ExplanationRun {
  from: number;
  to: number;
  /** The first port's explanation; every port of the run has the same names, risk and description. */
  entry: PortExplanation;
}

function explainsAlike(a: PortExplanation, b: PortExplanation): boolean {
  return (
    a.protocol === b.protocol &&
    a.description === b.description &&
    a.range === b.range &&
    a.status === b.status &&
    a.risk?.level === b.risk?.level &&
    a.names.join(',') === b.names.join(',')
  );
}

/** Collapses explanations into runs of consecutive ports that explain alike, in their order. */
export function collapseExplanations(entries: readonly PortExplanation[]): ExplanationRun[] {
  const runs: ExplanationRun[] = [];
  for (const entry of entries) {
    const last = runs.at(-1);
    if (last && last.to + 1 === entry.port && explainsAlike(last.entry, entry)) last.to = entry.port;
    else runs.push({ from: entry.port, to: entry.port, entry });
  }
  return runs;
}
