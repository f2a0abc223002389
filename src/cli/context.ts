import type { Readable } from 'node:stream';

/** A writable text stream as the CLI sees it: process.stdout or a test buffer. */
export interface TextSink {
  write(text: string): unknown;
  isTTY?: boolean;
  /** Terminal width, when a terminal. */
  columns?: number;
}

/** What the CLI needs from the outside world, passed in so tests can run it in-process. */
export interface CliIo {
  stdout: TextSink;
  stderr: TextSink;
  env: Readonly<Record<string, string | undefined>>;
  stdin?: Readable;
}

/** Per-run helpers handed to every command. */
export interface CliContext {
  io: CliIo;
  /** Print a line (or lines) to stdout. */
  out(text: string): void;
  /** Print a line to stderr (progress, warnings). */
  err(text: string): void;
  /** Whether stdout gets ANSI colour: see wantsColor and `--color`. */
  color: boolean;
  /** Whether stderr is a TTY that wants progress output. */
  progress: boolean;
  /** The exit code the command wants; 0 unless it found problems (1). */
  exitCode: number;
}

/** `--color`: auto decides from the terminal and the environment. */
export type ColorMode = 'auto' | 'always' | 'never';

/**
 * Whether a stream gets colour. `always`/`never` win; for `auto`, FORCE_COLOR (anything but 0/false)
 * wins over NO_COLOR as in Node itself, then NO_COLOR, then TERM=dumb, then whether it is a terminal.
 */
export function wantsColor(mode: ColorMode, stream: TextSink, env: CliIo['env']): boolean {
  if (mode !== 'auto') return mode === 'always';
  const force = env['FORCE_COLOR'];
  if (force !== undefined) return force !== '0' && force.toLowerCase() !== 'false';
  if (env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '') return false;
  if (env['TERM'] === 'dumb') return false;
  return stream.isTTY === true;
}

export function createContext(io: CliIo): CliContext {
  const context: CliContext = {
    io,
    out: (text) => io.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
    err: (text) => io.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
    color: wantsColor('auto', io.stdout, io.env),
    progress: io.stderr.isTTY === true,
    exitCode: 0,
  };
  setJsonIndent(io.stdout.isTTY === true ? 2 : 0);
  return context;
}

/** The colour of each risk level / finding severity, the same in every command. */
export const RISK_COLOR = {
  critical: 'magenta',
  high: 'red',
  medium: 'yellow',
  low: 'cyan',
  info: 'gray',
} as const;

const ANSI = { red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36, gray: 90, bold: 1 } as const;
export type ColorName = keyof typeof ANSI;

/** Wraps text in an ANSI colour when `enabled`. */
export function paint(enabled: boolean, color: ColorName, text: string): string {
  return enabled ? `\u001b[${ANSI[color]}m${text}\u001b[0m` : text;
}

let indent = 2;

/** Pretty JSON for people (a terminal), compact JSON for programs (a pipe): set once per run. */
export function setJsonIndent(spaces: number): void {
  indent = spaces;
}

/** JSON with a trailing newline, the form every `--json` prints. */
export function toJson(value: unknown): string {
  return `${JSON.stringify(value, null, indent)}\n`;
}
