import { readFileSync } from 'node:fs';
import { PortwardenError } from '../errors.ts';

/**
 * Reading files portwarden did not write itself, in the three ways it needs: a file that may be
 * missing, a file that may be unreadable for any reason (/proc of another user's or a vanished
 * process), and a file the user named, whose failure is their input error.
 */

const MISSING = new Set(['ENOENT', 'ENOTDIR']);

/** An errno in words, without the temporary names Node puts in its messages. */
export function errnoReason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  const words: Record<string, string> = {
    ENOENT: 'it does not exist',
    ENOTDIR: 'a part of its path is not a directory',
    EACCES: 'permission denied',
    EPERM: 'permission denied',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left on device',
    EEXIST: 'it exists',
    EISDIR: 'it is a directory',
  };
  return (code ? words[code] : undefined) ?? (error as Error).message;
}

/**
 * A file's text, or null when it does not exist. Any other failure is thrown: as `fail(error)` when
 * given (a PortwardenError with the caller's code), else as it came.
 */
export function readTextIfExists(
  path: string,
  fail?: (error: NodeJS.ErrnoException) => Error,
): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const errno = error as NodeJS.ErrnoException;
    if (MISSING.has(errno.code ?? '')) return null;
    throw fail ? fail(errno) : error;
  }
}

/** A file's text, or null when it cannot be read for whatever reason. */
export function readTextQuietly(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** A file the user named: its text, or FILE_UNREADABLE (exit 2) saying what it is, where and why. */
export function readUserFile(path: string, what: string, hint: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new PortwardenError('FILE_UNREADABLE', `cannot read ${what} "${path}": ${errnoReason(error)}`, {
      hint,
      cause: error,
    });
  }
}

/** pid and start time (clock ticks since boot, /proc/<pid>/stat field 22): together they name a process. */
export function processStartTime(pid: number): string | null {
  const stat = readTextQuietly(`/proc/${pid}/stat`);
  // the command name (field 2) may contain spaces and parentheses: count from the last ')'
  return stat === null ? null : (stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null);
}
