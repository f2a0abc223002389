import { createInterface } from 'node:readline/promises';
import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { PortwardenError } from '../../errors.ts';
import type { ProgramStore, Prompt } from '../../programs/store.ts';
import { ANSWERS, isAnswer } from '../../programs/types.ts';
import type { CliContext } from '../context.ts';
import { toJson } from '../context.ts';
import { numberOption } from '../options.ts';
import { watchDbPath } from '../../system/state-dir.ts';

interface DbOptions {
  db?: string;
  stateDir?: string;
  json?: boolean;
}

async function openPrograms(ctx: CliContext, options: DbOptions) {
  const [{ WatchStore }, { ProgramStore }] = await Promise.all([
    import('../../watch/store.ts'),
    import('../../programs/store.ts'),
  ]);
  const store = new WatchStore(watchDbPath(options.db, options.stateDir, ctx.io.env));
  return { store, programs: new ProgramStore(store.db) };
}

function describePrompt(p: Prompt): string {
  const who = `${p.program.exe} (pid ${p.program.pid}, user ${p.program.user ?? '?'}${p.program.unit ? `, ${p.program.unit}` : ''})`;
  const where = p.remoteAddress.includes(':') ? `[${p.remoteAddress}]` : p.remoteAddress;
  const changed = p.changed ? ' — the executable CHANGED since its last decision' : '';
  return `prompt ${p.id}: ${who} wants ${p.protocol} ${where}:${p.remotePort}${changed}\n  sha256 ${p.program.sha256 ?? '?'}\n  cmdline ${p.program.cmdline ?? '?'}\n  denied at ${p.deadline} unless answered`;
}

function badAnswer(value: string): PortwardenError {
  return new PortwardenError('OPTION_INVALID', `"${value}" is not an answer`, {
    hint: `answers: ${ANSWERS.join(', ')}`,
  });
}

interface AskOptions extends DbOptions {
  id?: string;
  answer?: string;
}

/** `portwarden ask`: answer one prompt by id, or each pending prompt on the terminal. */
async function askAction(ctx: CliContext, options: AskOptions): Promise<void> {
  if (options.answer !== undefined && !isAnswer(options.answer)) throw badAnswer(options.answer);
  const { store, programs } = await openPrograms(ctx, options);
  try {
    const pending = programs.pendingPrompts();
    if (options.id !== undefined) {
      const id = numberOption('--id', options.id, { min: 1, max: Number.MAX_SAFE_INTEGER });
      if (options.answer === undefined)
        throw new PortwardenError('OPTION_INVALID', '--id needs --answer', {
          hint: `e.g. --id ${id} --answer allow-once`,
        });
      const ok = programs.answer(id, options.answer, 'cli', Date.now());
      if (options.json) ctx.out(toJson({ id, answer: options.answer, accepted: ok }));
      else
        ctx.out(
          ok
            ? `prompt ${id}: ${options.answer}`
            : `prompt ${id} is not pending (answered already, or unknown)`,
        );
      if (!ok) ctx.exitCode = 1;
      return;
    }
    if (options.json || ctx.io.stdin === undefined) {
      ctx.out(
        options.json
          ? toJson({ prompts: pending })
          : pending.map(describePrompt).join('\n') || 'no pending prompts',
      );
      return;
    }
    await askEach(ctx, programs, pending);
  } finally {
    store.close();
  }
}

async function askEach(ctx: CliContext, programs: ProgramStore, pending: Prompt[]): Promise<void> {
  if (pending.length === 0) {
    ctx.out('no pending prompts');
    return;
  }
  const rl = createInterface({ input: ctx.io.stdin!, terminal: false });
  try {
    for (const p of pending) {
      ctx.out(describePrompt(p));
      ctx.out(ANSWERS.map((a, i) => `  ${i + 1}) ${a}`).join('\n'));
      const line = (await rl.question('answer (1-6, empty to skip): ')).trim();
      if (line === '') continue;
      const answer = ANSWERS[Number(line) - 1] ?? (isAnswer(line) ? line : undefined);
      if (!answer) {
        ctx.err(`"${line}" is not an answer; skipped`);
        continue;
      }
      ctx.out(
        programs.answer(p.id, answer, 'terminal', Date.now()) ? `  -> ${answer}` : '  -> already answered',
      );
    }
  } finally {
    rl.close();
  }
}

interface ProgramsOptions extends DbOptions {
  since?: string;
  log?: boolean;
}

