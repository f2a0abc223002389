import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { PortwardenError } from '../../errors.ts';
import { toJson, type CliContext } from '../context.ts';
import { numberOption } from '../options.ts';
import { VERSION } from '../version.ts';
import { readPolicyFile } from './policy-file.ts';

interface AgentCliOptions {
  server: string;
  token?: string;
  tokenFile?: string;
  policy?: string;
  interval: string;
  watch?: boolean;
  watchInterval: string;
  outbox?: string;
  stateDir?: string;
  once?: boolean;
  insecureHttp?: boolean;
  json?: boolean;
}

/** The server URL: http(s), and https unless the server is on this machine (the token travels in it). */
function serverUrl(value: string, insecure: boolean): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new PortwardenError('OPTION_INVALID', `--server "${value}" is not a URL`, {
      hint: 'e.g. --server https://portwarden.example:7780',
    });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new PortwardenError('OPTION_INVALID', `--server "${value}" is not http(s)`, {
      hint: 'e.g. --server https://portwarden.example:7780',
    });
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname) || /^127\./.test(url.hostname);
  if (url.protocol === 'http:' && !loopback && !insecure)
    throw new PortwardenError('OPTION_INVALID', `--server "${value}" would send the host token unencrypted`, {
      hint: 'use https:// (serve --tls-cert, or a reverse proxy), or --insecure-http on a network you trust',
    });
  return url.toString();
}

function readToken(options: AgentCliOptions, env: CliContext['io']['env']): string {
  const token = options.tokenFile
    ? (() => {
        try {
          return readFileSync(options.tokenFile, 'utf8').trim();
        } catch (error) {
          throw new PortwardenError(
            'FILE_UNREADABLE',
            `cannot read --token-file "${options.tokenFile}": ${(error as Error).message}`,
          );
        }
      })()
    : (options.token ?? env['PORTWARDEN_AGENT_TOKEN']);
  if (!token)
    throw new PortwardenError('OPTION_INVALID', 'the agent needs its host token', {
      hint: 'give --token-file FILE (or PORTWARDEN_AGENT_TOKEN); `portwarden fleet add-host NAME` prints one',
    });
  return token;
}

async function agentAction(ctx: CliContext, options: AgentCliOptions): Promise<void> {
  const server = serverUrl(options.server, options.insecureHttp === true);
  const token = readToken(options, ctx.io.env);
  const intervalMs = numberOption('--interval', options.interval, { min: 1, max: 86_400 }) * 1000;
  const watchIntervalMs =
    numberOption('--watch-interval', options.watchInterval, { min: 0.1, max: 3600 }) * 1000;
  const policy = options.policy ? await readPolicyFile(options.policy) : null;
  const { stateDir } = await import('../../system/state-dir.ts');
  const outboxPath = options.outbox ?? join(stateDir(options.stateDir, ctx.io.env), 'agent-outbox.db');
  const [{ Outbox }, { runAgent }, { readAuditData, auditFromData }, { listSockets }] = await Promise.all([
    import('../../fleet/outbox.ts'),
    import('../../fleet/agent.ts'),
    import('../../audit/run.ts'),
    import('../../inventory/list.ts'),
  ]);
  const outbox = new Outbox(outboxPath);
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  try {
    const last = await runAgent({
      server,
      token,
      version: VERSION,
      outbox,
      audit: async () => {
        const data = await readAuditData();
        return { data, report: auditFromData(data, { policy, host: hostname(), env: ctx.io.env }) };
      },
      ...(options.watch ? { sample: async () => (await listSockets({})).sockets } : {}),
      intervalMs,
      watchIntervalMs,
      ...(options.once ? { maxSnapshots: 1 } : {}),
      signal: controller.signal,
      onError: (error) => ctx.err(`agent: ${error.message}`),
      onUpload: (outcome, pending) => {
        if (options.json) ctx.out(toJson({ at: new Date().toISOString(), ...outcome, pending }));
        else if (!outcome.ok)
          ctx.err(
            `agent: ${outcome.offline ? 'server unreachable' : `server refused (${outcome.status})`}: ${outcome.message}; ${pending.snapshots} snapshots and ${pending.events} events kept in ${outboxPath}`,
          );
      },
    });
    if (last && !last.ok) {
      if (!last.offline && (last.status === 401 || last.status === 400))
        throw new PortwardenError('OPTION_INVALID', `the server refused the upload: ${last.message}`, {
          hint:
            last.status === 401
              ? 'check the token: `portwarden fleet add-host NAME --rotate` makes a new one'
              : 'upgrade the agent or the server so they speak the same version',
        });
      if (options.once) ctx.exitCode = 3;
    } else if (options.once && !options.json) ctx.out(`agent: uploaded to ${server}`);
  } finally {
    process.removeListener('SIGTERM', stop);
    process.removeListener('SIGINT', stop);
    outbox.close();
  }
}

export function registerAgent(program: Command, ctx: CliContext): void {
  program
    .command('agent')
    .description(
      'audit this machine and ship snapshots and events to a fleet server (works offline; never takes commands)',
    )
    .requiredOption(
      '--server <url>',
      'the fleet server, https://… (http only to this machine or with --insecure-http)',
    )
    .option(
      '--token <token>',
      "this host's token (visible in ps: prefer --token-file or PORTWARDEN_AGENT_TOKEN)",
    )
    .option('--token-file <file>', "read this host's token from FILE")
    .option('--policy <file>', 'audit against this policy (drift is counted against it)')
    .option('--interval <seconds>', 'audit and send a snapshot this often', '60')
    .option('--watch', 'also sample listeners and send opened/closed events between snapshots')
    .option('--watch-interval <seconds>', 'with --watch, sample this often', '2')
    .option('--outbox <file>', 'the on-disk outbox (default <state dir>/agent-outbox.db)')
    .option('--state-dir <dir>', 'state directory (default /var/lib/portwarden, or PORTWARDEN_STATE_DIR)')
    .option('--once', 'one snapshot, upload what is pending, exit (3 when the server cannot be reached)')
    .option('--insecure-http', 'allow http:// to another machine (the token travels in clear)')
    .option('--json', 'one JSON line per upload attempt')
    .action((options: AgentCliOptions) => agentAction(ctx, options));
}
