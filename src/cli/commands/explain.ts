import type { Command } from 'commander';
import type { ExplanationRun, PortExplanation } from '../../catalog/explain.ts';
import { describePortSet, portSetFromRanges } from '../../catalog/port-set.ts';
import type { CuratedService, RiskLevel } from '../../catalog/types.ts';
import { PortwardenError } from '../../errors.ts';
import { paint, RISK_COLOR, toJson, type CliContext } from '../context.ts';
import { formatTable } from '../table.ts';

/** More entries than this (two ports, both protocols) are shown as a table unless --long. */
const BLOCK_LIMIT = 4;
const DESCRIPTION_WIDTH = 60;

function riskLabel(ctx: CliContext, level: RiskLevel): string {
  return paint(ctx.color, RISK_COLOR[level], level.toUpperCase());
}

function nameOf(entry: PortExplanation): string {
  return entry.names.join(', ') || entry.status;
}

function formatEntry(ctx: CliContext, entry: PortExplanation): string {
  const head = `${paint(ctx.color, 'bold', `${entry.protocol}/${entry.port}`)}  ${nameOf(entry)}  (${entry.range})`;
  const lines = [
    entry.risk ? `${head}  ${riskLabel(ctx, entry.risk.level)}` : head,
    `  ${entry.description}`,
  ];
  if (entry.risk) {
    lines.push(`  risk: ${entry.risk.reason}`, `  advice: ${entry.risk.advice}`);
    if (entry.risk.alternative) lines.push(`  use instead: ${entry.risk.alternative}`);
  }
  return lines.join('\n');
}

function cut(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1).trimEnd()}…`;
}

/** One row per run of ports that explain alike, then each risky service's advice once. */
function formatEntryTable(
  ctx: CliContext,
  entries: readonly PortExplanation[],
  runs: readonly ExplanationRun[],
): string {
  const rows = runs.map(({ from, to, entry }) => [
    from === to ? String(from) : `${from}-${to}`,
    entry.protocol,
    nameOf(entry),
    entry.risk ? riskLabel(ctx, entry.risk.level) : '-',
    entry.range,
    cut(entry.description, DESCRIPTION_WIDTH),
  ]);
  const advice = new Map<string, string>();
  for (const e of entries) {
    if (e.risk)
      advice.set(
        nameOf(e),
        `${nameOf(e)}: ${e.risk.advice}${e.risk.alternative ? ` Use instead: ${e.risk.alternative}.` : ''}`,
      );
  }
  const table = formatTable(['PORT', 'PROTO', 'SERVICE', 'RISK', 'RANGE', 'DESCRIPTION'], rows);
  return [table, ...(advice.size > 0 ? ['', ...advice.values()] : [])].join('\n');
}

function formatService(ctx: CliContext, service: CuratedService): string {
  const ports = describePortSet(portSetFromRanges(service.ports));
  return [
    `${riskLabel(ctx, service.risk.level)}  ${paint(ctx.color, 'bold', service.id)}  ${ports}  ${service.name}`,
    `  risk: ${service.risk.reason}`,
    `  advice: ${service.advice}`,
    ...(service.alternative ? [`  use instead: ${service.alternative}`] : []),
  ].join('\n');
}

function formatServiceTable(ctx: CliContext, services: readonly CuratedService[]): string {
  const rows = services.map((s) => [
    riskLabel(ctx, s.risk.level),
    s.id,
    cut(describePortSet(portSetFromRanges(s.ports)), 24),
    s.name,
    cut(s.alternative ?? '-', 40),
  ]);
  return [
    formatTable(['RISK', 'SERVICE', 'PORTS', 'NAME', 'USE INSTEAD'], rows),
    '',
    'Why and what to do: `portwarden explain SERVICE`, or `portwarden explain --risky --long` for all.',
  ].join('\n');
}

interface ExplainOptions {
  json?: boolean;
  risky?: boolean;
  long?: boolean;
}

async function explainAction(ctx: CliContext, queries: string[], options: ExplainOptions): Promise<void> {
  // Loaded on use: the IANA registry is 700 KB of JSON that other verbs should not pay for at start-up.
  const { collapseExplanations, explainSpecs, riskyExplanations, riskyServices } =
    await import('../../catalog/explain.ts');
  if (options.risky) {
    const services = riskyServices();
    // the same shape as `explain PORT --json`: one entry per port, the risk on each
    if (options.json) ctx.out(toJson({ entries: riskyExplanations() }));
    else if (options.long) ctx.out(services.map((s) => formatService(ctx, s)).join('\n\n'));
    else ctx.out(formatServiceTable(ctx, services));
    return;
  }
  if (queries.length === 0) {
    throw new PortwardenError('USAGE', 'explain needs a port, range or service name', {
      hint: 'try `portwarden explain 111`, `portwarden explain telnet` or `portwarden explain --risky`',
    });
  }
  const entries = explainSpecs(queries);
  if (options.json) ctx.out(toJson({ entries }));
  else if (options.long || entries.length <= BLOCK_LIMIT)
    ctx.out(entries.map((e) => formatEntry(ctx, e)).join('\n\n'));
  else ctx.out(formatEntryTable(ctx, entries, collapseExplanations(entries)));
}

export function registerExplain(program: Command, ctx: CliContext): void {
  program
    .command('explain')
    .description('what a port or service is, its IANA names, range and curated risk advice')
    .argument(
      '[ports...]',
      'ports, ranges, port specs or service names: 111, 6000-6010, udp/161, telnet, netbios',
    )
    .option('--risky', 'list every curated service of medium risk or above (a table)')
    .option('-l, --long', 'every port or service in full, never as a table')
    .option('--json', 'machine-readable output')
    .action((queries: string[], options: ExplainOptions) => explainAction(ctx, queries, options));
}
