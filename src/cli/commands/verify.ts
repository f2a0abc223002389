import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { PortwardenError } from '../../errors.ts';
import { toJson, type CliContext } from '../context.ts';
import { readInputFile } from '../files.ts';
import { kernelBackendOption, numberOption } from '../options.ts';
import type { VerifyResult } from '../../verify/run.ts';
import type { Difference } from '../../verify/plan.ts';
import { VERSION } from '../version.ts';
import { readPolicyFile } from './policy-file.ts';

interface VerifyCliOptions {
  backend: string;
  ruleset?: string;
  ports: string;
  rounds: string;
  json?: boolean;
}

function readText(path: string): string {
  return readInputFile(path, { what: 'ruleset', hint: 'check the path' });
}

/**
 * The rulesets to check: one nft file; for iptables FILE.v4 and FILE.v6 as `compile -o FILE` writes
 * them (given as FILE, FILE.v4 or FILE.v6), or a single iptables-restore file for IPv4.
 */
function readRulesets(path: string, backend: string): { suffix: string; content: string }[] {
  if (backend !== 'iptables') return [{ suffix: '', content: readText(path) }];
  const base = path.replace(/\.v[46]$/, '');
  const pair = ['.v4', '.v6'].filter((suffix) => existsSync(`${base}${suffix}`));
  if (pair.length === 0) return [{ suffix: '.v4', content: readText(path) }];
  return pair.map((suffix) => ({ suffix, content: readText(`${base}${suffix}`) }));
}

/** A comma-separated port list wrapped at commas to `width`, each line indented. */
export function wrapPorts(ports: string, width: number, indent: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const part of ports.split(',')) {
    const next = line === '' ? part : `${line},${part}`;
    if (line !== '' && indent.length + next.length > width) {
      lines.push(`${indent}${line},`);
      line = part;
    } else line = next;
  }
  if (line !== '') lines.push(`${indent}${line}`);
  return lines;
}

function where(
  d: Pick<Difference, 'zone' | 'toZone' | 'direction' | 'family' | 'peer'> & { protocol: string },
): string {
  const zone = d.toZone ? `${d.zone}->${d.toZone}` : d.zone;
  const peer = d.peer
    ? ` ${d.direction === 'inbound' || d.direction === 'forward' ? 'from' : 'to'} ${d.peer}`
    : '';
  return `${zone} ${d.direction} IPv${d.family} ${d.protocol}${peer}`;
}

function plural(n: number, word: string): string {
  return `${n.toLocaleString('en-US')} ${word}${n === 1 ? '' : 's'}`;
}

function formatVerifyText(file: string, label: string, result: VerifyResult, width: number): string[] {
  const out: string[] = [];
  if (result.ok) {
    out.push(
      `${file}: the ${label} ruleset lets through exactly what the policy allows (${plural(result.probes, 'probe')})`,
    );
    for (const check of result.checks) out.push(`  checked: ${check}`);
    return out;
  }
  if (result.differences.length > 0) {
    out.push(
      `${file}: the ${label} ruleset differs from the policy in ${plural(result.differences.length, 'place')}:`,
    );
    for (const d of result.differences) {
      const count =
        d.protocol === 'ftp' || d.direction === 'forward' ? '' : ` (${plural(d.count ?? 1, 'port')})`;
      out.push(`  ${where(d)}: expected ${d.expected}, observed ${d.observed}${count}`);
      out.push(...wrapPorts(d.ports, width, '      '));
    }
  }
  if (result.undecided.length > 0) {
    out.push(
      `${file}: no verdict for ${plural(
        result.undecided.reduce((n, u) => n + u.count, 0),
        'probe',
      )}:`,
    );
    for (const u of result.undecided) {
      out.push(`  ${where(u)}: ${u.reason} (${plural(u.count, 'port')})`);
      out.push(...wrapPorts(u.ports, width, '      '));
    }
  }
  return out;
}

async function verifyAction(ctx: CliContext, file: string, options: VerifyCliOptions): Promise<void> {
  const backend = kernelBackendOption(options.backend, 'verified');
  const policy = await readPolicyFile(file);
  const rulesetFiles = options.ruleset === undefined ? undefined : readRulesets(options.ruleset, backend);
  const { parsePortSpec } = await import('../../catalog/port-spec.ts');
  const ports = parsePortSpec(options.ports, { defaultProtocols: ['tcp'] });
  if (ports.udp.length > 0) {
    throw new PortwardenError('OPTION_INVALID', `--ports "${options.ports}" names UDP ports`, {
      hint: '--ports narrows the TCP sweep (e.g. --ports 1-1024); UDP ports come from the policy plus a sample',
    });
  }
  const maxRounds = numberOption('--rounds', options.rounds, { min: 1, max: 20, integer: true });
  const { verifyPolicy, checkVerifyTools } = await import('../../verify/run.ts');
  const started = Date.now();
  const elapsed = (): string => `${((Date.now() - started) / 1000).toFixed(1)} s`;
  await checkVerifyTools(backend);
  const result = await verifyPolicy(policy, {
    backend,
    ...(rulesetFiles !== undefined ? { rulesetFiles } : {}),
    ports: options.ports,
    maxRounds,
    version: VERSION,
    ...(ctx.progress ? { onStep: (text: string) => ctx.err(`verify: ${text} (${elapsed()})`) } : {}),
  });
  if (options.json) ctx.out(toJson(result));
  else {
    const label = `${options.ruleset ? 'given' : 'compiled'} ${options.backend}`;
    for (const line of formatVerifyText(
      file,
      label,
      result,
      Math.max(40, ctx.io.stdout.columns ?? (Number(ctx.io.env['COLUMNS']) || 100)),
    ))
      ctx.out(line);
  }
  if (result.differences.length > 0) ctx.exitCode = 1;
  else if (result.undecided.length > 0) ctx.exitCode = 3;
}

export function registerVerify(program: Command, ctx: CliContext): void {
  program
    .command('verify')
    .description('prove with real packets, in network namespaces, that a ruleset enforces the policy (root)')
    .argument('<policy>', 'policy file (YAML)')
    .option('--backend <backend>', 'nftables | iptables', 'nftables')
    .option('--ruleset <file>', 'check this ruleset instead of the compiled one')
    .option('--ports <spec>', 'TCP ports swept between the host and each zone peer', '1-65535')
    .option(
      '--rounds <n>',
      'rounds of sending before a probe that never reached the ruleset is undecided',
      '5',
    )
    .option('--json', 'print {ok, differences, undecided, probes, rounds, lab, checks}')
    .action((file: string, options: VerifyCliOptions) => verifyAction(ctx, file, options));
}
