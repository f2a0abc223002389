import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { PortwardenError } from '../errors.ts';
import { runCommand, type RunOptions, type RunResult } from '../system/run.ts';
import { missingTool } from '../system/tools.ts';

/**
 * A set of network namespaces, veth links and processes that is always torn down as a whole:
 * on dispose(), and on process exit or SIGINT/SIGTERM if the owner never got to call it.
 * Namespaces are named `pw<tag><n>` with a per-process counter, so parallel test files never collide.
 */
export class NetnsLab {
  readonly namespaces: string[] = [];
  readonly processes: ChildProcess[] = [];
  /** Commands started by exec() that have not finished yet. */
  private readonly running = new Set<ChildProcess>();
  private readonly prefix: string;
  private counter = 0;
  private disposed = false;

  constructor(tag: string) {
    // Interface names are limited to 15 bytes; namespace names are not, but keep both short.
    this.prefix = `pw${tag.replace(/[^a-z0-9]/gi, '').slice(0, 4)}${(process.pid % 10_000).toString(36)}`;
    LIVE_LABS.add(this);
    installExitHooks();
  }

  /** A unique short name for a namespace or interface (max 15 chars). */
  name(kind: string): string {
    this.counter += 1;
    return `${this.prefix}${kind.slice(0, 2)}${this.counter}`.slice(0, 15);
  }

  /** Creates a namespace with loopback up and returns its name. */
  async addNamespace(kind = 'ns'): Promise<string> {
    const name = this.name(kind);
    await runCommand('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    await this.exec(name, ['ip', 'link', 'set', 'lo', 'up']);
    return name;
  }

  /** Takes over a namespace created elsewhere (e.g. by an `ip -batch` run), so dispose() removes it. */
  adoptNamespace(name: string): void {
    if (!this.namespaces.includes(name)) this.namespaces.push(name);
  }

  /** Creates a veth pair between two namespaces, names each end and brings both up. */
  async link(a: { ns: string; ifname: string }, b: { ns: string; ifname: string }): Promise<void> {
    const tmpA = this.name('va');
    const tmpB = this.name('vb');
    await runCommand('ip', [
      'link',
      'add',
      tmpA,
      'netns',
      a.ns,
      'type',
      'veth',
      'peer',
      'name',
      tmpB,
      'netns',
      b.ns,
    ]);
    await this.exec(a.ns, ['ip', 'link', 'set', tmpA, 'name', a.ifname]);
    await this.exec(b.ns, ['ip', 'link', 'set', tmpB, 'name', b.ifname]);
    await this.exec(a.ns, ['ip', 'link', 'set', a.ifname, 'up']);
    await this.exec(b.ns, ['ip', 'link', 'set', b.ifname, 'up']);
  }

  /** Adds an address (CIDR form) to an interface; IPv6 addresses skip duplicate address detection. */
  async addAddress(ns: string, ifname: string, cidr: string): Promise<void> {
    const extra = cidr.includes(':') ? ['nodad'] : [];
    await this.exec(ns, ['ip', 'addr', 'add', cidr, 'dev', ifname, ...extra]);
  }

  /** Runs a command inside a namespace to completion; it is killed too if the lab is disposed first. */
  exec(ns: string, argv: readonly string[], options?: RunOptions): Promise<RunResult> {
    const [command, ...args] = argv;
    if (command === undefined) throw new PortwardenError('INTERNAL', 'exec needs a command');
    return runCommand('ip', ['netns', 'exec', ns, command, ...args], {
      ...options,
      onSpawn: (child) => {
        this.running.add(child);
        child.once('close', () => this.running.delete(child));
        options?.onSpawn?.(child);
      },
    });
  }

  /** Starts a long-running process inside a namespace; it is killed on dispose(). */
  spawn(ns: string, argv: readonly string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.processes.push(child);
    return child;
  }

  /** Kills every process and deletes every namespace (which also deletes their veth ends). */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    LIVE_LABS.delete(this);
    for (const child of [...this.processes, ...this.running])
      if (child.exitCode === null) child.kill('SIGKILL');
    await Promise.all(
      this.namespaces.map((ns) => runCommand('ip', ['netns', 'del', ns], { allowFailure: true })),
    );
  }

  /** Synchronous last-resort cleanup for process exit, where promises no longer run. */
  disposeSync(): void {
    for (const child of [...this.processes, ...this.running])
      if (child.exitCode === null) child.kill('SIGKILL');
    for (const ns of this.namespaces) spawnSyncQuiet('ip', ['netns', 'del', ns]);
    this.disposed = true;
  }
}

const LIVE_LABS = new Set<NetnsLab>();
let hooksInstalled = false;

function spawnSyncQuiet(command: string, args: readonly string[]): void {
  spawnSync(command, args, { stdio: 'ignore', timeout: 10_000 });
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const lab of LIVE_LABS) lab.disposeSync();
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const lab of LIVE_LABS) lab.disposeSync();
      process.kill(process.pid, signal);
    });
  }
}

/** Why namespace work cannot run here, or undefined when it can (root, `ip` present, netns allowed). */
export async function netnsUnavailableReason(tools: readonly string[] = ['ip']): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces); run as root or in CI';
  const missing = await missingTool(tools);
  if (missing !== undefined) return `needs "${missing}" on PATH`;
  const probe = `pwprobe${process.pid}`;
  const added = await runCommand('ip', ['netns', 'add', probe], { allowFailure: true });
  if (added.status !== 0) return `cannot create a network namespace: ${added.stderr.trim()}`;
  await runCommand('ip', ['netns', 'del', probe], { allowFailure: true });
  return undefined;
}
