import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { compilePolicy } from '../compile/registry.ts';
import { PortwardenError } from '../errors.ts';
import { listSockets } from '../inventory/list.ts';
import { localInterfaces } from '../inventory/read-proc.ts';
import type { Policy } from '../policy/types.ts';
import { unifiedDiff } from './diff.ts';
import { ADMIN_PORTS, lockoutReasons, type AdminListener } from './guard.ts';
import {
  checkRuleset,
  fromCompiled,
  listAsLoaded,
  listCurrent,
  loadRuleset,
  snapshot,
  tablesOf,
  type ApplyBackend,
  type RulesetFiles,
} from './loader.ts';
import {
  appendHistory,
  clearPending,
  readPending,
  recordApplied,
  withLock,
  writePending,
  type PendingApply,
} from './state.ts';

const BIN = fileURLToPath(new URL('../../bin/portwarden.js', import.meta.url));

export interface ApplyOptions {
  policy: Policy;
  policyFile: string;
  /** The policy file's bytes, hashed into the record of what was applied. */
  policyText: string;
  backend: ApplyBackend;
  /** Seconds until the automatic rollback; 0 applies without one. */
  confirmTimeout: number;
  force: boolean;
  stateDir: string;
  sshConnection?: string;
  version: string;
  onStep?: (text: string) => void;
}

export interface ApplyResult {
  id: string;
  backend: ApplyBackend;
  policyFile: string;
  policyHash: string;
  /** When the rollback happens unless confirmed; null when applied without one. */
  deadline: string | null;
  rollbackPid: number | null;
  /** Lock-out reasons overridden by --force. */
  forced: string[];
}

export interface DryRunResult {
  ruleset: RulesetFiles;
  /** Unified diff of the loaded ruleset against the new one, in the kernel's own listing; null without root. */
  diff: string | null;
  reason: string | null;
}

function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) {
    throw new PortwardenError('NOT_ROOT', `${what} changes the firewall and needs root`, {
      hint: `run it as root (e.g. sudo portwarden ${what} ...)`,
    });
  }
}

export function policyHash(text: string): string {
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}

/** Remote-administration services listening beyond loopback right now. */
async function adminListeners(): Promise<AdminListener[]> {
  const inventory = await listSockets({ tcp: true, exposedOnly: true });
  const out: AdminListener[] = [];
  for (const socket of inventory.sockets) {
    // sockets of this network namespace: the one whose firewall is being changed
    if (socket.state !== 'LISTEN') continue;
    const names = socket.processes.map((p) => p.name ?? '');
    const byPort = ADMIN_PORTS.get(socket.localPort);
    if (byPort !== undefined || names.includes('sshd')) {
      out.push({ port: socket.localPort, name: names.find((n) => n !== '') ?? byPort ?? 'ssh' });
    }
  }
  return out;
}

/** Compiles and diffs without changing anything. */
export async function dryRun(
  options: Pick<ApplyOptions, 'policy' | 'backend' | 'version'>,
): Promise<DryRunResult> {
  const ruleset = fromCompiled(
    options.backend,
    compilePolicy(options.policy, options.backend, options.version),
  );
  if (process.getuid?.() !== 0)
    return { ruleset, diff: null, reason: 'reading the loaded ruleset needs root' };
  const tables = tablesOf(ruleset);
  const [before, after] = await Promise.all([
    listCurrent(options.backend, tables),
    listAsLoaded(ruleset, tables),
  ]);
  return { ruleset, diff: unifiedDiff(before, after, ['loaded', 'new']), reason: null };
}

/** User chains in an iptables snapshot that portwarden did not write (Docker's, fail2ban's, ...). */
export function foreignChains(ruleset: RulesetFiles): string[] {
  if (ruleset.backend !== 'iptables') return [];
  const builtin = new Set(['INPUT', 'FORWARD', 'OUTPUT', 'PREROUTING', 'POSTROUTING']);
  const names = ruleset.files.flatMap((f) =>
    [...f.content.matchAll(/^:(\S+) /gm)]
      .map((m) => m[1] ?? '')
      .filter((n) => !builtin.has(n) && !n.startsWith('PW-')),
  );
  return [...new Set(names)].sort();
}

