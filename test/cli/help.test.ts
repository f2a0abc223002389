import { describe, expect, it } from 'vitest';
import { wantsColor } from '../../src/cli/context.ts';
import { runCli } from '../helpers/cli.ts';

const ESC = '\u001b[';

describe('unknown commands point at help that exists', () => {
  it.each([
    [
      ['zzz'],
      /^portwarden: error\[[A-Z_]+\]: unknown command 'zzz'\nhint: `portwarden --help` lists the commands\n$/,
    ],
    [['sacn', '127.0.0.1'], /^hint: Did you mean scan\? `portwarden --help` lists the commands$/m],
    [
      ['policy', 'chek', 'x.yaml'],
      /^hint: Did you mean check\? `portwarden policy --help` lists the commands$/m,
    ],
  ])('%j', (args, stderr) => {
    const result = runCli(args);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(stderr);
    expect(result.stderr).not.toMatch(/portwarden (zzz|sacn|policy chek) --help/);
  });

  it('an unknown option still points at the help of its command', () => {
    expect(runCli(['compile', '--bogus']).stderr).toMatch(/hint: see `portwarden compile --help`/);
  });
});

describe('colour', () => {
  const explain = (env: Record<string, string>, ...flags: string[]): string =>
    runCli(['explain', '23', ...flags], { env }).stdout;

  it.each([
    [{ FORCE_COLOR: '1' }, [], true],
    [{ FORCE_COLOR: '0' }, [], false],
    [{}, ['--color=always'], true],
    [{}, ['--color', 'always'], true],
    [{ FORCE_COLOR: '1' }, ['--color=never'], false],
    [{ FORCE_COLOR: '1' }, ['--no-color'], false],
    [{}, [], false],
  ] as const)('env %j with %j: colour %s', (env, flags, colored) => {
    expect(explain({ NO_COLOR: '', ...env }, ...flags).includes(ESC)).toBe(colored);
  });

  it('NO_COLOR and TERM=dumb turn auto colour off on a terminal; always wins over both', () => {
    const tty = { isTTY: true, write: () => true };
    expect(wantsColor('auto', tty, {})).toBe(true);
    expect(wantsColor('auto', tty, { TERM: 'dumb' })).toBe(false);
    expect(wantsColor('auto', tty, { NO_COLOR: '1' })).toBe(false);
    expect(wantsColor('auto', { write: () => true }, {})).toBe(false);
    expect(wantsColor('always', { write: () => true }, { NO_COLOR: '1', TERM: 'dumb' })).toBe(true);
  });

  it('rejects an unknown --color value with exit 2', () => {
    const result = runCli(['explain', '23', '--color=sometimes']);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/Allowed choices are auto, always, never/);
  });
});

describe('--help', () => {
  const top = runCli(['--help']).stdout;
  const commands = top.slice(top.indexOf('Commands:'), top.indexOf('\n\n', top.indexOf('Commands:')));
  const verbs = [...commands.matchAll(/^ {2}([a-z]+) /gm)].map((m) => m[1] ?? '').filter((v) => v !== 'help');

  it('lists the exit codes and the colour switch', () => {
    expect(top).toMatch(/^Exit codes:\n {2}0 {2}ok\n {2}1 .*\n {2}2 .*\n {2}3 .*\n {2}4 /m);
    expect(top).toMatch(/--color <when>/);
  });

  it('gives every command examples', () => {
    expect(verbs.length).toBeGreaterThanOrEqual(15);
    const paths = [...verbs.map((v) => [v]), ['policy', 'check'], ['policy', 'init'], ['policy', 'schema']];
    for (const path of paths) {
      const help = runCli([...path, '--help']);
      expect(help.status, path.join(' ')).toBe(0);
      expect(help.stdout, path.join(' ')).toMatch(
        new RegExp(`\\nExamples:\\n {2}(sudo )?portwarden ${path.join(' ')}\\b`),
      );
    }
  });

  it("shows scan's nmap spellings", () => {
    const help = runCli(['scan', '--help']).stdout;
    for (const spelling of ['-sU', '-oX', '-iL', '-p-', '-sV', '-oA', '--top-ports'])
      expect(help).toMatch(new RegExp(`^ {2}${spelling} +\\S`, 'm'));
  });
});
