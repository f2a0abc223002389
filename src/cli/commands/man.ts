import type { Command } from 'commander';
import type { CliContext } from '../context.ts';
import { manPage } from '../man.ts';
import { VERSION } from '../version.ts';

export function registerMan(program: Command, ctx: CliContext): void {
  program
    .command('man')
    .description('print the portwarden(1) manual page (roff), generated from the same definitions as --help')
    .action(() => ctx.out(manPage(program, VERSION)));
}
