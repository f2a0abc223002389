import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { compilePolicy } from '../compile/registry.ts';
import { PortwardenError } from '../errors.ts';
import { listSockets } from '../inventory/list.ts';
import { privateEntry } from '../lab/private-entry.ts';
import { localInterfaces } from '../inventory/read-proc.ts';
import type { Policy } from '../policy/types.ts';
import { unifiedDiff } from './diff.ts';
import { ADMIN_PORTS, lockoutReasons, type AdminListener } from './guard.ts';
import { applyKernel, planKernel, readSysctl, restoreKernel, type KernelPlan } from './kernel-apply.ts';
import { requiredKernelSettings, type KernelSetting } from './kernel-settings.ts';
import {
  checkRuleset,
  fromCompiled,
  listAsLoaded,
  listCurrent,
  loadRuleset,
  proveLoadable,
  restorable,
  snapshot,
  tablesOf,
  type ApplyBackend,
  type RulesetFiles,
} from '../ruleset/load-live.ts';
import {
  recordHistory,
  clearPending,
  readApplied,
  readCurrent,
  readPending,
  recordApplied,
  setAsideDamagedPending,
  unsettledApply,
  withLock,
  writeCurrent,
  writePending,
  type AppliedRecord,
  type CurrentState,
  type PendingApply,
} from './state.ts';

/** The detached rollback process's entry (rollback-worker.ts compiled): `node ROLLBACK_WORKER STATE_DIR ID`. */
const ROLLBACK_WORKER = privateEntry(import.meta.url, 'rollback-worker');

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
  /** Kernel settings changed (sysctls), and settings only reported (modules, missing interfaces). */
  kernel: KernelPlan;
}

export interface DryRunResult {
  ruleset: RulesetFiles;
  /** Unified diff of the loaded ruleset against the new one, in the kernel's own listing; null without root. */
  diff: string | null;
  reason: string | null;
  /** Kernel settings the policy needs. */
  required: KernelSetting[];
  /** What the apply would change of them (null without root: they cannot be read then). */
  kernel: KernelPlan | null;
}

export function requireRoot(what: string): void {
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
  options: Pick<ApplyOptions, 'policy' | 'backend' | 'version' | 'stateDir'>,
): Promise<DryRunResult> {
  const ruleset = fromCompiled(
    options.backend,
    compilePolicy(options.policy, options.backend, options.version),
  );
  const required = requiredKernelSettings(options.policy);
  if (process.getuid?.() !== 0)
    return { ruleset, diff: null, reason: 'reading the loaded ruleset needs root', required, kernel: null };
  const tables = tablesOf(ruleset);
  const [before, after] = await Promise.all([
    listCurrent(options.backend, tables),
    listAsLoaded(ruleset, tables),
  ]);
  const kernel = planKernel(required, readCurrentQuietly(options.stateDir)?.kernel ?? [], readSysctl);
  return { ruleset, diff: unifiedDiff(before, after, ['loaded', 'new']), reason: null, required, kernel };
}

/** current.json for a preview: a damaged one only means no earlier settings are known. */
function readCurrentQuietly(dir: string): CurrentState | null {
  try {
    return readCurrent(dir);
  } catch {
    return null;
  }
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
  const child = spawn(process.execPath, [ROLLBACK_WORKER, stateDir, id], { detached: true, stdio: 'ignore' });
  child.unref();
  return child.pid ?? null;
}

function refuseWhilePending(dir: string): void {
  const waiting = readPending(dir);
  if (waiting) {
    throw new PortwardenError(
      'APPLY_PENDING',
      `apply ${waiting.id} of ${waiting.policyFile} is still waiting for confirmation`,
      { hint: 'run `portwarden confirm` to keep it or `portwarden rollback` to undo it first' },
    );
  }
}

function refuseForeignChains(before: RulesetFiles, force: boolean): void {
  const foreign = foreignChains(before);
  if (foreign.length > 0 && !force) {
    throw new PortwardenError(
      'LOCKOUT',
      `the iptables backend replaces whole tables, and these chains in them are not portwarden's: ${foreign.join(', ')}`,
      { hint: 'use --backend nftables (portwarden keeps to its own table), or --force to replace them' },
    );
  }
}

function refuseLockout(options: ApplyOptions, reasons: readonly string[]): void {
  if (reasons.length > 0 && !options.force) {
    throw new PortwardenError('LOCKOUT', `refusing to apply: ${reasons.join('; ')}`, {
      hint: 'allow your administration path in the policy, or pass --force if you have console access',
    });
  }
}

interface Prepared {
  record: AppliedRecord;
  ruleset: RulesetFiles;
  tables: Map<string, string[]>;
  plan: KernelPlan;
}

