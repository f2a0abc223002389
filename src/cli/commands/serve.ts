import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { Option, type Command } from 'commander';
import type { AuditData } from '../../audit/run.ts';
import { PortwardenError } from '../../errors.ts';
import { toJson, type CliContext } from '../context.ts';
import { numberOption } from '../options.ts';
import { VERSION } from '../version.ts';
import { readPolicyText } from './policy-file.ts';
import { watchDbPath } from '../../system/state-dir.ts';
import { readUserFile } from '../../system/files.ts';

interface ServeCliOptions {
  host: string;
  port: string;
  db?: string;
  stateDir?: string;
  policy?: string;
  data?: string;
  json?: boolean;
}

async function servedPolicy(options: ServeCliOptions) {
  if (!options.policy) return null;
  const { loadPolicyOrThrow } = await import('../../policy/load.ts');
  const text = readPolicyText(options.policy);
  return { file: options.policy, text, policy: loadPolicyOrThrow(text, options.policy) };
}

/** `--db postgres://...`: fleet mode (the hosts page and the agents' ingest), else null. */
async function fleetServe(options: ServeCliOptions) {
  if (options.db === undefined || !/^postgres(ql)?:\/\//i.test(options.db)) return null;
  return (await import('./serve-fleet.ts')).openFleetServe(options.db, options.host);
}

/** The watch database when there is one; --db naming a missing one is an error. */
async function watchStore(ctx: CliContext, options: ServeCliOptions) {
  const dbPath = watchDbPath(options.db, options.stateDir, ctx.io.env);
  if (options.db !== undefined && !existsSync(dbPath)) {
    throw new PortwardenError('FILE_UNREADABLE', `no watch database at "${dbPath}"`, {
      hint: 'run `portwarden watch` first, or leave out --db',
    });
  }
  const { WatchStore } = await import('../../watch/store.ts');
  return existsSync(dbPath) ? new WatchStore(dbPath) : null;
}

/** Where the audit comes from: captured JSON (--data), else this host, read live. */
async function auditSource(options: ServeCliOptions): Promise<() => Promise<AuditData>> {
  if (options.data === undefined) return (await import('../../audit/run.ts')).readAuditData;
  const path = options.data;
  const hint = 'give the JSON of the audit data (sockets, interfaces, nftJson, ...)';
  const text = readUserFile(path, 'captured data', hint);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new PortwardenError(
      'FILE_UNREADABLE',
      `captured data "${path}" is not JSON: ${(error as Error).message}`,
      {
        hint,
      },
    );
  }
  return () => Promise.resolve(parsed as AuditData);
}

function announce(
  ctx: CliContext,
  options: ServeCliOptions,
  address: string,
  token: string,
  loopback: boolean,
  fleet: boolean,
): void {
  // in fleet mode every request needs the token, loopback GETs too
  const url = loopback && !fleet ? `${address}/` : `${address}/?token=${token}`;
  if (options.json) return ctx.out(toJson({ url, token, loopback, ...(fleet ? { fleet: true } : {}) }));
  ctx.out(`portwarden dashboard: ${url}`);
  ctx.out(
    loopback
      ? `token (for POST requests and scripts): ${token}`
      : `bound beyond loopback: every request needs the token (${token})`,
  );
}

function signalled(): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

async function serveAction(ctx: CliContext, options: ServeCliOptions): Promise<void> {
  const port = numberOption('--port', options.port, { min: 0, max: 65535, integer: true });
  const { buildServer, isLoopback } = await import('../../serve/server.ts');
  const policy = await servedPolicy(options);
  const fleet = await fleetServe(options);
  const store = fleet ? null : await watchStore(ctx, options);
  const auditData = await auditSource(options);
  const token = randomBytes(24).toString('base64url');
  const app = await buildServer({
    host: options.host,
    port,
    token,
    sources: { auditData, store, policy, version: VERSION },
    plugins: fleet ? [fleet.plugin] : [],
    alwaysToken: fleet !== null,
  });
  let address: string;
  try {
    address = await app.listen({ host: options.host, port });
  } catch (error) {
    store?.close();
    await fleet?.close();
    throw new PortwardenError(
      'SOCKET_FAILED',
      `cannot listen on ${options.host}:${port}: ${(error as Error).message}`,
      { hint: 'pick another --port, or stop what uses it (`portwarden ports` shows who)' },
    );
  }
  announce(ctx, options, address, token, isLoopback(options.host), fleet !== null);
  await signalled();
  await app.close();
  store?.close();
  await fleet?.close();
}

export function registerServe(program: Command, ctx: CliContext): void {
  program
    .command('serve')
    .description('local web dashboard: overview, listeners, findings, history, policy, scans, and a JSON API')
    .option(
      '--host <address>',
      'address to bind (loopback by default; elsewhere every request needs the token)',
      '127.0.0.1',
    )
    .option('--port <port>', 'TCP port', '7780')
    .option(
      '--db <file>',
      'the watch database for history and scans (default <state dir>/watch.db if present), or postgres://… for fleet mode',
    )
    .option('--state-dir <dir>', 'state directory (default /var/lib/portwarden, or PORTWARDEN_STATE_DIR)')
    .option('--policy <file>', 'show this policy and its compiled rulesets, and audit against it')
    .addOption(
      new Option('--data <file>', 'serve captured audit data (JSON) instead of this machine').hideHelp(),
    )
    .option('--json', 'print {url, token, loopback} when listening')
    .action((options: ServeCliOptions) => serveAction(ctx, options));
}
