import type { Command } from 'commander';
import type { Exposure, Inventory, Socket } from '../../inventory/types.ts';
import type { SocketFilter } from '../../inventory/filter.ts';
import { PortwardenError } from '../../errors.ts';
import { paint, RISK_COLOR, toJson, type CliContext } from '../context.ts';
import type { ReachableSocket } from '../../audit/reachability.ts';
import { readInputFile } from '../files.ts';
import { numberOption } from '../options.ts';
import { formatTable } from '../table.ts';

function readListing(path: string): string {
  return readInputFile(path, {
    what: 'listing',
    hint: 'give a file captured with lsof -F, netstat -ano or cat /proc/net/tcp',
  });
}

interface PortsOptions {
  all?: boolean;
  tcp?: boolean;
  udp?: boolean;
  exposed?: boolean;
  netns?: string;
  allNetns?: boolean;
  json?: boolean;
  fromFile?: string;
  tasklist?: string;
  pid?: string;
  process?: string;
  user?: string;
  unit?: string;
  exe?: boolean;
  port?: string;
}

function nameOption(flag: string, value: string | undefined, example: string): string | undefined {
  if (value === undefined || value.trim() !== '') return value?.trim();
  throw new PortwardenError('OPTION_INVALID', `${flag} needs a non-empty value`, {
    hint: `e.g. ${flag} ${example}`,
  });
}

/** The positional port spec and the owner flags, checked: bad input is exit 2 with a hint. */
async function socketFilter(spec: string | undefined, options: PortsOptions): Promise<SocketFilter> {
  const filter: SocketFilter = {};
  const specs = [spec, options.port].filter((s) => s !== undefined);
  // A bare number means both protocols here, as in `lsof -i :53`.
  if (specs.length > 0) {
    // loaded on use: the port spec parser brings the IANA registry (700 KB of JSON)
    const { parsePortSpec } = await import('../../catalog/port-spec.ts');
    filter.ports = parsePortSpec(specs.join(','), { defaultProtocols: ['tcp', 'udp'] });
  }
  if (options.pid !== undefined) {
    filter.pid = numberOption('--pid', options.pid, { min: 1, max: 4_194_304, integer: true });
  }
  const process = nameOption('--process', options.process, 'sshd');
  const user = nameOption('--user', options.user, 'www-data');
  const unit = nameOption('--unit', options.unit, 'nginx.service');
  return {
    ...filter,
    ...(process !== undefined ? { process } : {}),
    ...(user !== undefined ? { user } : {}),
    ...(unit !== undefined ? { unit } : {}),
  };
}

const GROUP_TITLE: Record<Exposure, string> = {
  all: 'Bound to all interfaces',
  address: 'Bound to one address',
  loopback: 'Bound to loopback only',
};

function endpoint(address: string, port: number, family: 4 | 6): string {
  const host = family === 6 && address.includes(':') ? `[${address}]` : address;
  return `${host}:${port === 0 ? '*' : port}`;
}

function localColumn(s: Socket): string {
  const base = endpoint(s.localAddress, s.localPort, s.v4Mapped ? 4 : s.family);
  if (s.dualStack === true) return `${base} (v4+v6)`;
  if (s.dualStack === false) return `${base} (v6 only)`;
  if (s.v4Mapped) return `${base} (v6 socket)`;
  return s.interface && !s.localAddress.includes('%') ? `${base} (${s.interface})` : base;
}

function processColumn(s: Socket): string {
  if (s.processes.length === 0) return s.uid >= 0 ? `? (uid ${s.uid})` : '?';
  return s.processes
    .map((p) => `${p.name ?? '?'}[${p.pid}]${p.exeDeleted ? ' (exe deleted)' : ''}`)
    .join(', ');
}

/** Each owner's executable once; a deleted one keeps the kernel's " (deleted)" mark. */
function exeColumn(s: Socket): string {
  const paths = s.processes.map((p) => p.exe ?? '?');
  return paths.length === 0 ? '?' : [...new Set(paths)].join(', ');
}

function ownerColumn(s: Socket): string {
  const owners = new Set<string>();
  for (const p of s.processes) {
    if (p.container) owners.add(p.container);
    else if (p.unit) owners.add(p.unit);
    else if (p.user) owners.add(`user ${p.user}`);
  }
  return [...owners].join(', ');
}

function emptyMessage(options: PortsOptions, filtered: boolean): string {
  if (options.exposed && !filtered)
    return 'No listener is reachable from beyond this host through the firewall (or might be).';
  if (filtered)
    return `No ${options.all ? '' : 'listening '}sockets match.${options.all ? '' : ' (-a adds connections)'}`;
  return 'No sockets found.';
}

