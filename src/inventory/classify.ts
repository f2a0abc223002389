import { findCuratedByPort } from '../catalog/curated.ts';
import { compareRisk } from '../catalog/explain.ts';
import { lookupIana } from '../catalog/iana.ts';
import { RISK_LEVELS, type RiskLevel } from '../catalog/types.ts';
import type { Exposure, LocalInterface, RawSocket, Socket, SocketOwner } from './types.ts';

/** loopback / one address / all interfaces, from the bound address alone. */
export function exposureOf(address: string): Exposure {
  if (address === '0.0.0.0' || address === '::' || address === '*') return 'all';
  if (address.startsWith('127.') || address === '::1') return 'loopback';
  return 'address';
}

/** Finds which interface holds a local address; link-local v6 addresses get a `%scope` suffix. */
export function interfaceOf(address: string, interfaces: readonly LocalInterface[]): string | null {
  const bare = address.split('%')[0] ?? address;
  const owners = interfaces.filter((i) => i.addresses.some((a) => (a.split('%')[0] ?? a) === bare));
  return owners.length === 1 ? (owners[0]?.name ?? null) : null;
}

function isLinkLocal(address: string): boolean {
  return /^fe[89ab][0-9a-f]:/i.test(address);
}

/** The catalog's name and risk for a port: curated knowledge first, then the IANA registry. */
export function serviceOf(
  port: number,
  protocol: 'tcp' | 'udp',
): { service: string | null; risk: RiskLevel | null } {
  const curated = findCuratedByPort(port, protocol);
  if (curated.length > 0) {
    const worst = [...curated].sort((a, b) => compareRisk(a.risk.level, b.risk.level))[0];
    if (worst) return { service: worst.id, risk: worst.risk.level };
  }
  return { service: lookupIana(port, protocol)?.name ?? null, risk: null };
}

