import { ftpClient, parseServerSpec, startServer, type FtpClientResult } from './servers.ts';

/**
 * The verify lab's private worker, started inside a lab namespace as `node worker-entry.js ...`:
 *   server SPEC...        start the servers (tcp|udp|ftp:ADDR:PORT[:FROM-TO]), print "ready", serve
 *                         until killed (the lab kills every process it started)
 *   ftp-client PORT HOST...  one passive and one active FTP session per host (at most 8), printed as JSON
 * Not a user interface: verify is its only caller (see LAB_WORKER in verify/lab.ts).
 */

async function serve(specs: readonly string[]): Promise<void> {
  for (const text of specs) await startServer(parseServerSpec(text));
  process.stdout.write('ready\n');
  await new Promise(() => undefined);
}

async function ftpSessions(port: number, hosts: readonly string[]): Promise<void> {
  const results: (FtpClientResult & { host: string })[] = [];
  for (const host of hosts.slice(0, 8))
    for (const mode of ['passive', 'active'] as const)
      results.push({ host, ...(await ftpClient(host, port, mode)) });
  process.stdout.write(`${JSON.stringify(results)}\n`);
}

async function main(argv: readonly string[]): Promise<void> {
  const [verb, ...rest] = argv;
  if (verb === 'server') return serve(rest);
  if (verb === 'ftp-client') return ftpSessions(Number(rest[0]), rest.slice(1));
  throw new Error(`unknown lab worker verb "${verb ?? ''}" (server | ftp-client)`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`lab worker: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 2;
});
