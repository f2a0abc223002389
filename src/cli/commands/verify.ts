import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { PortwardenError } from '../../errors.ts';
import { toJson, type CliContext } from '../context.ts';
import { readInputFile } from '../files.ts';
import { kernelBackendOption, numberOption } from '../options.ts';
import { formatTable } from '../table.ts';
import { VERSION } from '../version.ts';
import { readPolicyFile } from './policy-file.ts';

interface VerifyCliOptions {
  backend: string;
  ruleset?: string;
  ports: string;
  parallel: string;
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
  const { verifyPolicy, checkVerifyTools } = await import('../../verify/run.ts');
  await checkVerifyTools(backend);
  const result = await verifyPolicy(policy, {
    backend,
    ...(rulesetFiles !== undefined ? { rulesetFiles } : {}),
    ports: options.ports,
    parallel: numberOption('--parallel', options.parallel, { min: 1, max: 16, integer: true }),
    version: VERSION,
    ...(ctx.progress ? { onStep: (text: string) => ctx.err(`verify: ${text}`) } : {}),
  });
  if (options.json) {
    ctx.out(toJson(result));
  } else if (result.ok) {
    ctx.out(
      `${file}: the ${options.ruleset ? 'given' : 'compiled'} ${options.backend} ruleset lets through exactly what the policy allows (${result.probes} probes)`,
    );
    for (const check of result.checks) ctx.out(`  checked: ${check}`);
  } else {
    ctx.out(
      formatTable(
        ['ZONE', 'DIRECTION', 'FAMILY', 'PROTO', 'PORTS', 'PEER', 'EXPECTED', 'OBSERVED'],
        result.differences.map((d) => [
          d.toZone ? `${d.zone}->${d.toZone}` : d.zone,
          d.direction,
          `IPv${d.family}`,
          d.protocol,
          d.ports,
          d.peer ?? '',
          d.expected,
          d.observed,
        ]),
      ),
    );
  }
  if (!result.ok) ctx.exitCode = 1;
}

export function registerVerify(program: Command, ctx: CliContext): void {
  program
    .command('verify')
    .description('prove with real packets, in network namespaces, that a ruleset enforces the policy (root)')
    .argument('<policy>', 'policy file (YAML)')
    .option('--backend <backend>', 'nftables | iptables', 'nftables')
    .option('--ruleset <file>', 'check this ruleset instead of the compiled one')
    .option('--ports <spec>', 'TCP ports swept between the host and each zone peer', '1-65535')
    .option('--parallel <n>', 'probe tasks at once', '2')
    .option('--json', 'print {ok, differences, probes, lab, checks}')
    .action((file: string, options: VerifyCliOptions) => verifyAction(ctx, file, options));
}
