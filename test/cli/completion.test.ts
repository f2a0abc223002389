import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';

/** Runs the generated bash completion on a command line (cursor at its end) and returns the candidates. */
function complete(script: string, line: readonly string[]): string[] {
  const words = line.map((w) => `'${w}'`).join(' ');
  const program = `${script}\nCOMP_WORDS=(${words}); COMP_CWORD=${line.length - 1}; _portwarden; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const result = spawnSync('bash', ['-c', program], { encoding: 'utf8', timeout: 10_000 });
  expect(result.stderr).toBe('');
  return result.stdout.split('\n').filter(Boolean);
}

describe('portwarden completion', () => {
  const bash = runCli(['completion', 'bash']).stdout;

  it('bash completes verbs, subcommands and the options of the command being typed', () => {
    expect(complete(bash, ['portwarden', 'ex'])).toEqual(['explain']);
    expect(complete(bash, ['portwarden', 'policy', ''])).toEqual(
      expect.arrayContaining(['check', 'init', 'schema']),
    );
    expect(complete(bash, ['portwarden', 'policy', 'check', 'p.yaml', '--st'])).toEqual(['--strict']);
    expect(complete(bash, ['portwarden', 'scan', '127.0.0.1', '--ud'])).toEqual(['--udp']);
    expect(complete(bash, ['portwarden', 'audit', '--fail'])).toEqual(['--fail-on']);
  });

  it('zsh reuses it through bashcompinit; fish gets one line per word', () => {
    expect(runCli(['completion', 'zsh']).stdout).toMatch(/^autoload -U \+X bashcompinit && bashcompinit$/m);
    const fish = runCli(['completion', 'fish']).stdout;
    expect(fish).toContain("complete -c portwarden -f -n '__fish_use_subcommand' -a explain");
    expect(fish).toContain("complete -c portwarden -n '__fish_seen_subcommand_from check' -l strict");
  });

  it('rejects another shell with exit 2', () => {
    const result = runCli(['completion', 'tcsh']);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/Allowed choices are bash, zsh, fish/);
  });
});