function shellQuote(text: string): string {
  return /^[\w@.:-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}

/** Windows services the System process (pid 4) listens for, by port: SMB and NetBIOS, WinRM. */
const WINDOWS_KERNEL_SERVICES: Readonly<Record<number, string>> = {
  137: 'NetBT',
  138: 'NetBT',
  139: 'LanmanServer',
  445: 'LanmanServer',
  5985: 'WinRM',
  5986: 'WinRM',
};

/**
 * PowerShell that stops and disables what owns a socket on Windows. pid 4 is the kernel itself
 * (SMB, NetBIOS, HTTP.sys): killing it is impossible, the service that asked for the port is stopped.
 * A svchost.exe hosts services: the ones in that process are stopped and disabled. Anything else is a
 * program, ended with taskkill.
 */
function windowsFixFor(owners: readonly SocketOwner[], port: number): string | null {
  const pids = [...new Set(owners.map((o) => o.pid))].filter((pid) => pid > 0).sort((a, b) => a - b);
  if (pids.length === 0) return null;
  const disable = (name: string): string =>
    `Stop-Service ${name} -Force; Set-Service ${name} -StartupType Disabled`;
  if (pids.includes(4)) {
    const service = WINDOWS_KERNEL_SERVICES[port];
    return service
      ? disable(service)
      : `netsh http show servicestate  # port ${port} is HTTP.sys's: stop the service that registered it`;
  }
  const hosts = owners.filter((o) => /^svchost\.exe$/i.test(o.name ?? ''));
  if (hosts.length > 0 && hosts.length === owners.length)
    return `Get-CimInstance Win32_Service -Filter 'ProcessId=${pids[0]}' | ForEach-Object { ${disable('$_.Name')} }`;
  return pids.map((pid) => `taskkill /PID ${pid} /F`).join('; ');
}

/**
 * The command that stops and disables the owner: a unit, a container, or the processes; PowerShell
 * for a Windows listing.
 */
export function fixFor(
  owners: readonly SocketOwner[],
  target: { platform?: NodeJS.Platform; port?: number } = {},
): string | null {
  if (owners.length === 0) return null;
  if (target.platform === 'win32') return windowsFixFor(owners, target.port ?? 0);
  const container = owners.find((o) => o.container)?.container;
  if (container) {
    const [runtime, id] = container.split(':');
    const tool = runtime === 'podman' ? 'podman' : runtime === 'docker' ? 'docker' : 'crictl';
    return `${tool} stop ${id ?? ''}`;
  }
  const units = [...new Set(owners.map((o) => o.unit).filter((u): u is string => u !== null))].filter(
    (u) => !u.endsWith('.scope') && u !== 'init.scope' && !/^user@\d+\.service$/.test(u),
  );
  if (units.length > 0) {
    // A socket unit must be stopped with its service, or the next connection starts it again.
    const all = new Set<string>();
    for (const unit of units) {
      all.add(unit);
      if (unit.endsWith('.socket')) all.add(unit.replace(/\.socket$/, '.service'));
    }
    return `systemctl disable --now ${[...all]
      .sort((a, b) => (a.endsWith('.socket') ? -1 : b.endsWith('.socket') ? 1 : a.localeCompare(b)))
      .map(shellQuote)
      .join(' ')}`;
  }
  const pids = [...new Set(owners.map((o) => o.pid))].sort((a, b) => a - b);
  return `kill ${pids.join(' ')}`;
}

export interface ClassifyContext {
  interfaces: readonly LocalInterface[];
  netns: string;
  /** Whether `netns` is the host's namespace (pid 1's). */
  hostNamespace: boolean;
  /** inode -> v6only flag when known. */
  v6only: ReadonlyMap<number, boolean>;
  /** Assumed v6only for `::` sockets whose flag is unknown (net.ipv6.bindv6only), or null. */
  defaultV6Only: boolean | null;
  /** The platform the listing came from (Windows owners get Windows fixes). */
  platform?: NodeJS.Platform;
}

/** Joins a raw socket, its owners and the catalog into a row. Pure. */
export function classifySocket(
  raw: RawSocket & { v4Mapped?: boolean },
  owners: readonly SocketOwner[],
  context: ClassifyContext,
): Socket {
  const exposure = exposureOf(raw.localAddress);
  let localAddress = raw.localAddress;
  let iface: string | null = null;
  if (exposure === 'address') {
    iface = interfaceOf(localAddress, context.interfaces);
    if (iface && isLinkLocal(localAddress)) localAddress = `${localAddress}%${iface}`;
  }
  const wildcardV6 = raw.family === 6 && raw.localAddress === '::';
  const v6only = context.v6only.get(raw.inode) ?? context.defaultV6Only;
  const { service, risk } = serviceOf(raw.localPort, raw.protocol);
  return {
    protocol: raw.protocol,
    family: raw.family,
    localAddress,
    localPort: raw.localPort,
    remoteAddress: raw.remoteAddress,
    remotePort: raw.remotePort,
    state: raw.state,
    uid: raw.uid,
    inode: raw.inode,
    exposure,
    interface: iface,
    dualStack: wildcardV6 && v6only !== null ? !v6only : null,
    v4Mapped: raw.v4Mapped ?? false,
    netns: context.netns,
    exposureScope: context.hostNamespace ? 'host' : 'namespace',
    processes: [...owners],
    service,
    risk,
    fix: fixFor(owners, { ...(context.platform ? { platform: context.platform } : {}), port: raw.localPort }),
  };
}

function riskRank(risk: RiskLevel | null): number {
  return risk === null ? RISK_LEVELS.length : RISK_LEVELS.indexOf(risk);
}

const EXPOSURE_RANK: Record<Exposure, number> = { all: 0, address: 1, loopback: 2 };

/** Most exposed first, then riskiest, then protocol/port/address: the order of the table. */
export function compareSockets(a: Socket, b: Socket): number {
  return (
    EXPOSURE_RANK[a.exposure] - EXPOSURE_RANK[b.exposure] ||
    riskRank(a.risk) - riskRank(b.risk) ||
    a.protocol.localeCompare(b.protocol) ||
    a.localPort - b.localPort ||
    a.family - b.family ||
    a.localAddress.localeCompare(b.localAddress) ||
    a.inode - b.inode
  );
}