/**
 * Whether a peer beyond this host gets through the loaded firewall: `yes` (with the interfaces, and
 * the sources when not everyone), `no`, or `unknown` (the reason is printed under the table).
 */
function reachColumn(s: ReachableSocket): string {
  if (s.reachable === 'yes') {
    const from =
      s.reachableFrom.length > 0
        ? ` from ${s.reachableFrom.slice(0, 2).join(',')}${s.reachableFrom.length > 2 ? ',…' : ''}`
        : '';
    return `yes (${s.reachableVia.join(',')})${from}`;
  }
  return s.reachable ?? '-';
}

interface View {
  ctx: CliContext;
  options: PortsOptions;
  showNetns: boolean;
  /** The terminal's width when stdout is one: the EXE column wraps to it. */
  width: number | undefined;
}

function netnsCells(view: View, s: ReachableSocket): string[] {
  if (!view.showNetns) return [];
  return [s.exposureScope === 'namespace' ? `${s.netns}*` : s.netns];
}

function protoColumn(s: Socket): string {
  return s.protocol + (s.family === 6 && !s.v4Mapped ? '6' : '');
}

function listenerTable(view: View, group: readonly ReachableSocket[]): string {
  const header = [
    ...(view.showNetns ? ['NETNS'] : []),
    ...['PROTO', 'LOCAL', 'REACHABLE', 'SERVICE', 'RISK', 'PROCESS', 'OWNER'],
    ...(view.options.exe ? ['EXE'] : []),
  ];
  const rows = group.map((s) => [
    ...netnsCells(view, s),
    protoColumn(s),
    localColumn(s),
    reachColumn(s),
    s.service ?? '-',
    s.risk ? paint(view.ctx.color, RISK_COLOR[s.risk], s.risk) : '-',
    processColumn(s),
    ownerColumn(s),
    ...(view.options.exe ? [exeColumn(s)] : []),
  ]);
  return formatTable(header, rows, view.width !== undefined ? { width: view.width } : {});
}

/** Connections have no exposure and no service of their own: the local port is usually ephemeral. */
function connectionTable(view: View, group: readonly ReachableSocket[]): string {
  const header = [
    ...(view.showNetns ? ['NETNS'] : []),
    ...['PROTO', 'LOCAL', 'REMOTE', 'STATE', 'PROCESS', 'OWNER'],
    ...(view.options.exe ? ['EXE'] : []),
  ];
  const rows = group.map((s) => [
    ...netnsCells(view, s),
    protoColumn(s),
    localColumn(s),
    endpoint(s.remoteAddress, s.remotePort, s.family),
    s.state,
    processColumn(s),
    ownerColumn(s),
    ...(view.options.exe ? [exeColumn(s)] : []),
  ]);
  return formatTable(header, rows, view.width !== undefined ? { width: view.width } : {});
}

function fixesBlock(group: readonly Socket[]): string | undefined {
  const fixes = group
    .filter((s) => s.fix && s.risk && s.risk !== 'info' && s.risk !== 'low')
    .map((s) => `  ${s.protocol}/${s.localPort} ${s.service ?? ''}: ${s.fix ?? ''}`);
  return fixes.length > 0 ? `To stop the risky ones:\n${[...new Set(fixes)].join('\n')}` : undefined;
}

function titled(view: View, title: string, count: number, table: string): string {
  return `${paint(view.ctx.color, 'bold', `${title} (${count})`)}\n${table}`;
}

/** The reasons behind `unknown` (and the loaded ruleset's `no`), each once, under the tables. */
function reachNotes(listeners: readonly ReachableSocket[]): string[] {
  const unknown = [
    ...new Set(listeners.filter((s) => s.reachable === 'unknown').map((s) => s.reachableWhy ?? '?')),
  ];
  return unknown.length === 0
    ? []
    : [
        `REACHABLE unknown: ${unknown.slice(0, 3).join('; ')}${unknown.length > 3 ? ` (+${unknown.length - 3} more)` : ''}`,
      ];
}

function listenerBlocks(view: View, listeners: readonly ReachableSocket[]): string[] {
  const blocks: string[] = [];
  for (const exposure of ['all', 'address', 'loopback'] as const) {
    const group = listeners.filter((s) => s.exposure === exposure);
    if (group.length === 0) continue;
    blocks.push(titled(view, GROUP_TITLE[exposure], group.length, listenerTable(view, group)));
    const fixes = exposure === 'loopback' ? undefined : fixesBlock(group);
    if (fixes) blocks.push(fixes);
  }
  return blocks;
}

