import { hostname } from 'node:os';
import type { Command } from 'commander';
import type { Severity } from '../../audit/findings.ts';
import { exitCodeFor, PortwardenError } from '../../errors.ts';
import { formatError } from '../format-error.ts';
import { paint, RISK_COLOR, toJson, type CliContext } from '../context.ts';
import { writeOutputFiles } from '../files.ts';
import { VERSION } from '../version.ts';
import { readPolicyFile } from './policy-file.ts';

interface AuditOptions {
  format: string;
  json?: boolean;
  output?: string;
  failOn: string;
  profile?: string;
}

const FAIL_ON = ['critical', 'high', 'medium', 'low', 'info', 'never'];

async function auditAction(
  ctx: CliContext,
  policyFile: string | undefined,
  options: AuditOptions,
): Promise<void> {
  // The audit modules load on use: they are heavy and every other command starts without them.
  const { findReporter } = await import('../../audit/reporters.ts');
  const reporter = findReporter(options.json ? 'json' : options.format);
  if (!FAIL_ON.includes(options.failOn)) {
    throw new PortwardenError('OPTION_INVALID', `--fail-on "${options.failOn}" is not a severity`, {
      hint: `use one of: ${FAIL_ON.join(', ')}`,
    });
  }
  if (options.profile !== undefined && options.profile !== 'workstation' && options.profile !== 'server') {
    throw new PortwardenError('OPTION_INVALID', `--profile "${options.profile}" is not known`, {
      hint: 'use workstation or server',
    });
  }
  const policy = policyFile === undefined ? null : await readPolicyFile(policyFile);
  const { auditHost } = await import('../../audit/run.ts');
  const { SEVERITIES } = await import('../../audit/findings.ts');
  const report = await auditHost({
    policy,
    host: hostname(),
    env: ctx.io.env,
    ...(options.profile ? { profile: options.profile } : {}),
  });
  const text = reporter.render(report, {
    version: VERSION,
    stringify: toJson,
    paint: (severity, label) =>
      paint(ctx.color && options.output === undefined, RISK_COLOR[severity as Severity] ?? 'bold', label),
  });
  if (options.output !== undefined) {
    writeOutputFiles([{ path: options.output, content: text }]);
    ctx.err(`wrote ${options.output} (${report.findings.length} findings)`);
  } else {
    ctx.out(text);
  }
  if (options.failOn !== 'never' && report.method === 'unreadable') {
    // Findings cannot be trusted without the ruleset: an environment problem, not a clean bill.
    const error = new PortwardenError(
      'TOOL_FAILED',
      report.warnings.find((w) => w.startsWith('could not read')) ?? 'could not read the ruleset',
      { hint: 'run audit as root (reading nftables and iptables needs CAP_NET_ADMIN)' },
    );
    ctx.err(formatError(error));
    ctx.exitCode = exitCodeFor(error);
    return;
  }
  if (options.failOn !== 'never') {
    const limit = SEVERITIES.indexOf(options.failOn as Severity);
    if (report.findings.some((f) => SEVERITIES.indexOf(f.severity) <= limit)) ctx.exitCode = 1;
  }
}

export function registerAudit(program: Command, ctx: CliContext): void {
  program
    .command('audit')
    .description('join listeners, the live firewall and an optional policy into findings')
    .argument('[policy]', 'policy file to audit against (YAML); without it, a baseline for the profile')
    .option('-f, --format <format>', 'text | json | sarif | html (the audit reporters)', 'text')
    .option('--json', 'same as --format json')
    .option('-o, --output <file>', 'write the report to FILE')
    .option(
      '--fail-on <severity>',
      'exit 1 when a finding is at least this severe (critical|high|medium|low|info|never)',
      'never',
    )
    .option('--profile <profile>', 'workstation (should expose nothing) or server; guessed when omitted')
    .action((policyFile: string | undefined, options: AuditOptions) => auditAction(ctx, policyFile, options));
}
