import type { Command } from 'commander';
import type * as PolicyEditModule from '../../programs/policy-edit.ts';
import type { ProgramsGateOptions } from '../../programs/gatekeeper.ts';
import type { ReachOf } from '../../audit/reachability.ts';
import type { Socket } from '../../inventory/types.ts';
import { PortwardenError } from '../../errors.ts';
import { watchDbPath } from '../../system/state-dir.ts';
import { numberOption } from '../options.ts';
import type { AlertSink } from '../../watch/alerts.ts';
import type { WatchStore as Store } from '../../watch/store.ts';
import type { Policy } from '../../policy/types.ts';
import type { CliContext } from '../context.ts';
import type * as AlertsModule from '../../watch/alerts.ts';
import { readPolicyFile } from './policy-file.ts';

interface WatchCliOptions {
  interval: string;
  db?: string;
  stateDir?: string;
  policy?: string;
  webhook?: string;
  syslog?: boolean;
  retentionDays: string;
  snapshotEvery: string;
  kernelLog: string;
  scanThreshold: string;
  samples?: string;
  netns?: string;
  quiet?: boolean;
  json?: boolean;
  programs?: string;
  programsTimeout: string;
  programAlerts: boolean;
  programsPoll: string;
}

function number(name: string, value: string, min: number, max: number): number {
  return numberOption(name, value, { min, max });
}

/** The numeric options, checked and in milliseconds. */
function timing(options: WatchCliOptions) {
  return {
    intervalMs: number('--interval', options.interval, 0.1, 3600) * 1000,
    retentionMs: number('--retention-days', options.retentionDays, 0.001, 3650) * 86_400_000,
    snapshotEveryMs: number('--snapshot-every', options.snapshotEvery, 1, 86_400) * 1000,
    scanThreshold: number('--scan-threshold', options.scanThreshold, 2, 65_535),
    ...(options.samples === undefined ? {} : { maxSamples: number('--samples', options.samples, 1, 1e9) }),
  };
}

type Alerts = typeof AlertsModule;

/**
 * The firewall's answer for each sample's listeners, read in the watched namespace (the host's, or an
 * `ip netns` name); a namespace given by pid is not read: its listeners are `unknown`.
 */
async function watchReach(sockets: readonly Socket[], netns: string | undefined): Promise<ReachOf> {
  const { readReachability } = await import('../../audit/run.ts');
  const { reachabilityUnknown } = await import('../../audit/reachability.ts');
  if (netns !== undefined && /^\d+$/.test(netns))
    return reachabilityUnknown(
      `the ruleset of the namespace of pid ${netns} is not read (give an \`ip netns\` name)`,
    );
  return readReachability(sockets, netns === undefined ? {} : { netns });
}

/** Where alerts go: stdout (JSON, or a line for a terminal) unless --quiet, syslog, a webhook. */
function alertSinks(ctx: CliContext, options: WatchCliOptions, alerts: Alerts) {
  const asJson = options.json === true || ctx.io.stdout.isTTY !== true;
  const stdout = alerts.stdoutSink((line) => {
    if (asJson) return ctx.out(line);
    const event = JSON.parse(line) as { at: string; kind: string; message: string };
    ctx.out(`${event.at}  ${event.kind.padEnd(15)}  ${event.message}`);
  });
  const webhook = (url: string) =>
    alerts.webhookSink({
      url,
      onDrop: (_e, why) => ctx.err(`watch: alert dropped: ${why}`),
      onAbandon: (count) =>
        ctx.err(
          `watch: stopping: ${count} alert(s) not delivered to the webhook within 4 s were dropped (they are in the database unless it reported a storage failure)`,
        ),
    });
  return [
    ...(options.quiet ? [] : [stdout]),
    ...(options.syslog ? [alerts.syslogSink()] : []),
    ...(options.webhook ? [webhook(options.webhook)] : []),
  ];
}

