import type { Command } from 'commander';
import type pg from 'pg';
import { PortwardenError } from '../../errors.ts';
import { toJson, type CliContext } from '../context.ts';
import { numberOption } from '../options.ts';

interface DbOptions {
  db: string;
  json?: boolean;
}

/** Opens the fleet database (migrated), runs fn, and closes it. */
async function withFleet<T>(options: DbOptions, fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const { isPostgresUrl, openPool, checkConnection, migrate } = await import('../../fleet/db.ts');
  if (!isPostgresUrl(options.db))
    throw new PortwardenError('OPTION_INVALID', `--db "${options.db}" is not a postgres:// URL`, {
      hint: 'the fleet lives in PostgreSQL: --db postgres://user@host/database',
    });
  const pool = openPool(options.db, 2);
  try {
    await checkConnection(pool, options.db);
    await migrate(pool);
    return await fn(pool);
  } finally {
    await pool.end();
  }
}

function printListeners(
  ctx: CliContext,
  json: boolean | undefined,
  rows: readonly {
    host: string;
    group: string;
    protocol: string;
    localAddress: string;
    localPort: number;
    exposure: string;
    reachable: string;
    service: string | null;
    process: string | null;
  }[],
): void {
  if (json) return ctx.out(toJson({ listeners: rows }));
  if (rows.length === 0) return ctx.out('no host matches');
  for (const r of rows)
    ctx.out(
      `${r.host.padEnd(24)} ${(r.group || '-').padEnd(12)} ${r.protocol}/${r.localPort} on ${r.localAddress} (bound to ${r.exposure}, reachable: ${r.reachable}) ${r.service ?? '-'} ${r.process ?? '-'}`,
    );
}

function portArgument(spec: string): { protocol: 'tcp' | 'udp'; port: number } {
  const match = /^(?:(tcp|udp)\/)?(\d+)$/i.exec(spec.trim());
  if (!match)
    throw new PortwardenError('PORT_SPEC_INVALID', `"${spec}" is not a port`, {
      hint: 'e.g. tcp/23, udp/161 or 23',
    });
  const protocol = (match[1] ?? 'tcp').toLowerCase() === 'udp' ? 'udp' : 'tcp';
  return { protocol, port: numberOption('port', match[2] ?? '', { min: 0, max: 65535, integer: true }) };
}

function sinceArgument(value: string): string {
  const relative = /^(\d+)d$/.exec(value);
  if (relative) return new Date(Date.now() - Number(relative[1]) * 86_400_000).toISOString();
  if (Number.isNaN(Date.parse(value)))
    throw new PortwardenError('OPTION_INVALID', `--since "${value}" is not a date`, {
      hint: 'e.g. --since 2026-11-30, --since 2026-11-30T08:00:00Z or --since 7d',
    });
  return new Date(value).toISOString();
}

const withDb = (c: Command): Command =>
  c.requiredOption('--db <url>', 'the fleet database, postgres://…').option('--json', 'JSON output');

/** `fleet add-host` and `fleet remove-host`: who may send, with a token only the agent keeps. */
function registerHostCommands(fleet: Command, ctx: CliContext): void {
  withDb(
    fleet
      .command('add-host')
      .description('register a host and print its agent token (only a hash is stored)'),
  )
    .argument('<name>', 'the host name the dashboard shows')
    .option('--group <group>', 'a host group (e.g. web), for "what changed on the web tier"', '')
    .option('--rotate', 'replace the token of a host already registered')
    .action(async (name: string, options: DbOptions & { group: string; rotate?: boolean }) => {
      const { FleetStore } = await import('../../fleet/store.ts');
      const token = await withFleet(options, (pool) =>
        new FleetStore(pool).addHost(name, options.group, { rotate: options.rotate === true }),
      );
      if (options.json) ctx.out(toJson({ host: name, group: options.group, token }));
      else {
        // stdout is the token alone, so `> host.token` makes a token file
        ctx.out(token);
        ctx.err(`give it to the agent on ${name}: portwarden agent --server https://… --token-file FILE`);
      }
    });
  withDb(fleet.command('remove-host').description('forget a host, its listeners, history and events'))
    .argument('<name>', 'the host name')
    .action(async (name: string, options: DbOptions) => {
      const { FleetStore } = await import('../../fleet/store.ts');
      const removed = await withFleet(options, (pool) => new FleetStore(pool).removeHost(name));
      if (!removed) throw new PortwardenError('OPTION_INVALID', `no host "${name}" is registered`);
      ctx.out(options.json ? toJson({ removed: name }) : `removed ${name}`);
    });
}

