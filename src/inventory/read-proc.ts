import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { endianness, networkInterfaces } from 'node:os';
import { PortwardenError } from '../errors.ts';
import { runCommand } from '../system/run.ts';
import {
  formatCmdline,
  parseCgroup,
  parsePasswd,
  parseProcStat,
  parseSsV6Only,
  parseSystemdSocketUnits,
  type SocketUnitListen,
} from './owners.ts';
import { isListening, parseIfInet6, parseProcNet, type ProcNetRow } from './parse-proc-net.ts';
import type { LocalInterface, SocketOwner } from './types.ts';
import { missingCapabilities, parseCapabilityMask, type UnreadableProcess } from './unreadable.ts';
import { readTextQuietly } from '../system/files.ts';

/** The only module of the inventory that touches /proc: everything it reads goes to pure parsers. */

const TABLES = [
  { file: 'tcp', protocol: 'tcp', family: 4 },
  { file: 'tcp6', protocol: 'tcp', family: 6 },
  { file: 'udp', protocol: 'udp', family: 4 },
  { file: 'udp6', protocol: 'udp', family: 6 },
] as const;

export interface TableFilter {
  tcp: boolean;
  udp: boolean;
  /** Keep every state (netstat -a), not only listeners and bound UDP sockets. */
  all: boolean;
}

/** Reads the socket tables of one network namespace (`/proc/<pid>/net` or `/proc/self/net`). */
export function readSocketTables(netDir: string, filter: TableFilter): ProcNetRow[] {
  const order = endianness();
  const rows: ProcNetRow[] = [];
  for (const table of TABLES) {
    if (!filter[table.protocol]) continue;
    const text = readTextQuietly(`${netDir}/${table.file}`);
    if (text === null) continue; // IPv6 disabled, or the namespace vanished
    for (const row of parseProcNet(text, table.protocol, table.family, order)) {
      if (filter.all || isListening(row)) rows.push(row);
    }
  }
  return rows;
}

/** Tables of a named namespace with no process inside: read through `ip netns exec` (cat is in it). */
export async function readSocketTablesViaIp(name: string, filter: TableFilter): Promise<ProcNetRow[]> {
  const script = TABLES.map((t) => `echo '#${t.file}'; cat /proc/self/net/${t.file} 2>/dev/null`).join('; ');
  const { stdout } = await runCommand('ip', ['netns', 'exec', name, 'sh', '-c', script]);
  const order = endianness();
  const rows: ProcNetRow[] = [];
  for (const section of stdout.split(/^#/m).slice(1)) {
    const newline = section.indexOf('\n');
    const table = TABLES.find((t) => t.file === section.slice(0, newline));
    if (!table || !filter[table.protocol]) continue;
    for (const row of parseProcNet(section.slice(newline + 1), table.protocol, table.family, order)) {
      if (filter.all || isListening(row)) rows.push(row);
    }
  }
  return rows;
}

export interface FdScan {
  /** socket inode -> pids holding it (several for inherited or passed sockets). */
  holders: Map<number, number[]>;
  /** Processes whose fd tables could not be read (other users when not root, hidepid, ...). */
  unreadable: { pid: number; code: string }[];
}

/** Walks /proc/<pid>/fd of every process and keeps the socket inodes asked for. */
export function scanSocketHolders(wanted: ReadonlySet<number>): FdScan {
  const holders = new Map<number, number[]>();
  const unreadable: { pid: number; code: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    const first = entry.charCodeAt(0);
    if (first < 48 || first > 57) continue;
    const pid = Number(entry);
    const dir = `/proc/${entry}/fd/`;
    let fds: string[];
    try {
      fds = readdirSync(dir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
      if (code !== 'ENOENT' && code !== 'ESRCH') unreadable.push({ pid, code });
      continue; // a process that ended mid-scan simply has no sockets any more
    }
    let denied = false;
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(dir + fd);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EACCES') denied = true;
        continue;
      }
      // "socket:[12345]"
      if (target.charCodeAt(0) !== 115 || !target.startsWith('socket:[')) continue;
      const inode = Number(target.slice(8, -1));
      if (!wanted.has(inode)) continue;
      const list = holders.get(inode);
      if (!list) holders.set(inode, [pid]);
      else if (!list.includes(pid)) list.push(pid);
    }
    if (denied) unreadable.push({ pid, code: 'EACCES' });
  }
  return { holders, unreadable };
}

