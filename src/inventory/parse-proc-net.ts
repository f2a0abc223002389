import ipaddr from 'ipaddr.js';
import type { Protocol } from '../catalog/types.ts';
import type { RawSocket } from './types.ts';

/** Kernel TCP states (include/net/tcp_states.h), named as netstat names them. */
const TCP_STATES: Readonly<Record<number, string>> = {
  1: 'ESTABLISHED',
  2: 'SYN_SENT',
  3: 'SYN_RECV',
  4: 'FIN_WAIT1',
  5: 'FIN_WAIT2',
  6: 'TIME_WAIT',
  7: 'CLOSE',
  8: 'CLOSE_WAIT',
  9: 'LAST_ACK',
  10: 'LISTEN',
  11: 'CLOSING',
  12: 'NEW_SYN_RECV',
};

/** The byte order of the 32-bit address words in /proc/net: the host's own. */
export type ByteOrder = 'LE' | 'BE';

function hexByte(hex: string, at: number): number {
  return parseInt(hex.slice(at, at + 2), 16);
}

/** Decodes one 8-hex-digit address word into 4 bytes in network order. */
function wordBytes(hex: string, at: number, order: ByteOrder): number[] {
  const b = [hexByte(hex, at), hexByte(hex, at + 2), hexByte(hex, at + 4), hexByte(hex, at + 6)];
  return order === 'LE' ? b.reverse() : b;
}

/** An address as /proc/net prints it, decoded: IPv4-mapped IPv6 addresses come back as IPv4. */
export interface DecodedAddress {
  address: string;
  v4Mapped: boolean;
}

export function decodeProcAddress(hex: string, order: ByteOrder = 'LE'): DecodedAddress {
  if (hex.length === 8) return { address: wordBytes(hex, 0, order).join('.'), v4Mapped: false };
  if (hex.length !== 32 || !/^[0-9A-Fa-f]+$/.test(hex)) {
    throw new Error(`not a /proc/net address: "${hex}"`);
  }
  const bytes = [0, 8, 16, 24].flatMap((at) => wordBytes(hex, at, order));
  const v6 = ipaddr.fromByteArray(bytes);
  if (v6.kind() === 'ipv6' && v6 instanceof ipaddr.IPv6 && v6.isIPv4MappedAddress()) {
    return { address: v6.toIPv4Address().toString(), v4Mapped: true };
  }
  return { address: v6.toString(), v4Mapped: false };
}

function decodeEndpoint(field: string, order: ByteOrder): { address: DecodedAddress; port: number } {
  const colon = field.indexOf(':');
  if (colon < 0) throw new Error(`not a /proc/net endpoint: "${field}"`);
  const port = parseInt(field.slice(colon + 1), 16);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad port in "${field}"`);
  return { address: decodeProcAddress(field.slice(0, colon), order), port };
}

/** A socket row plus the mapped-address flag, which the socket type keeps separately. */
export interface ProcNetRow extends RawSocket {
  v4Mapped: boolean;
}

/**
 * Parses /proc/net/{tcp,tcp6,udp,udp6}. Malformed lines are skipped (the kernel never writes them,
 * but a captured file may be truncated); the header line is recognised and ignored.
 */
export function parseProcNet(
  text: string,
  protocol: Protocol,
  family: 4 | 6,
  order: ByteOrder = 'LE',
): ProcNetRow[] {
  const rows: ProcNetRow[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10 || !fields[0]?.endsWith(':')) continue;
    try {
      const local = decodeEndpoint(fields[1] ?? '', order);
      const remote = decodeEndpoint(fields[2] ?? '', order);
      const code = parseInt(fields[3] ?? '', 16);
      const uid = Number(fields[7]);
      const inode = Number(fields[9]);
      if (!Number.isInteger(uid) || !Number.isInteger(inode)) continue;
      rows.push({
        protocol,
        family,
        localAddress: local.address.address,
        localPort: local.port,
        remoteAddress: remote.address.address,
        remotePort: remote.port,
        state: stateName(protocol, code),
        uid,
        inode,
        v4Mapped: local.address.v4Mapped,
      });
    } catch {
      continue;
    }
  }
  return rows;
}

/** UDP reuses the TCP state numbers: 7 (CLOSE) is an unconnected socket, 1 a connected one. */
function stateName(protocol: Protocol, code: number): string {
  if (protocol === 'udp') {
    if (code === 7) return 'UNCONN';
    if (code === 1) return 'ESTABLISHED';
  }
  return TCP_STATES[code] ?? `UNKNOWN(${code})`;
}

/** Whether the socket is what `ss -l` lists: a TCP listener or an unconnected bound UDP socket. */
export function isListening(socket: Pick<RawSocket, 'protocol' | 'state'>): boolean {
  return socket.protocol === 'tcp' ? socket.state === 'LISTEN' : socket.state === 'UNCONN';
}

/** Parses /proc/net/if_inet6: every local IPv6 address with its interface name. */
export function parseIfInet6(text: string): { address: string; interface: string; scope: number }[] {
  const out: { address: string; interface: string; scope: number }[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6 || f[0]?.length !== 32) continue;
    try {
      out.push({
        address: decodeProcAddress(f[0], 'BE').address,
        interface: f[5] ?? '',
        scope: parseInt(f[3] ?? '0', 16),
      });
    } catch {
      continue;
    }
  }
  return out;
}
