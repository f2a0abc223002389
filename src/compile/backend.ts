import type { Ir } from './ir.ts';

/** A feature of the IR that a backend may not be able to express. */
export type Feature =
  | 'ipv6'
  | 'ipv6-addresses'
  | 'port-forward'
  | 'masquerade'
  | 'routing'
  | 'program-unit'
  | 'program-user'
  | 'program-path'
  | 'ftp-helper'
  | 'udp-forward'
  | 'loopback-forward';

/** One output file of a compilation; `suffix` is appended to `-o FILE` (empty for the main file). */
export interface CompiledFile {
  suffix: string;
  content: string;
}

/** Context every backend gets besides the IR. */
export interface CompileMeta {
  version: string;
}

/** A firewall backend: one small module per target, all sharing this interface. */
export interface Backend {
  name: string;
  description: string;
  /** File extension of the main output, for goldens and `-o` defaults. */
  extension: string;
  /** Features this backend cannot express, each with the reason shown to the user. */
  unsupported: Partial<Record<Feature, string>>;
  compile(ir: Ir, meta: CompileMeta): CompiledFile[];
}

/** Every feature the IR uses, with where (for error messages). */
export function featuresUsed(ir: Ir): { feature: Feature; where: string }[] {
  const used: { feature: Feature; where: string }[] = [];
  const allRules = [...ir.input, ...ir.output].flatMap((c) => c.rules.map((r) => ({ r, zone: c.zone })));
  const v6 = allRules.find(({ r }) => r.family === 6) ?? allRules.find(({ r }) => r.family === null);
  if (v6) used.push({ feature: 'ipv6', where: `zone "${v6.zone}" (rules without addresses cover IPv6 too)` });
  const v6only = allRules.find(({ r }) => r.family === 6);
  if (v6only)
    used.push({
      feature: 'ipv6-addresses',
      where: `zone "${v6only.zone}" rule ${JSON.stringify(v6only.r.comment)}`,
    });
  for (const nat of ir.nat) {
    if (nat.kind === 'dnat') {
      used.push({ feature: 'port-forward', where: nat.comment });
      if (nat.protocol === 'udp') used.push({ feature: 'udp-forward', where: nat.comment });
      if (nat.toLoopback) used.push({ feature: 'loopback-forward', where: nat.comment });
    } else used.push({ feature: 'masquerade', where: nat.comment });
  }
  if (ir.forward.length > 0)
    used.push({ feature: 'routing', where: `${ir.forward[0]?.fromZone} -> ${ir.forward[0]?.toZone}` });
  for (const p of ir.programs) {
    const feature: Feature =
      p.program.kind === 'unit'
        ? 'program-unit'
        : p.program.kind === 'user'
          ? 'program-user'
          : 'program-path';
    const value =
      p.program.kind === 'unit'
        ? p.program.unit
        : p.program.kind === 'user'
          ? p.program.user
          : p.program.path;
    // JSON quoting keeps a hostile path or comment on the one line of the error message.
    if (!used.some((u) => u.feature === feature))
      used.push({ feature, where: `program ${JSON.stringify(value)}` });
  }
  if (ir.ftpHelper.inbound || ir.ftpHelper.outbound)
    used.push({ feature: 'ftp-helper', where: 'ftp (tcp/21) is allowed' });
  return used;
}
