import { Argument, type Command } from 'commander';
import { commandSpec, completionScript } from '../completion.ts';
import type { CliContext } from '../context.ts';

type Shell = 'bash' | 'zsh' | 'fish';

export function registerCompletion(program: Command, ctx: CliContext): void {
  program
    .command('completion')
    .description('print a shell completion script (bash, zsh or fish) for commands and options')
    .addArgument(new Argument('<shell>', 'bash | zsh | fish').choices(['bash', 'zsh', 'fish']))
    .action((shell: Shell) => ctx.out(completionScript(shell, commandSpec(program))));
}
