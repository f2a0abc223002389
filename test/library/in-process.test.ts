import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  compilePolicy,
  isPortwardenError,
  loadPolicyOrThrow,
  renderScanJson,
  renderScanXml,
  scan,
  verifyPolicy,
  type ApplyResult,
  type ApplyStatus,
  type PendingApply,
  type ScanResult,
} from '../../src/index.ts';
import { privateEntry } from '../../src/lab/private-entry.ts';
import { LAB_WORKER } from '../../src/verify/lab.ts';
import { BIN, ROOT } from '../helpers/cli.ts';
import { ApplyLab, history, until } from '../helpers/apply-lab.ts';
import { describeRootTier } from '../helpers/root-tier.ts';

// namespace tests on a loaded 2-core machine: generous limits, deadlines the tests wait for explicitly
vi.setConfig({ testTimeout: 180_000 });

const WORKSTATION = join(ROOT, 'examples/workstation.yaml');
const APPLY_STEP = join(ROOT, 'test/fixtures/library/apply-step.mjs');

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

await describeRootTier('the library verify, in-process (namespaces)', ['ip', 'nft', 'python3'], () => {
  const policy = loadPolicyOrThrow(readFileSync(WORKSTATION, 'utf8'), 'examples/workstation.yaml');

  it('verifyPolicy proves the compiled ruleset of an example policy, FTP sessions included', async () => {
    const file = join(ROOT, 'examples/web-ftp-dual-homed.yaml');
    const ftp = loadPolicyOrThrow(readFileSync(file, 'utf8'), 'examples/web-ftp-dual-homed.yaml');
    const steps: string[] = [];
    const result = await verifyPolicy(ftp, {
      backend: 'nftables',
      ports: '1-100',
      version: 'test',
      onStep: (text) => steps.push(text),
    });
    expect(result.differences).toEqual([]);
    expect(result.undecided).toEqual([]);
    expect(result.ok).toBe(true);
    // the FTP sessions ran through the lab's private worker (servers in the host, clients in the peers)
    expect(result.checks).toContain('FTP sessions, passive and active, where the policy allows FTP');
    expect(steps).toContain('FTP sessions');
  });

  it('verifyPolicy reports the hole in a hand-made ruleset', async () => {
    const [compiled] = compilePolicy(policy, 'nftables', 'test');
    const text = (compiled?.content ?? '').replace(
      '\tchain in_uplink {\n',
      '\tchain in_uplink {\n\t\ttcp dport 22 accept\n',
    );
    expect(text).toContain('tcp dport 22 accept');
    const result = await verifyPolicy(policy, {
      backend: 'nftables',
      ports: '20-30',
      version: 'test',
      rulesetFiles: [{ suffix: '.nft', content: text }],
    });
    expect(result.ok).toBe(false);
    expect(result.differences).toEqual(
      expect.arrayContaining(
        ([4, 6] as const).map((family): unknown =>
          expect.objectContaining({
            direction: 'inbound',
            family,
            protocol: 'tcp',
            ports: '22',
            expected: 'block',
            observed: 'pass',
          }),
        ),
      ),
    );
    expect(result.differences).toHaveLength(2);
  });
});

await describeRootTier(
  'the library apply, confirm and rollback (run inside a namespace)',
  ['ip', 'nft', 'flock', 'unshare'],
  () => {
    const lab = new ApplyLab('lib');
    afterAll(() => lab.dispose());

    /** One library call inside `ns` (see apply-step.mjs: a process cannot enter a namespace itself). */
    async function step<T>(ns: string, args: readonly string[]): Promise<T> {
      const r = await lab.lab.exec(
        ns,
        ['env', '-u', 'SSH_CONNECTION', process.execPath, APPLY_STEP, ...args],
        { allowFailure: true, timeoutMs: 120_000 },
      );
      if (r.status !== 0) throw new Error(`apply-step ${args.join(' ')}: ${r.stderr}`);
      return JSON.parse(r.stdout) as T;
    }

    it('applyPolicy arms the rollback worker; rollbackPending restores and stops it', async () => {
      const { ns, state } = await lab.setup();
      const applied = await step<ApplyResult>(ns, ['apply', state, WORKSTATION, '60']);
      expect(applied.rollbackPid).toEqual(expect.any(Number));
      expect(readFileSync(`/proc/${applied.rollbackPid}/cmdline`, 'utf8')).toMatch(/rollback-worker\.js/);
      expect(await lab.table(ns)).toContain('chain in_uplink');
      const status = await step<ApplyStatus>(ns, ['status', state]);
      expect(status).toMatchObject({ loaded: true, pending: { id: applied.id } });
      const rolledBack = await step<PendingApply>(ns, ['rollback', state]);
      expect(rolledBack.id).toBe(applied.id);
      expect(await lab.table(ns)).toBe('(none)');
      await until('the rollback worker to stop', () => !existsSync(`/proc/${applied.rollbackPid}`), 10_000);
      expect(history(state).map((h) => h.event)).toEqual(['applied', 'rolled-back']);
    });

    it('without confirmation the detached worker rolls back at the deadline; confirmPending keeps it', async () => {
      const { ns, state } = await lab.setup();
      const first = await step<ApplyResult>(ns, ['apply', state, WORKSTATION, '2']);
      expect(await lab.table(ns)).toContain('chain in_uplink');
      // history is written after the restore: wait for it, then look at the kernel
      await until('the deadline rollback', () => history(state).at(-1)?.event === 'rolled-back', 30_000);
      expect(await lab.table(ns)).toBe('(none)');
      expect(history(state).at(-1)).toMatchObject({ event: 'rolled-back', id: first.id });
      expect(history(state).at(-1)?.reason).toMatch(/no confirmation before the deadline/);

      const second = await step<ApplyResult>(ns, ['apply', state, WORKSTATION, '60']);
      const kept = await step<PendingApply>(ns, ['confirm', state]);
      expect(kept.id).toBe(second.id);
      await until('the rollback worker to stop', () => !existsSync(`/proc/${second.rollbackPid}`), 10_000);
      expect(await lab.table(ns)).toContain('chain in_uplink');
      expect((await step<ApplyStatus>(ns, ['status', state])).pending).toBeNull();
    });
  },
);

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
