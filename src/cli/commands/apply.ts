import { createInterface } from 'node:readline/promises';
import type { Readable, Writable } from 'node:stream';
import type { Command } from 'commander';
import { toJson, type CliContext, type CliIo } from '../context.ts';
import { kernelBackendOption, numberOption } from '../options.ts';
import { VERSION } from '../version.ts';
import type * as ApplyLibrary from '../../apply/apply.ts';
import type { KernelPlan } from '../../apply/kernel-apply.ts';
import type { KernelSetting } from '../../apply/kernel-settings.ts';
import { readPolicyText } from './policy-file.ts';
import { persistFromCli } from './status.ts';

interface ApplyCliOptions {
  backend: string;
  confirmTimeout: string;
  dryRun?: boolean;
  force?: boolean;
  stateDir?: string;
  json?: boolean;
  persist?: boolean;
  etcDir?: string;
  via?: string;
}

/** The kernel settings part of --dry-run and apply's output, as `# kernel:` lines. */
/** `changesOnly`: what apply itself did or could not do (no "already" lines, no loaded modules). */
function kernelLines(
  required: readonly KernelSetting[],
  plan: KernelPlan | null,
  changesOnly = false,
): string[] {
  if (plan === null) {
    if (required.length === 0) return ['# kernel: the policy needs no kernel setting'];
    return required.map((k) => `# kernel: ${k.name} = ${k.value} needed (${k.reason})`);
  }
  const lines = [
    ...plan.changes.map((c) => `# kernel: ${c.name} ${c.before} -> ${c.after} (${c.reason})`),
    ...plan.managed
      .filter((m) => !changesOnly && !plan.changes.some((c) => c.name === m.name))
      .map((m) => `# kernel: ${m.name} = ${m.value} already (${m.reason})`),
    ...plan.notes.map((n) => `# kernel: ${n}`),
    ...plan.modules
      .filter((m) => !changesOnly || !m.loaded)
      .map(
        (m) =>
          `# kernel: module ${m.name} ${m.loaded ? 'loaded' : 'not loaded now (the kernel loads it when the ruleset creates the helper)'} (${m.reason})`,
      ),
  ];
  return lines.length > 0 || changesOnly ? lines : ['# kernel: no kernel setting changes'];
}

type PromptAnswer = 'yes' | 'no' | 'eof' | 'interrupt' | 'timeout';

/**
 * Asks on the terminal whether to keep the ruleset: an answer typed in time proves the session still
 * works. Only "yes" keeps it; any other answer, end of input, Ctrl-C or the deadline rolls back.
 */
async function askKeep(stdin: Readable, stderr: Writable, seconds: number): Promise<PromptAnswer> {
  const rl = createInterface({ input: stdin, output: stderr, terminal: true });
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), seconds * 1000);
  const ended = new Promise<PromptAnswer>((resolve) => {
    rl.once('close', () => resolve('eof'));
    rl.once('SIGINT', () => resolve('interrupt'));
    abort.signal.addEventListener('abort', () => resolve('timeout'));
  });
  const question = `Can you still open NEW connections to this machine? Type "yes" within ${seconds} s to keep the new ruleset: `;
  const answered = rl
    .question(question, { signal: abort.signal })
    .then((line): PromptAnswer => (line.trim().toLowerCase() === 'yes' ? 'yes' : 'no'))
    .catch(() => ended);
  try {
    return await Promise.race([answered, ended]);
  } finally {
    clearTimeout(timer);
    rl.close();
  }
}

const ROLLBACK_REASONS: Record<Exclude<PromptAnswer, 'yes'>, string> = {
  no: 'not kept at the prompt (answered something other than "yes")',
  eof: 'not kept at the prompt (input closed)',
  interrupt: 'not kept at the prompt (Ctrl-C)',
  timeout: 'no answer at the prompt before the deadline',
};

type ApplyModule = typeof ApplyLibrary;
type DryRun = Awaited<ReturnType<ApplyModule['dryRun']>>;
type Applied = Awaited<ReturnType<ApplyModule['applyPolicy']>>;

