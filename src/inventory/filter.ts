import { portSetHas, type PortSet } from '../catalog/port-set.ts';
import { isListening } from './parse-proc-net.ts';
import type { Socket, SocketOwner } from './types.ts';

/** What `ports 8080 --pid N --process NAME --user U --unit NAME` asks for; every given field must match. */
export interface SocketFilter {
  /** The local port, or the remote port of a connection (like `lsof -i :PORT`). */
  ports?: PortSet;
  pid?: number;
  /** A process name (`comm`) or the file name of its executable. */
  process?: string;
  /** A user name or a numeric uid. */
  user?: string;
  /** A systemd unit, with or without its `.service` / `.socket` suffix. */
  unit?: string;
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function matchesPort(s: Socket, ports: PortSet): boolean {
  if (portSetHas(ports, s.protocol, s.localPort)) return true;
  return !isListening(s) && portSetHas(ports, s.protocol, s.remotePort);
}

function matchesUser(s: Socket, owner: SocketOwner | undefined, user: string): boolean {
  if (/^\d+$/.test(user)) return (owner ? owner.uid : s.uid) === Number(user);
  return owner?.user === user;
}

function matchesUnit(owner: SocketOwner, unit: string): boolean {
  return owner.unit !== null && [unit, `${unit}.service`, `${unit}.socket`].includes(owner.unit);
}

function matchesOwner(s: Socket, owner: SocketOwner | undefined, filter: SocketFilter): boolean {
  if (filter.pid !== undefined && owner?.pid !== filter.pid) return false;
  if (filter.process !== undefined) {
    const names = [owner?.name, owner?.exe ? basename(owner.exe.replace(/ \(deleted\)$/, '')) : null];
    if (!names.includes(filter.process)) return false;
  }
  if (filter.user !== undefined && !matchesUser(s, owner, filter.user)) return false;
  return filter.unit === undefined || (owner !== undefined && matchesUnit(owner, filter.unit));
}

/**
 * Whether a socket matches every field of the filter. Owner fields must hold for one and the same
 * owning process; a socket with no known owner matches only a numeric `user` (its kernel uid).
 */
export function matchesSocketFilter(s: Socket, filter: SocketFilter): boolean {
  if (filter.ports && !matchesPort(s, filter.ports)) return false;
  const owners: (SocketOwner | undefined)[] = s.processes.length > 0 ? s.processes : [undefined];
  return owners.some((owner) => matchesOwner(s, owner, filter));
}
