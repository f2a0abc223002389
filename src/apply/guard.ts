import { portSetHas } from '../catalog/port-set.ts';
import type { LocalInterface } from '../inventory/types.ts';
import { expectedInbound } from '../policy/expect.ts';
import type { Policy, Zone } from '../policy/types.ts';

/**
 * The lock-out guard of `apply` (pure): would this policy cut the administrator off? It refuses when
 * the SSH session `apply` runs in (SSH_CONNECTION) would no longer be accepted, or when remote
 * administration is listening on the network now and the policy lets it through nowhere.
 */

/** A listening socket of a remote-administration service (sshd, RDP, VNC, WinRM, ...). */
export interface AdminListener {
  port: number;
  /** Process or service name, for the message. */
  name: string;
}

export interface GuardContext {
  /** SSH_CONNECTION: "client-address client-port server-address server-port". */
  sshConnection?: string;
  interfaces: readonly LocalInterface[];
  /** Remote-administration listeners reachable from the network now (not loopback-only). */
  adminListeners: readonly AdminListener[];
}

function interfaceMatches(pattern: string, name: string): boolean {
  return pattern.endsWith('*') ? name.startsWith(pattern.slice(0, -1)) : pattern === name;
}

/** The zone whose interfaces include `ifname`, if any. */
export function zoneOfInterface(policy: Policy, ifname: string): Zone | undefined {
  return policy.zones.find((z) => z.interfaces.some((p) => interfaceMatches(p, ifname)));
}

function stripScope(address: string): string {
  const bare = address.replace(/%.*$/, '');
  return bare.startsWith('::ffff:') && bare.includes('.') ? bare.slice(7) : bare;
}

/** Why the policy would lock the administrator out; empty when it would not. */
export function lockoutReasons(policy: Policy, context: GuardContext): string[] {
  const reasons: string[] = [];
  const ssh = context.sshConnection?.trim().split(/\s+/);
  if (ssh && ssh.length >= 4) {
    const [clientRaw, , serverRaw, portText] = ssh;
    const client = stripScope(clientRaw ?? '');
    const server = stripScope(serverRaw ?? '');
    const port = Number(portText);
    const family = client.includes(':') ? 6 : 4;
    const ifname = context.interfaces.find((i) => i.addresses.some((a) => stripScope(a) === server))?.name;
    if (ifname === 'lo') {
      // a session over loopback is always accepted
    } else {
      const zone = ifname === undefined ? undefined : zoneOfInterface(policy, ifname);
      let allowed: boolean;
      if (zone === undefined) allowed = policy.defaults.inbound === 'accept';
      else {
        try {
          allowed = portSetHas(expectedInbound(policy, zone.name, family, client), 'tcp', port);
        } catch {
          allowed = false;
        }
      }
      if (!allowed) {
        reasons.push(
          `your SSH session (${client} -> ${server}:${port} via ${ifname ?? 'an unknown interface'}${
            zone ? `, zone "${zone.name}"` : ', in no zone'
          }) would be blocked`,
        );
      }
    }
  }
  const reachable = context.adminListeners.filter(
    (l) =>
      !policy.zones.some(
        (z) =>
          z.inbound.some((r) => portSetHas(r.ports, 'tcp', l.port)) ||
          (z.ftpPassive !== null && l.port >= z.ftpPassive.from && l.port <= z.ftpPassive.to),
      ),
  );
  if (
    context.adminListeners.length > 0 &&
    reachable.length === context.adminListeners.length &&
    policy.defaults.inbound !== 'accept'
  ) {
    const names = [...new Set(context.adminListeners.map((l) => `${l.name} (tcp/${l.port})`))].join(', ');
    reasons.push(`every path of remote administration would be closed: no zone allows ${names}`);
  }
  return reasons;
}

/** Catalog ports of remote-administration services, besides any port sshd listens on. */
export const ADMIN_PORTS: ReadonlyMap<number, string> = new Map([
  [22, 'ssh'],
  [3389, 'rdp'],
  [5900, 'vnc'],
  [5985, 'winrm'],
  [5986, 'winrm-https'],
]);
