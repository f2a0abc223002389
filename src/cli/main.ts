import { Command, CommanderError } from 'commander';
import { EXIT, exitCodeFor, isPortwardenError, PortwardenError } from '../errors.ts';
import { COMMANDS } from './commands/index.ts';
import { normalizeScanArgs } from './commands/scan.ts';
import { createContext, type CliContext, type CliIo } from './context.ts';
import { readInputFile } from './files.ts';
import { formatError } from './format-error.ts';
import { VERSION } from './version.ts';

function buildProgram(ctx: CliContext): Command {
  const program = new Command('portwarden')
    .description(
      'What is open on this machine, who opened it, what can reach it, and does the firewall enforce it.',
    )
    .version(VERSION, '-V, --version')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => ctx.io.stdout.write(text),
      writeErr: (text) => ctx.io.stderr.write(text),
      // Usage errors are rendered by reportError in the project's one error format.
      outputError: () => undefined,
    });
  for (const register of COMMANDS) register(program, ctx);
  return program;
}

function usageError(error: CommanderError, argv: readonly string[]): PortwardenError {
  const [first = '', ...rest] = error.message.replace(/^error: /, '').split('\n');
  const suggestion = rest
    .join(' ')
    .replace(/^\((.*)\)$/, '$1')
    .trim();
  const verb = argv.find((arg) => !arg.startsWith('-'));
  const help = verb ? `portwarden ${verb} --help` : 'portwarden --help';
  return new PortwardenError('USAGE', first, { hint: suggestion || `see \`${help}\`` });
}

function readSource(error: PortwardenError): string | undefined {
  const file = error.location?.file;
  if (!file || file === '-' || error.location?.line === undefined) return undefined;
  try {
    return readInputFile(file, { what: 'source', hint: '' });
  } catch {
    return undefined;
  }
}

function reportError(error: unknown, ctx: CliContext, argv: readonly string[]): number {
  if (error instanceof CommanderError) {
    if (error.exitCode === 0) return EXIT.OK;
    if (error.code === 'commander.help') return EXIT.USAGE;
    error = usageError(error, argv);
  }
  if (ctx.io.env['PORTWARDEN_DEBUG'] === '1' && error instanceof Error) ctx.err(error.stack ?? error.message);
  if (isPortwardenError(error)) {
    ctx.io.stderr.write(formatError(error, readSource(error)));
    return exitCodeFor(error);
  }
  const message = error instanceof Error ? error.message : String(error);
  ctx.io.stderr.write(
    formatError(
      new PortwardenError('INTERNAL', `internal error: ${message}`, {
        hint: 'this is a bug in portwarden: rerun with PORTWARDEN_DEBUG=1 and report the stack trace',
      }),
    ),
  );
  return EXIT.INTERNAL;
}

/** Runs the CLI on `argv` (without node and script) and returns the exit code. */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const ctx = createContext(io);
  try {
    await buildProgram(ctx).parseAsync(normalizeScanArgs(argv), { from: 'user' });
    return ctx.exitCode;
  } catch (error) {
    return reportError(error, ctx, argv);
  }
}

/** The bin entry: runs on process.argv and sets the process exit code. */
export async function main(): Promise<void> {
  // `portwarden ports | head` closes the pipe early; that is not an error.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  });
  process.exitCode = await run(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    stdin: process.stdin,
  });
}
