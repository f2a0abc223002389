/** Transport protocols portwarden deals in. */
export type Protocol = 'tcp' | 'udp';
export const PROTOCOLS: readonly Protocol[] = ['tcp', 'udp'];

/** Risk levels, most severe first. */
export type RiskLevel = 'critical' | 'high' | 'medium' | 'low' | 'info';
export const RISK_LEVELS: readonly RiskLevel[] = ['critical', 'high', 'medium', 'low', 'info'];

/** IANA's three port ranges. */
export type PortRangeCategory = 'well-known' | 'registered' | 'dynamic';

/** An inclusive port range; a single port has from === to. */
export interface PortRange {
  from: number;
  to: number;
}

/** A protocol with an inclusive port range. */
export interface ProtocolPortRange extends PortRange {
  protocol: Protocol;
}

/** A curated service entry of the knowledge file (src/catalog/data/services.json). */
export interface CuratedService {
  id: string;
  name: string;
  aliases: readonly string[];
  ports: readonly ProtocolPortRange[];
  description: string;
  risk: { level: RiskLevel; reason: string };
  advice: string;
  alternative: string | null;
  tags: readonly string[];
}
