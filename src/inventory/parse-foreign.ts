import ipaddr from 'ipaddr.js';
import { PortwardenError } from '../errors.ts';
import type { RawSocket, SocketOwner } from './types.ts';

/** Pure parsers for the socket listings of macOS (lsof) and Windows (netstat -ano, tasklist). */

/** A socket from another platform's tool, with the owners that tool named. */
export interface ForeignSocket extends RawSocket {
  v4Mapped: boolean;
  owners: SocketOwner[];
}

function owner(pid: number, name: string | null, user: string | null, uid: number | null): SocketOwner {
  return {
    pid,
    startTime: null,
    name,
    exe: null,
    exeDeleted: false,
    uid,
    user,
    cmdline: null,
    unit: null,
    container: null,
  };
}

/**
 * Splits `host:port`, `[v6%zone]:port`, `*:port`, `*:*`; null unless the address is `*` or an IP
 * address and the port is `*` or 0-65535.
 */
export function splitHostPort(text: string): { address: string; port: number } | null {
  const bracket = /^\[([^\]]+)\]:(\d{1,5}|\*)$/.exec(text);
  const plain = /^([^:\s]+|\*):(\d{1,5}|\*)$/.exec(text);
  const match = bracket ?? plain;
  if (!match) return null;
  const address = match[1] ?? '*';
  const port = match[2] === '*' ? 0 : Number(match[2]);
  const bare = address.split('%')[0] ?? '';
  const isAddress = address === '*' || (ipaddr.isValid(bare) && /^[0-9a-fA-F:.]+$/.test(bare));
  if (
    !isAddress ||
    port > 65535 ||
    (bare.includes('.') && !ipaddr.IPv4.isValidFourPartDecimal(bare.replace(/^.*:/, '')))
  )
    return null;
  return { address, port };
}

/** A socket line whose address cannot exist: the listing was edited or is not the tool's output. */
function badEndpoint(text: string, where: string): PortwardenError {
  return new PortwardenError('LISTING_INVALID', `${where}: "${text}" is not an address:port`, {
    hint: 'addresses are IPv4/IPv6 (or *) and ports 0-65535; give the unedited output of `netstat -ano` or `lsof -nP`',
  });
}

function normaliseAddress(address: string, family: 4 | 6): { address: string; v4Mapped: boolean } {
  if (address === '*') return { address: family === 6 ? '::' : '0.0.0.0', v4Mapped: false };
  const [bare = address, zone] = address.split('%');
  if (!ipaddr.isValid(bare)) return { address, v4Mapped: false };
  const parsed = ipaddr.parse(bare);
  if (parsed instanceof ipaddr.IPv6 && parsed.isIPv4MappedAddress()) {
    return { address: parsed.toIPv4Address().toString(), v4Mapped: true };
  }
  const text = parsed.toString();
  return { address: zone ? `${text}%${zone}` : text, v4Mapped: false };
}

/** TCP state words of lsof (BSD names) and Windows netstat, in netstat-on-Linux spelling. */
const FOREIGN_TCP_STATES: Readonly<Record<string, string>> = {
  LISTEN: 'LISTEN',
  LISTENING: 'LISTEN',
  DELETE_TCB: 'CLOSE',
  ESTABLISHED: 'ESTABLISHED',
  SYN_SENT: 'SYN_SENT',
  SYN_RECEIVED: 'SYN_RECV',
  FIN_WAIT_1: 'FIN_WAIT1',
  FIN_WAIT_2: 'FIN_WAIT2',
  CLOSE_WAIT: 'CLOSE_WAIT',
  CLOSING: 'CLOSING',
  LAST_ACK: 'LAST_ACK',
  TIME_WAIT: 'TIME_WAIT',
  CLOSED: 'CLOSE',
  BOUND: 'BOUND',
};

interface LsofProcess {
  pid: number;
  name: string | null;
  uid: number | null;
  user: string | null;
}

