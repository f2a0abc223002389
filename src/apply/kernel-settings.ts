import type { Policy } from '../policy/types.ts';

/**
 * The kernel settings a policy needs to work (pure): forwarding when it routes between zones or
 * forwards a port to another host, route_localnet where a port is forwarded to 127.0.0.1, and the
 * FTP conntrack helper module when FTP is allowed. apply sets (and rolls back) the sysctls; verify's
 * lab sets exactly these, so a policy cannot pass verify on a setting the machine lacks.
 */
export interface KernelSetting {
  /** A sysctl name (net.ipv4.ip_forward, net.ipv4.conf.eth0.route_localnet) or `module:<name>`. */
  name: string;
  kind: 'sysctl' | 'module';
  /** The value the policy needs ('1'; 'loaded' for a module). */
  value: string;
  /** Why the policy needs it, for --dry-run, status and audit. */
  reason: string;
}

function sysctl(name: string, reason: string): KernelSetting {
  return { name, kind: 'sysctl', value: '1', reason };
}

/** The per-interface sysctl for an interface pattern; `all` for wildcards (eth*), as the kernel ORs both. */
function perInterface(pattern: string, key: string): string {
  return `net.ipv4.conf.${pattern.includes('*') ? 'all' : pattern}.${key}`;
}

function forwardingFamilies(policy: Policy): { family: 4 | 6; reason: string }[] {
  const out: { family: 4 | 6; reason: string }[] = [];
  for (const family of [4, 6] as const) {
    const routes = policy.routing.map((r) => `${r.from} -> ${r.to}`);
    const forwards = policy.forwards
      .filter((f) => f.toFamily === family && !f.toLoopback)
      .map((f) => `${f.protocol}/${f.listenPort} -> ${f.toAddress}:${f.toPort}`);
    const why = [
      ...(routes.length > 0 ? [`routes ${routes.join(', ')}`] : []),
      ...(forwards.length > 0 ? [`forwards ${forwards.join(', ')}`] : []),
    ];
    if (why.length > 0) out.push({ family, reason: `the policy ${why.join(' and ')}` });
  }
  return out;
}

/** Every kernel setting `policy` needs, forwarding first; empty for a host-only policy. */
export function requiredKernelSettings(policy: Policy): KernelSetting[] {
  const out = forwardingFamilies(policy).map(({ family, reason }) =>
    sysctl(family === 4 ? 'net.ipv4.ip_forward' : 'net.ipv6.conf.all.forwarding', reason),
  );
  for (const forward of policy.forwards.filter((f) => f.toLoopback)) {
    const zone = policy.zones.find((z) => z.name === forward.zone);
    for (const pattern of zone?.interfaces ?? []) {
      const name = perInterface(pattern, 'route_localnet');
      if (out.some((s) => s.name === name)) continue;
      out.push(
        sysctl(
          name,
          `${forward.protocol}/${forward.listenPort} is forwarded to ${forward.toAddress} (loopback)`,
        ),
      );
    }
  }
  if (policy.ftp) {
    out.push({
      name: 'module:nf_conntrack_ftp',
      kind: 'module',
      value: 'loaded',
      reason:
        'FTP is allowed: the ruleset attaches the ftp conntrack helper (the kernel loads the module on demand)',
    });
  }
  return out;
}
