import { linkSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { PortwardenError } from '../errors.ts';
import { processStartTime, readTextIfExists } from '../system/files.ts';

/**
 * One watch daemon per database: two would record every event twice. The lock is `<db>.lock`, created
 * atomically by linking a complete file (pid, process start time) into place, so nobody ever sees a
 * half-written lock. A lock whose process is gone, or whose pid now belongs to another process (the
 * start time differs), is stale and taken over: a `kill -9` never blocks the next start.
 */

export interface InstanceLock {
  path: string;
  release(): void;
}

interface Holder {
  pid: number;
  start: string | null;
  since: string;
}

function parseHolder(text: string): Holder | null {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null) return null;
    const { pid, start, since } = value as Record<string, unknown>;
    if (typeof pid !== 'number' || typeof since !== 'string') return null;
    return { pid, start: typeof start === 'string' ? start : null, since };
  } catch {
    return null;
  }
}

function isRunning(holder: Holder): boolean {
  const start = processStartTime(holder.pid);
  return start !== null && (holder.start === null || start === holder.start);
}

/** Links a complete file into place; false when a lock is already there. */
function tryCreate(path: string, content: string): boolean {
  const temp = `${path}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(temp, content, { mode: 0o600 });
  try {
    linkSync(temp, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    unlinkSync(temp);
  }
}

/**
 * Removes a stale lock, unless another starter replaced it meanwhile: the lock is renamed away first
 * (atomic) and put back when it turns out not to be the stale one we read.
 */
function removeStale(path: string, staleText: string): void {
  const aside = `${path}.${process.pid}.stale`;
  try {
    renameSync(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (readTextIfExists(aside) !== staleText) {
    try {
      linkSync(aside, path);
    } catch {
      // a third starter holds it now; it stays theirs
    }
  }
  unlinkSync(aside);
}

function inUse(dbPath: string, holder: Holder): PortwardenError {
  return new PortwardenError(
    'STATE_UNAVAILABLE',
    `the watch database "${dbPath}" is in use by another portwarden watch (pid ${holder.pid}, running since ${holder.since})`,
    {
      hint: `one watch per database: stop pid ${holder.pid} first (systemctl stop portwarden-watch, or kill ${holder.pid}), or give this one another --db`,
    },
  );
}

function lockFailed(path: string, error: unknown): PortwardenError {
  return new PortwardenError(
    'STATE_UNAVAILABLE',
    `cannot create the lock "${path}": ${(error as Error).message}`,
    {
      hint: 'the directory of the watch database must be writable: fix that, or use --db with a file in a writable place',
      cause: error,
    },
  );
}

/** Takes the single-instance lock of a watch database, or throws (exit 3) naming the pid holding it. */
export function lockInstance(dbPath: string): InstanceLock {
  const path = `${dbPath}.lock`;
  const own = JSON.stringify({
    pid: process.pid,
    start: processStartTime(process.pid),
    since: new Date().toISOString(),
  });
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      if (tryCreate(path, own)) return { path, release: () => release(path, own) };
      const text = readTextIfExists(path);
      if (text === null) continue;
      const holder = parseHolder(text);
      if (holder && isRunning(holder)) throw inUse(dbPath, holder);
      removeStale(path, text);
    }
  } catch (error) {
    if (error instanceof PortwardenError) throw error;
    throw lockFailed(path, error);
  }
  throw lockFailed(path, new Error('other processes kept taking it'));
}

/** Removes the lock if it is still ours. */
function release(path: string, own: string): void {
  try {
    if (readTextIfExists(path) === own) unlinkSync(path);
  } catch {
    // nothing to clean up that a later start would not handle as stale
  }
}
