import type { Command } from 'commander';
import { toJson, type CliContext } from '../context.ts';
import { writeOutputFiles } from '../files.ts';
import { VERSION } from '../version.ts';
import { readPolicyFile } from './policy-file.ts';

interface CompileOptions {
  target: string;
  output?: string;
  json?: boolean;
}

async function compileAction(ctx: CliContext, file: string, options: CompileOptions): Promise<void> {
  const { compilePolicy } = await import('../../compile/registry.ts');
  const policy = await readPolicyFile(file);
  const files = compilePolicy(policy, options.target, VERSION);
  const output = options.output;
  if (output !== undefined)
    writeOutputFiles(files.map((f) => ({ path: `${output}${f.suffix}`, content: f.content })));
  if (options.json) {
    ctx.out(
      toJson({
        target: options.target,
        policy: policy.name,
        files: files.map((f) => ({ suffix: f.suffix, content: f.content })),
      }),
    );
    return;
  }
  if (options.output !== undefined) {
    for (const f of files) ctx.err(`wrote ${options.output}${f.suffix}`);
    return;
  }
  ctx.out(
    files.length === 1
      ? (files[0]?.content ?? '')
      : files.map((f) => `# ==> ${f.suffix.slice(1)} <==\n${f.content}`).join('\n'),
  );
}

export function registerCompile(program: Command, ctx: CliContext): void {
  program
    .command('compile')
    .description('compile a policy to a firewall ruleset (nftables, iptables, ...)')
    .argument('<policy>', 'policy file (YAML)')
    .option('-t, --target <target>', 'nftables | iptables | ipchains | pf | windows', 'nftables')
    .option('-o, --output <file>', 'write to FILE (iptables writes FILE.v4 and FILE.v6)')
    .option('--json', 'print {target, policy, files: [{suffix, content}]}')
    .action((file: string, options: CompileOptions) => compileAction(ctx, file, options));
}
