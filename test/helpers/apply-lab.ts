import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HistoryEntry } from '../../src/apply/state.ts';
import { NetnsLab } from '../../src/lab/netns.ts';
import { runCommand, type RunResult } from '../../src/system/run.ts';
import { BIN } from './cli.ts';

/**
 * A namespace lab for apply's tests: one host namespace per test with eth0 (203.0.113.1) and eth1
 * (198.51.100.1) as veth ends, a temporary state directory, and helpers to run portwarden inside.
 */
export class ApplyLab {
  readonly lab: NetnsLab;
  private readonly dirs: string[] = [];

  constructor(tag: string) {
    this.lab = new NetnsLab(tag);
  }

  async dispose(): Promise<void> {
    await this.lab.dispose();
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
  }

  tempDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    this.dirs.push(dir);
    return dir;
  }

  async setup(): Promise<{ ns: string; state: string }> {
    const ns = await this.lab.addNamespace('h');
    for (const [ifname, cidr] of [
      ['eth0', '203.0.113.1/24'],
      ['eth1', '198.51.100.1/24'],
    ] as const) {
      await this.lab.exec(ns, ['ip', 'link', 'add', ifname, 'type', 'veth', 'peer', 'name', `${ifname}p`]);
      await this.lab.exec(ns, ['ip', 'link', 'set', ifname, 'up']);
      await this.lab.exec(ns, ['ip', 'link', 'set', `${ifname}p`, 'up']);
      await this.lab.addAddress(ns, ifname, cidr);
    }
    return { ns, state: this.tempDir('pw-apply-state-') };
  }

  /** The argv that runs portwarden inside `ns` with the state dir and a fixed environment. */
  argv(ns: string, state: string, args: readonly string[], env: Record<string, string> = {}): string[] {
    const vars = Object.entries({ PORTWARDEN_STATE_DIR: state, NO_COLOR: '1', ...env }).map(
      ([k, v]) => `${k}=${v}`,
    );
    return [
      'ip',
      'netns',
      'exec',
      ns,
      'env',
      '-u',
      'SSH_CONNECTION',
      ...vars,
      process.execPath,
      BIN,
      ...args,
    ];
  }

  pw(
    ns: string,
    state: string,
    args: readonly string[],
    env: Record<string, string> = {},
  ): Promise<RunResult> {
    const [command = 'ip', ...rest] = this.argv(ns, state, args, env);
    return runCommand(command, rest, { allowFailure: true, timeoutMs: 120_000 });
  }

  async table(ns: string): Promise<string> {
    const r = await this.lab.exec(ns, ['nft', 'list', 'table', 'inet', 'portwarden'], { allowFailure: true });
    return r.status === 0 ? r.stdout.replace(/counter packets \d+ bytes \d+/g, 'counter') : '(none)';
  }

  async sysctl(ns: string, name: string): Promise<string> {
    return (await this.lab.exec(ns, ['sysctl', '-n', name])).stdout.trim();
  }
}

export function history(state: string): HistoryEntry[] {
  if (!existsSync(join(state, 'history.jsonl'))) return [];
  return readFileSync(join(state, 'history.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as HistoryEntry);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