/** `portwarden programs`: per program, allowed and denied connections, counts, first and last seen. */
async function programsAction(ctx: CliContext, options: ProgramsOptions): Promise<void> {
  const sinceMs =
    options.since === undefined
      ? 0
      : Date.now() - numberOption('--since', options.since, { min: 0, max: 1e7 }) * 3600_000;
  const { store, programs } = await openPrograms(ctx, options);
  try {
    const summary = programs.summary(sinceMs);
    const decisions = programs.decisions().map((d) => ({ ...d, at: new Date(d.at).toISOString() }));
    if (options.json) {
      ctx.out(
        toJson({
          programs: summary,
          decisions,
          prompts: programs.pendingPrompts(),
          ...(options.log ? { connections: programs.connections({ since: sinceMs }) } : {}),
        }),
      );
      return;
    }
    if (summary.length === 0)
      ctx.out('no program connections recorded (run `portwarden watch --programs learn|ask|enforce`)');
    for (const s of summary) {
      ctx.out(
        `${s.exe}  allowed ${s.allowed}  denied ${s.denied}  first ${s.firstSeen}  last ${s.lastSeen}${s.user ? `  user ${s.user}` : ''}${s.unit ? `  unit ${s.unit}` : ''}`,
      );
      for (const d of s.destinations)
        ctx.out(
          `    ${d.protocol} ${d.remoteAddress}:${d.remotePort}  allowed ${d.allowed}  denied ${d.denied}`,
        );
    }
    for (const d of decisions)
      ctx.out(
        `decision ${d.id}: ${d.verdict} ${d.scope} ${d.exe}${d.protocol ? ` ${d.protocol}` : ''}${d.remoteAddress ? ` ${d.remoteAddress}` : ''}${d.remotePort ? `:${d.remotePort}` : ''} (sha256 ${(d.sha256 ?? '?').slice(0, 16)}…, ${d.at})`,
      );
    if (options.log)
      for (const c of programs.connections({ since: sinceMs }))
        ctx.out(
          `${c.at}  ${c.verdict.padEnd(7)}  ${c.program?.exe ?? '?'}  ${c.protocol} ${c.remoteAddress}:${c.remotePort}  ${c.reason}`,
        );
  } finally {
    store.close();
  }
}

interface SuggestOptions extends DbOptions {
  write?: boolean;
  since?: string;
}

/** `portwarden policy suggest [policy]`: per-program egress rules from what was recorded. */
async function suggestAction(
  ctx: CliContext,
  file: string | undefined,
  options: SuggestOptions,
): Promise<void> {
  if (options.write && file === undefined)
    throw new PortwardenError('OPTION_INVALID', '--write needs a policy file', {
      hint: 'portwarden policy suggest policy.yaml --write',
    });
  const sinceMs =
    options.since === undefined
      ? 0
      : Date.now() - numberOption('--since', options.since, { min: 0, max: 1e7 }) * 3600_000;
  const [{ suggestProgramRules }, { addProgramRules }] = await Promise.all([
    import('../../programs/suggest.ts'),
    import('../../programs/policy-edit.ts'),
  ]);
  const { store, programs } = await openPrograms(ctx, options);
  let entries;
  try {
    entries = suggestProgramRules(programs.summary(sinceMs), new Date());
  } finally {
    store.close();
  }
  if (options.json) {
    ctx.out(toJson({ programs: entries }));
    return;
  }
  const base = file === undefined ? 'version: 1\nzones: {}\n' : readFileSync(file, 'utf8');
  const text = addProgramRules(base, entries);
  if (options.write && file !== undefined) {
    const { loadPolicyOrThrow } = await import('../../policy/load.ts');
    loadPolicyOrThrow(text, file); // never write a policy that does not load
    writeFileSync(file, text);
    ctx.err(`wrote ${entries.length} program(s) into ${file}; apply it with \`portwarden apply ${file}\``);
  } else ctx.out(text);
}

export function registerPrograms(program: Command, ctx: CliContext): void {
  const db = (c: Command): Command =>
    c
      .option('--db <file>', 'the watch database (default <state dir>/watch.db)')
      .option('--state-dir <dir>', 'state directory (default /var/lib/portwarden, or PORTWARDEN_STATE_DIR)');
  db(
    program
      .command('ask')
      .description('answer the prompts of `watch --programs ask` on the terminal (or one by --id)')
      .option('--id <n>', 'the prompt to answer')
      .option('--answer <answer>', `with --id: ${ANSWERS.join(' | ')}`)
      .option('--json', 'list the pending prompts as JSON (or the result of --id)'),
  ).action((options: AskOptions) => askAction(ctx, options));
  db(
    program
      .command('programs')
      .description('per program: allowed and denied connections, counts, first and last seen; decisions')
      .option('--since <hours>', 'only connections of the last hours')
      .option('--log', 'also every logged connection attempt')
      .option('--json', 'print {programs, decisions, prompts[, connections]}'),
  ).action((options: ProgramsOptions) => programsAction(ctx, options));
  const policy = program.commands.find((c) => c.name() === 'policy');
  if (policy)
    db(
      policy
        .command('suggest')
        .description('propose per-program egress rules (programs: path:) from what watch --programs recorded')
        .argument('[policy]', 'merge into this policy (printed, or written back with --write)')
        .option('--write', 'write the merged policy back to the file (comments and formatting kept)')
        .option('--since <hours>', 'only connections of the last hours')
        .option('--json', 'print {programs: [{path, rules, comment}]}'),
    ).action((file: string | undefined, options: SuggestOptions) => suggestAction(ctx, file, options));
}
