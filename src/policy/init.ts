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
  /** Who listens, for the comment: "sshd[812] ssh.service". */
  owner: string;
}

/** Interfaces that are not part of the host's own networks. */
const SKIP = /^(lo|docker\d*|br-.*|veth.*|virbr.*|cni.*|flannel.*|cali.*|tun.*|wg.*)$/;

function zoneName(iface: string): string {
  const name = iface.replace(/[^A-Za-z0-9_-]/g, '_');
  return /^[A-Za-z]/.test(name) ? name : `if_${name}`;
}

/**
 * Writes a starter policy: one zone per interface, allowing exactly what listens now beyond
 * loopback; critical and high-risk services are commented out with the reason. Egress is limited
 * to what almost every machine needs. Deterministic, so it can be diffed against a later run.
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
  for (const iface of ifaces) {
    const mine = listeners.filter(
      (l) => l.exposure === 'all' || (l.exposure === 'address' && l.interface === iface),
    );
    const byPort = new Map<string, StarterListener[]>();
    for (const l of mine) {
      const key = `${l.protocol}/${l.localPort}`;
      byPort.set(key, [...(byPort.get(key) ?? []), l]);
    }
    const entries = [...byPort].sort(([a], [b]) => {
      const [pa = '', na = '0'] = a.split('/');
      const [pb = '', nb = '0'] = b.split('/');
      return pa.localeCompare(pb) || Number(na) - Number(nb);
    });
    const active: string[] = [];
    const disabled: string[] = [];
    for (const [key, group] of entries) {
      const [protocol = 'tcp', port = '0'] = key.split('/');
      const risky = findCuratedByPort(Number(port), protocol as Protocol).find(
        (s) => s.risk.level === 'critical' || s.risk.level === 'high',
      );
      const owners =
        [...new Set(group.map((g) => g.owner).filter((o) => o !== ''))].join(', ') || 'owner unknown';
      if (risky) {
        disabled.push(
          `      # - allow: ${key}   ${yamlComment(`${risky.name}, ${risky.risk.level}: ${risky.risk.reason} ${risky.advice} (${owners})`)}`,
        );
      } else {
        const service = findCuratedByPort(Number(port), protocol as Protocol)[0]?.id;
        active.push(`      - allow: ${key}   ${yamlComment(`${service ? `${service}, ` : ''}${owners}`)}`);
      }
    }
    lines.push(`  ${zoneName(iface)}:`, `    interfaces: [${yamlScalar(iface)}]`);
    lines.push(active.length > 0 ? '    inbound:' : '    inbound: []');
    lines.push(...active, ...disabled.map((d) => d.replace(/\s+$/, '')));
    lines.push('    outbound:', '      - allow: dns, http, https, ntp   # name resolution, updates, time');
  }
  return `${lines.join('\n')}\n`;
}
