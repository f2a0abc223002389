import { findCuratedByPort } from '../catalog/curated.ts';
import { iteratePorts, portSetHas } from '../catalog/port-set.ts';
import type { CuratedService } from '../catalog/types.ts';
import type { Diagnostic } from '../errors.ts';
import type { Policy, PolicyRule } from './types.ts';

/** What lint may know of the machine the policy is for. */
export interface LintContext {
  /** The value of SSH_CONNECTION when the policy is checked over SSH: "client cport server sport". */
  sshConnection?: string;
}

const LIMIT = 4096;

/** Curated critical/high services a rule opens (checked port by port, bounded for huge ranges). */
function riskyServicesOf(rule: PolicyRule): CuratedService[] {
  const found = new Map<string, CuratedService>();
  for (const protocol of ['tcp', 'udp'] as const) {
    let n = 0;
    for (const port of iteratePorts(rule.ports, protocol)) {
      if (++n > LIMIT) break;
      for (const s of findCuratedByPort(port, protocol)) {
        if (s.risk.level === 'critical' || s.risk.level === 'high') found.set(s.id, s);
      }
    }
  }
  return [...found.values()];
}

/**
 * Warnings with advice: risky services on external zones, forwards to risky services, lost remote
 * administration, open egress, FTP details. Pure; the CLI passes SSH_CONNECTION in.
 */
export function lintPolicy(policy: Policy, context: LintContext = {}): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const zone of policy.zones) {
    if (zone.exposure !== 'external') continue;
    for (const rule of zone.inbound) {
      for (const service of riskyServicesOf(rule)) {
        const limited =
          rule.peers.length > 0 ? ` (limited to ${rule.peers.map((p) => p.text).join(', ')})` : '';
        out.push({
          severity: 'warning',
          code: 'LINT_RISKY_EXPOSED',
          message: `zone "${zone.name}" faces untrusted networks and allows ${service.name} (${service.risk.level} risk)${limited}: ${service.risk.reason}`,
          hint: `${service.advice}${service.alternative ? ` Use instead: ${service.alternative}.` : ''}`,
          location: rule.location,
        });
      }
    }
  }
  for (const forward of policy.forwards) {
    for (const service of findCuratedByPort(forward.toPort, forward.protocol)) {
      if (service.risk.level !== 'critical' && service.risk.level !== 'high') continue;
      out.push({
        severity: 'warning',
        code: 'LINT_RISKY_FORWARD',
        message: `the forward ${forward.protocol}/${forward.listenPort} -> ${forward.toAddress}:${forward.toPort} exposes ${service.name} (${service.risk.level} risk) to zone "${forward.zone}"`,
        hint: service.advice,
        location: forward.location,
      });
    }
    if (forward.toLoopback) {
      out.push({
        severity: 'info',
        code: 'LINT_ROUTE_LOCALNET',
        message: `the forward to ${forward.toAddress}:${forward.toPort} needs net.ipv4.conf.<iface>.route_localnet=1 on zone "${forward.zone}"'s interfaces`,
        hint: 'or make the service listen on the interface address and forward there',
        location: forward.location,
      });
    }
  }
  const sshPort = Number(context.sshConnection?.trim().split(/\s+/)[3] ?? 22);
  const sshAnywhere = policy.zones.some((z) => z.inbound.some((r) => portSetHas(r.ports, 'tcp', sshPort)));
  if (context.sshConnection && !sshAnywhere && policy.defaults.inbound !== 'accept') {
    out.push({
      severity: 'warning',
      code: 'LINT_LOCKOUT',
      message: `you are connected over SSH (port ${sshPort}) but no zone allows tcp/${sshPort}: applying this policy would cut off remote administration`,
      hint: `add \`- allow: tcp/${sshPort}\` with \`from:\` your admin addresses to the zone you manage the machine from`,
    });
  }
  if (policy.defaults.outbound === 'accept') {
    out.push({
      severity: 'warning',
      code: 'LINT_EGRESS_OPEN',
      message: 'outbound traffic is accepted by default: malware and mistakes can reach anywhere',
      hint: 'set `defaults: { outbound: drop }` and allow what the machine needs (dns, http, https, ntp, ...) per zone',
    });
  }
  for (const zone of policy.zones) {
    for (const rule of zone.outbound) {
      if (portSetHas(rule.ports, 'tcp', 20) && !portSetHas(rule.ports, 'tcp', 21)) {
        out.push({
          severity: 'info',
          code: 'LINT_FTP_ACTIVE',
          message: `outbound tcp/20 in zone "${zone.name}" allows connections TO port 20; active FTP data goes FROM port 20 and is already accepted as related through the ftp conntrack helper`,
          hint: 'keep it only for FTP servers you reach on port 20; the helper covers your own active FTP data',
          location: rule.location,
        });
      }
    }
    if (zone.inbound.some((r) => portSetHas(r.ports, 'tcp', 21)) && !zone.ftpPassive) {
      out.push({
        severity: 'info',
        code: 'LINT_FTP_HELPER',
        message: `zone "${zone.name}" allows FTP: the compiled ruleset attaches the ftp conntrack helper so active and passive data connections work`,
        hint: 'behind NAT or with encrypted FTP (FTPS) the helper cannot read the commands: declare `ftp: { passive: 50000-50100 }` and set the server to that range',
        location: zone.location,
      });
    }
  }
  return out.sort((a, b) => (a.location?.line ?? 0) - (b.location?.line ?? 0));
}
