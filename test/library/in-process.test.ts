import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPortwardenError, renderScanJson, renderScanXml, scan, type ScanResult } from '../../src/index.ts';
import { privateEntry } from '../../src/lab/private-entry.ts';
import { LAB_WORKER } from '../../src/verify/lab.ts';
import { BIN } from '../helpers/cli.ts';

function listen(server: net.Server | dgram.Socket): Promise<number> {
  return new Promise((resolve) => {
    if (server instanceof net.Server)
      server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
    else server.bind(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

/** A loopback port nothing listens on: bound once by us, then released. */
async function freePort(kind: 'tcp' | 'udp'): Promise<number> {
  const server = kind === 'tcp' ? net.createServer() : dgram.createSocket('udp4');
  const port = await listen(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The CLI's --json for the same scan, spawned without blocking the listeners in this process. */
function cliScanJson(args: readonly string[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'scan', ...args, '--json'], {
      env: { PATH: process.env['PATH'] ?? '', NO_COLOR: '1' },
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('close', (status) => (status === 0 ? resolve(JSON.parse(stdout)) : reject(new Error(stdout))));
  });
}

type PortRow = { port: number; state: string; service: string; product?: string };
function portsOf(json: unknown): PortRow[] {
  const hosts = (json as { hosts: { ports: PortRow[] }[] }).hosts;
  return hosts.flatMap((h) => h.ports);
}

describe('the library scan, in-process against 127.0.0.1 listeners', () => {
  const closers: (() => void)[] = [];
  const tcpOpen: number[] = [];
  let ssh = 0;
  let udpOpen = 0;
  let tcpClosed = 0;
  let udpClosed = 0;
  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      const server = net.createServer((c) => c.on('error', () => undefined).end());
      tcpOpen.push(await listen(server));
      closers.push(() => server.close());
    }
    const sshServer = net.createServer((c) =>
      c.on('error', () => undefined).end('SSH-2.0-OpenSSH_9.6p1 Ubuntu-3\r\n'),
    );
    ssh = await listen(sshServer);
    closers.push(() => sshServer.close());
    const echo = dgram.createSocket('udp4');
    echo.on('message', (data, from) => echo.send(data, from.port, from.address));
    udpOpen = await listen(echo);
    closers.push(() => echo.close());
    tcpClosed = await freePort('tcp');
    udpClosed = await freePort('udp');
  });
  afterAll(() => closers.forEach((close) => close()));

  it('finds open and closed TCP ports, names the service with banners, and adds UDP', async () => {
    const progress: number[] = [];
    const result: ScanResult = await scan(['127.0.0.1'], {
      ports: `T:${[...tcpOpen, ssh, tcpClosed].join(',')},U:${udpOpen},${udpClosed}`,
      banners: true,
      timeoutMs: 1000,
      onProgress: (done) => progress.push(done),
    });
    const [host] = result.hosts;
    expect(host?.address).toBe('127.0.0.1');
    const state = (protocol: string, port: number): string | undefined =>
      host?.ports.find((p) => p.protocol === protocol && p.port === port)?.state;
    for (const port of [...tcpOpen, ssh]) expect(state('tcp', port)).toBe('open');
    expect(state('tcp', tcpClosed)).toBe('closed');
    expect(state('udp', udpOpen)).toBe('open');
    expect(state('udp', udpClosed)).toBe('closed');
    expect(host?.ports.find((p) => p.port === ssh)).toMatchObject({
      service: 'ssh',
      product: 'OpenSSH',
      version: '9.6p1',
    });
    expect(result.summary).toMatchObject({ portCount: 6, interrupted: false });
    expect(result.summary.protocols.map((p) => [p.protocol, p.count])).toEqual([
      ['tcp', 4],
      ['udp', 2],
    ]);
    expect(progress.at(-1)).toBe(4);
    expect(renderScanXml(result.hosts, result.summary)).toContain(`portid="${ssh}"`);
  });

  it('gives the same ports, states and services as `portwarden scan --json`', async () => {
    const spec = [...tcpOpen, ssh, tcpClosed].join(',');
    const library = await scan(['127.0.0.1'], { ports: spec, banners: true });
    const cli = await cliScanJson(['127.0.0.1', '-p', spec, '--banners']);
    const rows = portsOf(renderScanJson(library.hosts, library.summary));
    expect(rows).toHaveLength(4);
    expect(rows).toEqual(portsOf(cli));
  });

  it('refuses bad targets before sending anything, and an aborted scan says so', async () => {
    await expect(scan([])).rejects.toMatchObject({ code: 'TARGET_EMPTY' });
    await expect(scan(['10.0.0.0/8'], { ports: '22' })).rejects.toMatchObject({ code: 'TARGET_TOO_MANY' });
    await expect(scan(['127.0.0.1'], { ports: '70000' })).rejects.toSatisfy(isPortwardenError);
    const controller = new AbortController();
    controller.abort();
    const aborted = await scan(['127.0.0.1'], { ports: `${tcpOpen[0]}`, signal: controller.signal });
    expect(aborted.summary.interrupted).toBe(true);
    expect(aborted.hosts).toEqual([]);
  });
});

describe('privateEntry', () => {
  it('is the sibling .js in dist/, and the dist/ copy when running from source', () => {
    expect(privateEntry('file:///opt/pw/dist/apply/apply.js', 'rollback-worker')).toBe(
      '/opt/pw/dist/apply/rollback-worker.js',
    );
    expect(privateEntry('file:///home/u/src/pw/src/lab/servers.ts', 'worker-entry')).toBe(
      '/home/u/src/pw/dist/lab/worker-entry.js',
    );
    expect(existsSync(LAB_WORKER)).toBe(true);
  });
});