/** `fleet hosts`, `exposing` and `running`: the fleet questions about hosts and their listeners. */
function registerQuestionCommands(fleet: Command, ctx: CliContext): void {
  withDb(fleet.command('hosts').description('every host: last seen, listeners, drift, open findings'))
    .option('--group <group>', 'only this group')
    .action(async (options: DbOptions & { group?: string }) => {
      const { listHosts } = await import('../../fleet/queries.ts');
      const hosts = await withFleet(options, (pool) => listHosts(pool, options.group));
      if (options.json) return ctx.out(toJson({ hosts }));
      for (const h of hosts)
        ctx.out(
          `${h.name.padEnd(24)} ${(h.group || '-').padEnd(12)} last seen ${h.lastSeen ?? 'never'}  ${h.listeners} listeners, ${h.exposed} exposed, drift ${h.drift}, ${h.openFindings} open findings`,
        );
    });
  withDb(fleet.command('exposing').description('which hosts expose a port beyond loopback'))
    .argument('<port>', 'tcp/23, udp/161, or a number (tcp)')
    .option('--reachable', "only where the host's firewall lets a peer through (yes or unknown)")
    .action(async (spec: string, options: DbOptions & { reachable?: boolean }) => {
      const { protocol, port } = portArgument(spec);
      const { hostsExposing } = await import('../../fleet/queries.ts');
      printListeners(
        ctx,
        options.json,
        await withFleet(options, (pool) =>
          hostsExposing(pool, protocol, port, { reachable: options.reachable === true }),
        ),
      );
    });
  withDb(
    fleet.command('running').description('who runs a service or program, optionally bound to one address'),
  )
    .argument('<name>', 'a service (redis) or a process name (redis-server)')
    .option('--address <address>', 'only listeners bound to this address (0.0.0.0: every IPv4 address)')
    .action(async (name: string, options: DbOptions & { address?: string }) => {
      const { hostsRunning } = await import('../../fleet/queries.ts');
      printListeners(
        ctx,
        options.json,
        await withFleet(options, (pool) => hostsRunning(pool, name, options.address)),
      );
    });
}

/** `fleet changes --since`: what changed on a host or group. */
function registerChangesCommand(fleet: Command, ctx: CliContext): void {
  withDb(
    fleet.command('changes').description('what changed (listeners opened and closed, events) since a date'),
  )
    .requiredOption('--since <date>', 'ISO 8601 date or time, or Nd (days ago)')
    .option('--group <group>', 'only hosts of this group')
    .option('--host <name>', 'only this host')
    .action(async (options: DbOptions & { since: string; group?: string; host?: string }) => {
      const { changesSince } = await import('../../fleet/queries.ts');
      const since = sinceArgument(options.since);
      const events = await withFleet(options, (pool) =>
        changesSince(pool, {
          since,
          ...(options.group ? { group: options.group } : {}),
          ...(options.host ? { host: options.host } : {}),
        }),
      );
      if (options.json) return ctx.out(toJson({ events }));
      for (const e of events) ctx.out(`${e.at}  ${e.host.padEnd(20)} ${e.kind.padEnd(16)} ${e.message}`);
    });
}

export function registerFleet(program: Command, ctx: CliContext): void {
  const fleet = program
    .command('fleet')
    .description('the fleet in PostgreSQL: register hosts, ask which hosts expose what');
  registerHostCommands(fleet, ctx);
  registerQuestionCommands(fleet, ctx);
  registerChangesCommand(fleet, ctx);
}
