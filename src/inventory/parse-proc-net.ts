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
  if ((hex.length !== 8 && hex.length !== 32) || !/^[0-9A-Fa-f]+$/.test(hex)) {
    throw new Error(`not a /proc/net address: "${hex}"`);
  }
  if (hex.length === 8) return { address: wordBytes(hex, 0, order).join('.'), v4Mapped: false };
  const bytes = [0, 8, 16, 24].flatMap((at) => wordBytes(hex, at, order));
  const v6 = ipaddr.fromByteArray(bytes);
  if (v6.kind() === 'ipv6' && v6 instanceof ipaddr.IPv6 && v6.isIPv4MappedAddress()) {
    return { address: v6.toIPv4Address().toString(), v4Mapped: true };
  }
  return { address: v6.toString(), v4Mapped: false };
}

/** A socket row plus the mapped-address flag, which the socket type keeps separately. */
export interface ProcNetRow extends RawSocket {
  v4Mapped: boolean;
}

const SPACE = 32;

/** Index of the next non-space character at or after `at` (tabs never appear in /proc/net). */
function skipSpaces(line: string, at: number): number {
  while (at < line.length && line.charCodeAt(at) === SPACE) at++;
  return at;
}

/** End (exclusive) of the token starting at `at`. */
function tokenEnd(line: string, at: number): number {
  const space = line.indexOf(' ', at);
  return space < 0 ? line.length : space;
}

/** decodeProcAddress with a per-call cache (null for a malformed address): 10,000 listeners on one address decode it once. */
function cachedDecoder(order: ByteOrder): (hex: string) => DecodedAddress | null {
  const cache = new Map<string, DecodedAddress | null>();
  return (hex) => {
    let hit = cache.get(hex);
    if (hit === undefined) {
      try {
        hit = decodeProcAddress(hex, order);
      } catch {
        hit = null;
      }
      cache.set(hex, hit);
    }
    return hit;
  };
}

/** The first ten tokens of a line: sl: local remote st tx:rx tr:when retrnsmt uid timeout inode. */
function lineTokens(line: string): string[] {
  const tokens: string[] = [];
  let at = skipSpaces(line, 0);
  while (at < line.length && tokens.length < 10) {
    const end = tokenEnd(line, at);
    tokens.push(line.slice(at, end));
    at = skipSpaces(line, end);
  }
  return tokens;
}

/** One row from its tokens, or null when the line is the header or malformed. */
function parseRow(
  tokens: readonly string[],
  protocol: Protocol,
  family: 4 | 6,
  decode: (hex: string) => DecodedAddress | null,
): ProcNetRow | null {
  if (tokens.length < 10 || !tokens[0]?.endsWith(':')) return null;
  const [, localText = '', remoteText = '', stText = '', , , , uidText = '', , inodeText = ''] = tokens;
  const lc = localText.indexOf(':');
  const rc = remoteText.indexOf(':');
  if (lc < 0 || rc < 0) return null;
  const local = decode(localText.slice(0, lc));
  const remote = decode(remoteText.slice(0, rc));
  const localPort = parseInt(localText.slice(lc + 1), 16);
  const remotePort = parseInt(remoteText.slice(rc + 1), 16);
  const uid = Number(uidText);
  const inode = Number(inodeText);
  const valid =
    local &&
    remote &&
    localPort >= 0 &&
    localPort <= 65535 &&
    remotePort >= 0 &&
    remotePort <= 65535 &&
    Number.isInteger(uid) &&
    Number.isInteger(inode);
  if (!valid || !local || !remote) return null;
  return {
    protocol,
    family,
    localAddress: local.address,
    localPort,
    remoteAddress: remote.address,
    remotePort,
    state: stateName(protocol, parseInt(stText, 16)),
    uid,
    inode,
    v4Mapped: local.v4Mapped,
  };
}

/**
 * Parses /proc/net/{tcp,tcp6,udp,udp6}. Malformed lines are skipped (the kernel never writes them,
 * but a captured file may be truncated); the header line is recognised and ignored. The scan is
 * index-based, line by line without splitting the whole text.
 */
export function parseProcNet(
  text: string,
  protocol: Protocol,
  family: 4 | 6,
  order: ByteOrder = 'LE',
): ProcNetRow[] {
  const rows: ProcNetRow[] = [];
  const decode = cachedDecoder(order);
  let lineStart = 0;
  while (lineStart < text.length) {
    let lineEnd = text.indexOf('\n', lineStart);
    if (lineEnd < 0) lineEnd = text.length;
    const row = parseRow(lineTokens(text.slice(lineStart, lineEnd)), protocol, family, decode);
    if (row) rows.push(row);
    lineStart = lineEnd + 1;
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
