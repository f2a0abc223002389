import { hostname } from 'node:os';
import type { Command } from 'commander';
import type { Severity } from '../../audit/findings.ts';
import { PortwardenError } from '../../errors.ts';
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

const FORMATS = ['text', 'json', 'sarif', 'html'];
const FAIL_ON = ['critical', 'high', 'medium', 'low', 'info', 'never'];

async function auditAction(
  ctx: CliContext,
  policyFile: string | undefined,
  options: AuditOptions,
): Promise<void> {
  const format = options.json ? 'json' : options.format;
  if (!FORMATS.includes(format)) {
    throw new PortwardenError('OPTION_INVALID', `unknown format "${format}"`, {
      hint: `use one of: ${FORMATS.join(', ')}`,
    });
  }
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
  let text: string;
  if (format === 'json') text = toJson(report);
  else if (format === 'sarif')
    text = toJson((await import('../../audit/report-sarif.ts')).renderAuditSarif(report, VERSION));
  else if (format === 'html') text = (await import('../../audit/report-html.ts')).renderAuditHtml(report);
  else {
    const { renderAuditText } = await import('../../audit/report-text.ts');
    text = renderAuditText(report, (severity, label) =>
      paint(ctx.color && options.output === undefined, RISK_COLOR[severity as Severity] ?? 'bold', label),
    );
  }
  if (options.output !== undefined) {
    writeOutputFiles([{ path: options.output, content: text.endsWith('\n') ? text : `${text}\n` }]);
    ctx.err(`wrote ${options.output} (${report.findings.length} findings)`);
  } else {
    ctx.out(text);
  }
  if (options.failOn !== 'never' && report.method === 'unreadable') {
    // Findings cannot be trusted without the ruleset: an environment problem, not a clean bill.
    ctx.err(
      `error: ${report.warnings.find((w) => w.startsWith('could not read')) ?? 'could not read the ruleset'}`,
    );
    ctx.err('hint: run audit as root (reading nftables and iptables needs CAP_NET_ADMIN)');
    ctx.exitCode = 3;
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
    .option('-f, --format <format>', 'text | json | sarif | html', 'text')
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
