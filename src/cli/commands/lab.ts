import type { Command } from 'commander';
import { PortwardenError } from '../../errors.ts';
import { toJson, type CliContext } from '../context.ts';

/**
 * Hidden helpers that `verify` runs inside its namespaces: servers for port forwards and FTP, and an
 * FTP client. Not for users; they exist as verbs so the lab needs nothing but this binary.
 */
export function registerLab(program: Command, ctx: CliContext): void {
  program
    .command('lab-server', { hidden: true })
    .argument('<specs...>', 'tcp:ADDR:PORT | udp:ADDR:PORT | ftp:ADDR:PORT[:FROM-TO]')
    .action(async (specs: string[]) => {
      const { parseServerSpec, startServer } = await import('../../lab/servers.ts');
      for (const text of specs) {
        let spec;
        try {
          spec = parseServerSpec(text);
        } catch (error) {
          throw new PortwardenError('OPTION_INVALID', (error as Error).message, {
            hint: 'e.g. tcp:127.0.0.1:8080',
          });
        }
        await startServer(spec);
      }
      ctx.out('ready');
      // Serve until killed; bounded by the lab, which kills every process it started.
      await new Promise(() => undefined);
    });
  program
    .command('lab-ftp', { hidden: true })
    .argument('<port>')
    .argument('<hosts...>')
    .action(async (port: string, hosts: string[]) => {
      const { ftpClient } = await import('../../lab/servers.ts');
      const results = [];
      for (const host of hosts.slice(0, 8)) {
        for (const mode of ['passive', 'active'] as const)
          results.push({ host, ...(await ftpClient(host, Number(port), mode)) });
      }
      ctx.out(toJson(results));
    });
}
