import type { Command } from 'commander';
import { PortwardenError } from '../../errors.ts';
import { toJson, type CliContext } from '../context.ts';
import { readUserFile } from '../../system/files.ts';

interface TraceOptions {
  json?: boolean;
  ruleset?: string;
  uid?: string;
}

async function loadRuleset(file: string | undefined) {
  const { rulesetFromData } = await import('../../audit/run.ts');
  if (file !== undefined) {
    const text = readUserFile(file, 'ruleset', 'save one with: nft -j list ruleset > ruleset.json');
    return rulesetFromData({ nftJson: text });
  }
  const { readLiveRuleset } = await import('../../ruleset/read-live.ts');
  const live = await readLiveRuleset();
  if (live.nftJson === null)
    throw new PortwardenError('NOT_ROOT', `could not read the ruleset: ${live.reason ?? 'unknown reason'}`, {
      hint: 'run trace as root, or pass a saved ruleset with --ruleset FILE (nft -j list ruleset)',
    });
  return rulesetFromData(live);
}

async function traceAction(ctx: CliContext, words: string[], options: TraceOptions): Promise<void> {
  const { parseTraceSpec, traceProbe, renderTrace } = await import('../../audit/trace.ts');
  const spec = parseTraceSpec(words);
  if (options.uid !== undefined) {
    if (!/^\d+$/.test(options.uid))
      throw new PortwardenError('OPTION_INVALID', `--uid "${options.uid}" is not a user id`, {
        hint: 'give a number, e.g. --uid 65534',
      });
    spec.uid = Number(options.uid);
  }
  const ruleset = await loadRuleset(options.ruleset);
  const { readInterfaceDetails } = await import('../../ruleset/read-live.ts');
  const { localInterfaces } = await import('../../inventory/read-proc.ts');
  const details = await readInterfaceDetails();
  const interfaces = details.length > 0 ? details : localInterfaces();
  const report = traceProbe(ruleset ?? { tables: [], chains: [], sets: [] }, interfaces, spec);
  ctx.out(options.json ? toJson(report) : renderTrace(report));
}

export function registerTrace(program: Command, ctx: CliContext): void {
  program
    .command('trace')
    .description(
      "show every chain and rule a new connection meets and the rule that decides (e.g. trace tcp 203.0.113.9 '->' eth0:22)",
    )
    .argument('<probe...>', "PROTOCOL SOURCE[:PORT] ['->'] INTERFACE:PORT | ADDRESS:PORT | [IPV6]:PORT")
    .allowUnknownOption(true)
    .option('--json', 'print the trace as JSON')
    .option('--ruleset <file>', 'trace through a saved `nft -j list ruleset` instead of the live one')
    .option('--uid <uid>', "the listener's user id, for output rules that match meta skuid")
    .action((words: string[], options: TraceOptions) => traceAction(ctx, words, options));
}