/** One lsof file set as a socket (without owners), with its merge key; null for what is not TCP/UDP. */
function lsofSocket(
  proc: LsofProcess,
  file: Record<string, string>,
): { key: string; socket: ForeignSocket } | null {
  if (!file['n'] || !file['P']) return null;
  const protocol = file['P'].toLowerCase();
  if (protocol !== 'tcp' && protocol !== 'udp') return null;
  const family: 4 | 6 = file['t'] === 'IPv6' ? 6 : 4;
  const [localText = '', remoteText] = file['n'].split('->');
  const local = splitHostPort(localText);
  if (!local) throw badEndpoint(localText, `lsof socket of pid ${proc.pid}`);
  const remote = remoteText ? splitHostPort(remoteText) : null;
  if (remoteText && !remote) throw badEndpoint(remoteText, `lsof socket of pid ${proc.pid}`);
  const tcpState = /(?:^|\s)ST=(\S+)/.exec(file['T'] ?? '')?.[1];
  const state =
    protocol === 'tcp'
      ? (FOREIGN_TCP_STATES[tcpState ?? ''] ?? tcpState ?? 'UNKNOWN')
      : remote
        ? 'ESTABLISHED'
        : 'UNCONN';
  const localAddr = normaliseAddress(local.address, family);
  const remoteAddr = remote
    ? normaliseAddress(remote.address, family).address
    : family === 6
      ? '::'
      : '0.0.0.0';
  const remotePort = remote?.port ?? 0;
  const key = [
    protocol,
    family,
    localAddr.address,
    local.port,
    remoteAddr,
    remotePort,
    state,
    file['d'] ?? '',
  ].join('|');
  const socket: ForeignSocket = {
    protocol,
    family,
    localAddress: localAddr.address,
    localPort: local.port,
    remoteAddress: remoteAddr,
    remotePort,
    state,
    uid: proc.uid ?? -1,
    inode: 0,
    v4Mapped: localAddr.v4Mapped,
    owners: [],
  };
  return { key, socket };
}

/**
 * Parses `lsof -nP -iTCP -iUDP -F pcuLftPTn` (with or without `0`, i.e. NUL-terminated fields):
 * process sets start with `p`, file sets with `f`; `n` is `local` or `local->remote`.
 * One socket open in several processes appears once per process and is merged here by
 * (protocol, local, remote, state) — lsof gives no inode on macOS (`d` is a kernel address).
 */
export function parseLsof(text: string): ForeignSocket[] {
  const sockets = new Map<string, ForeignSocket>();
  let proc: LsofProcess | null = null;
  let file: Record<string, string> = {};
  const flush = (): void => {
    const found = proc ? lsofSocket(proc, file) : null;
    if (!proc || !found) return;
    const entry = sockets.get(found.key) ?? found.socket;
    if (!entry.owners.some((o) => o.pid === proc?.pid))
      entry.owners.push(owner(proc.pid, proc.name, proc.user, proc.uid));
    sockets.set(found.key, entry);
  };
  for (const raw of text.split(/[\0\n]/)) {
    if (raw.length === 0) continue;
    const tag = raw[0] ?? '';
    const value = raw.slice(1);
    if (tag === 'p' || tag === 'f') {
      flush();
      file = {};
      if (tag === 'p') proc = { pid: Number(value), name: null, uid: null, user: null };
    } else if (proc && (tag === 'c' || tag === 'u' || tag === 'L') && Object.keys(file).length === 0) {
      if (tag === 'c') proc.name = value;
      if (tag === 'u') proc.uid = Number(value);
      if (tag === 'L') proc.user = value;
    } else if (tag === 'T') file['T'] = `${file['T'] ?? ''} ${value}`;
    else file[tag] = value;
  }
  flush();
  return [...sockets.values()];
}

/** A process row of `tasklist /fo csv [/v]`. */
export interface TasklistRow {
  pid: number;
  name: string;
  user: string | null;
}