/** Everything up to the load: check, snapshot (proven loadable), kernel plan, the record on disk. */
async function prepare(options: ApplyOptions, ruleset: RulesetFiles): Promise<Prepared> {
  refuseWhilePending(options.stateDir);
  options.onStep?.('checking the ruleset');
  await checkRuleset(ruleset);
  const tables = tablesOf(ruleset);
  const before = await snapshot(options.backend, tables);
  refuseForeignChains(before, options.force);
  options.onStep?.('proving the snapshot of the ruleset in place loads again');
  await proveLoadable(before);
  const previous = readCurrent(options.stateDir);
  const plan = planKernel(requiredKernelSettings(options.policy), previous?.kernel ?? [], readSysctl);
  const appliedAt = new Date();
  const deadline =
    options.confirmTimeout > 0 ? new Date(appliedAt.getTime() + options.confirmTimeout * 1000) : null;
  const record: AppliedRecord = {
    id: newId(),
    backend: options.backend,
    policyFile: options.policyFile,
    policyHash: policyHash(options.policyText),
    appliedAt: appliedAt.toISOString(),
    deadline: deadline?.toISOString() ?? null,
    ruleset,
    snapshot: before,
    kernel: plan.changes,
    previous,
  };
  // a second copy of the snapshot, on disk before anything changes
  recordApplied(options.stateDir, record);
  return { record, ruleset, tables, plan };
}

/** Arms the rollback before the load: if this process dies right after loading, the rollback still comes. */
function arm(dir: string, record: AppliedRecord): PendingApply | null {
  if (record.deadline === null) return null;
  const pending: PendingApply = {
    id: record.id,
    backend: record.backend,
    policyFile: record.policyFile,
    policyHash: record.policyHash,
    appliedAt: record.appliedAt,
    deadline: record.deadline,
    rollbackPid: null,
    snapshot: record.snapshot,
    kernel: record.kernel,
    previous: record.previous,
  };
  writePending(dir, pending);
  pending.rollbackPid = spawnWaiter(dir, record.id);
  writePending(dir, pending);
  return pending;
}

/** Loads the ruleset, then the kernel settings (filter first, forwarding after); all old or all new. */
async function loadAll(prepared: Prepared): Promise<void> {
  const { ruleset, record } = prepared;
  await loadRuleset(ruleset, record.snapshot);
  try {
    applyKernel(prepared.plan.changes);
  } catch (error) {
    await loadRuleset(restorable(record.snapshot).ruleset, ruleset);
    throw error;
  }
}

function historyOf(
  record: AppliedRecord,
): Pick<CurrentState, 'id' | 'backend' | 'policyFile' | 'policyHash'> {
  return {
    id: record.id,
    backend: record.backend,
    policyFile: record.policyFile,
    policyHash: record.policyHash,
  };
}

/**
 * Applies a policy: compile, check, lock-out guard, snapshot portwarden's part of the live ruleset
 * (proven loadable first), arm the rollback (a detached process, so it survives this one being
 * killed), load atomically, set the kernel settings the policy needs, and record what was applied.
 * A failed load leaves the old ruleset and settings in place.
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
  refuseLockout(options, reasons);
  return withLock(options.stateDir, async () => {
    const prepared = await prepare(options, ruleset);
    const pending = arm(options.stateDir, prepared.record);
    options.onStep?.('loading the ruleset');
    try {
      await loadAll(prepared);
    } catch (error) {
      disarm(options.stateDir, pending, prepared.record, error);
      throw error;
    }
    await recordLoaded(options.stateDir, prepared);
    const { record } = prepared;
    return {
      id: record.id,
      backend: record.backend,
      policyFile: record.policyFile,
      policyHash: record.policyHash,
      deadline: record.deadline,
      rollbackPid: pending?.rollbackPid ?? null,
      forced: reasons,
      kernel: prepared.plan,
    };
  });
}

/** After a failed load (the old ruleset is still in place): no rollback to wait for, and why in history. */
function disarm(dir: string, pending: PendingApply | null, record: AppliedRecord, error: unknown): void {
  if (pending) {
    clearPending(dir);
    stopWaiter(pending.rollbackPid);
  }
  const reason = error instanceof Error ? error.message : String(error);
  recordHistory(dir, 'failed', record, { reason });
}

/** current.json with the kernel's listing right after the load (the reference for drift), and history. */
async function recordLoaded(dir: string, prepared: Prepared): Promise<void> {
  const { record } = prepared;
  writeCurrent(dir, {
    ...historyOf(record),
    appliedAt: record.appliedAt,
    confirmedAt: record.deadline === null ? record.appliedAt : null,
    listing: await listCurrent(record.backend, prepared.tables),
    tables: [...prepared.tables],
    kernel: prepared.plan.managed,
  });
  recordHistory(dir, 'applied', record, {
    at: record.appliedAt,
    ...(record.deadline ? { deadline: record.deadline } : { reason: 'no confirmation timeout' }),
  });
}

