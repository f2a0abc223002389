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

describe('portwarden man', () => {
  const page = runCli(['man']).stdout;

  it('is a roff page with every command, its options and examples, and the exit status', () => {
    expect(page).toMatch(/^\.TH PORTWARDEN 1 /);
    for (const usage of [
      'portwarden explain [options] [ports...]',
      'portwarden policy check [options] <policy>',
    ])
      expect(page).toContain(`.SS "${usage.replaceAll('-', '\\-')}"`);
    expect(page).toContain('.B \\-\\-fail\\-on <severity>');
    expect(page).toContain('portwarden scan \\-iL hosts.txt \\-p\\- \\-oX scan.xml');
    expect(page).toMatch(/^\.SH EXIT STATUS\n\.TP\n\.B 0\nok\n/m);
    // no generated line may start a roff request by accident
    const requests = page.split('\n').filter((l) => /^[.']/.test(l));
    expect(requests.every((l) => /^\.(TH|SH|SS|TP|B|PP|RS|RE|nf|fi) ?/.test(l))).toBe(true);
  });

  const hasMan = spawnSync('man', ['--version'], { timeout: 10_000 }).error === undefined;
  it.skipIf(!hasMan)('renders with man(1) (skipped: man(1) is not installed)', () => {
    const man = spawnSync('man', ['-l', '-'], {
      input: page,
      encoding: 'utf8',
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', MANWIDTH: '100', MAN_KEEP_FORMATTING: '' },
      timeout: 20_000,
    });
    expect(man.stdout).toMatch(/EXIT STATUS/);
    expect(man.stdout).toMatch(/portwarden policy check \[options\] <policy>/);
  });
});
