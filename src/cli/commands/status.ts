import type { Command } from 'commander';
import type { ApplyStatus } from '../../apply/status.ts';
import type { HistoryEntry, PersistedState } from '../../apply/state.ts';
import { toJson, type CliContext } from '../context.ts';

interface StatusCliOptions {
  stateDir?: string;
  etcDir?: string;
  via?: string;
  json?: boolean;
}

const STATE_DIR_HELP = 'state directory (default /var/lib/portwarden, or PORTWARDEN_STATE_DIR)';
const ETC_DIR_HELP = 'the /etc to write boot files under (default /etc, or PORTWARDEN_ETC_DIR)';

async function dirOf(ctx: CliContext, options: StatusCliOptions): Promise<string> {
  const { stateDir } = await import('../../system/state-dir.ts');
  return stateDir(options.stateDir, ctx.io.env);
}

function appliedLine(status: ApplyStatus): string {
  const c = status.current;
  if (!c) return 'applied:   nothing applied by portwarden (in this state directory)';
  const kept = c.confirmedAt ? `confirmed ${c.confirmedAt}` : 'not confirmed yet';
  return `applied:   ${c.id} from ${c.policyFile} (${c.policyHash}), ${c.backend}, at ${c.appliedAt}, ${kept}`;
}

function driftLines(status: ApplyStatus): string[] {
  if (status.drift === null) return ['drift:     unknown'];
  if (!status.drift.drifted) return ['drift:     none: the loaded ruleset is what was applied'];
  return [
    'drift:     YES: the loaded ruleset differs from what was applied (applied -> loaded):',
    status.drift.diff.trimEnd(),
  ];
}

function statusText(status: ApplyStatus): string {
  const loaded = status.loaded === null ? 'unknown (needs root)' : status.loaded ? 'loaded' : 'NOT loaded';
  const p = status.pending;
  const persisted = status.persisted;
  return [
    `ruleset:   portwarden's ${status.current?.backend === 'iptables' ? 'PW- chains' : 'table inet portwarden'} ${loaded}`,
    appliedLine(status),
    ...driftLines(status),
    p
      ? `pending:   ${p.id} (${p.policyFile}) is rolled back in ${p.secondsLeft} s unless you run \`portwarden confirm\``
      : 'pending:   no confirmation pending',
    ...(status.kernel.length === 0
      ? ['kernel:    no kernel settings managed']
      : status.kernel.map(
          (k) =>
            `kernel:    ${k.name} = ${k.now ?? '(absent)'}${k.now === k.wanted ? '' : ` (WANTED ${k.wanted})`}: ${k.reason}`,
        )),
    persisted
      ? `persisted: ${persisted.isCurrent ? 'yes' : `an earlier apply (${persisted.id}); run \`portwarden persist\` for this one`}: ${persisted.files.join(', ')}`
      : 'persisted: no (not loaded at boot by portwarden)',
    ...status.problems.map((problem) => `problem:   ${problem}`),
  ].join('\n');
}

async function statusAction(ctx: CliContext, options: StatusCliOptions): Promise<void> {
  const { applyStatus } = await import('../../apply/status.ts');
  const status = await applyStatus(await dirOf(ctx, options));
  ctx.out(options.json ? toJson(status) : statusText(status));
  // drift is a mismatch found by a check, like verify's: exit 1
  if (status.drift?.drifted) ctx.exitCode = 1;
}

function historyLine(h: HistoryEntry): string {
  const extra = h.deadline ? `deadline ${h.deadline}` : (h.reason ?? '');
  return [
    h.at.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
    h.event.padEnd(11),
    h.id,
    h.backend,
    h.policyFile ?? '-',
    extra,
  ]
    .filter((part) => part !== '')
    .join('  ');
}

async function historyAction(ctx: CliContext, options: StatusCliOptions): Promise<void> {
  const { readHistory } = await import('../../apply/state.ts');
  const entries = readHistory(await dirOf(ctx, options));
  if (options.json) ctx.out(toJson(entries));
  else ctx.out(entries.length === 0 ? 'no history yet' : entries.map(historyLine).join('\n'));
}

function persistedText(verb: string, state: PersistedState): string {
  const files = [...state.files.map((f) => f.path), ...state.edits.map((e) => `${e.path} (include line)`)];
  return `${verb} ${state.id} (${state.policyFile}): ${files.join(', ')}`;
}

/** `persist` for the CLI, also used by `apply --persist` and `confirm --persist`. */
export async function persistFromCli(
  ctx: CliContext,
  options: StatusCliOptions,
  json: boolean,
): Promise<void> {
  const { etcDir, persistCurrent } = await import('../../apply/persist.ts');
  const via = options.via;
  if (via !== undefined && via !== 'include' && via !== 'unit') {
    const { PortwardenError } = await import('../../errors.ts');
    throw new PortwardenError('OPTION_INVALID', `--via "${via}" is not include or unit`, {
      hint: 'include: a line in /etc/nftables.conf; unit: a portwarden.service before network-pre.target',
    });
  }
  const state = await persistCurrent({
    stateDir: await dirOf(ctx, options),
    etcDir: etcDir(options.etcDir, ctx.io.env),
    ...(via ? { via } : {}),
  });
  ctx.out(json ? toJson(state) : persistedText('persisted', state));
}

async function unpersistAction(ctx: CliContext, options: StatusCliOptions): Promise<void> {
  const { unpersist } = await import('../../apply/persist.ts');
  const state = await unpersist(await dirOf(ctx, options));
  ctx.out(options.json ? toJson(state) : persistedText('removed what was persisted for', state));
}

export function registerStatus(program: Command, ctx: CliContext): void {
  program
    .command('status')
    .description(
      'what portwarden loaded, drift from it, a pending confirmation, kernel settings, persistence',
    )
    .option('--state-dir <dir>', STATE_DIR_HELP)
    .option('--json', 'print {loaded, current, drift, pending, kernel, persisted, problems}')
    .action((options: StatusCliOptions) => statusAction(ctx, options));
  program
    .command('history')
    .description('every apply, confirm, rollback and persist, oldest first')
    .option('--state-dir <dir>', STATE_DIR_HELP)
    .option('--json', 'print the entries as a JSON array')
    .action((options: StatusCliOptions) => historyAction(ctx, options));
  program
    .command('persist')
    .description(
      'load the confirmed ruleset at boot (nftables.conf include or a systemd unit; iptables rules.v4/v6)',
    )
    .option('--state-dir <dir>', STATE_DIR_HELP)
    .option('--etc-dir <dir>', ETC_DIR_HELP)
    .option(
      '--via <how>',
      'nftables: include (in /etc/nftables.conf) or unit (portwarden.service); default include when nftables.conf exists',
    )
    .option('--json', 'print what was written')
    .action((options: StatusCliOptions) => persistFromCli(ctx, options, options.json === true));
  program
    .command('unpersist')
    .description('remove exactly what `persist` wrote')
    .option('--state-dir <dir>', STATE_DIR_HELP)
    .option('--json', 'print what was removed')
    .action((options: StatusCliOptions) => unpersistAction(ctx, options));
}