/** Whether `pid` is still a rollback process (and not a reused pid): the worker, or an older portwarden's `rollback --when-due` still armed across an upgrade. */
function isWaiter(pid: number): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.some((arg) => arg.endsWith('/rollback-worker.js')) || argv.includes('--when-due');
  } catch {
    return false;
  }
}

function stopWaiter(pid: number | null): void {
  if (pid !== null && pid !== process.pid && isWaiter(pid)) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}

/** Keeps the pending ruleset: the rollback is disarmed. A damaged pending.json is refused (STATE_CORRUPT). */
export async function confirmPending(stateDir: string): Promise<PendingApply> {
  requireRoot('confirm');
  return withLock(stateDir, () => {
    const pending = readPending(stateDir);
    if (!pending) {
      throw new PortwardenError('NOTHING_PENDING', 'no apply is waiting for confirmation', {
        hint: 'it was confirmed or rolled back already; `portwarden apply` starts a new one',
      });
    }
    const current = readCurrentQuietly(stateDir);
    if (current?.id === pending.id)
      writeCurrent(stateDir, { ...current, confirmedAt: new Date().toISOString() });
    clearPending(stateDir);
    stopWaiter(pending.rollbackPid);
    recordHistory(stateDir, 'confirmed', pending);
    return pending;
  });
}

/**
 * The pending apply; when pending.json is damaged, rebuilt from the second copy of its record
 * (applied/<id>.json) so the rollback still happens. `damaged` says the file must be set aside.
 */
function pendingForRollback(
  dir: string,
  onlyId?: string,
): { pending: PendingApply | null; damaged: boolean } {
  try {
    return { pending: readPending(dir), damaged: false };
  } catch (error) {
    if (!(error instanceof PortwardenError) || error.code !== 'STATE_CORRUPT') throw error;
    const id = onlyId ?? unsettledApply(dir)?.id;
    const record = id === undefined ? null : readApplied(dir, id);
    if (!record || record.deadline === null) throw error;
    return {
      pending: { ...record, deadline: record.deadline, rollbackPid: null },
      damaged: true,
    };
  }
}

function nothingToRollBack(): PortwardenError {
  return new PortwardenError(
    'NOTHING_PENDING',
    'no apply is waiting for confirmation, so there is nothing to roll back',
    { hint: 'to go back further, apply the earlier policy again' },
  );
}

/** Restores the snapshot and the kernel settings of `pending`; the settings first, so forwarding stops before the filter goes. */
async function restore(dir: string, pending: PendingApply): Promise<string[]> {
  const notes = restoreKernel(pending.kernel);
  const { ruleset, dropped } = restorable(pending.snapshot);
  try {
    await loadRuleset(ruleset, ruleset);
  } catch (error) {
    const reason = `rollback: ${(error as Error).message}`;
    recordHistory(dir, 'failed', pending, { reason });
    throw error;
  }
  return [...notes, ...dropped.map((line) => `left out (its cgroup is gone): ${line}`)];
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
    const { pending, damaged } = pendingForRollback(stateDir, onlyId);
    if (!pending || (onlyId !== undefined && pending.id !== onlyId)) {
      if (onlyId !== undefined) return null;
      throw nothingToRollBack();
    }
    const notes = await restore(stateDir, pending);
    writeCurrent(stateDir, pending.previous);
    if (damaged) notes.push(`the damaged pending.json was moved to ${setAsideDamagedPending(stateDir)}`);
    else clearPending(stateDir);
    stopWaiter(pending.rollbackPid);
    recordHistory(stateDir, 'rolled-back', pending, { reason: [reason, ...notes].join('; ') });
    return pending;
  });
}

/** The deadline of apply `id`, from pending.json or, when that is damaged, from its record. */
function deadlineOf(dir: string, id: string): number | null {
  try {
    const pending = readPending(dir);
    return pending?.id === id ? Date.parse(pending.deadline) : null;
  } catch {
    const record = readApplied(dir, id);
    return record?.deadline ? Date.parse(record.deadline) : null;
  }
}

/** Whether apply `id` is still waiting: a damaged pending.json counts as waiting (the rollback stays armed). */
function stillPending(dir: string, id: string): boolean {
  try {
    return readPending(dir)?.id === id;
  } catch {
    return true;
  }
}

/**
 * The detached rollback process: waits until the pending apply's deadline (leaving early when it is
 * confirmed or replaced) and then restores the snapshot. Bounded by the deadline itself. A damaged
 * pending.json does not stop it: it keeps the deadline it read at start.
 */
export async function waitAndRollback(stateDir: string, id: string): Promise<void> {
  const deadline = deadlineOf(stateDir, id);
  if (deadline === null) return;
  for (;;) {
    if (!stillPending(stateDir, id)) return;
    const left = deadline - Date.now();
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