function hidepidOption(): string | null {
  const mounts = readTextQuietly('/proc/self/mountinfo') ?? '';
  const proc = mounts.split('\n').find((line) => / \/proc .* - proc /.test(line));
  return /hidepid=([^,\s]+)/.exec(proc ?? '')?.[1] ?? null;
}

function readNamespace(path: string): string | null {
  try {
    return readlinkSync(path);
  } catch {
    return null;
  }
}

/** Gathers why a process could not be read: its namespace, capabilities and the /proc mount. */
export function inspectUnreadable(pid: number, code: string | null, vanished: boolean): UnreadableProcess {
  const status = readTextQuietly(`/proc/${pid}/status`) ?? '';
  const ours = parseCapabilityMask(readTextQuietly('/proc/self/status') ?? '', 'CapEff');
  const theirs = parseCapabilityMask(status, 'CapPrm');
  const theirNs = readNamespace(`/proc/${pid}/ns/user`);
  const uid = /^Uid:\s*(\d+)/m.exec(status)?.[1];
  return {
    pid,
    name: /^Name:\s*(.*)$/m.exec(status)?.[1] ?? null,
    uid: uid !== undefined ? Number(uid) : null,
    vanished,
    code,
    otherUserNamespace: theirNs !== null && theirNs !== readNamespace('/proc/self/ns/user'),
    missingCapabilities: ours !== null && theirs !== null ? missingCapabilities(ours, theirs) : [],
    hidepid: hidepidOption(),
  };
}

let passwdCache: Map<number, string> | undefined;

function userName(uid: number | null): string | null {
  if (uid === null) return null;
  passwdCache ??= parsePasswd(readTextQuietly('/etc/passwd') ?? '');
  return passwdCache.get(uid) ?? String(uid);
}

/** Reads what /proc says about a process; fields it may not read stay null. Null if it is gone. */
export function readProcessOwner(pid: number): SocketOwner | null {
  const base = `/proc/${pid}`;
  const stat = parseProcStat(readTextQuietly(`${base}/stat`) ?? '');
  if (!stat) return null;
  let exe: string | null = null;
  try {
    exe = readlinkSync(`${base}/exe`);
  } catch {
    exe = null;
  }
  let uid: number | null = null;
  try {
    uid = statSync(base).uid;
  } catch {
    uid = null;
  }
  const cgroup = parseCgroup(readTextQuietly(`${base}/cgroup`) ?? '');
  const cmdline = readTextQuietly(`${base}/cmdline`);
  const deleted = exe?.endsWith(' (deleted)') ?? false;
  return {
    pid,
    startTime: Number.isFinite(stat.startTime) ? stat.startTime : null,
    name: stat.comm,
    exe,
    exeDeleted: deleted,
    uid,
    user: userName(uid),
    cmdline: cmdline === null ? null : formatCmdline(cmdline),
    unit: cgroup.unit,
    container: cgroup.container,
  };
}

/** The namespace inode a /proc/<pid>/ns/net or /run/netns/<name> refers to. */
export function netnsInode(path: string): number | null {
  // readlink ("net:[4026531840]") works where stat is refused, e.g. on a protected pid 1.
  try {
    const match = /^net:\[(\d+)\]$/.exec(readlinkSync(path));
    if (match?.[1]) return Number(match[1]);
  } catch {
    // fall through: /run/netns/<name> is a bind mount, not a symlink
  }
  try {
    return statSync(path).ino;
  } catch {
    return null;
  }
}

/** Named namespaces from `ip netns` (bind mounts under /run/netns), inode -> name. */
export function namedNamespaces(): Map<number, string> {
  const names = new Map<number, string>();
  let entries: string[] = [];
  try {
    entries = readdirSync('/run/netns');
  } catch {
    return names;
  }
  for (const name of entries) {
    const inode = netnsInode(`/run/netns/${name}`);
    if (inode !== null) names.set(inode, name);
  }
  return names;
}

