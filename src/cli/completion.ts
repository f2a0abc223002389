import { Help, type Command } from 'commander';

/** A command as completion needs it: its name, option spellings and visible subcommands. */
export interface CommandSpec {
  name: string;
  options: string[];
  commands: CommandSpec[];
}

/** The visible command tree, from the same commander definitions `--help` prints. */
export function commandSpec(command: Command): CommandSpec {
  const help = new Help();
  return {
    name: command.name(),
    options: help
      .visibleOptions(command)
      .flatMap((o) => [o.short, o.long])
      .filter((flag): flag is string => typeof flag === 'string'),
    commands: help
      .visibleCommands(command)
      .filter((c) => c.name() !== 'help')
      .map(commandSpec),
  };
}

/** Every command path with the words that may follow it: '' -> verbs, 'policy' -> check schema init. */
function wordsByPath(spec: CommandSpec, path = ''): [string, string[]][] {
  const here: [string, string[]] = [path, [...spec.commands.map((c) => c.name), ...spec.options]];
  const below = spec.commands.flatMap((c) => wordsByPath(c, path === '' ? c.name : `${path} ${c.name}`));
  return [here, ...below];
}

function bash(spec: CommandSpec): string {
  const paths = wordsByPath(spec);
  const cases = paths.map(([path, words]) => `    "${path}") words="${words.join(' ')}" ;;`);
  return [
    '# bash completion for portwarden: eval "$(portwarden completion bash)"',
    '_portwarden() {',
    '  local cur="${COMP_WORDS[COMP_CWORD]}" path="" words="" candidate i',
    `  local paths="|${paths.map(([p]) => p).join('|')}|"`,
    '  for ((i = 1; i < COMP_CWORD; i++)); do',
    '    candidate="${path:+$path }${COMP_WORDS[i]}"',
    '    [[ "$paths" == *"|$candidate|"* ]] && path="$candidate"',
    '  done',
    '  case "$path" in',
    ...cases,
    '  esac',
    '  COMPREPLY=($(compgen -W "$words" -- "$cur"))',
    '}',
    'complete -o default -F _portwarden portwarden',
    '',
  ].join('\n');
}

function zsh(spec: CommandSpec): string {
  return [
    '# zsh completion for portwarden: eval "$(portwarden completion zsh)"',
    'autoload -U +X bashcompinit && bashcompinit',
    bash(spec).replace(/^# bash completion.*\n/, ''),
  ].join('\n');
}

function fishLines(spec: CommandSpec, parents: string[]): string[] {
  const condition =
    parents.length === 0
      ? '__fish_use_subcommand'
      : `__fish_seen_subcommand_from ${parents.at(-1) ?? ''}${spec.commands.length > 0 ? `; and not __fish_seen_subcommand_from ${spec.commands.map((c) => c.name).join(' ')}` : ''}`;
  const lines = spec.commands.map((c) => `complete -c portwarden -f -n '${condition}' -a ${c.name}`);
  for (const flag of spec.options) {
    const option = flag.startsWith('--') ? `-l ${flag.slice(2)}` : `-s ${flag.slice(1)}`;
    lines.push(`complete -c portwarden -n '${condition}' ${option}`);
  }
  return [...lines, ...spec.commands.flatMap((c) => fishLines(c, [...parents, c.name]))];
}

/** The completion script for a shell, generated from the command tree. */
export function completionScript(shell: 'bash' | 'zsh' | 'fish', spec: CommandSpec): string {
  if (shell === 'bash') return bash(spec);
  if (shell === 'zsh') return zsh(spec);
  return [
    '# fish completion for portwarden: portwarden completion fish | source',
    ...fishLines(spec, []),
    '',
  ].join('\n');
}
