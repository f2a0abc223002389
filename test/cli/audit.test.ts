import { describe, expect, it } from 'vitest';
import { AUDIT_REPORTERS } from '../../src/audit/reporters.ts';
import { runCli } from '../helpers/cli.ts';

describe('portwarden audit (this machine)', () => {
  it('prints the documented JSON minimum', () => {
    const result = runCli(['audit', '--json']);
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout) as { findings: Record<string, unknown>[]; exposure: unknown[] };
    expect(Array.isArray(report.exposure)).toBe(true);
    for (const f of report.findings) {
      for (const key of ['id', 'rule', 'severity', 'protocol', 'port', 'address', 'message', 'fix'])
        expect(f).toHaveProperty(key);
      expect(['critical', 'high', 'medium', 'low', 'info']).toContain(f['severity']);
    }
  });

  it('--help names every reporter of the registry, and each one runs', () => {
    const help = runCli(['audit', '--help']).stdout;
    for (const r of AUDIT_REPORTERS) {
      expect(help).toContain(r.name);
      const result = runCli(['audit', '--format', r.name]);
      expect(result.status, r.name).toBe(0);
      expect(result.stdout.length, r.name).toBeGreaterThan(0);
    }
  });

  it('prints SARIF 2.1.0 with --format sarif', () => {
    const sarif = JSON.parse(runCli(['audit', '--format', 'sarif']).stdout) as {
      version: string;
      runs: { tool: { driver: { name: string } } }[];
    };
    expect(sarif.version).toBe('2.1.0');
    expect(sarif.runs[0]?.tool.driver.name).toBe('portwarden');
  });

  it.each([
    [['audit', '--format', 'pdf'], /unknown format "pdf"/],
    [['audit', '--fail-on', 'severe'], /--fail-on "severe" is not a severity/],
    [
      ['audit', 'test/fixtures/policies/broken/bad-cidr.yaml'],
      /^portwarden: error\[POLICY_BAD_ADDRESS\]: "198\.51\.100\.0\/33".*\n {2}--> .*bad-cidr\.yaml:5:15\n/,
    ],
  ])('%j exits 2 with one clear error', (args, message) => {
    const result = runCli(args);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