/** One process per distinct network namespace on the machine: inode -> a pid inside it. */
export function namespaceRepresentatives(): Map<number, number> {
  const reps = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const inode = netnsInode(`/proc/${entry}/ns/net`);
    if (inode !== null && !reps.has(inode)) reps.set(inode, Number(entry));
  }
  return reps;
}

/** Local interfaces and their addresses. The current namespace uses os.networkInterfaces(). */
export function localInterfaces(): LocalInterface[] {
  const result: LocalInterface[] = [];
  for (const [name, infos] of Object.entries(networkInterfaces())) {
    result.push({ name, addresses: (infos ?? []).map((i) => i.address) });
  }
  return result;
}

/** Interfaces of another namespace: IPv6 from its /proc/<pid>/net/if_inet6, all from `ip -j addr`. */
export async function namespaceInterfaces(target: {
  pid?: number;
  name?: string;
}): Promise<LocalInterface[]> {
  const args = target.name ? ['-n', target.name, '-j', 'addr'] : ['-j', 'addr'];
  try {
    const { stdout } = target.name
      ? await runCommand('ip', args, { timeoutMs: 5000 })
      : await runCommand('nsenter', ['-t', String(target.pid), '-n', 'ip', ...args], { timeoutMs: 5000 });
    const parsed: unknown = JSON.parse(stdout);
    if (!Array.isArray(parsed)) return [];
    return parsed.map((link: { ifname?: string; addr_info?: { local?: string }[] }) => ({
      name: link.ifname ?? '?',
      addresses: (link.addr_info ?? []).map((a) => a.local ?? '').filter((a) => a !== ''),
    }));
  } catch {
    if (target.pid === undefined) return [];
    const byName = new Map<string, string[]>();
    for (const row of parseIfInet6(readTextQuietly(`/proc/${target.pid}/net/if_inet6`) ?? '')) {
      byName.set(row.interface, [...(byName.get(row.interface) ?? []), row.address]);
    }
    return [...byName].map(([name, addresses]) => ({ name, addresses }));
  }
}

/** v6only flags of listening v6 sockets from `ss -e`; null when ss is missing or fails. */
export async function readV6OnlyFlags(target: {
  name?: string;
  pid?: number;
}): Promise<Map<number, boolean> | null> {
  const ssArgs = ['-H', '-l', '-n', '-e', '-t', '-u', '-6'];
  try {
    const { stdout } = target.name
      ? await runCommand('ss', ['-N', target.name, ...ssArgs], { timeoutMs: 10_000 })
      : target.pid !== undefined
        ? await runCommand('nsenter', ['-t', String(target.pid), '-n', 'ss', ...ssArgs], {
            timeoutMs: 10_000,
          })
        : await runCommand('ss', ssArgs, { timeoutMs: 10_000 });
    return parseSsV6Only(stdout);
  } catch {
    return null;
  }
}

/** net.ipv6.bindv6only of the current namespace: the default for sockets that did not set it. */
export function readBindV6Only(): boolean | null {
  const text = readTextQuietly('/proc/sys/net/ipv6/bindv6only');
  return text === null ? null : text.trim() === '1';
}

/** Listening addresses of systemd socket units, asked only when pid 1 (systemd) holds a listener. */
export async function readSystemdSocketUnits(): Promise<SocketUnitListen[]> {
  try {
    const { stdout } = await runCommand('systemctl', ['show', '--property=Id,Listen', '*.socket'], {
      timeoutMs: 10_000,
    });
    return parseSystemdSocketUnits(stdout);
  } catch {
    return [];
  }
}

/** Throws the environment error for a platform without a live reader. */
export function unsupportedPlatform(platform: string): never {
  throw new PortwardenError('PLATFORM_UNSUPPORTED', `live inventory is not implemented for "${platform}"`, {
    hint: 'on macOS capture `lsof -nP -iTCP -iUDP -FpcLnPTtu0` and on Windows `netstat -ano`, then pass the file with --from-file',
  });
}
