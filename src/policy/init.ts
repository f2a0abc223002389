import { findCuratedByPort } from '../catalog/curated.ts';
import type { Protocol } from '../catalog/types.ts';
import { yamlComment, yamlScalar } from '../compile/_quote.ts';

/** A socket listening now, as `policy init` needs it (the inventory's rows fit this shape). */
export interface StarterListener {
  protocol: Protocol;
  localPort: number;
  exposure: 'loopback' | 'address' | 'all';
  /** The interface of a socket bound to one address. */
  interface: string | null;
  /** Who listens, for the comment: "sshd[812] ssh.service"; empty when no owner could be read. */
  owner: string;
  /** True when an owner runs an executable that was deleted or replaced (audit's PW009). */
  exeDeleted?: boolean;
}

/** Interfaces that are not part of the host's own networks. */
const SKIP = /^(lo|docker\d*|br-.*|veth.*|virbr.*|cni.*|flannel.*|cali.*|tun.*|wg.*)$/;

function zoneName(iface: string): string {
  const name = iface.replace(/[^A-Za-z0-9_-]/g, '_');
  return /^[A-Za-z]/.test(name) ? name : `if_${name}`;
}

/** The listeners one zone serves, grouped by `protocol/port` and sorted by protocol, then port. */
function groupByPort(listeners: readonly StarterListener[], iface: string): [string, StarterListener[]][] {
  const byPort = new Map<string, StarterListener[]>();
  for (const l of listeners) {
    if (l.exposure !== 'all' && !(l.exposure === 'address' && l.interface === iface)) continue;
    const key = `${l.protocol}/${l.localPort}`;
    byPort.set(key, [...(byPort.get(key) ?? []), l]);
  }
  return [...byPort].sort(
    ([, [a]], [, [b]]) =>
      (a?.protocol ?? '').localeCompare(b?.protocol ?? '') || (a?.localPort ?? 0) - (b?.localPort ?? 0),
  );
}

/**
 * Why a port must not be allowed as found, or null when an allow is a fair suggestion. A user who
 * follows audit's advice (`policy init && verify && apply`) must not open what audit condemns.
 */
function holdReason(
  protocol: Protocol,
  port: number,
  group: readonly StarterListener[],
  owners: string,
): string | null {
  if (group.some((l) => l.exeDeleted === true)) {
    return `its executable was deleted or replaced (audit PW009): find out why before allowing it (${owners})`;
  }
  if (owners === '') {
    return 'owner unknown: find which process listens (run as root, `portwarden ports`) before allowing it';
  }
  const risky = findCuratedByPort(port, protocol).find(
    (s) => s.risk.level === 'critical' || s.risk.level === 'high',
  );
  return risky
    ? `${risky.name}, ${risky.risk.level}: ${risky.risk.reason} ${risky.advice} (${owners})`
    : null;
}

/** One inbound line per port: an active allow, or a commented-out one with the reason. */
function inboundLine(key: string, group: readonly StarterListener[]): { line: string; active: boolean } {
  const first = group[0];
  const protocol = first?.protocol ?? 'tcp';
  const port = first?.localPort ?? 0;
  const owners = [...new Set(group.map((g) => g.owner).filter((o) => o !== ''))].join(', ');
  const reason = holdReason(protocol, port, group, owners);
  if (reason !== null) return { line: `      # - allow: ${key}   ${yamlComment(reason)}`, active: false };
  const service = findCuratedByPort(port, protocol)[0]?.id;
  return {
    line: `      - allow: ${key}   ${yamlComment(`${service ? `${service}, ` : ''}${owners}`)}`,
    active: true,
  };
}

function zoneLines(iface: string, listeners: readonly StarterListener[]): string[] {
  const lines = groupByPort(listeners, iface).map(([key, group]) => inboundLine(key, group));
  const active = lines.filter((l) => l.active).map((l) => l.line);
  const held = lines.filter((l) => !l.active).map((l) => l.line.replace(/\s+$/, ''));
  return [
    `  ${zoneName(iface)}:`,
    `    interfaces: [${yamlScalar(iface)}]`,
    active.length > 0 ? '    inbound:' : '    inbound: []',
    ...active,
    ...held,
    '    outbound:',
    '      - allow: dns, http, https, ntp   # name resolution, updates, time',
  ];
}

/**
 * Writes a starter policy: one zone per interface, allowing exactly what listens now beyond
 * loopback. Critical and high-risk services, listeners whose executable was deleted and listeners
 * whose owner is unknown are commented out with the reason. Egress is limited to what almost every
 * machine needs. Deterministic, so it can be diffed against a later run.
 */
export function generateStarterPolicy(
  listeners: readonly StarterListener[],
  interfaces: readonly string[],
  host = 'this machine',
): string {
  const ifaces = [...new Set(interfaces)].filter((i) => !SKIP.test(i)).sort();
  const lines = [
    // Host, interface and process names come from the machine: any local user can name a process.
    yamlComment(
      `Starter policy written by \`portwarden policy init\` for ${host} from the sockets listening now.`,
    ),
    '# Review every line: allow only what this machine must serve, add `from:` to limit who may reach',
    '# it, then `portwarden policy check` and `portwarden verify` before `portwarden apply`.',
    'version: 1',
    'defaults: { inbound: drop, outbound: drop, forward: drop, log: true }',
    'zones:',
  ];
  if (ifaces.length === 0) lines.push('  {}');
  for (const iface of ifaces) lines.push(...zoneLines(iface, listeners));
  return `${lines.join('\n')}\n`;
}
