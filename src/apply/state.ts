import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { join } from 'node:path';
import { PortwardenError } from '../errors.ts';
import { writeFileAtomic } from '../system/atomic-write.ts';
import type { KernelChange, ManagedSetting } from './kernel-apply.ts';
import type { RulesetFiles } from '../ruleset/load-live.ts';
import { errnoReason, processStartTime, readTextIfExists } from '../system/files.ts';

/**
 * The state directory of apply (default /var/lib/portwarden, PORTWARDEN_STATE_DIR or --state-dir):
 * `pending.json` while an apply awaits confirmation, `current.json` with what portwarden loaded
 * last, `applied/<id>.json` with each applied ruleset and its snapshot, `persisted.json` with the
 * boot files `persist` wrote, `history.jsonl` with one line per event, and `lock` (an flock).
 * Every JSON file is written to a temporary name, fsynced and renamed, and carries a sha256 of its
 * content: a damaged file is an error (STATE_CORRUPT), never taken for "nothing there".
 */

const KEEP_APPLIED = 20;
const FORMAT = 'portwarden-state/1';

export interface PendingApply {
  id: string;
  backend: RulesetFiles['backend'];
  policyFile: string;
  policyHash: string;
  appliedAt: string;
  /** When the rollback restores the snapshot unless confirmed. */
  deadline: string;
  rollbackPid: number | null;
  snapshot: RulesetFiles;
  /** Kernel settings this apply changed, with their values before it. */
  kernel: KernelChange[];
  /** What current.json said before this apply (null: nothing), restored by a rollback. */
  previous: CurrentState | null;
}

/** What portwarden loaded last and still stands (confirmed, or pending confirmation). */
export interface CurrentState {
  id: string;
  backend: RulesetFiles['backend'];
  policyFile: string;
  policyHash: string;
  appliedAt: string;
  confirmedAt: string | null;
  /** portwarden's part of the ruleset as the kernel listed it right after the load (for drift). */
  listing: string;
  /** iptables tables per family file that the ruleset writes (empty for nftables). */
  tables: [string, string[]][];
  /** Kernel settings the policy needs, kept at these values while it is loaded. */
  kernel: ManagedSetting[];
}

/** One applied ruleset, written before it is loaded: a second copy of the snapshot. */
export interface AppliedRecord {
  id: string;
  backend: RulesetFiles['backend'];
  policyFile: string;
  policyHash: string;
  appliedAt: string;
  deadline: string | null;
  ruleset: RulesetFiles;
  snapshot: RulesetFiles;
  kernel: KernelChange[];
  previous: CurrentState | null;
}

/** The boot-time files `persist` wrote, so `unpersist` removes exactly those. */
export interface PersistedState {
  id: string;
  backend: RulesetFiles['backend'];
  policyFile: string;
  policyHash: string;
  at: string;
  etcDir: string;
  /** Files written (created or replaced), with their previous content when they existed. */
  files: { path: string; previous: string | null }[];
  /** Files edited in place (an include line added), with the exact line. */
  edits: { path: string; line: string }[];
  /** Directories persist created (removed again when empty). */
  dirs: string[];
}

export interface HistoryEntry {
  at: string;
  event: 'applied' | 'confirmed' | 'rolled-back' | 'failed' | 'persisted' | 'unpersisted';
  id: string;
  backend: RulesetFiles['backend'];
  policyFile?: string;
  policyHash?: string;
  /** Why a rollback happened (timeout, by request, answer at the prompt) or why a load failed. */
  reason?: string;
  /** When the rollback comes unless confirmed (applied events with a timeout). */
  deadline?: string;
}

