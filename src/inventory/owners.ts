/** Pure parsers for what /proc and systemd tell about a socket's owner. */

const HEX64 = /[0-9a-f]{64}/;

/** The container runtimes whose cgroup names carry a 64-hex container id. */
const CONTAINER_PATTERNS: readonly { runtime: string; pattern: RegExp }[] = [
  { runtime: 'docker', pattern: /(?:docker-|\/docker\/)([0-9a-f]{64})/ },
  { runtime: 'podman', pattern: /libpod-(?:conmon-)?([0-9a-f]{64})/ },
  { runtime: 'containerd', pattern: /cri-containerd-([0-9a-f]{64})/ },
  { runtime: 'crio', pattern: /crio-(?:conmon-)?([0-9a-f]{64})/ },
];

export interface CgroupOwner {
  unit: string | null;
  container: string | null;
}

/**
 * Reads /proc/<pid>/cgroup: the unified (`0::`) line names the systemd unit as the last path
 * component ending in .service/.socket/.scope; a container id is recognised for docker, podman,
 * containerd and CRI-O. Unit names inside a container's cgroup are the container's, not the host's.
 */
export function parseCgroup(text: string): CgroupOwner {
  const lines = text.split('\n').filter((l) => l.length > 0);
  const unified = lines.find((l) => l.startsWith('0::')) ?? lines.find((l) => l.includes('name=systemd'));
  const path = unified ? unified.slice(unified.indexOf(':', unified.indexOf(':') + 1) + 1) : '';
  let container: string | null = null;
  for (const { runtime, pattern } of CONTAINER_PATTERNS) {
    const match = pattern.exec(text);
    if (match?.[1]) {
      container = `${runtime}:${match[1].slice(0, 12)}`;
      break;
    }
  }
  if (!container && HEX64.test(path) && path.includes('kubepods')) {
    container = `kubernetes:${(HEX64.exec(path)?.[0] ?? '').slice(0, 12)}`;
  }
  const parts = path.split('/').filter((p) => p.length > 0);
  let unit: string | null = null;
  for (let i = parts.length - 1; i >= 0; i--) {
    const part = parts[i] ?? '';
    if (/\.(service|socket|scope)$/.test(part) && !/^(docker|libpod|cri-containerd|crio)-/.test(part)) {
      // user@1000.service is the user's manager; a unit below it is the real owner.
      unit = part;
      break;
    }
  }
  return { unit, container };
}

/** Fields of /proc/<pid>/stat that matter here; `comm` may contain spaces and parentheses. */
export interface ProcStat {
  comm: string;
  startTime: number;
}

export function parseProcStat(text: string): ProcStat | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  // After "pid (comm) " come fields 3.. ; starttime is field 22, i.e. index 19 after the comm.
  const rest = text.slice(close + 2).split(' ');
  const startTime = Number(rest[19]);
  return { comm: text.slice(open + 1, close), startTime: Number.isFinite(startTime) ? startTime : NaN };
}

/** /etc/passwd as a uid -> name map. */
export function parsePasswd(text: string): Map<number, string> {
  const users = new Map<number, string>();
  for (const line of text.split('\n')) {
    const [name, , uid] = line.split(':');
    if (name && uid !== undefined && /^\d+$/.test(uid) && !users.has(Number(uid)))
      users.set(Number(uid), name);
  }
  return users;
}

/** /proc/<pid>/cmdline: NUL-separated argv, shown shell-like. */
export function formatCmdline(raw: string): string | null {
  const args = raw.split('\0').filter((a, i, all) => a.length > 0 || i < all.length - 1);
  if (args.length === 0) return null;
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(' ');
}

/** One listening address of a systemd socket unit, from `systemctl show -p Id,Listen '*.socket'`. */
export interface SocketUnitListen {
  unit: string;
  /** `Stream` (tcp), `Datagram` (udp), `SequentialPacket`, `FIFO`, ... */
  kind: string;
  address: string;
  port: number | null;
}

/**
 * Parses `systemctl show --property=Id,Listen '*.socket'`: blank-line separated blocks with one
 * `Id=` and any number of `Listen=<address> (<Kind>)` lines (`[::]:631 (Stream)`, `0.0.0.0:53 (Datagram)`,
 * `631 (Stream)` for a bare port, `/run/foo.sock (Stream)` for a path).
 */
export function parseSystemdSocketUnits(text: string): SocketUnitListen[] {
  const out: SocketUnitListen[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const id = /^Id=(.+)$/m.exec(block)?.[1]?.trim();
    if (!id) continue;
    for (const match of block.matchAll(/^Listen=(.+?) \(([A-Za-z]+)\)\s*$/gm)) {
      const value = match[1] ?? '';
      const kind = match[2] ?? '';
      const bare = /^(\d+)$/.exec(value);
      const hostPort = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(value);
      if (bare) out.push({ unit: id, kind, address: '*', port: Number(bare[1]) });
      else if (hostPort)
        out.push({ unit: id, kind, address: hostPort[1] ?? hostPort[2] ?? '*', port: Number(hostPort[3]) });
      else out.push({ unit: id, kind, address: value, port: null });
    }
  }
  return out;
}

/** The `.service` unit a socket unit activates (foo.socket -> foo.service; foo@.socket -> foo@*.service). */
export function serviceForSocketUnit(socketUnit: string): string {
  return socketUnit.replace(/\.socket$/, '.service');
}

/** Parses `ss -Hlne` lines: inode -> v6only flag, the one fact /proc/net/tcp6 cannot show. */
export function parseSsV6Only(text: string): Map<number, boolean> {
  const flags = new Map<number, boolean>();
  for (const line of text.split('\n')) {
    const ino = /\bino:(\d+)/.exec(line);
    const v6 = /\bv6only:([01])/.exec(line);
    if (ino?.[1] && v6?.[1]) flags.set(Number(ino[1]), v6[1] === '1');
  }
  return flags;
}
