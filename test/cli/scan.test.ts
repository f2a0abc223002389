import net from 'node:net';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, runCli } from '../helpers/cli.ts';

interface ScanJson {
  hosts: {
    address: string;
    ports: { protocol: string; port: number; state: string; service: string; banner: null }[];
    extraPorts: { state: string; count: number }[];
  }[];
}

/** Runs the CLI without blocking the event loop, so the in-process listeners can accept. */
function runAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env['PATH'] ?? '', NO_COLOR: '1' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('portwarden scan on loopback', () => {
  const servers: net.Server[] = [];
  const open: number[] = [];
  beforeAll(async () => {
    for (let i = 0; i < 3; i++) {
      const server = net.createServer((c) => c.on('error', () => undefined).end());
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      servers.push(server);
      const address = server.address();
      if (address && typeof address === 'object') open.push(address.port);
    }
  });
  afterAll(() => servers.forEach((s) => s.close()));

  it('finds the open ports and reports every scanned port (shown or in extraPorts)', async () => {
    // Small ranges around each listener: a wide range could meet other listeners of the machine.
    const spec = open.map((p) => `${p - 15}-${p + 15}`).join(',');
    const scanned = new Set(open.flatMap((p) => Array.from({ length: 31 }, (_, i) => p - 15 + i))).size;
    const result = await runAsync(['scan', '127.0.0.1', '-p', spec, '--json']);
    expect(result.status).toBe(0);
    const json = JSON.parse(result.stdout) as ScanJson;
    const host = json.hosts[0];
    expect(host?.address).toBe('127.0.0.1');
    expect(host?.ports.filter((p) => p.state === 'open').map((p) => p.port)).toEqual(
      [...open].sort((a, b) => a - b),
    );
    const shown = host?.ports.length ?? 0;
    const hidden = host?.extraPorts.reduce((n, e) => n + e.count, 0) ?? 0;
    expect(shown + hidden).toBe(scanned);
    expect(host?.ports[0]).toHaveProperty('banner', null);
  });

  it('prints an nmap-like table', async () => {
    const result = await runAsync(['scan', '127.0.0.1', '-p', open.join(',')]);
    expect(result.stdout).toMatch(/^PORT\s+STATE\s+SERVICE$/m);
    expect(result.stdout).toMatch(new RegExp(`^${open[0]}/tcp\\s+open\\s`, 'm'));
    expect(result.stdout).toMatch(/scanned in [\d.]+ seconds/);
  });

  it.each([
    [['scan'], /no targets given/],
    [['scan', '198.51.100.300'], /invalid target "198\.51\.100\.300"/],
    [['scan', '10.0.0.0/8', '-p', '22'], /the targets cover 16777216 addresses/],
    [['scan', '127.0.0.1', '-p', '70000'], /70000/],
    [['scan', '127.0.0.1', '-T', '9'], /-T "9" must be a whole number from 0 to 5/],
  ])('%j exits 2 with one clear error', (args, message) => {
    const result = runCli(args);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
