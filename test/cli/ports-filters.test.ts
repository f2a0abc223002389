import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';

const fixture = (path: string): string => fileURLToPath(new URL(`../fixtures/${path}`, import.meta.url));
const WINDOWS = [
  '--from-file',
  fixture('windows/netstat-ano.txt'),
  '--tasklist',
  fixture('windows/tasklist-v.csv'),
];

interface PortsJson {
  sockets: { protocol: string; localPort: number; state: string; processes: { pid: number }[] }[];
}

const ports = (args: readonly string[]): PortsJson['sockets'] => {
  const result = runCli(['ports', '--json', ...args]);
  expect(result.stderr).not.toMatch(/error/);
  expect(result.status).toBe(0);
  return (JSON.parse(result.stdout) as PortsJson).sockets;
};
const seen = (args: readonly string[]): string[] => ports(args).map((s) => `${s.protocol}/${s.localPort}`);

describe('ports filters on a live listener (127.0.0.1, port 0)', () => {
  let server: ChildProcess;
  let port = 0;

  beforeAll(async () => {
    server = spawn(process.execPath, [
      '-e',
      "const s=require('net').createServer().listen(0,'127.0.0.1',()=>console.log(s.address().port));setTimeout(()=>{},60000)",
    ]);
    const [line] = (await once(server.stdout!, 'data')) as [Buffer];
    port = Number(line.toString());
  });

  afterAll(() => {
    server.kill('SIGKILL');
  });

  it('`ports PORT` shows that one listener and its owner', () => {
    const found = ports([String(port)]);
    expect(found.map((s) => s.localPort)).toEqual([port]);
    expect(found[0]?.processes.map((p) => p.pid)).toEqual([server.pid]);
  });

  it('--pid, --process and --user find it; each composes with the port', () => {
    const uid = String(process.getuid?.() ?? 0);
    for (const args of [
      ['--pid', String(server.pid)],
      ['--process', 'node'],
      ['--user', uid],
      [String(port), '--pid', String(server.pid), '--process', 'node', '--user', uid],
      [`T:${port}`, '-t'],
      ['--port', String(port)],
      ['-p', String(port)],
    ]) {
      expect(seen(args), args.join(' ')).toContain(`tcp/${port}`);
    }
  });

  it('filters that exclude it: another pid, UDP only, --exposed (it is loopback), a unit', () => {
    for (const args of [
      [String(port), '--pid', '1'],
      [String(port), '--udp'],
      [String(port), '--exposed'],
      [`U:${port}`],
      [String(port), '--unit', 'no-such-unit.service'],
      [String(port), '--process', 'not-node'],
    ]) {
      expect(seen(args), args.join(' ')).toEqual([]);
    }
  });

  it('`ports -a PORT` shows a loopback connection to it under Connections, the listener above', async () => {
    const client = spawn(process.execPath, [
      '-e',
      `require('net').connect(${port},'127.0.0.1',()=>console.log('up'));setTimeout(()=>{},60000)`,
    ]);
    try {
      await once(client.stdout, 'data');
      const result = runCli(['ports', '-a', String(port)]);
      const [listeners = '', connections = ''] = result.stdout.split('\n\n');
      expect(listeners).toMatch(/^Bound to loopback only \(1\)/);
      expect(listeners).not.toContain('ESTABLISHED');
      expect(connections).toMatch(/^Connections \(2\)/);
      expect(connections).toContain(`127.0.0.1:${port}`);
      expect(connections).toContain(`node[${client.pid}]`);
    } finally {
      client.kill('SIGKILL');
    }
  });

  it('the text view says when nothing matches', () => {
    const result = runCli(['ports', String(port), '--pid', '1']);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^No listening sockets match/);
  });

  it('`ports -tulpn PORT` and `ports -p PORT` read like ss and netstat', () => {
    for (const args of [
      ['-tulpn', String(port)],
      ['-p', String(port)],
      ['-ltn', String(port)],
    ]) {
      const result = runCli(['ports', ...args]);
      expect(result.stderr, args.join(' ')).not.toMatch(/error/);
      expect(result.status).toBe(0);
      expect(result.stdout).toContain(`127.0.0.1:${port}`);
      expect(result.stdout).toContain(`node[${server.pid}]`);
    }
  });
});

describe('ports -a: connections are not listeners', () => {
  const blockOf = (text: string, title: string): string =>
    text.split('\n\n').find((b) => b.startsWith(title)) ?? '';

  it('an outbound ESTABLISHED / TIME_WAIT goes under Connections, not "Bound to one address"', () => {
    const result = runCli(['ports', '-a', ...WINDOWS]);
    expect(result.status).toBe(0);
    const oneAddress = blockOf(result.stdout, 'Bound to one address');
    expect(oneAddress).toContain('192.168.1.20:139');
    expect(oneAddress).not.toMatch(/50312|50313|ESTABLISHED|TIME_WAIT/);
    const connections = blockOf(result.stdout, 'Connections (2)');
    expect(connections).toMatch(
      /tcp\s+192\.168\.1\.20:50312\s+203\.0\.113\.80:443\s+ESTABLISHED\s+Discord\.exe\[9120\]/,
    );
    expect(connections).toMatch(/192\.168\.1\.20:50313\s+203\.0\.113\.80:443\s+TIME_WAIT/);
  });

  it('`ports -a 443` finds the connections to a remote port 443', () => {
    const result = runCli(['ports', '-a', '443', ...WINDOWS]);
    expect(result.stdout).toMatch(/^Connections \(2\)/);
  });
});

describe('ports filters on a Windows capture', () => {
  it('a port list with ranges and protocol marks', () => {
    expect(seen(['135,3389', ...WINDOWS]).sort()).toEqual(['tcp/135', 'tcp/135', 'tcp/3389']);
    expect(
      seen(['--process', 'svchost.exe', '--user', 'NT AUTHORITY\\NETWORK SERVICE', ...WINDOWS]),
    ).toContain('tcp/3389');
    expect(seen(['--pid', '1204', ...WINDOWS])).toEqual(['tcp/3389']);
  });
});

describe('bad filter input', () => {
  it.each([
    [['ports', 'abc'], /unknown service name "abc"/],
    [['ports', '70000'], /port 70000 is out of range/],
    [['ports', '25-20'], /reversed/],
    [['ports', '--pid', 'x'], /--pid "x" must be a whole number/],
    [['ports', '--user', ''], /--user needs a non-empty value/],
    [['ports', '8080', '9090'], /too many arguments/],
  ])('%j exits 2 with a one-line error and a hint', (args, message) => {
    const result = runCli(args);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toMatch(/^portwarden: error\[[A-Z_]+\]: /);
    expect(result.stderr).toMatch(/\nhint: /);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
