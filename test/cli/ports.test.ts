import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';

const fixture = (path: string): string => fileURLToPath(new URL(`../fixtures/${path}`, import.meta.url));

interface PortsJson {
  sockets: {
    protocol: string;
    family: number;
    localAddress: string;
    localPort: number;
    state: string;
    exposure: string;
    netns: string;
    processes: { pid: number; name: string | null }[];
  }[];
}

describe('portwarden ports', () => {
  it('prints the documented JSON minimum for this machine', () => {
    const result = runCli(['ports', '--json']);
    expect(result.status).toBe(0);
    const parsed = JSON.parse(result.stdout) as PortsJson;
    expect(Array.isArray(parsed.sockets)).toBe(true);
    for (const s of parsed.sockets) {
      expect(['tcp', 'udp']).toContain(s.protocol);
      expect([4, 6]).toContain(s.family);
      expect(typeof s.localPort).toBe('number');
      expect(['loopback', 'address', 'all']).toContain(s.exposure);
      expect(Array.isArray(s.processes)).toBe(true);
    }
  });

  it('reads a Windows capture with its tasklist, grouped with the most exposed first', () => {
    const result = runCli([
      'ports',
      '--from-file',
      fixture('windows/netstat-ano.txt'),
      '--tasklist',
      fixture('windows/tasklist-v.csv'),
    ]);
    expect(result.status).toBe(0);
    const lines = result.stdout.split('\n');
    expect(lines[0]).toMatch(/^Bound to all interfaces/);
    expect(result.stdout).toMatch(/tcp\s+0\.0\.0\.0:3389\s+unknown\s+rdp\s+high\s+svchost\.exe\[1204\]/);
    expect(result.stdout).not.toContain('50312'); // established only with --all
  });

  it('reads a macOS lsof capture as JSON', () => {
    const result = runCli(['ports', '--json', '--tcp', '--from-file', fixture('lsof/macos-ftcp.txt')]);
    const parsed = JSON.parse(result.stdout) as PortsJson;
    const seen = parsed.sockets.map((s) => `${s.localAddress}:${s.localPort}`);
    expect(seen.slice(-2).sort()).toEqual(['127.0.0.1:5432', '::1:5432']); // loopback last
    expect(seen.sort()).toEqual([
      '0.0.0.0:22',
      '0.0.0.0:7000',
      '127.0.0.1:5432',
      '::1:5432',
      ':::22',
      'fe80::1%lo0:7000',
    ]);
  });

  it.each([
    [['ports', '--bogus'], /unknown option '--bogus'/],
    [['ports', '--netns', 'no-such-ns-xyz'], /--netns "no-such-ns-xyz": no such network namespace/],
    [['ports', '--from-file', '/nonexistent/file'], /cannot read listing "\/nonexistent\/file"/],
  ])('%j fails with exit 2 and a one-line error', (args, message) => {
    const result = runCli(args);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toMatch(/^portwarden: error\[[A-Z_]+\]: /);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
