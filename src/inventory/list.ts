import { PortwardenError } from '../errors.ts';
import { runCommand } from '../system/run.ts';
import { classifySocket, compareSockets, type ClassifyContext } from './classify.ts';
import { matchesSocketFilter, type SocketFilter } from './filter.ts';
import { serviceForSocketUnit, type SocketUnitListen } from './owners.ts';
import {
  detectListingFormat,
  parseLsof,
  parseTasklistCsv,
  parseWindowsNetstat,
  type ForeignSocket,
} from './parse-foreign.ts';
import { isListening, parseProcNet, type ProcNetRow } from './parse-proc-net.ts';
import {
  localInterfaces,
  namedNamespaces,
  namespaceInterfaces,
  namespaceRepresentatives,
  netnsInode,
  readBindV6Only,
  readProcessOwner,
  readSocketTables,
  readSocketTablesViaIp,
  readSystemdSocketUnits,
  readV6OnlyFlags,
  inspectUnreadable,
  scanSocketHolders,
  unsupportedPlatform,
  type TableFilter,
} from './read-proc.ts';
import { unreadableWarnings } from './unreadable.ts';
import type { DualStackSource, Inventory, LocalInterface, Socket, SocketOwner } from './types.ts';

export interface ListSocketsOptions {
  /** Only TCP / only UDP; both when neither or both are set. */
  tcp?: boolean;
  udp?: boolean;
  /** Every state with the remote end (netstat -an), not only listeners and bound UDP sockets. */
  all?: boolean;
  /** Only listeners bound beyond loopback (what a firewall must decide); connections are dropped. */
  exposedOnly?: boolean;
  /** Another network namespace: an `ip netns` name or the pid of a process inside it. */
  netns?: string;
  /** Every network namespace on the machine, each labelled. */
  allNetns?: boolean;
  /** A captured listing (lsof -F, Windows netstat -ano, or a /proc/net table) instead of the live system. */
  fromText?: string;
  /** tasklist /fo csv output that names the pids of a Windows capture. */
  tasklistText?: string;
  /** Only sockets of these ports, processes, users or units (`ports 8080 --pid 42`). */
  filter?: SocketFilter;
}

interface NamespaceTarget {
  label: string;
  inode: number | null;
  host: boolean;
  pid?: number;
  name?: string;
}

function tableFilter(options: ListSocketsOptions): TableFilter {
  const both = !options.tcp && !options.udp;
  return { tcp: both || options.tcp === true, udp: both || options.udp === true, all: options.all === true };
}

/** How namespaces are named: the host's, `ip netns` names, else net:[inode]. */
interface NamespaceNaming {
  names: Map<number, string>;
  hostInode: number | null;
  selfInode: number | null;
  label: (inode: number | null) => string;
}

function namespaceNaming(): NamespaceNaming {
  const names = namedNamespaces();
  // pid 1's namespace is the host's; when pid 1 is hidden from us (a sandbox), the namespace we run
  // in counts as the host unless `ip netns` names it.
  const selfInode = netnsInode('/proc/self/ns/net');
  const hostInode =
    netnsInode('/proc/1/ns/net') ?? (selfInode !== null && !names.has(selfInode) ? selfInode : null);
  const label = (inode: number | null): string =>
    inode !== null && inode === hostInode
      ? 'host'
      : inode !== null
        ? (names.get(inode) ?? `net:[${inode}]`)
        : 'unknown';
  return { names, hostInode, selfInode, label };
}

/** --all-netns: every namespace a process is in, and every named one; the host first. */
function everyNamespace(naming: NamespaceNaming): NamespaceTarget[] {
  const { names, hostInode, label } = naming;
  const reps = namespaceRepresentatives();
  const targets: NamespaceTarget[] = [...reps].map(([inode, pid]) => ({
    label: label(inode),
    inode,
    host: inode === hostInode,
    pid,
    ...(names.has(inode) ? { name: names.get(inode) } : {}),
  }));
  for (const [inode, name] of names) {
    if (!reps.has(inode)) targets.push({ label: name, inode, host: false, name });
  }
  return targets.sort((a, b) => Number(b.host) - Number(a.host) || a.label.localeCompare(b.label));
}

function namespaceOfPid(naming: NamespaceNaming, spec: string): NamespaceTarget {
  const inode = netnsInode(`/proc/${spec}/ns/net`);
  if (inode === null) {
    throw new PortwardenError(
      'OPTION_INVALID',
      `--netns ${spec}: no process with pid ${spec} (or its namespace is not readable)`,
      { hint: 'give the pid of a running process inside the namespace, or an `ip netns list` name' },
    );
  }
  return { label: naming.label(inode), inode, host: inode === naming.hostInode, pid: Number(spec) };
}