function newId(): string {
  return `${new Date().toISOString().replace(/[-:.]/g, '').replace('T', '-').slice(0, 15)}-${randomBytes(3).toString('hex')}`;
}

function spawnWaiter(stateDir: string, id: string): number | null {
  const child = spawn(process.execPath, [BIN, 'rollback', '--when-due', id, '--state-dir', stateDir], {
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, PORTWARDEN_STATE_DIR: stateDir },
  });
  child.unref();
  return child.pid ?? null;
}

/**
 * Applies a policy: compile, check, lock-out guard, snapshot portwarden's part of the live ruleset,
 * arm the rollback (a detached process, so it survives this one being killed), load atomically, and
 * record what was applied. A failed load leaves the old ruleset in place.
 */
export async function applyPolicy(options: ApplyOptions): Promise<ApplyResult> {
  requireRoot('apply');
  const ruleset = fromCompiled(
    options.backend,
    compilePolicy(options.policy, options.backend, options.version),
  );
  const reasons = lockoutReasons(options.policy, {
    ...(options.sshConnection !== undefined ? { sshConnection: options.sshConnection } : {}),
    interfaces: localInterfaces(),
    adminListeners: await adminListeners(),
  });
  if (reasons.length > 0 && !options.force) {
    throw new PortwardenError('LOCKOUT', `refusing to apply: ${reasons.join('; ')}`, {
      hint: 'allow your administration path in the policy, or pass --force if you have console access',
    });
  }
  const hash = policyHash(options.policyText);
  return withLock(options.stateDir, async () => {
    const waiting = readPending(options.stateDir);
    if (waiting) {
      throw new PortwardenError(
        'APPLY_PENDING',
        `apply ${waiting.id} of ${waiting.policyFile} is still waiting for confirmation`,
        {
          hint: 'run `portwarden confirm` to keep it or `portwarden rollback` to undo it first',
        },
      );
    }
    options.onStep?.('checking the ruleset');
    await checkRuleset(ruleset);
    const tables = tablesOf(ruleset);
    const before = await snapshot(options.backend, tables);
    const foreign = foreignChains(before);
    if (foreign.length > 0 && !options.force) {
      throw new PortwardenError(
        'LOCKOUT',
        `the iptables backend replaces whole tables, and these chains in them are not portwarden's: ${foreign.join(', ')}`,
        { hint: 'use --backend nftables (portwarden keeps to its own table), or --force to replace them' },
      );
    }
    const id = newId();
    const appliedAt = new Date();
    const deadline =
      options.confirmTimeout > 0 ? new Date(appliedAt.getTime() + options.confirmTimeout * 1000) : null;
    let pending: PendingApply | null = null;
    if (deadline) {
      // Armed before the load: if this process dies right after loading, the rollback still comes.
      pending = {
        id,
        backend: options.backend,
        policyFile: options.policyFile,
        policyHash: hash,
        appliedAt: appliedAt.toISOString(),
        deadline: deadline.toISOString(),
        rollbackPid: null,
        snapshot: before,
      };
      writePending(options.stateDir, pending);
      pending.rollbackPid = spawnWaiter(options.stateDir, id);
      writePending(options.stateDir, pending);
    }
    options.onStep?.('loading the ruleset');
    try {
      await loadRuleset(ruleset, before);
    } catch (error) {
      if (pending) {
        clearPending(options.stateDir);
        stopWaiter(pending.rollbackPid);
      }
      appendHistory(options.stateDir, {
        at: new Date().toISOString(),
        event: 'failed',
        id,
        backend: options.backend,
        policyFile: options.policyFile,
        policyHash: hash,
        reason: (error as Error).message,
      });
      throw error;
    }
    recordApplied(options.stateDir, id, { ruleset, snapshot: before });
    appendHistory(options.stateDir, {
      at: appliedAt.toISOString(),
      event: 'applied',
      id,
      backend: options.backend,
      policyFile: options.policyFile,
      policyHash: hash,
      ...(deadline ? {} : { reason: 'no confirmation timeout' }),
    });
    return {
      id,
      backend: options.backend,
      policyFile: options.policyFile,
      policyHash: hash,
      deadline: deadline?.toISOString() ?? null,
      rollbackPid: pending?.rollbackPid ?? null,
      forced: reasons,
    };
  });
}

