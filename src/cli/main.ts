import { Command, CommanderError, Option } from 'commander';
import { EXIT, exitCodeFor, isPortwardenError, PortwardenError } from '../errors.ts';
import { COMMANDS } from './commands/index.ts';
import { normalizeScanArgs } from './commands/scan.ts';
import { createContext, wantsColor, type CliContext, type CliIo, type ColorMode } from './context.ts';
import { readInputFile } from './files.ts';
import { formatError } from './format-error.ts';
import { addHelpTexts } from './help.ts';
import { VERSION } from './version.ts';

function buildProgram(ctx: CliContext): Command {
  const program = new Command('portwarden')
    .description(
      'What is open on this machine, who opened it, what can reach it, and does the firewall enforce it.',
    )
    .version(VERSION, '-V, --version')
    .addOption(
      new Option('--color <when>', 'colour: auto, always or never')
        .choices(['auto', 'always', 'never'])
        .default('auto'),
    )
    .option('--no-color', 'same as --color=never')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => ctx.io.stdout.write(text),
      writeErr: (text) => ctx.io.stderr.write(text),
      // Usage errors are rendered by reportError in the project's one error format.
      outputError: () => undefined,
    });
  for (const register of COMMANDS) register(program, ctx);
  addHelpTexts(program);
  program.hook('preAction', () => {
    const when: unknown = program.getOptionValue('color');
    const mode: ColorMode =
      when === false || when === 'never' ? 'never' : when === 'always' ? 'always' : 'auto';
    ctx.color = wantsColor(mode, ctx.io.stdout, ctx.io.env);
  });
  return program;
}

/** The commands named at the start of argv, outermost first (`policy check` -> [policy, check]). */
function commandPath(program: Command, argv: readonly string[]): Command[] {
  const path: Command[] = [];
  let current = program;
  for (const arg of argv) {
    if (arg.startsWith('-')) continue;
    const next = current.commands.find((c) => c.name() === arg || c.aliases().includes(arg));
    if (!next) break;
    path.push(next);
    current = next;
  }
  return path;
}

/**
 * A usage error in the project's format. The help it points at must exist: for an unknown command
 * that is the help of the command above it, never `portwarden <the unknown word> --help`.
 */
function usageError(error: CommanderError, program: Command, argv: readonly string[]): PortwardenError {
  const [first = '', ...rest] = error.message.replace(/^error: /, '').split('\n');
  const suggestion = rest
    .join(' ')
    .replace(/^\((.*)\)$/, '$1')
    .trim();
  const help = `\`${['portwarden', ...commandPath(program, argv).map((c) => c.name())].join(' ')} --help\``;
  if (error.code === 'commander.unknownCommand') {
    return new PortwardenError('USAGE', first, {
      hint: `${suggestion ? `${suggestion} ` : ''}${help} lists the commands`,
    });
  }
  return new PortwardenError('USAGE', first, { hint: suggestion || `see ${help}` });
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

function reportError(error: unknown, ctx: CliContext, program: Command, argv: readonly string[]): number {
  if (error instanceof CommanderError) {
    if (error.exitCode === 0) return EXIT.OK;
    if (error.code === 'commander.help') return EXIT.USAGE;
    error = usageError(error, program, argv);
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
  const program = buildProgram(ctx);
  try {
    await program.parseAsync(normalizeScanArgs(argv), { from: 'user' });
    return ctx.exitCode;
  } catch (error) {
    return reportError(error, ctx, program, argv);
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