function namedNamespace(naming: NamespaceNaming, spec: string): NamespaceTarget {
  if (!/^[A-Za-z0-9_.-]{1,255}$/.test(spec) || spec === '.' || spec === '..') {
    // The name becomes a path under /run/netns and an `ip netns exec` argument.
    throw new PortwardenError(
      'OPTION_INVALID',
      `--netns ${JSON.stringify(spec)} is not a namespace name or pid`,
      {
        hint: 'a namespace name is [A-Za-z0-9_.-] and not . or .. (see `ip netns list`), or give a pid',
      },
    );
  }
  const inode = netnsInode(`/run/netns/${spec}`);
  if (inode === null) {
    const known = [...naming.names.values()];
    throw new PortwardenError('OPTION_INVALID', `--netns "${spec}": no such network namespace`, {
      hint:
        known.length > 0
          ? `known namespaces: ${known.join(', ')}`
          : '`ip netns list` shows none; give a pid instead',
    });
  }
  const pid = [...namespaceRepresentatives()].find(([i]) => i === inode)?.[1];
  return {
    label: spec,
    inode,
    host: inode === naming.hostInode,
    name: spec,
    ...(pid !== undefined ? { pid } : {}),
  };
}

function resolveTargets(options: ListSocketsOptions): NamespaceTarget[] {
  const naming = namespaceNaming();
  if (options.allNetns) return everyNamespace(naming);
  if (options.netns !== undefined)
    return [
      /^\d+$/.test(options.netns)
        ? namespaceOfPid(naming, options.netns)
        : namedNamespace(naming, options.netns),
    ];
  const { selfInode, hostInode, label } = naming;
  return [{ label: label(selfInode), inode: selfInode, host: selfInode === hostInode }];
}

async function readTarget(target: NamespaceTarget, filter: TableFilter): Promise<ProcNetRow[]> {
  if (target.pid !== undefined) return readSocketTables(`/proc/${target.pid}/net`, filter);
  if (target.name !== undefined) return readSocketTablesViaIp(target.name, filter);
  return readSocketTables('/proc/self/net', filter);
}

/** Which `.socket` unit pid 1 listens for on a given row. */
function socketUnitFor(row: ProcNetRow, units: readonly SocketUnitListen[]): string | null {
  const kind = row.protocol === 'tcp' ? 'Stream' : 'Datagram';
  const candidates = units.filter((u) => u.kind === kind && u.port === row.localPort);
  const exact = candidates.find((u) => u.address === row.localAddress);
  const wildcard = candidates.find((u) => u.address === '*' || u.address === '::' || u.address === '0.0.0.0');
  return (exact ?? wildcard ?? candidates[0])?.unit ?? null;
}

/** Warnings for processes whose fds could not be read, and for holders that exited before we read them. */
function ownerWarnings(
  holders: ReadonlyMap<number, readonly number[]>,
  owners: ReadonlyMap<number, SocketOwner | null>,
  unreadable: readonly { pid: number; code: string }[],
): string[] {
  const vanished = [...new Set([...holders.values()].flat())].filter((pid) => owners.get(pid) === null);
  const list = [
    ...unreadable.map(({ pid, code }) => inspectUnreadable(pid, code, false)),
    ...vanished.map((pid) => inspectUnreadable(pid, null, true)),
  ];
  return unreadableWarnings(list, process.getuid?.() === 0);
}

async function listLinux(options: ListSocketsOptions): Promise<Inventory> {
  const filter = tableFilter(options);
  const targets = resolveTargets(options);
  const perTarget = await Promise.all(
    targets.map(async (t) => ({ target: t, rows: await readTarget(t, filter) })),
  );
  const wanted = new Set<number>();
  for (const { rows } of perTarget) for (const row of rows) if (row.inode !== 0) wanted.add(row.inode);
  const { holders, unreadable } = scanSocketHolders(wanted);

  const owners = new Map<number, SocketOwner | null>();
  const ownerOf = (pid: number): SocketOwner | null => {
    if (!owners.has(pid)) owners.set(pid, readProcessOwner(pid));
    return owners.get(pid) ?? null;
  };
  let socketUnits: SocketUnitListen[] | undefined;
  const warnings: string[] = [];
  let dualStackSource: DualStackSource = 'none';
  const sockets: Socket[] = [];
  for (const { target, rows } of perTarget) {
    const hasWildcardV6 = rows.some((r) => r.family === 6 && r.localAddress === '::' && isListening(r));
    let v6only: Map<number, boolean> = new Map();
    let defaultV6Only: boolean | null = null;
    if (hasWildcardV6) {
      const flags = await readV6OnlyFlags(target.host && target.pid === undefined ? {} : target);
      if (flags) {
        v6only = flags;
        dualStackSource = 'ss';
      } else {
        defaultV6Only = readBindV6Only();
        if (dualStackSource !== 'ss') dualStackSource = 'sysctl-assumed';
      }
    }
    const self = target.pid === undefined && target.name === undefined;
    const interfaces: LocalInterface[] = self ? localInterfaces() : await namespaceInterfaces(target);
    const context: ClassifyContext = {
      interfaces,
      netns: target.label,
      hostNamespace: target.host,
      v6only,
      defaultV6Only,
    };
    for (const row of rows) {
      const rowOwners: SocketOwner[] = [];
      for (const pid of holders.get(row.inode) ?? []) {
        const found = ownerOf(pid);
        if (!found) continue;
        if (pid === 1 && found.name === 'systemd') {
          socketUnits ??= await readSystemdSocketUnits();
          const unit = socketUnitFor(row, socketUnits);
          rowOwners.push(unit ? { ...found, unit } : found);
        } else rowOwners.push(found);
      }
      sockets.push(classifySocket(row, rowOwners, context));
    }
  }
  warnings.push(...ownerWarnings(holders, owners, unreadable));
  return finish(sockets, options, dualStackSource, warnings);
}