function printDryRun(ctx: CliContext, result: DryRun, json: boolean): void {
  if (json) {
    ctx.out(toJson(result));
    return;
  }
  for (const f of result.ruleset.files) {
    if (result.ruleset.files.length > 1) ctx.out(`# ---- ${f.suffix} ----`);
    ctx.out(f.content);
  }
  if (result.diff === null)
    ctx.err(`apply --dry-run: no diff against the loaded ruleset (${result.reason ?? ''})`);
  else ctx.out(result.diff === '' ? '# no change: the loaded ruleset is already this one' : result.diff);
  ctx.out(kernelLines(result.required, result.kernel).join('\n'));
}

function isTerminal(stream: Readable | undefined): stream is Readable {
  return stream !== undefined && 'isTTY' in stream && stream.isTTY === true;
}

function isWritableTerminal(sink: CliIo['stderr']): sink is CliIo['stderr'] & Writable {
  return sink.isTTY === true && 'on' in sink;
}

/** On a terminal: ask, then confirm (and persist) or roll back at once. */
async function settleAtPrompt(
  ctx: CliContext,
  apply: ApplyModule,
  dir: string,
  result: Applied,
  options: ApplyCliOptions,
): Promise<void> {
  const stdin = ctx.io.stdin;
  const stderr = ctx.io.stderr;
  if (!isTerminal(stdin) || !isWritableTerminal(stderr)) {
    if (options.persist)
      ctx.err('apply: not persisted yet: `portwarden confirm --persist` keeps and persists it');
    return;
  }
  const seconds = Math.max(0, Math.round((Date.parse(result.deadline ?? '') - Date.now()) / 1000));
  const answer = await askKeep(stdin, stderr, seconds);
  if (answer === 'yes') {
    await apply.confirmPending(dir);
    ctx.out('confirmed: the new ruleset stays');
    if (options.persist) await persistFromCli(ctx, options, false);
    return;
  }
  const rolled = await apply.rollbackPending(dir, ROLLBACK_REASONS[answer], result.id);
  ctx.out(
    rolled
      ? `rolled back (${ROLLBACK_REASONS[answer]}): the previous ruleset is in place again`
      : 'rolled back by the timer: the previous ruleset is in place again',
  );
}