function renderText(
  ctx: CliContext,
  inventory: Inventory,
  sockets: readonly ReachableSocket[],
  options: PortsOptions,
  filtered: boolean,
): string {
  if (sockets.length === 0) return emptyMessage(options, filtered);
  const showNetns = new Set(sockets.map((s) => s.netns)).size > 1 || sockets.some((s) => s.netns !== 'host');
  const width = ctx.io.stdout.isTTY === true ? ctx.io.stdout.columns : undefined;
  const view: View = { ctx, options, showNetns, width };
  const connections = sockets.filter((s) => s.reachable === null);
  const listeners = sockets.filter((s) => s.reachable !== null);
  const blocks = listenerBlocks(view, listeners);
  if (connections.length > 0) {
    blocks.push(titled(view, 'Connections', connections.length, connectionTable(view, connections)));
  }
  blocks.push(...reachNotes(listeners));
  if (showNetns && sockets.some((s) => s.exposureScope === 'namespace')) {
    blocks.push('* a namespace other than the host\'s: "all interfaces" means that namespace\'s interfaces');
  }
  if (inventory.dualStackSource === 'sysctl-assumed') {
    blocks.push('note: v4+v6 of [::] sockets is assumed from net.ipv6.bindv6only (ss not available)');
  }
  return blocks.join('\n\n');
}

async function portsAction(ctx: CliContext, spec: string | undefined, options: PortsOptions): Promise<void> {
  const filter = await socketFilter(spec, options);
  const { listSockets } = await import('../../inventory/list.ts');
  const inventory = await listSockets({
    filter,
    ...(options.all ? { all: true } : {}),
    ...(options.tcp ? { tcp: true } : {}),
    ...(options.udp ? { udp: true } : {}),
    // --exposed asks the firewall too (below); bound beyond loopback is where to start
    ...(options.exposed ? { exposedOnly: true } : {}),
    ...(options.netns !== undefined ? { netns: options.netns } : {}),
    ...(options.allNetns ? { allNetns: true } : {}),
    ...(options.fromFile !== undefined ? { fromText: readListing(options.fromFile) } : {}),
    ...(options.tasklist !== undefined ? { tasklistText: readListing(options.tasklist) } : {}),
  });
  const captured = options.fromFile !== undefined;
  const { readSocketsReachability } = await import('../../audit/run.ts');
  const all = await readSocketsReachability(inventory, { captured });
  // reachable from beyond this host through the firewall, or might be: unknown is not no
  const sockets = options.exposed
    ? all.filter((s) => s.reachable === 'yes' || s.reachable === 'unknown')
    : all;
  if (options.json) {
    ctx.out(toJson({ ...inventory, sockets }));
    return;
  }
  ctx.out(renderText(ctx, inventory, sockets, options, Object.keys(filter).length > 0));
  for (const warning of inventory.warnings) ctx.err(`portwarden: warning: ${warning}`);
}

export function registerPorts(program: Command, ctx: CliContext): void {
  program
    .command('ports')
    .argument(
      '[ports]',
      'only these ports: 8080, 20-25, U:53, tcp/443, ssh (local port, or remote of a connection)',
    )
    .description('list listening TCP and bound UDP sockets with their owners and exposure (like ss -tulpn)')
    .option('-a, --all', 'every socket and state with its remote end (like netstat -an)')
    .option('-t, --tcp', 'TCP sockets only')
    .option('-u, --udp', 'UDP sockets only')
    .option('-l, --listening', 'listening and bound sockets only: the default (as in ss -l)')
    .option('-p, --processes', 'show owning processes: always on (accepted for ss -p)')
    .option('-n, --numeric', 'numeric addresses and ports: always on (accepted for ss -n)')
    .option('-e, --exe', 'add the executable path of each owner (wrapped to the terminal width)')
    .option('--port <spec>', 'the same as the [ports] argument')
    .option('--pid <pid>', 'only sockets held by this process id')
    .option('--process <name>', 'only sockets of processes with this name or executable file name')
    .option('--user <name|uid>', 'only sockets of processes running as this user')
    .option('--unit <name>', 'only sockets of this systemd unit (nginx or nginx.service)')
    .option(
      '--exposed',
      'only listeners a peer beyond this host can reach through the loaded firewall (yes or unknown)',
    )
    .option('--netns <name|pid>', 'another network namespace: an `ip netns` name or a pid inside it')
    .option('--all-netns', 'every network namespace on the machine, labelled')
    .option(
      '--from-file <file>',
      'read a captured listing: lsof -F (macOS), netstat -ano (Windows), /proc/net/tcp',
    )
    .option('--tasklist <file>', 'tasklist /fo csv output naming the pids of a Windows capture')
    .option('--json', 'machine-readable output (schema in README)')
    .action((spec: string | undefined, options: PortsOptions) => portsAction(ctx, spec, options));
}