function finish(
  sockets: Socket[],
  options: ListSocketsOptions,
  dualStackSource: DualStackSource,
  warnings: string[],
  platform: NodeJS.Platform = process.platform,
): Inventory {
  const { filter } = options;
  const kept = sockets.filter(
    (s) =>
      (!options.exposedOnly || (s.exposure !== 'loopback' && isListening(s))) &&
      (!filter || matchesSocketFilter(s, filter)),
  );
  return { sockets: kept.sort(compareSockets), platform, dualStackSource, warnings };
}

function classifyForeign(
  list: readonly ForeignSocket[],
  options: ListSocketsOptions,
  platform: NodeJS.Platform,
): Inventory {
  const filter = tableFilter(options);
  const context: ClassifyContext = {
    interfaces: [],
    netns: 'host',
    hostNamespace: true,
    v6only: new Map(),
    defaultV6Only: null,
    platform,
  };
  const sockets = list
    .filter((s) => filter[s.protocol] && (filter.all || isListening(s)))
    .map(({ owners, ...raw }) => classifySocket(raw, owners, context));
  return finish(sockets, options, 'none', [], platform);
}

/** Builds an inventory from a captured listing: lsof -F (macOS), netstat -ano (Windows), /proc/net/*. */
export function inventoryFromText(text: string, options: ListSocketsOptions = {}): Inventory {
  const format = detectListingFormat(text);
  if (format === 'lsof') return classifyForeign(parseLsof(text), options, 'darwin');
  if (format === 'windows-netstat') {
    const tasks = parseTasklistCsv(options.tasklistText ?? '');
    return classifyForeign(parseWindowsNetstat(text, tasks), options, 'win32');
  }
  if (format === 'proc-net') {
    // A single table: tell the family from the address width and the protocol from UDP-only states.
    const v6 = /^\s*\d+: [0-9A-F]{32}:/m.test(text);
    const udp = options.udp === true && options.tcp !== true;
    const rows = parseProcNet(text, udp ? 'udp' : 'tcp', v6 ? 6 : 4);
    return classifyForeign(
      rows.map((r) => ({ ...r, owners: [] })),
      options,
      'linux',
    );
  }
  throw new PortwardenError(
    'FILE_UNREADABLE',
    'the listing is not lsof -F, netstat -ano or /proc/net output',
    {
      hint: 'capture it with `lsof -nP -iTCP -iUDP -FpcuLftPTn` (macOS) or `netstat -ano` (Windows)',
    },
  );
}

/**
 * Every listening TCP socket and bound UDP socket (or every socket with `all`), with owners,
 * exposure and catalog data. Linux reads the kernel live; macOS runs lsof; Windows runs netstat
 * and tasklist.
 */
export async function listSockets(options: ListSocketsOptions = {}): Promise<Inventory> {
  if (options.fromText !== undefined) return inventoryFromText(options.fromText, options);
  switch (process.platform) {
    case 'linux':
      return listLinux(options);
    case 'darwin': {
      const { stdout } = await runCommand('lsof', ['-nP', '-iTCP', '-iUDP', '-FpcuLftPTn'], {
        allowFailure: true,
      });
      return inventoryFromText(stdout || 'p0\n', options);
    }
    case 'win32': {
      const [netstat, tasks] = await Promise.all([
        runCommand('netstat', ['-ano']),
        runCommand('tasklist', ['/fo', 'csv', '/v'], { allowFailure: true }),
      ]);
      return inventoryFromText(netstat.stdout, { ...options, tasklistText: tasks.stdout });
    }
    default:
      return unsupportedPlatform(process.platform);
  }
}

export { serviceForSocketUnit };
