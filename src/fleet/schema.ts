import { z } from 'zod';

/**
 * What agents send and the server answers: JSON with ISO 8601 times and socket fields named as in the
 * inventory (`protocol`, `localAddress`, `localPort`). Types are derived from the schemas.
 */

const iso = z.iso.datetime({ offset: true });
const text = (max: number): z.ZodString => z.string().max(max);
/** Idempotency keys: chosen once by the agent, kept in its outbox, sent again after any failure. */
const key = z.string().min(8).max(100);

export const fleetListenerSchema = z.strictObject({
  protocol: z.enum(['tcp', 'udp']),
  localAddress: text(100),
  localPort: z.int().min(0).max(65535),
  netns: text(200),
  /** What the socket is bound to: loopback, address, all. */
  exposure: text(40),
  /** Whether a peer gets through the host's loaded firewall (audit's evaluator); older agents: unknown. */
  reachable: z.enum(['yes', 'no', 'unknown']).default('unknown'),
  service: text(100).nullable(),
  risk: text(20).nullable(),
  process: text(200).nullable(),
  pid: z.int().min(0).nullable(),
  user: text(100).nullable(),
  unit: text(200).nullable(),
  container: text(200).nullable(),
});
export type FleetListener = z.infer<typeof fleetListenerSchema>;

export const fleetFindingSchema = z.strictObject({
  id: text(300),
  rule: text(20),
  severity: z.enum(['critical', 'high', 'medium', 'low', 'info']),
  message: text(2000),
});
export type FleetFinding = z.infer<typeof fleetFindingSchema>;

export const fleetSnapshotSchema = z.strictObject({
  key,
  takenAt: iso,
  /** The audit's method: static, no-firewall or unreadable. */
  method: text(20),
  policy: text(200).nullable(),
  /** The agent watches between snapshots and sends the changes as events: none are derived from it. */
  watched: z.boolean().optional(),
  listeners: z.array(fleetListenerSchema).max(20_000),
  findings: z.array(fleetFindingSchema).max(5_000),
});
export type FleetSnapshot = z.infer<typeof fleetSnapshotSchema>;

export const fleetEventSchema = z.strictObject({
  key,
  at: iso,
  kind: text(40),
  listenerKey: text(400),
  message: text(1000),
  listener: fleetListenerSchema.optional(),
});
export type FleetEvent = z.infer<typeof fleetEventSchema>;

/** One POST of an agent: what its outbox held, oldest first. */
export const ingestBatchSchema = z.strictObject({
  agentVersion: text(40),
  snapshots: z.array(fleetSnapshotSchema).max(100),
  events: z.array(fleetEventSchema).max(5_000),
});
export type IngestBatch = z.infer<typeof ingestBatchSchema>;

/** The key of a listener on one host, the same as watch's. */
export function fleetListenerKey(
  l: Pick<FleetListener, 'protocol' | 'localAddress' | 'localPort' | 'netns'>,
): string {
  return `${l.protocol}|${l.localAddress}|${l.localPort}|${l.netns}`;
}

/** Findings of this rule are drift: a reachable listener the policy does not allow. */
export const DRIFT_RULE = 'PW003';