export function ensureDir(dir: string): void {
  try {
    mkdirSync(join(dir, 'applied'), { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new PortwardenError(
      'STATE_UNAVAILABLE',
      `cannot create the state directory "${dir}": ${(error as Error).message}`,
      {
        hint: 'run as root, or point PORTWARDEN_STATE_DIR (or --state-dir) at a writable directory',
      },
    );
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Writes `data` with a checksum of its JSON text, atomically. */
export function writeState(path: string, data: unknown): void {
  const json = JSON.stringify(data);
  try {
    writeFileAtomic(path, `{"format":"${FORMAT}","sha256":"${sha256(json)}","data":${json}}\n`);
  } catch (error) {
    throw new PortwardenError('STATE_UNAVAILABLE', `cannot write "${path}": ${errnoReason(error)}`, {
      hint: STATE_HINT,
      cause: error,
    });
  }
}

function corrupt(path: string, why: string, hint: string): PortwardenError {
  return new PortwardenError('STATE_CORRUPT', `the state file "${path}" is damaged (${why})`, { hint });
}

const STATE_HINT = 'run as root, or point PORTWARDEN_STATE_DIR (or --state-dir) at the right directory';

function readText(path: string): string | null {
  return readTextIfExists(
    path,
    (error) =>
      new PortwardenError('STATE_UNAVAILABLE', `cannot read "${path}": ${errnoReason(error)}`, {
        hint: STATE_HINT,
        cause: error,
      }),
  );
}

/**
 * Reads a state file written by writeState: null when there is none; STATE_CORRUPT (with `hint`)
 * when it is empty, cut short, edited or not portwarden's.
 */
export function readState<T>(path: string, hint: string): T | null {
  const text = readText(path);
  if (text === null) return null;
  const match = /^\{"format":"([^"]*)","sha256":"([0-9a-f]{64})","data":(.*)\}\n?$/s.exec(text);
  if (text.trim() === '') throw corrupt(path, 'empty', hint);
  if (!match) throw corrupt(path, 'not a complete portwarden state file', hint);
  const [, format, sum, json = ''] = match;
  if (format !== FORMAT) throw corrupt(path, `unknown format "${format ?? ''}"`, hint);
  if (sha256(json) !== sum) throw corrupt(path, 'checksum mismatch', hint);
  // the checksum proves these are the bytes writeState wrote from a T
  return JSON.parse(json) as T;
}

const PENDING_HINT = (dir: string): string =>
  `the rollback stays armed; run \`portwarden rollback\` to restore the ruleset from before the apply now (a second copy of its snapshot is in ${join(dir, 'applied')}), or move the file aside if you know it is stale`;

/** The pending apply, null when none; STATE_CORRUPT when pending.json is damaged. */
export function readPending(dir: string): PendingApply | null {
  return readState<PendingApply>(join(dir, 'pending.json'), PENDING_HINT(dir));
}

export function writePending(dir: string, pending: PendingApply): void {
  ensureDir(dir);
  writeState(join(dir, 'pending.json'), pending);
}

export function clearPending(dir: string): void {
  rmSync(join(dir, 'pending.json'), { force: true });
}

/** Moves a damaged pending.json aside (kept for inspection) once its rollback is done. */
export function setAsideDamagedPending(dir: string): string {
  const aside = join(dir, `pending.json.damaged-${Date.now()}`);
  renameSync(join(dir, 'pending.json'), aside);
  return aside;
}

export function readCurrent(dir: string): CurrentState | null {
  return readState<CurrentState>(
    join(dir, 'current.json'),
    'move it aside; `portwarden apply` writes a new one (status cannot tell drift until then)',
  );
}

export function writeCurrent(dir: string, current: CurrentState | null): void {
  ensureDir(dir);
  if (current === null) rmSync(join(dir, 'current.json'), { force: true });
  else writeState(join(dir, 'current.json'), current);
}

export function readPersisted(dir: string): PersistedState | null {
  return readState<PersistedState>(
    join(dir, 'persisted.json'),
    'the boot files may still be in place: remove them by hand (see README, "Persistence")',
  );
}

export function writePersisted(dir: string, persisted: PersistedState | null): void {
  ensureDir(dir);
  if (persisted === null) rmSync(join(dir, 'persisted.json'), { force: true });
  else writeState(join(dir, 'persisted.json'), persisted);
}

export function readApplied(dir: string, id: string): AppliedRecord | null {
  if (!/^[\w-]+$/.test(id)) return null;
  return readState<AppliedRecord>(
    join(dir, 'applied', `${id}.json`),
    'this copy of the snapshot cannot be used; pending.json holds the other one',
  );
}

export function recordApplied(dir: string, record: AppliedRecord): void {
  ensureDir(dir);
  writeState(join(dir, 'applied', `${record.id}.json`), record);
  const old = readdirSync(join(dir, 'applied'))
    .filter((f) => f.endsWith('.json'))
    .sort();
  for (const name of old.slice(0, Math.max(0, old.length - KEEP_APPLIED)))
    rmSync(join(dir, 'applied', name), { force: true });
}

export function appendHistory(dir: string, entry: HistoryEntry): void {
  ensureDir(dir);
  const fd = openSync(join(dir, 'history.jsonl'), 'a', 0o600);
  try {
    appendFileSync(fd, `${JSON.stringify(entry)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** What a history line is about: the ruleset's id and backend, and the policy it came from. */
export interface HistorySubject {
  id: string;
  backend: RulesetFiles['backend'];
  policyFile?: string;
  policyHash?: string;
}

/** Appends one history line: the event, its subject, when (default now), and why or until when. */
export function recordHistory(
  dir: string,
  event: HistoryEntry['event'],
  subject: HistorySubject,
  details: Pick<HistoryEntry, 'reason' | 'deadline'> & { at?: string } = {},
): void {
  const { at = new Date().toISOString(), ...rest } = details;
  appendHistory(dir, {
    at,
    event,
    id: subject.id,
    backend: subject.backend,
    ...(subject.policyFile !== undefined ? { policyFile: subject.policyFile } : {}),
    ...(subject.policyHash !== undefined ? { policyHash: subject.policyHash } : {}),
    ...rest,
  });
}

export function readHistory(dir: string): HistoryEntry[] {
  const text = readText(join(dir, 'history.jsonl')) ?? '';
  const entries: HistoryEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      entries.push(JSON.parse(line) as HistoryEntry);
    } catch {
      // a line cut short by a crash: skip it
    }
  }
  return entries;
}

/** The apply still waiting for its confirmation according to history (used when pending.json is damaged). */
export function unsettledApply(dir: string): HistoryEntry | null {
  const settled = new Set<string>();
  for (const entry of readHistory(dir).reverse()) {
    if (entry.event === 'confirmed' || entry.event === 'rolled-back') settled.add(entry.id);
    if (entry.event === 'applied' && entry.deadline !== undefined && !settled.has(entry.id)) return entry;
  }
  return null;
}

interface LockHolder {
  pid: number;
  startTime: string | null;
  since: string;
}

/**
 * Runs `work` holding the state directory's lock. The lock is a kernel flock held by a small
 * `flock(1)` child that lives while its stdin pipe is open: taking it is atomic, and it goes away by
 * itself when this process dies, however it dies. The holder's pid and start time are recorded next
 * to it for the message a second apply gets.
 */
export async function withLock<T>(dir: string, work: () => Promise<T> | T): Promise<T> {
  ensureDir(dir);
  const release = await takeLock(dir);
  try {
    return await work();
  } finally {
    rmSync(join(dir, 'lock.holder'), { force: true });
    await release();
  }
}

function busy(dir: string): PortwardenError {
  let holder: LockHolder | null = null;
  try {
    holder = readState<LockHolder>(join(dir, 'lock.holder'), '');
  } catch {
    // being written right now: the message goes without the pid
  }
  const who = holder ? ` (pid ${holder.pid}, since ${holder.since})` : '';
  return new PortwardenError('APPLY_PENDING', `another portwarden${who} is changing the ruleset right now`, {
    hint: 'wait for it to finish and try again',
  });
}

async function takeLock(dir: string): Promise<() => Promise<void>> {
  const child = spawn(
    'flock',
    [
      '--nonblock',
      '--conflict-exit-code',
      '75',
      join(dir, 'lock'),
      'sh',
      '-c',
      'echo locked; exec cat >/dev/null',
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const exited = new Promise<number>((resolve) => child.once('close', (status) => resolve(status ?? 128)));
  const outcome = await new Promise<'locked' | number | Error>((resolve) => {
    child.stdout.once('data', () => resolve('locked'));
    child.once('error', resolve);
    void exited.then(resolve);
  });
  if (outcome === 75) throw busy(dir);
  if (outcome !== 'locked') {
    const why = outcome instanceof Error ? outcome.message : `flock exited with status ${outcome}`;
    throw new PortwardenError('STATE_UNAVAILABLE', `cannot take the lock in "${dir}": ${why}`, {
      hint: 'portwarden needs flock(1) (util-linux) and a writable state directory',
    });
  }
  const holder: LockHolder = {
    pid: process.pid,
    startTime: processStartTime(process.pid),
    since: new Date().toISOString(),
  };
  writeState(join(dir, 'lock.holder'), holder);
  return async () => {
    child.stdin.end();
    await exited;
  };
}