async function reportApplied(
  ctx: CliContext,
  file: string,
  result: Applied,
  options: ApplyCliOptions,
): Promise<boolean> {
  for (const reason of result.forced) ctx.err(`apply: warning (overridden by --force): ${reason}`);
  const kernel = kernelLines([], result.kernel, true);
  if (!options.json && kernel.length > 0) ctx.err(kernel.map((l) => l.replace(/^# /, 'apply: ')).join('\n'));
  if (options.json) ctx.out(toJson(result));
  else if (result.deadline === null)
    ctx.out(`applied ${file} (${result.backend}, ${result.id}); no automatic rollback was armed`);
  else {
    const seconds = Math.max(0, Math.round((Date.parse(result.deadline) - Date.now()) / 1000));
    ctx.out(
      `applied ${file} (${result.backend}, ${result.id}); it is rolled back in ${seconds} s unless you run \`portwarden confirm\``,
    );
  }
  if (result.deadline !== null) return !options.json;
  if (options.persist) await persistFromCli(ctx, options, options.json === true);
  return false;
}

async function applyAction(ctx: CliContext, file: string, options: ApplyCliOptions): Promise<void> {
  const backend = kernelBackendOption(options.backend, 'applied');
  const confirmTimeout = numberOption('--confirm-timeout', options.confirmTimeout, {
    min: 0,
    max: 86_400,
    integer: true,
  });
  const { loadPolicyOrThrow } = await import('../../policy/load.ts');
  const policyText = readPolicyText(file);
  const policy = loadPolicyOrThrow(policyText, file);
  const apply = await import('../../apply/apply.ts');
  const { stateDir } = await import('../../system/state-dir.ts');
  const dir = stateDir(options.stateDir, ctx.io.env);
  if (options.dryRun) {
    printDryRun(
      ctx,
      await apply.dryRun({ policy, backend, version: VERSION, stateDir: dir }),
      options.json === true,
    );
    return;
  }
  const sshConnection = ctx.io.env['SSH_CONNECTION'];
  const result = await apply.applyPolicy({
    policy,
    policyFile: file,
    policyText,
    backend,
    confirmTimeout,
    force: options.force === true,
    stateDir: dir,
    ...(sshConnection ? { sshConnection } : {}),
    version: VERSION,
    ...(ctx.progress ? { onStep: (text: string) => ctx.err(`apply: ${text}`) } : {}),
  });
  if (await reportApplied(ctx, file, result, options)) await settleAtPrompt(ctx, apply, dir, result, options);
}

interface StateCliOptions {
  stateDir?: string;
  json?: boolean;
  persist?: boolean;
  etcDir?: string;
  via?: string;
}

async function confirmAction(ctx: CliContext, options: StateCliOptions): Promise<void> {
  const { stateDir } = await import('../../system/state-dir.ts');
  const { confirmPending } = await import('../../apply/apply.ts');
  const pending = await confirmPending(stateDir(options.stateDir, ctx.io.env));
  if (options.json)
    ctx.out(
      toJson({ confirmed: pending.id, policyFile: pending.policyFile, policyHash: pending.policyHash }),
    );
  else ctx.out(`confirmed ${pending.id} (${pending.policyFile}): the new ruleset stays`);
  if (options.persist) await persistFromCli(ctx, options, options.json === true);
}

async function rollbackAction(ctx: CliContext, options: StateCliOptions): Promise<void> {
  const { stateDir } = await import('../../system/state-dir.ts');
  const apply = await import('../../apply/apply.ts');
  const dir = stateDir(options.stateDir, ctx.io.env);
  const pending = await apply.rollbackPending(dir, 'requested');
  if (options.json) ctx.out(toJson({ rolledBack: pending?.id ?? null }));
  else {
    const ago = Math.max(0, Math.round((Date.now() - Date.parse(pending?.appliedAt ?? '')) / 1000));
    ctx.out(
      `rolled back ${pending?.id ?? ''} (${pending?.policyFile ?? ''}, applied ${ago} s ago): the ruleset from before it is in place again`,
    );
  }
}

export function registerApply(program: Command, ctx: CliContext): void {
  program
    .command('apply')
    .description(
      'load a policy into the firewall atomically, with automatic rollback unless confirmed (root)',
    )
    .argument('<policy>', 'policy file (YAML)')
    .option('--backend <backend>', 'nftables | iptables', 'nftables')
    .option(
      '--confirm-timeout <seconds>',
      'roll back unless `portwarden confirm` comes within this time (0: never)',
      '60',
    )
    .option('--dry-run', 'print the ruleset and a diff against the loaded one; change nothing')
    .option('--force', 'apply even when the lock-out guard objects')
    .option(
      '--state-dir <dir>',
      'where pending applies and history are kept (default /var/lib/portwarden, or PORTWARDEN_STATE_DIR)',
    )
    .option(
      '--persist',
      'once kept (at the prompt, or at once with --confirm-timeout 0), load it at boot too',
    )
    .option(
      '--etc-dir <dir>',
      'with --persist: the /etc to write under (default /etc, or PORTWARDEN_ETC_DIR)',
    )
    .option('--via <how>', 'with --persist, nftables: include (nftables.conf) or unit (portwarden.service)')
    .option('--json', 'print {id, backend, policyFile, policyHash, deadline, rollbackPid, forced, kernel}')
    .action((file: string, options: ApplyCliOptions) => applyAction(ctx, file, options));
  program
    .command('confirm')
    .description('keep the ruleset of the pending apply (disarms its rollback)')
    .option('--state-dir <dir>', 'state directory (default /var/lib/portwarden, or PORTWARDEN_STATE_DIR)')
    .option('--persist', 'also load the kept ruleset at boot (see `portwarden persist`)')
    .option(
      '--etc-dir <dir>',
      'with --persist: the /etc to write under (default /etc, or PORTWARDEN_ETC_DIR)',
    )
    .option('--via <how>', 'with --persist, nftables: include (nftables.conf) or unit (portwarden.service)')
    .option('--json', 'print {confirmed, policyFile, policyHash}')
    .action((options: StateCliOptions) => confirmAction(ctx, options));
  program
    .command('rollback')
    .description('restore the ruleset from before the pending apply, now')
    .option('--state-dir <dir>', 'state directory (default /var/lib/portwarden, or PORTWARDEN_STATE_DIR)')
    .option('--json', 'print {rolledBack}')
    .action((options: StateCliOptions) => rollbackAction(ctx, options));
}