/** Runs `work` with an AbortSignal that SIGTERM and SIGINT fire; the handlers go when it ends. */
async function untilSignalled<T>(work: (signal: AbortSignal, stop: () => void) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  try {
    return await work(controller.signal, stop);
  } finally {
    process.removeListener('SIGTERM', stop);
    process.removeListener('SIGINT', stop);
  }
}

async function watchAction(ctx: CliContext, options: WatchCliOptions): Promise<void> {
  const times = timing(options);
  if (options.webhook !== undefined && !/^https?:\/\//.test(options.webhook)) {
    throw new PortwardenError('OPTION_INVALID', `--webhook "${options.webhook}" is not an http(s) URL`, {
      hint: 'e.g. --webhook http://127.0.0.1:9000/portwarden',
    });
  }
  if (options.programs !== undefined) {
    const { PROGRAMS_MODES } = await import('../../programs/types.ts');
    if (!PROGRAMS_MODES.some((m) => m === options.programs))
      throw new PortwardenError('OPTION_INVALID', `--programs "${options.programs}" is not a mode`, {
        hint: `modes: ${PROGRAMS_MODES.join(', ')}`,
      });
    number('--programs-timeout', options.programsTimeout, 1, 86_400);
    number('--programs-poll', options.programsPoll, 5, 10_000);
  }
  const policy = options.policy ? await readPolicyFile(options.policy) : undefined;
  const [{ WatchStore }, alerts, { runWatch }, { listSockets }] = await Promise.all([
    import('../../watch/store.ts'),
    import('../../watch/alerts.ts'),
    import('../../watch/daemon.ts'),
    import('../../inventory/list.ts'),
  ]);
  const store = new WatchStore(watchDbPath(options.db, options.stateDir, ctx.io.env), { exclusive: true });
  const sinks = alertSinks(ctx, options, alerts);
  const onSample = (s: { samples: number; listeners: number; ms: number }): void =>
    void ctx.io.stderr.write(`\rwatch: sample ${s.samples}, ${s.listeners} listeners, ${s.ms} ms `);
  try {
    await untilSignalled(async (signal, stop) => {
      const programs = await startPrograms(ctx, options, store, sinks, policy, signal);
      try {
        await runWatch({
          store,
          sample: async () => (await listSockets(options.netns ? { netns: options.netns } : {})).sockets,
          reach: (sockets) => watchReach(sockets, options.netns),
          ...times,
          ...(policy ? { policy } : {}),
          sinks,
          kernelLog: options.kernelLog,
          signal,
          onError: (error) => ctx.err(`watch: ${error.message}`),
          ...(ctx.progress ? { onSample } : {}),
        });
      } finally {
        // with --programs, the listener side stops early only when asked to (--samples)
        stop();
        await programs.done;
      }
    });
  } finally {
    store.close();
  }
}

type PolicyEdit = typeof PolicyEditModule;
type AlwaysHandler = NonNullable<ProgramsGateOptions['onAlways']>;

/** An "always" answer becomes a `programs:` rule in the policy file (comments kept, written atomically). */
function alwaysIntoPolicy(ctx: CliContext, policyFile: string, edit: PolicyEdit): AlwaysHandler {
  return async (decision, program) => {
    const { readFileSync, statSync } = await import('node:fs');
    const { writeFileAtomic } = await import('../../system/atomic-write.ts');
    const text = edit.addProgramRules(readFileSync(policyFile, 'utf8'), [
      {
        path: decision.exe,
        rules: [edit.ruleOfDecision(decision)],
        comment: `allowed on prompt (watch --programs); sha256 ${(program.sha256 ?? '?').slice(0, 16)}`,
      },
    ]);
    writeFileAtomic(policyFile, text, statSync(policyFile).mode & 0o777);
    ctx.err(
      `watch: added ${decision.exe} to programs: in ${policyFile}; apply it with \`portwarden apply ${policyFile}\``,
    );
  };
}

