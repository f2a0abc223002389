import {
  appendFileSync,
  mkdirSync,
  openSync,
  closeSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { PortwardenError } from '../errors.ts';
import type { RulesetFiles } from './loader.ts';

/**
 * The state directory of apply (default /var/lib/portwarden, PORTWARDEN_STATE_DIR or --state-dir):
 * `pending.json` while an apply awaits confirmation, `applied/<id>.json` with each applied ruleset
 * and its snapshot, `history.jsonl` with one line per event, and a lock file for the few moments a
 * ruleset is being swapped. Files are written to a temporary name and renamed, so a crash never
 * leaves half a file.
 */

export const DEFAULT_STATE_DIR = '/var/lib/portwarden';
const KEEP_APPLIED = 20;

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
}

export interface HistoryEntry {
  at: string;
  event: 'applied' | 'confirmed' | 'rolled-back' | 'failed';
  id: string;
  backend: RulesetFiles['backend'];
  policyFile?: string;
  policyHash?: string;
  /** Why a rollback happened (timeout, by request, answer at the prompt) or why a load failed. */
  reason?: string;
}

export function stateDir(
  explicit: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): string {
  return explicit ?? env['PORTWARDEN_STATE_DIR'] ?? DEFAULT_STATE_DIR;
}

function ensureDir(dir: string): void {
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

function writeAtomic(path: string, text: string): void {
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, text, { mode: 0o600 });
  renameSync(temp, path);
}

export function readPending(dir: string): PendingApply | null {
  try {
    return JSON.parse(readFileSync(join(dir, 'pending.json'), 'utf8')) as PendingApply;
  } catch {
    return null;
  }
}

export function writePending(dir: string, pending: PendingApply): void {
  ensureDir(dir);
  writeAtomic(join(dir, 'pending.json'), `${JSON.stringify(pending, null, 2)}\n`);
}

export function clearPending(dir: string): void {
  rmSync(join(dir, 'pending.json'), { force: true });
}

export function recordApplied(
  dir: string,
  id: string,
  record: { ruleset: RulesetFiles; snapshot: RulesetFiles },
): void {
  ensureDir(dir);
  writeAtomic(join(dir, 'applied', `${id}.json`), `${JSON.stringify(record)}\n`);
  const old = readdirSync(join(dir, 'applied'))
    .filter((f) => f.endsWith('.json'))
    .sort();
  for (const name of old.slice(0, Math.max(0, old.length - KEEP_APPLIED)))
    rmSync(join(dir, 'applied', name), { force: true });
}

export function appendHistory(dir: string, entry: HistoryEntry): void {
  ensureDir(dir);
  appendFileSync(join(dir, 'history.jsonl'), `${JSON.stringify(entry)}\n`, { mode: 0o600 });
}

export function readHistory(dir: string): HistoryEntry[] {
  let text = '';
  try {
    text = readFileSync(join(dir, 'history.jsonl'), 'utf8');
  } catch {
    return [];
  }
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

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Runs `work` holding the state directory's lock (a stale lock of a dead process is taken over). */
export async function withLock<T>(dir: string, work: () => Promise<T> | T): Promise<T> {
  ensureDir(dir);
  const path = join(dir, 'lock');
  takeLock(path);
  try {
    return await work();
  } finally {
    rmSync(path, { force: true });
  }
}

function takeLock(path: string): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = Number(readFileSync(path, 'utf8').trim());
    if (Number.isInteger(holder) && holder > 0 && alive(holder)) {
      throw new PortwardenError(
        'APPLY_PENDING',
        `another portwarden (pid ${holder}) is changing the ruleset right now`,
        {
          hint: 'wait for it to finish and try again',
        },
      );
    }
    rmSync(path, { force: true });
  }
  throw new PortwardenError('STATE_UNAVAILABLE', `cannot take the lock "${path}"`, {
    hint: 'remove the stale lock file',
  });
}