/** Splits one CSV line (quoted fields with doubled quotes, as tasklist writes them). */
function csvFields(line: string): string[] {
  const fields: string[] = [];
  let i = 0;
  while (i < line.length) {
    if (line[i] === '"') {
      let value = '';
      i++;
      while (i < line.length) {
        if (line[i] === '"' && line[i + 1] === '"') {
          value += '"';
          i += 2;
        } else if (line[i] === '"') {
          i++;
          break;
        } else value += line[i++];
      }
      fields.push(value);
      if (line[i] === ',') i++;
    } else {
      const comma = line.indexOf(',', i);
      const end = comma < 0 ? line.length : comma;
      fields.push(line.slice(i, end));
      i = end + 1;
    }
  }
  return fields;
}

/** Parses `tasklist /fo csv` with or without `/v` and with or without the header row (`/nh`). */
export function parseTasklistCsv(text: string): Map<number, TasklistRow> {
  const rows = new Map<number, TasklistRow>();
  let userColumn = -1;
  for (const line of text.replace(/^\uFEFF/, '').split(/\r?\n/)) {
    if (line.trim() === '') continue;
    const fields = csvFields(line.trim());
    if (fields[1] === 'PID' || /^PID$/i.test(fields[1] ?? '')) {
      userColumn = fields.findIndex((f) => /^User Name$/i.test(f));
      continue;
    }
    const pid = Number(fields[1]);
    if (!Number.isInteger(pid)) continue;
    const user =
      userColumn >= 0 ? (fields[userColumn] ?? null) : fields.length >= 9 ? (fields[6] ?? null) : null;
    rows.set(pid, { pid, name: fields[0] ?? '', user: user === 'N/A' ? null : user });
  }
  return rows;
}

/**
 * Parses `netstat -ano` (any Windows language: only the data rows are read, recognised by their
 * TCP/UDP first column). `processes` from tasklist names the owners.
 */
export function parseWindowsNetstat(
  text: string,
  processes: ReadonlyMap<number, TasklistRow> = new Map(),
): ForeignSocket[] {
  const out: ForeignSocket[] = [];
  for (const [index, line] of text.split(/\r?\n/).entries()) {
    const f = line.trim().split(/\s+/);
    const proto = f[0]?.toUpperCase();
    if (proto !== 'TCP' && proto !== 'UDP') continue;
    const local = splitHostPort(f[1] ?? '');
    const remote = splitHostPort(f[2] ?? '');
    if (!local) throw badEndpoint(f[1] ?? '', `netstat line ${index + 1}`);
    if (!remote) throw badEndpoint(f[2] ?? '', `netstat line ${index + 1}`);
    const family: 4 | 6 = (f[1] ?? '').startsWith('[') ? 6 : 4;
    const state = proto === 'TCP' ? (FOREIGN_TCP_STATES[f[3] ?? ''] ?? f[3] ?? 'UNKNOWN') : 'UNCONN';
    const pid = Number(proto === 'TCP' ? f[4] : f[3]);
    const localAddr = normaliseAddress(local.address, family);
    const task = processes.get(pid);
    out.push({
      protocol: proto === 'TCP' ? 'tcp' : 'udp',
      family,
      localAddress: localAddr.address,
      localPort: local.port,
      remoteAddress: remote
        ? normaliseAddress(remote.address, family).address
        : family === 6
          ? '::'
          : '0.0.0.0',
      remotePort: remote?.port ?? 0,
      state,
      uid: -1,
      inode: 0,
      v4Mapped: localAddr.v4Mapped,
      owners: Number.isInteger(pid)
        ? [owner(pid, task?.name ?? (pid === 4 ? 'System' : null), task?.user ?? null, null)]
        : [],
    });
  }
  return out;
}

/** Recognises which tool wrote a captured listing. */
export function detectListingFormat(text: string): 'lsof' | 'windows-netstat' | 'proc-net' | null {
  if (/^\s*sl\s+local_address/m.test(text)) return 'proc-net';
  if (/^\s*(TCP|UDP)\s+\S+:\S+\s+\S+/m.test(text)) return 'windows-netstat';
  if (/^p\d+[\0\n]/m.test(text)) return 'lsof';
  return null;
}
