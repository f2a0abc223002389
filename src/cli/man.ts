import { Help, type Command } from 'commander';
import { EXAMPLES, EXIT_MEANINGS, nmapSpellings } from './help.ts';

/** Text as roff reads it literally: backslashes escaped, no line taken for a request. */
function roff(text: string): string {
  return text.replaceAll('\\', '\\e').replaceAll('-', '\\-').replace(/^[.']/gm, '\\&$&');
}

function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

function example(lines: readonly string[]): string[] {
  return ['.PP', 'Examples:', '.RS', '.nf', ...lines.map(roff), '.fi', '.RE'];
}

function commandSection(help: Help, command: Command): string[] {
  const path = commandPath(command);
  const lines = [`.SS "${roff(help.commandUsage(command))}"`];
  lines.push(roff(command.description()));
  for (const option of help.visibleOptions(command)) {
    lines.push('.TP', `.B ${roff(option.flags)}`, roff(option.description));
  }
  const examples = EXAMPLES[path];
  if (examples) lines.push(...example(path === 'scan' ? [...examples, ...nmapSpellings()] : examples));
  return [
    ...lines,
    ...help
      .visibleCommands(command)
      .filter((c) => c.name() !== 'help')
      .flatMap((c) => commandSection(help, c)),
  ];
}

/** portwarden(1) in roff, generated from the same commander definitions and examples as `--help`. */
export function manPage(program: Command, version: string): string {
  const help = new Help();
  const commands = help.visibleCommands(program).filter((c) => c.name() !== 'help');
  return [
    `.TH PORTWARDEN 1 "" "portwarden ${roff(version)}" "User Commands"`,
    '.SH NAME',
    `portwarden \\- ${roff(program.description())}`,
    '.SH SYNOPSIS',
    '.B portwarden',
    '[\\fIoptions\\fR] \\fIcommand\\fR [\\fIarguments\\fR]',
    '.SH OPTIONS',
    ...help.visibleOptions(program).flatMap((o) => ['.TP', `.B ${roff(o.flags)}`, roff(o.description)]),
    '.SH COMMANDS',
    ...commands.flatMap((c) => commandSection(help, c)),
    '.SH EXIT STATUS',
    ...EXIT_MEANINGS.flatMap(([code, meaning]) => ['.TP', `.B ${code}`, roff(meaning)]),
    '.SH ENVIRONMENT',
    '.TP',
    '.B NO_COLOR, FORCE_COLOR, TERM',
    roff('colour with --color=auto (the default): NO_COLOR or TERM=dumb turn it off, FORCE_COLOR (not 0) on'),
    '.TP',
    '.B PORTWARDEN_DEBUG',
    roff('1 prints the stack of an internal error'),
    '',
  ].join('\n');
}
