import type { Command } from 'commander';
import type { PortExplanation } from '../../catalog/explain.ts';
import { describePortSet, portSetFromRanges } from '../../catalog/port-set.ts';
import type { CuratedService, RiskLevel } from '../../catalog/types.ts';
import { PortwardenError } from '../../errors.ts';
import { paint, RISK_COLOR, toJson, type CliContext } from '../context.ts';

function riskLabel(ctx: CliContext, level: RiskLevel): string {
  return paint(ctx.color, RISK_COLOR[level], level.toUpperCase());
}

function formatEntry(ctx: CliContext, entry: PortExplanation): string {
  const head = `${paint(ctx.color, 'bold', `${entry.protocol}/${entry.port}`)}  ${entry.names.join(', ') || 'unassigned'}  (${entry.range})`;
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

function serviceJson(service: CuratedService): Record<string, unknown> {
  return {
    id: service.id,
    name: service.name,
    ports: describePortSet(portSetFromRanges(service.ports)),
    description: service.description,
    risk: { level: service.risk.level, reason: service.risk.reason, advice: service.advice },
    alternative: service.alternative,
  };
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

interface ExplainOptions {
  json?: boolean;
  risky?: boolean;
}

async function explainAction(ctx: CliContext, queries: string[], options: ExplainOptions): Promise<void> {
  // Loaded on use: the IANA registry is 700 KB of JSON that other verbs should not pay for at start-up.
  const { explainSpecs, riskyServices } = await import('../../catalog/explain.ts');
  if (options.risky) {
    const services = riskyServices();
    ctx.out(
      options.json
        ? toJson({ services: services.map(serviceJson) })
        : services.map((s) => formatService(ctx, s)).join('\n\n'),
    );
    return;
  }
  if (queries.length === 0) {
    throw new PortwardenError('USAGE', 'explain needs a port, range or service name', {
      hint: 'try `portwarden explain 111`, `portwarden explain telnet` or `portwarden explain --risky`',
    });
  }
  const entries = explainSpecs(queries);
  ctx.out(options.json ? toJson({ entries }) : entries.map((e) => formatEntry(ctx, e)).join('\n\n'));
}

export function registerExplain(program: Command, ctx: CliContext): void {
  program
    .command('explain')
    .description('what a port or service is, its IANA names, range and curated risk advice')
    .argument(
      '[ports...]',
      'ports, ranges, port specs or service names: 111, 6000-6010, udp/161, telnet, netbios',
    )
    .option('--risky', 'list every curated service of medium risk or above')
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      '\nExamples:\n  portwarden explain 111\n  portwarden explain telnet udp/161 --json\n  portwarden explain --risky',
    )
    .action((queries: string[], options: ExplainOptions) => explainAction(ctx, queries, options));
}