/** `--programs ask|learn|enforce`: the per-program gate beside the listener watch (src/programs/). */
async function startPrograms(
  ctx: CliContext,
  options: WatchCliOptions,
  store: Store,
  sinks: readonly AlertSink[],
  policy: Policy | undefined,
  signal: AbortSignal,
): Promise<{ done: Promise<void> }> {
  if (options.programs === undefined) return { done: Promise.resolve() };
  const { PROGRAMS_MODES } = await import('../../programs/types.ts');
  const mode = PROGRAMS_MODES.find((m) => m === options.programs);
  if (!mode)
    throw new PortwardenError('OPTION_INVALID', `--programs "${options.programs}" is not a mode`, {
      hint: `modes: ${PROGRAMS_MODES.join(', ')}`,
    });
  const promptTimeoutMs = number('--programs-timeout', options.programsTimeout, 1, 86_400) * 1000;
  const pollMs = number('--programs-poll', options.programsPoll, 5, 10_000);
  const [{ runProgramsGate }, { kernelGateIo }, { ProgramStore }, edit] = await Promise.all([
    import('../../programs/gatekeeper.ts'),
    import('../../programs/nft-io.ts'),
    import('../../programs/store.ts'),
    import('../../programs/policy-edit.ts'),
  ]);
  const policyFile = options.policy;
  let ready: () => void = () => undefined;
  const started = new Promise<void>((resolve) => (ready = resolve));
  const running = runProgramsGate({
    mode,
    store: new ProgramStore(store.db),
    io: kernelGateIo(),
    policy: policy ?? null,
    promptTimeoutMs,
    pollMs,
    retentionMs: number('--retention-days', options.retentionDays, 0.001, 3650) * 86_400_000,
    ...(options.programAlerts ? { alert: (event) => sinks.forEach((s) => s.send(event)) } : {}),
    ...(policyFile ? { onAlways: alwaysIntoPolicy(ctx, policyFile, edit) } : {}),
    onReady: () => ready(),
    onError: (error) => ctx.err(`watch: programs: ${error.message}`),
    signal,
  });
  await Promise.race([started, running]);
  ctx.err(
    `watch: programs gate loaded (mode ${mode}): table inet portwarden_programs; it stays loaded when watch stops${mode === 'learn' ? '' : ' (undecided programs stay blocked: nft delete table inet portwarden_programs opens them)'}`,
  );
  // a promise in an object: returned bare, the async function would wait for the gate to stop
  return { done: running };
}

export function registerWatch(program: Command, ctx: CliContext): void {
  program
    .command('watch')
    .description(
      'record listener changes and knocks in SQLite and alert on them (a daemon; SIGTERM stops it)',
    )
    .option('--interval <seconds>', 'sample the inventory this often', '2')
    .option('--db <file>', 'the SQLite database (default <state dir>/watch.db)')
    .option('--state-dir <dir>', 'state directory (default /var/lib/portwarden, or PORTWARDEN_STATE_DIR)')
    .option('--policy <file>', 'flag listeners this policy does not allow (policy drift)')
    .option('--webhook <url>', 'POST every event as JSON here (retried with backoff)')
    .option('--syslog', 'also log events to syslog/journald (logger -t portwarden)')
    .option('--retention-days <days>', 'delete events, snapshots and knocks older than this', '30')
    .option('--snapshot-every <seconds>', 'store the whole listener set this often, for history', '300')
    .option('--kernel-log <source>', 'knock log: auto | journal | kmsg | none | a file to follow', 'auto')
    .option(
      '--scan-threshold <ports>',
      'distinct ports from one source within 60 s that make a port scan',
      '10',
    )
    .option('--samples <n>', 'stop after n samples')
    .option('--netns <name|pid>', 'watch the listeners of another network namespace')
    .option('--quiet', 'no events on stdout')
    .option('--json', 'events as JSON lines (the default when stdout is not a terminal)')
    .option('--programs <mode>', 'per-program outbound firewall: ask | learn | enforce (see README)')
    .option('--programs-timeout <seconds>', 'an unanswered prompt is denied after this long', '30')
    .option('--no-program-alerts', 'no alerts for prompts and denials (they are still stored)')
    .option('--programs-poll <ms>', 'read the gate this often (a held SYN is sent again after 1 s)', '200')
    .action((options: WatchCliOptions) => watchAction(ctx, options));
}
