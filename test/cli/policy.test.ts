import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';

describe('portwarden compile', () => {
  it.each(['nftables', 'iptables'])('compiles the dual-homed example to %s on stdout', (target) => {
    const result = runCli(['compile', 'examples/web-ftp-dual-homed.yaml', '--target', target]);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain(target === 'nftables' ? 'table inet portwarden {' : '*filter');
  });

  it('writes FILE.v4 and FILE.v6 for iptables with -o', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pw-cli-'));
    try {
      const result = runCli(['compile', 'examples/router.yaml', '-t', 'iptables', '-o', join(dir, 'rules')]);
      expect(result.status).toBe(0);
      expect(readFileSync(join(dir, 'rules.v4'), 'utf8')).toContain('-j MASQUERADE');
      expect(readFileSync(join(dir, 'rules.v6'), 'utf8')).toContain('ip6tables-restore');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports every policy error with file:line:col, a caret and exit 2', () => {
    const result = runCli(['compile', 'test/fixtures/policies/broken/unknown-key.yaml']);
    expect(result.status).toBe(2);
    expect(result.stderr).toBe(
      [
        'portwarden: error[POLICY_UNKNOWN_KEY]: unknown key "interfacs" in zone "external"',
        '  --> test/fixtures/policies/broken/unknown-key.yaml:4:5',
        '  4 |     interfacs: [eth0]',
        '    |     ^^^^^^^^^',
        'hint: did you mean "interfaces"?',
        '',
      ].join('\n'),
    );
  });

  it.each([
    [['compile', 'examples/workstation.yaml', '-t', 'bogus'], /unknown target "bogus"/],
    [['compile', 'no/such/policy.yaml'], /cannot read policy "no\/such\/policy.yaml"/],
  ])('%j exits 2', (args, message) => {
    const result = runCli(args);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(message);
  });
});

describe('portwarden policy', () => {
  it('check: a valid example exits 0; --strict exits 1 on warnings', () => {
    expect(runCli(['policy', 'check', 'examples/workstation.yaml']).status).toBe(0);
    const risky =
      'version: 1\nzones:\n  external:\n    interfaces: [eth0]\n    inbound:\n      - allow: telnet\n';
    const lax = runCli(['policy', 'check', '-'], { input: risky });
    expect(lax.status).toBe(0);
    expect(lax.stderr).toMatch(
      /^portwarden: warning\[LINT_RISKY_EXPOSED\]: zone "external" faces untrusted networks and allows Telnet.*\n {2}--> -:6:9\n/m,
    );
    expect(runCli(['policy', 'check', '--strict', '-'], { input: risky }).status).toBe(1);
  });

  it('check --json lists diagnostics; errors exit 2', () => {
    const result = runCli(['policy', 'check', '--json', 'test/fixtures/policies/broken/bad-verdict.yaml']);
    expect(result.status).toBe(2);
    const parsed = JSON.parse(result.stdout) as {
      ok: boolean;
      diagnostics: { code: string; location: { line: number } }[];
    };
    expect(parsed.ok).toBe(false);
    expect(parsed.diagnostics[0]).toMatchObject({ code: 'POLICY_INVALID', location: { line: 2 } });
  });

  it('schema prints a JSON Schema that requires version and zones', () => {
    const schema = JSON.parse(runCli(['policy', 'schema']).stdout) as {
      required: string[];
      additionalProperties: boolean;
    };
    expect(schema.required).toEqual(expect.arrayContaining(['version', 'zones']));
    expect(schema.additionalProperties).toBe(false);
  });

  it('init writes a policy that policy check accepts', () => {
    const init = runCli(['policy', 'init']);
    expect(init.status).toBe(0);
    expect(init.stdout).toMatch(/^version: 1$/m);
    expect(runCli(['policy', 'check', '-'], { input: init.stdout }).status).toBe(0);
  });
});

describe('policy check warns about what compile would refuse', () => {
  const withPath =
    'version: 1\nzones:\n  lan:\n    interfaces: [eth0]\n    inbound: [{ allow: ssh }]\nprograms:\n  - path: /usr/bin/curl\n    outbound: [{ allow: https }]\n';

  it('warns for a target where compile fails on program-path (iptables)', () => {
    const check = runCli(['policy', 'check', '--target', 'iptables', '-'], { input: withPath });
    expect(check.status).toBe(0);
    expect(check.stderr).toMatch(
      /^portwarden: warning\[FEATURE_UNSUPPORTED\]: target iptables cannot express program-path \(program "\/usr\/bin\/curl"\).*\n {2}--> -:7:5\n/m,
    );
    expect(check.stdout).toMatch(/1 warning\(s\)/);
    expect(
      runCli(['policy', 'check', '--strict', '--target', 'iptables', '-'], { input: withPath }).status,
    ).toBe(1);
    expect(runCli(['compile', '--target', 'iptables', '-'], { input: withPath }).stderr).toMatch(
      /cannot express program-path/,
    );
  });

  it('compiles a path: rule for nftables as a match on the mark watch --programs sets', () => {
    const compiled = runCli(['compile', '-'], { input: withPath });
    expect(compiled.status).toBe(0);
    expect(compiled.stdout).toMatch(/^\t\tmeta mark 0x50570001 tcp dport @prog_1_1_tcp counter accept/m);
  });

  it('checks the target given with --target, and rejects an unknown one', () => {
    const ftp = runCli(['policy', 'check', 'examples/web-ftp-dual-homed.yaml', '--target', 'pf']);
    expect(ftp.stderr).toMatch(/warning\[FEATURE_UNSUPPORTED\]: target pf cannot express ftp-helper/);
    const nft = runCli(['policy', 'check', 'examples/web-ftp-dual-homed.yaml']);
    expect(nft.stderr).not.toMatch(/cannot express/);
    const bogus = runCli(['policy', 'check', 'examples/workstation.yaml', '-t', 'bogus']);
    expect(bogus.status).toBe(2);
    expect(bogus.stderr).toMatch(/unknown target "bogus"/);
  });
});
