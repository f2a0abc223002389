import { hostname } from 'node:os';
import type { Command } from 'commander';
import type { Diagnostic } from '../../errors.ts';
import { PortwardenError } from '../../errors.ts';
import { toJson, type CliContext } from '../context.ts';
import { writeOutputFiles } from '../files.ts';
import { formatDiagnostic } from '../format-error.ts';
import { readPolicyText } from './policy-file.ts';

interface CheckOptions {
  strict?: boolean;
  json?: boolean;
  target: string;
}

async function checkAction(ctx: CliContext, file: string, options: CheckOptions): Promise<void> {
  const { loadPolicy } = await import('../../policy/load.ts');
  const { lintPolicy } = await import('../../policy/lint.ts');
  const { findBackend, targetDiagnostics } = await import('../../compile/registry.ts');
  findBackend(options.target);
  const text = readPolicyText(file);
  const { policy, diagnostics } = loadPolicy(text, file);
  const ssh = ctx.io.env['SSH_CONNECTION'];
  const all: Diagnostic[] = [
    ...diagnostics,
    ...(policy ? lintPolicy(policy, ssh ? { sshConnection: ssh } : {}) : []),
    ...(policy ? targetDiagnostics(policy, options.target) : []),
  ];
  const errors = all.filter((d) => d.severity === 'error');
  const warnings = all.filter((d) => d.severity === 'warning');
  if (options.json) {
    ctx.out(
      toJson({
        ok: errors.length === 0 && (!options.strict || warnings.length === 0),
        file,
        diagnostics: all,
      }),
    );
  } else {
    for (const d of all) if (d.severity !== 'error') ctx.io.stderr.write(formatDiagnostic(d, text));
    if (errors.length === 0) {
      ctx.out(
        `${file}: valid policy "${policy?.name ?? ''}" — ${warnings.length} warning(s), ${all.length - errors.length - warnings.length} note(s)`,
      );
    }
  }
  if (errors.length > 0) {
    if (options.json) {
      ctx.exitCode = 2;
      return;
    }
    const first = errors[0];
    throw new PortwardenError('POLICY_INVALID', first?.message ?? 'invalid policy', {
      ...(first?.location ? { location: first.location } : {}),
      diagnostics: errors,
    });
  }
  if (options.strict && warnings.length > 0) ctx.exitCode = 1;
}

async function schemaAction(ctx: CliContext): Promise<void> {
  const { policyJsonSchema } = await import('../../policy/schema.ts');
  ctx.out(toJson(policyJsonSchema()));
}

interface InitOptions {
  output?: string;
  force?: boolean;
}

async function initAction(ctx: CliContext, options: InitOptions): Promise<void> {
  const { listSockets } = await import('../../inventory/list.ts');
  const { localInterfaces } = await import('../../inventory/read-proc.ts');
  const { generateStarterPolicy } = await import('../../policy/init.ts');
  const inventory = await listSockets({ exposedOnly: true });
  const listeners = inventory.sockets.map((s) => ({
    protocol: s.protocol,
    localPort: s.localPort,
    exposure: s.exposure,
    interface: s.interface,
    owner: s.processes.map((p) => `${p.name ?? '?'}[${p.pid}]${p.unit ? ` ${p.unit}` : ''}`).join(', '),
    exeDeleted: s.processes.some((p) => p.exeDeleted),
  }));
  const text = generateStarterPolicy(
    listeners,
    localInterfaces().map((i) => i.name),
    hostname(),
  );
  if (options.output === undefined) {
    ctx.out(text);
    return;
  }
  writeOutputFiles([{ path: options.output, content: text }], options.force === true);
  ctx.err(`wrote ${options.output}`);
}

export function registerPolicy(program: Command, ctx: CliContext): void {
  const policy = program.command('policy').description('check, describe and start security policies');
  policy
    .command('check')
    .description('validate a policy (errors exit 2) and lint it for risky exposure (warnings)')
    .argument('<policy>', 'policy file (YAML), or - for stdin')
    .option('--strict', 'exit 1 when there are warnings')
    .option('-t, --target <target>', 'warn about what this compile target cannot express', 'nftables')
    .option('--json', 'print {ok, file, diagnostics}')
    .action((file: string, options: CheckOptions) => checkAction(ctx, file, options));
  policy
    .command('schema')
    .description('print the JSON Schema of policy files (for editors)')
    .option('--json', 'the schema is JSON already; accepted for symmetry')
    .action(() => schemaAction(ctx));
  policy
    .command('init')
    .description('write a starter policy that allows exactly what listens now beyond loopback')
    .option('-o, --output <file>', 'write to FILE instead of stdout')
    .option('--force', 'overwrite an existing FILE')
    .option('--json', 'accepted for symmetry: the output is YAML')
    .action((options: InitOptions) => initAction(ctx, options));
}