function isWaiter(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('--when-due');
  } catch {
    return false;
  }
}

function stopWaiter(pid: number | null): void {
  if (pid !== null && isWaiter(pid)) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}

/** Keeps the pending ruleset: the rollback is disarmed. */
export async function confirmPending(stateDir: string): Promise<PendingApply> {
  requireRoot('confirm');
  return withLock(stateDir, () => {
    const pending = readPending(stateDir);
    if (!pending) {
      throw new PortwardenError('NOTHING_PENDING', 'no apply is waiting for confirmation', {
        hint: 'it was confirmed or rolled back already; `portwarden apply` starts a new one',
      });
    }
    clearPending(stateDir);
    stopWaiter(pending.rollbackPid);
    appendHistory(stateDir, {
      at: new Date().toISOString(),
      event: 'confirmed',
      id: pending.id,
      backend: pending.backend,
      policyFile: pending.policyFile,
      policyHash: pending.policyHash,
    });
    return pending;
  });
}

/**
 * Restores the snapshot taken before the pending apply. With `onlyId`, only when that apply is still
 * the pending one (the timed rollback must not undo a later apply).
 */
export async function rollbackPending(
  stateDir: string,
  reason: string,
  onlyId?: string,
): Promise<PendingApply | null> {
  requireRoot('rollback');
  return withLock(stateDir, async () => {
    const pending = readPending(stateDir);
    if (!pending || (onlyId !== undefined && pending.id !== onlyId)) {
      if (onlyId !== undefined) return null;
      throw new PortwardenError(
        'NOTHING_PENDING',
        'no apply is waiting for confirmation, so there is nothing to roll back',
        {
          hint: 'to go back further, apply the earlier policy again',
        },
      );
    }
    try {
      await loadRuleset(pending.snapshot, pending.snapshot);
    } catch (error) {
      appendHistory(stateDir, {
        at: new Date().toISOString(),
        event: 'failed',
        id: pending.id,
        backend: pending.backend,
        reason: `rollback: ${(error as Error).message}`,
      });
      throw error;
    }
    clearPending(stateDir);
    if (pending.rollbackPid !== process.pid) stopWaiter(pending.rollbackPid);
    appendHistory(stateDir, {
      at: new Date().toISOString(),
      event: 'rolled-back',
      id: pending.id,
      backend: pending.backend,
      policyFile: pending.policyFile,
      policyHash: pending.policyHash,
      reason,
    });
    return pending;
  });
}

/**
 * The detached rollback process: waits until the pending apply's deadline (leaving early when it is
 * confirmed or replaced) and then restores the snapshot. Bounded by the deadline itself.
 */
export async function waitAndRollback(stateDir: string, id: string): Promise<void> {
  for (;;) {
    const pending = readPending(stateDir);
    if (!pending || pending.id !== id) return;
    const left = Date.parse(pending.deadline) - Date.now();
    if (left <= 0) break;
    await new Promise((resolve) => setTimeout(resolve, Math.min(left, 250)));
  }
  for (let attempt = 0; attempt < 40; attempt++) {
    try {
      await rollbackPending(stateDir, 'no confirmation before the deadline', id);
      return;
    } catch (error) {
      // the lock is busy (a confirm racing the deadline): try again shortly
      if (!(error instanceof PortwardenError) || error.code !== 'APPLY_PENDING') throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}
