import { findCuratedByPort } from '../catalog/curated.ts';
import { iteratePorts, portSetHas } from '../catalog/port-set.ts';
import type { CuratedService } from '../catalog/types.ts';
import type { Diagnostic, ErrorCode, Severity } from '../errors.ts';
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

/** One lint check: a plain object, like audit's FINDING_RULES. */
export interface LintRule {
  /** The diagnostic code it reports. */
  id: Extract<ErrorCode, `LINT_${string}`>;
  severity: Severity;
  /** What it looks for, in one sentence (for docs and `--help`). */
  describe: string;
  check(policy: Policy, context: LintContext): Diagnostic[];
}

type Finding = Omit<Diagnostic, 'severity' | 'code'>;

function rule(
  id: LintRule['id'],
  severity: Severity,
  describe: string,
  find: (policy: Policy, context: LintContext) => Finding[],
): LintRule {
  return {
    id,
    severity,
    describe,
    check: (policy, context) => find(policy, context).map((f) => ({ severity, code: id, ...f })),
  };
}

const riskyExposed = rule(
  'LINT_RISKY_EXPOSED',
  'warning',
  'a zone facing untrusted networks allows a critical or high risk service',
  (policy) =>
    policy.zones
      .filter((zone) => zone.exposure === 'external')
      .flatMap((zone) =>
        zone.inbound.flatMap((r) =>
          riskyServicesOf(r).map((service) => {
            const limited =
              r.peers.length > 0 ? ` (limited to ${r.peers.map((p) => p.text).join(', ')})` : '';
            return {
              message: `zone "${zone.name}" faces untrusted networks and allows ${service.name} (${service.risk.level} risk)${limited}: ${service.risk.reason}`,
              hint: `${service.advice}${service.alternative ? ` Use instead: ${service.alternative}.` : ''}`,
              location: r.location,
            };
          }),
        ),
      ),
);

const riskyForward = rule(
  'LINT_RISKY_FORWARD',
  'warning',
  'a port forward exposes a critical or high risk service',
  (policy) =>
    policy.forwards.flatMap((forward) =>
      findCuratedByPort(forward.toPort, forward.protocol)
        .filter((s) => s.risk.level === 'critical' || s.risk.level === 'high')
        .map((service) => ({
          message: `the forward ${forward.protocol}/${forward.listenPort} -> ${forward.toAddress}:${forward.toPort} exposes ${service.name} (${service.risk.level} risk) to zone "${forward.zone}"`,
          hint: service.advice,
          location: forward.location,
        })),
    ),
);

const routeLocalnet = rule(
  'LINT_ROUTE_LOCALNET',
  'info',
  'a forward to the loopback address needs route_localnet',
  (policy) =>
    policy.forwards
      .filter((forward) => forward.toLoopback)
      .map((forward) => ({
        message: `the forward to ${forward.toAddress}:${forward.toPort} needs net.ipv4.conf.<iface>.route_localnet=1 on zone "${forward.zone}"'s interfaces`,
        hint: 'or make the service listen on the interface address and forward there',
        location: forward.location,
      })),
);

const lockout = rule(
  'LINT_LOCKOUT',
  'warning',
  'checked over SSH, the policy allows the SSH port in no zone',
  (policy, context) => {
    const sshPort = Number(context.sshConnection?.trim().split(/\s+/)[3] ?? 22);
    const sshAnywhere = policy.zones.some((z) => z.inbound.some((r) => portSetHas(r.ports, 'tcp', sshPort)));
    if (!context.sshConnection || sshAnywhere || policy.defaults.inbound === 'accept') return [];
    return [
      {
        message: `you are connected over SSH (port ${sshPort}) but no zone allows tcp/${sshPort}: applying this policy would cut off remote administration`,
        hint: `add \`- allow: tcp/${sshPort}\` with \`from:\` your admin addresses to the zone you manage the machine from`,
      },
    ];
  },
);

const egressOpen = rule('LINT_EGRESS_OPEN', 'warning', 'outbound traffic is accepted by default', (policy) =>
  policy.defaults.outbound === 'accept'
    ? [
        {
          message: 'outbound traffic is accepted by default: malware and mistakes can reach anywhere',
          hint: 'set `defaults: { outbound: drop }` and allow what the machine needs (dns, http, https, ntp, ...) per zone',
        },
      ]
    : [],
);

const ftpActive = rule('LINT_FTP_ACTIVE', 'info', 'an outbound rule allows tcp/20 without tcp/21', (policy) =>
  policy.zones.flatMap((zone) =>
    zone.outbound
      .filter((r) => portSetHas(r.ports, 'tcp', 20) && !portSetHas(r.ports, 'tcp', 21))
      .map((r) => ({
        message: `outbound tcp/20 in zone "${zone.name}" allows connections TO port 20; active FTP data goes FROM port 20 and is already accepted as related through the ftp conntrack helper`,
        hint: 'keep it only for FTP servers you reach on port 20; the helper covers your own active FTP data',
        location: r.location,
      })),
  ),
);

const ftpHelper = rule(
  'LINT_FTP_HELPER',
  'info',
  'a zone allows FTP without a passive range: the conntrack helper does the work',
  (policy) =>
    policy.zones
      .filter((zone) => zone.inbound.some((r) => portSetHas(r.ports, 'tcp', 21)) && !zone.ftpPassive)
      .map((zone) => ({
        message: `zone "${zone.name}" allows FTP: the compiled ruleset attaches the ftp conntrack helper so active and passive data connections work`,
        hint: 'behind NAT or with encrypted FTP (FTPS) the helper cannot read the commands: declare `ftp: { passive: 50000-50100 }` and set the server to that range',
        location: zone.location,
      })),
);

/** Every lint check, in the order their advice is most useful. */
export const LINT_RULES: readonly LintRule[] = [
  riskyExposed,
  riskyForward,
  routeLocalnet,
  lockout,
  egressOpen,
  ftpActive,
  ftpHelper,
];

/**
 * Warnings with advice: risky services on external zones, forwards to risky services, lost remote
 * administration, open egress, FTP details. Pure; the CLI passes SSH_CONNECTION in.
 */
export function lintPolicy(policy: Policy, context: LintContext = {}): Diagnostic[] {
  // A stable sort: diagnostics on one line keep the registry's order.
  return LINT_RULES.flatMap((r) => r.check(policy, context)).sort(
    (a, b) => (a.location?.line ?? 0) - (b.location?.line ?? 0),
  );
}
