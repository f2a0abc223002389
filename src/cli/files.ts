import {
  closeSync,
  constants,
  fstatSync,
  linkSync,
  openSync,
  readSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
  type Stats,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { PortwardenError } from '../errors.ts';
import { errnoReason } from '../system/files.ts';

/**
 * The CLI's only file I/O for user-named files. Reading refuses what is not a regular file (a FIFO
 * with no writer would block forever, /dev/zero never ends) and caps the size; writing puts every
 * output in a temp file first and renames them all at the end, so a failure leaves nothing behind.
 */

/** Inputs are policies, target lists, listings and rulesets: text far below this. */
export const INPUT_MAX_BYTES = 16 * 1024 * 1024;

export interface ReadInputOptions {
  /** What the file is, for messages: "policy", "target list". */
  what: string;
  /** The next step when the file cannot be read. */
  hint: string;
  maxBytes?: number;
}

function kind(stats: Stats): string {
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isDirectory()) return 'a directory';
  if (stats.isSocket()) return 'a socket';
  return 'not a regular file';
}

function tooLarge(path: string, options: ReadInputOptions, max: number): PortwardenError {
  return new PortwardenError(
    'FILE_UNREADABLE',
    `${options.what} "${path}" is larger than ${Math.round(max / 1024 / 1024)} MiB`,
    { hint: options.hint },
  );
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/** Reads an open descriptor to its end, failing past `max` bytes. */
function readCapped(fd: number, max: number): Buffer | null {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const chunk = Buffer.alloc(64 * 1024);
    let n: number;
    try {
      n = readSync(fd, chunk, 0, chunk.length, null);
    } catch (error) {
      // A non-blocking stdin (a pipe whose writer is slow) has no data yet: wait a little.
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
      Atomics.wait(pause, 0, 0, 10);
      continue;
    }
    if (n === 0) return Buffer.concat(chunks, total);
    total += n;
    if (total > max) return null;
    chunks.push(chunk.subarray(0, n));
  }
}

/** Opens a named file without blocking (a FIFO would wait for a writer) and checks it is regular. */
function openRegular(path: string, options: ReadInputOptions): number {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const stats = fstatSync(fd);
  if (stats.isFile()) return fd;
  closeSync(fd);
  throw new PortwardenError('FILE_UNREADABLE', `${options.what} "${path}" is ${kind(stats)}, not a file`, {
    hint: `${options.hint} (to read a pipe, give - and redirect it to stdin)`,
  });
}

/**
 * Reads a user-named text file, or stdin for `-`. Refuses FIFOs, devices and directories and
 * anything over `maxBytes` (16 MiB) with FILE_UNREADABLE (exit 2).
 */
export function readInputFile(path: string, options: ReadInputOptions): string {
  const max = options.maxBytes ?? INPUT_MAX_BYTES;
  let fd: number | undefined;
  try {
    fd = path === '-' ? 0 : openRegular(path, options);
    const data = readCapped(fd, max);
    if (data === null) throw tooLarge(path, options, max);
    return data.toString('utf8');
  } catch (error) {
    if (error instanceof PortwardenError) throw error;
    throw new PortwardenError(
      'FILE_UNREADABLE',
      `cannot read ${options.what} "${path}": ${(error as Error).message}`,
      { hint: options.hint, cause: error },
    );
  } finally {
    if (fd !== undefined && fd !== 0) closeSync(fd);
  }
}

/** One file to write. */
export interface OutputFile {
  path: string;
  content: string;
}

const WRITE_HINT = 'check that the directory exists and is writable';

/** An errno in words for a write: a missing path there means a missing directory. */
function reason(error: unknown): string {
  return (error as NodeJS.ErrnoException).code === 'ENOENT'
    ? 'its directory does not exist'
    : errnoReason(error);
}

function unwritable(path: string, reason: string, hint: string, cause?: unknown): PortwardenError {
  return new PortwardenError('FILE_UNWRITABLE', `cannot write "${path}": ${reason}`, {
    hint,
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Where a target really is (a symlink is followed, so the link survives the rename), after refusing
 * what a rename must not replace: a directory, a device or FIFO (`-o /dev/stdout` would swap the
 * device node for a file), or an existing file unless `overwrite`.
 */
function resolveTarget(path: string, overwrite: boolean): string {
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return path;
  }
  const stats = statSync(real);
  if (stats.isDirectory()) throw unwritable(path, 'it is a directory', 'give a file name, not a directory');
  if (!stats.isFile()) throw unwritable(path, `it is ${kind(stats)}`, 'omit -o to print to stdout');
  if (!overwrite) throw unwritable(path, 'it exists', 'pass --force to overwrite it');
  return real;
}

function tempPath(path: string, index: number): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${index}.pw-tmp`);
}

function removeQuietly(paths: readonly string[]): void {
  for (const p of paths) {
    try {
      unlinkSync(p);
    } catch {
      // already gone
    }
  }
}

/**
 * Writes every file or none: each goes to a temp file beside its target, and only when all are
 * written are they renamed into place. `overwrite: false` refuses existing targets (`--force` off).
 */
export function writeOutputFiles(requested: readonly OutputFile[], overwrite = true): void {
  const files = requested.map((f) => ({ ...f, path: resolveTarget(f.path, overwrite) }));
  const temps: string[] = [];
  try {
    files.forEach((f, i) => {
      const temp = tempPath(f.path, i);
      writeFileSync(temp, f.content, { flag: 'wx', mode: 0o644 });
      temps.push(temp);
    });
  } catch (error) {
    removeQuietly(temps);
    throw unwritable(requested[temps.length]?.path ?? '', reason(error), WRITE_HINT, error);
  }
  files.forEach((f, i) => {
    const temp = temps[i] ?? '';
    try {
      if (overwrite) renameSync(temp, f.path);
      else {
        linkSync(temp, f.path);
        unlinkSync(temp);
      }
    } catch (error) {
      removeQuietly(temps.slice(i));
      throw unwritable(requested[i]?.path ?? f.path, reason(error), WRITE_HINT, error);
    }
  });
}
