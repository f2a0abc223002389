import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunResult } from '../../src/system/run.ts';
import { BIN, ROOT, runCli } from '../helpers/cli.ts';

const WORKSTATION = join(ROOT, 'examples/workstation.yaml');

/** Runs the CLI as user nobody (setpriv) when root, else as this user. */
function runUnprivileged(args: readonly string[]): RunResult {
  const argv =
    process.getuid?.() === 0
      ? ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, ...args]
      : [BIN, ...args];
  const r = spawnSync(process.getuid?.() === 0 ? 'setpriv' : process.execPath, argv, {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', NO_COLOR: '1' },
  });
  return { status: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

describe('apply: input errors (no root needed)', () => {
  it.each([
    [['apply', WORKSTATION, '--backend', 'pf'], /--backend "pf" cannot be applied/],
    [
      ['apply', WORKSTATION, '--confirm-timeout', '1m'],
      /--confirm-timeout "1m" must be a whole number from 0 to 86400/,
    ],
    [['apply', 'no-such.yaml'], /cannot read policy "no-such.yaml"/],
    [['persist', '--via', 'bogus'], /--via "bogus" is not include or unit/],
  ])('%j exits 2 with one line and a hint', (args, message) => {
    const result = runCli(args);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toMatch(/hint: /);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('needs root to change the firewall (exit 3), and dry-run still prints the ruleset', () => {
    const applied = runUnprivileged(['apply', WORKSTATION]);
    expect(applied.status).toBe(3);
    expect(applied.stderr).toMatch(/apply changes the firewall and needs root/);
    const dry = runUnprivileged(['apply', WORKSTATION, '--dry-run']);
    expect(dry.status).toBe(0);
    expect(dry.stdout).toMatch(/^table inet portwarden$/m);
    expect(dry.stderr).toMatch(
      /no diff against the loaded ruleset \(reading the loaded ruleset needs root\)/,
    );
  });
});
