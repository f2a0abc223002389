import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { VERSION } from '../../src/cli/version.ts';
import { ROOT, runCli } from '../helpers/cli.ts';

describe('portwarden explain (built binary)', () => {
  it('explains a port in text', () => {
    const result = runCli(['explain', '23']);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^tcp\/23 {2}telnet/m);
    expect(result.stdout).toMatch(/CRITICAL/);
    expect(result.stdout).toMatch(/use instead: .*ssh/);
    expect(result.stderr).toBe('');
  });

  it('prints the documented JSON shape', () => {
    const result = runCli(['explain', '111', 'telnet', '--json']);
    expect(result.status).toBe(0);
    const parsed = JSON.parse(result.stdout) as { entries: Record<string, unknown>[] };
    expect(parsed.entries.map((e) => `${String(e['protocol'])}/${String(e['port'])}`)).toEqual([
      'tcp/111',
      'udp/111',
      'tcp/23',
    ]);
    for (const entry of parsed.entries) {
      expect(Object.keys(entry)).toEqual(
        expect.arrayContaining(['port', 'protocol', 'names', 'description', 'range', 'risk']),
      );
      expect(entry['risk']).toEqual(
        expect.objectContaining({
          level: expect.any(String),
          reason: expect.any(String),
          advice: expect.any(String),
        }),
      );
    }
  });

  it('lists risky services in the shape of `explain PORT --json` (one vocabulary)', () => {
    type Entry = { port: number; protocol: string; names: string[]; risk: { level: string } | null };
    const risky = (JSON.parse(runCli(['explain', '--risky', '--json']).stdout) as { entries: Entry[] })
      .entries;
    const names = risky.flatMap((e) => e.names);
    expect(names).toEqual(expect.arrayContaining(['telnet', 'finger', 'sunrpc', 'x11']));
    expect(risky.every((e) => e.risk !== null && ['critical', 'high', 'medium'].includes(e.risk.level))).toBe(
      true,
    );
    const one = (JSON.parse(runCli(['explain', '23', '--json']).stdout) as { entries: Entry[] }).entries;
    const telnet = risky.find((e) => e.protocol === 'tcp' && e.port === 23);
    expect(telnet).toEqual(one.find((e) => e.protocol === 'tcp'));
    expect(Object.keys(telnet ?? {}).sort()).toEqual(Object.keys(one[0] ?? {}).sort());
  });

  it('shows a range as a table, one row per run of ports that explain alike, advice once', () => {
    const result = runCli(['explain', '6000-6069']);
    expect(result.status).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^PORT +PROTO +SERVICE +RISK +RANGE +DESCRIPTION$/);
    expect(lines).toContainEqual(expect.stringMatching(/^6000-6063 +tcp +x11 +HIGH +registered /));
    expect(lines.length).toBeLessThan(30);
    expect(result.stdout.match(/-nolisten tcp/g)).toHaveLength(1);
    const long = runCli(['explain', '6000-6003', '--long']);
    expect(long.stdout.match(/^tcp\/600\d {2}x11/gm)).toHaveLength(4);
  });

  it('lists --risky as a table, and in full with --long', () => {
    const table = runCli(['explain', '--risky']).stdout.split('\n');
    expect(table[0]).toMatch(/^RISK +SERVICE +PORTS +NAME +USE INSTEAD$/);
    expect(table).toContainEqual(expect.stringMatching(/^CRITICAL +telnet +tcp\/23 +Telnet +ssh$/));
    expect(table.some((l) => l.startsWith('  advice:'))).toBe(false);
    expect(runCli(['explain', '--risky', '--long']).stdout).toMatch(/^ {2}advice: /m);
  });

  it.each([0, 1023])('says port %i is reserved, as IANA does', (port) => {
    const result = runCli(['explain', String(port)]);
    expect(result.stdout).toMatch(new RegExp(`^tcp/${port} {2}reserved {2}\\(well-known\\)$`, 'm'));
    expect(result.stdout).not.toMatch(/unassigned/);
    const json = JSON.parse(runCli(['explain', String(port), '--json']).stdout) as {
      entries: { status: string }[];
    };
    expect(json.entries.map((e) => e.status)).toEqual(['reserved', 'reserved']);
  });

  it.each([
    [
      ['explain', '70000'],
      /^portwarden: error\[PORT_OUT_OF_RANGE\]: port 70000 is out of range 0-65535 in "70000"\nhint: /,
    ],
    [
      ['explain', 'telnt'],
      /^portwarden: error\[PORT_UNKNOWN_NAME\]: unknown service name "telnt" in "telnt"\nhint: did you mean "telnet"\?/,
    ],
    [['explain', '--bogus'], /^portwarden: error\[USAGE\]: unknown option '--bogus'\nhint: /],
    [
      ['explian', '22'],
      /^portwarden: error\[USAGE\]: unknown command 'explian'\nhint: Did you mean explain\?/,
    ],
    [['explain'], /^portwarden: error\[USAGE\]: explain needs a port/],
  ])('rejects %j with exit 2 and no stack trace', (args, stderr) => {
    const result = runCli(args);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(stderr);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.stdout).toBe('');
  });

  it('prints help and version with exit 0', () => {
    expect(runCli(['--help']).status).toBe(0);
    const version = runCli(['--version']);
    expect(version.stdout.trim()).toBe(VERSION);
    const pkg = JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as { version: string };
    expect(VERSION).toBe(pkg.version);
  });
});
