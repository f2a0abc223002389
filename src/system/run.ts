import { spawn, type ChildProcess } from 'node:child_process';
import { PortwardenError } from '../errors.ts';

export interface RunResult {
  stdout: string;
  stderr: string;
  status: number;
}

export interface RunOptions {
  input?: string;
  /** Kill the command after this many milliseconds. Default 30 s. */
  timeoutMs?: number;
  /** Resolve instead of throwing when the exit status is not 0. */
  allowFailure?: boolean;
  /** Told about the child process, e.g. to kill it when its owner goes away. */
  onSpawn?: (child: ChildProcess) => void;
}

/**
 * Runs a command to completion and collects its output. A missing binary is TOOL_MISSING; a non-zero
 * exit is TOOL_FAILED with the command, status and stderr in the message (like execa).
 */
export function runCommand(
  command: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const shown = [command, ...args].join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    options.onSpawn?.(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const code = error.code === 'ENOENT' ? 'TOOL_MISSING' : 'TOOL_FAILED';
      reject(
        new PortwardenError(code, `cannot run "${command}": ${error.message}`, {
          hint: `install ${command} and make sure it is on PATH`,
          cause: error,
        }),
      );
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      const result = {
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        status: status ?? 128,
      };
      if (result.status === 0 || options.allowFailure) return resolve(result);
      const why = signal ? `was killed by ${signal}` : `exited with status ${result.status}`;
      reject(
        new PortwardenError(
          'TOOL_FAILED',
          `"${shown}" ${why}: ${result.stderr.trim().split('\n').slice(0, 3).join(' / ') || 'no error output'}`,
        ),
      );
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}
