import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  copyFileSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NetnsLab } from '../../src/lab/netns.ts';
import { runCommand } from '../../src/system/run.ts';
import { ProgramStore } from '../../src/programs/store.ts';
import { buildServer } from '../../src/serve/server.ts';
import { WatchStore } from '../../src/watch/store.ts';
import { BIN } from '../helpers/cli.ts';
import { describeRootTier } from '../helpers/root-tier.ts';

/**
 * watch --programs end to end, in namespaces this file creates: a host namespace running the daemon
 * and a peer (198.51.100.2) with a TCP server. The clients are copies of python3 under different paths,
 * so the only thing that tells them apart is the executable. Answers go through the dashboard's API.
 */

const CLIENT = [
  'import socket, time, json, os, sys',
  't = time.time()',
  'try:',
  '    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))',
  '    data, ok = s.recv(10).decode(), True',
  '    time.sleep(float(sys.argv[4]) if len(sys.argv) > 4 else 0)',
  'except Exception as e:',
  '    data, ok = str(e), False',
  "print(json.dumps({'pid': os.getpid(), 'ok': ok, 'data': data, 'seconds': time.time() - t}))",
].join('\n');

const UDP_CLIENT = [
  'import socket, json, os, sys, time',
  's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.5)',
  "s.connect(('198.51.100.2', 5353)); ok = False",
  'for _ in range(12):',
  '    try:',
  "        s.send(b'ping')",
  '        ok = s.recv(10) == b"ping"; break',
  '    except socket.timeout:',
  '        pass',
  '    except PermissionError:',
  '        time.sleep(0.5)  # the gate dropped the datagram: the kernel says EPERM to the sender',
  "print(json.dumps({'pid': os.getpid(), 'ok': ok, 'data': '', 'seconds': 0}))",
].join('\n');

const UDP_ECHO = [
  'import socket',
  's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
  "s.bind(('198.51.100.2', 5353))",
  'for _ in range(5000):',
  '    d, a = s.recvfrom(100); s.sendto(d, a)',
].join('\n');

const SERVER = [
  'import socket',
  's = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
  "s.bind(('198.51.100.2', 8080)); s.listen(64)",
  'for _ in range(500):',
  "    c, a = s.accept(); c.sendall(b'hi'); c.close()",
].join('\n');

interface ClientResult {
  pid: number;
  ok: boolean;
  data: string;
  seconds: number;
}

interface ProgramsApi {
  prompts: {
    id: number;
    changed: boolean;
    program: { exe: string; pid: number; sha256: string };
    protocol: string;
    remoteAddress: string;
    remotePort: number;
  }[];
  decisions: { exe: string; verdict: string; scope: string }[];
  connections: { program: { exe: string } | null; verdict: string; reason: string; remotePort: number }[];
}

await describeRootTier('watch --programs (namespaces)', ['ip', 'nft', 'python3'], () => {
  const lab = new NetnsLab('prg');
  const dir = mkdtempSync(join(tmpdir(), 'pw-programs-'));
  const db = join(dir, 'watch.db');
  const policyFile = join(dir, 'policy.yaml');
  const exe = (name: string): string => join(dir, name);
  let host = '';
  let daemon: ChildProcess | null = null;
  let app: FastifyInstance;
  let store: WatchStore;
  let base = '';
  const TOKEN = 'programs-test-token';

  async function startDaemon(mode: string, extra: string[] = []): Promise<ChildProcess> {
    const child = lab.spawn(host, [
      process.execPath,
      BIN,
      'watch',
      '--programs',
      mode,
      '--db',
      db,
      '--kernel-log',
      'none',
      '--interval',
      '60',
      '--programs-timeout',
      '20',
      '--json',
      ...extra,
    ]);
    let err = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the daemon did not start: ${err}`)), 15_000);
      child.stderr?.on('data', (chunk: Buffer) => {
        err += chunk.toString();
        if (err.includes('programs gate loaded')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`the daemon exited ${code}: ${err}`)));
    });
    daemon = child;
    return child;
  }

  async function stopDaemon(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = daemon;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    // ip netns exec runs the daemon in its own process (it execs), so this reaches node itself
    child.kill(signal);
    await exited;
    daemon = null;
  }

  /** Runs a client; `holdS` keeps its connection open after the answer (learn attributes by polling). */
  function client(name: string, timeoutS: number, holdS = 0): Promise<ClientResult> {
    return lab
      .exec(host, [exe(name), '-c', CLIENT, '198.51.100.2', '8080', String(timeoutS), String(holdS)], {
        timeoutMs: (timeoutS + 10) * 1000,
      })
      .then((r) => JSON.parse(r.stdout) as ClientResult);
  }

  async function api(): Promise<ProgramsApi> {
    const response = await fetch(`${base}/api/programs`);
    return (await response.json()) as ProgramsApi;
  }

  async function waitFor<T>(what: string, check: (data: ProgramsApi) => T | undefined): Promise<T> {
    for (let i = 0; i < 100; i++) {
      const found = check(await api());
      if (found !== undefined) return found;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${what}: ${JSON.stringify(await api())}`);
  }

  async function answer(id: number, value: string): Promise<number> {
    const response = await fetch(`${base}/api/programs/prompts/${id}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ answer: value }),
    });
    return response.status;
  }

  beforeAll(async () => {
    host = await lab.addNamespace('h');
    const peer = await lab.addNamespace('p');
    await lab.link({ ns: host, ifname: 'eth0' }, { ns: peer, ifname: 'eth0' });
    await lab.addAddress(host, 'eth0', '198.51.100.1/24');
    await lab.addAddress(peer, 'eth0', '198.51.100.2/24');
    lab.spawn(peer, ['python3', '-c', SERVER]);
    lab.spawn(peer, ['python3', '-c', UDP_ECHO]);
    for (const name of ['clientA', 'clientB', 'clientC', 'clientD', 'clientE', 'clientF'])
      copyFileSync('/usr/bin/python3', exe(name));
    writeFileSync(
      policyFile,
      [
        '# the learned policy: comments stay where they are',
        'version: 1',
        'name: programs-test',
        'defaults: { inbound: drop, outbound: drop, forward: drop }',
        'zones:',
        '  lan:',
        '    interfaces: [eth0]',
        '    inbound:',
        '      - allow: ssh # admin',
        '',
      ].join('\n'),
    );
    store = new WatchStore(db);
    app = await buildServer({
      host: '127.0.0.1',
      port: 0,
      token: TOKEN,
      sources: {
        auditData: () => Promise.reject(new Error('not used here')),
        store,
        policy: null,
        version: 'test',
      },
    });
    base = (await app.listen({ host: '127.0.0.1', port: 0 })).replace(/\/$/, '');
  }, 60_000);

  afterAll(async () => {
    await stopDaemon('SIGKILL').catch(() => undefined);
    await app?.close();
    store?.close();
    await lab.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('asks for two copies of one binary apart; the allowed one completes without a restart, the denied one never', async () => {
    await startDaemon('ask', ['--policy', policyFile]);
    const a = client('clientA', 25);
    const b = client('clientB', 8);
    const prompts = await waitFor('both prompts', (d) => (d.prompts.length >= 2 ? d.prompts : undefined));
    const pa = prompts.find((p) => p.program.exe === exe('clientA'));
    const pb = prompts.find((p) => p.program.exe === exe('clientB'));
    expect(pa && pb).toBeTruthy();
    // the same binary: only the path tells them apart
    expect(pa?.program.sha256).toBe(pb?.program.sha256);
    expect(pa).toMatchObject({
      protocol: 'tcp',
      remoteAddress: '198.51.100.2',
      remotePort: 8080,
      changed: false,
    });
    expect(await answer(pa?.id ?? 0, 'allow-destination')).toBe(200);
    expect(await answer(pb?.id ?? 0, 'deny-always')).toBe(200);
    expect(await answer(pb?.id ?? 0, 'allow-once')).toBe(409); // the first answer stands
    const [ra, rb] = await Promise.all([a, b]);
    expect(ra).toMatchObject({ ok: true, data: 'hi', pid: pa?.program.pid });
    expect(rb.ok).toBe(false);
    const log = await api();
    expect(log.connections.some((c) => c.program?.exe === exe('clientB') && c.verdict === 'allowed')).toBe(
      false,
    );
    // "always for this destination" went into the policy file, its comments kept
    const written = readFileSync(policyFile, 'utf8');
    expect(written).toMatch(/^# the learned policy: comments stay where they are$/m);
    expect(written).toMatch(/- allow: ssh # admin/);
    expect(written).toContain(`path: ${exe('clientA')}`);
    expect(written).toMatch(/- allow: tcp\/8080\n\s+to: \[ 198\.51\.100\.2 \]/);
  }, 60_000);

  it('keeps the decisions across a daemon restart: A passes and B is denied without a prompt', async () => {
    await stopDaemon();
    await startDaemon('ask');
    const [ra, rb] = await Promise.all([client('clientA', 10), client('clientB', 4)]);
    expect(ra.ok).toBe(true);
    // one SYN held, its retransmission (after about a second) admitted
    expect(ra.seconds).toBeLessThan(4);
    expect(rb.ok).toBe(false);
    const data = await api();
    expect(data.prompts).toEqual([]);
    expect(
      data.connections.find((c) => c.program?.exe === exe('clientB') && c.verdict === 'denied')?.reason,
    ).toMatch(/decision \d+ \(deny always\)/);
  }, 60_000);

  it('asks again when the binary at the path changed (new sha256)', async () => {
    const next = exe('clientA.new');
    copyFileSync('/usr/bin/python3', next);
    appendFileSync(next, 'changed'); // still runs; another sha256
    renameSync(next, exe('clientA'));
    const a = client('clientA', 25);
    const prompt = await waitFor('the changed prompt', (d) =>
      d.prompts.find((p) => p.program.exe === exe('clientA')),
    );
    expect(prompt.changed).toBe(true);
    expect(await answer(prompt.id, 'allow-once')).toBe(200);
    expect((await a).ok).toBe(true);
  }, 60_000);

  it('fails closed when the daemon dies in ask (undecided programs stay blocked), open in learn', async () => {
    await stopDaemon('SIGKILL');
    expect((await client('clientC', 3)).ok).toBe(false);
    await startDaemon('learn');
    await stopDaemon('SIGKILL');
    expect((await client('clientC', 5)).ok).toBe(true);
  }, 60_000);

  it('attributes every attempt to its own program when several connect at once (TCP and UDP)', async () => {
    const sha256 = createHash('sha256').update(readFileSync('/usr/bin/python3')).digest('hex');
    const decisions = new ProgramStore(store.db);
    const always = {
      sha256,
      scope: 'always' as const,
      protocol: null,
      remoteAddress: null,
      remotePort: null,
    };
    decisions.addDecision({ ...always, exe: exe('clientD'), verdict: 'allow' }, Date.now(), 'test');
    decisions.addDecision({ ...always, exe: exe('clientE'), verdict: 'deny' }, Date.now(), 'test');
    await startDaemon('enforce');
    const runs = ['clientD', 'clientE', 'clientF'].flatMap((name) => [
      ...Array.from({ length: 8 }, () => client(name, 5).then((r) => ({ name, ...r }))),
      lab
        .exec(host, [exe(name), '-c', UDP_CLIENT], { timeoutMs: 20_000 })
        .then((r) => ({ name, udp: true, ...(JSON.parse(r.stdout) as ClientResult) })),
    ]);
    const results = await Promise.all(runs);
    await stopDaemon();
    for (const r of results)
      expect({ name: r.name, ok: r.ok }).toEqual({ name: r.name, ok: r.name === 'clientD' });
    const log = new ProgramStore(store.db).connections({ limit: 1000 });
    const mine = log.filter((c) => /client[DEF]$/.test(c.program?.exe ?? ''));
    expect(mine.filter((c) => c.verdict === 'allowed').every((c) => c.program?.exe === exe('clientD'))).toBe(
      true,
    );
    expect(mine.filter((c) => c.program?.exe === exe('clientD')).every((c) => c.verdict === 'allowed')).toBe(
      true,
    );
    expect(mine.some((c) => c.program?.exe === exe('clientD') && c.protocol === 'udp')).toBe(true);
    expect(mine.find((c) => c.program?.exe === exe('clientE'))?.reason).toMatch(/deny always/);
    expect(mine.find((c) => c.program?.exe === exe('clientF'))?.reason).toBe('enforce: no decision');
  }, 120_000);

  it('learn, then policy suggest: verify proves the result, and the kernel lets only the learned program through', async () => {
    await startDaemon('learn');
    expect((await client('clientC', 5, 0.5)).ok).toBe(true);
    await waitFor('the learned connection', (d) =>
      d.connections.find((c) => c.program?.exe === exe('clientC') && c.reason === 'learn'),
    );
    await stopDaemon();
    const suggested = await runCommand(process.execPath, [
      BIN,
      'policy',
      'suggest',
      policyFile,
      '--write',
      '--db',
      db,
    ]);
    expect(suggested.stderr).toMatch(/wrote \d+ program\(s\)/);
    const text = readFileSync(policyFile, 'utf8');
    expect(text).toContain(`path: ${exe('clientC')}`);
    const verify = await runCommand(process.execPath, [BIN, 'verify', policyFile, '--json'], {
      allowFailure: true,
      timeoutMs: 300_000,
    });
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true });
    // the kernel part: the policy's table (outbound drop) admits clientC's connection only with the
    // mark the daemon sets after attributing it; clientA, allowed by a stored decision only, is
    // stopped by the static policy
    const compiled = await runCommand(process.execPath, [BIN, 'compile', policyFile]);
    await lab.exec(host, ['nft', '-f', '-'], { input: compiled.stdout });
    await startDaemon('enforce', ['--policy', policyFile]);
    const [rc, rb] = await Promise.all([client('clientC', 6), client('clientB', 4)]);
    expect(rc.ok).toBe(true);
    expect(rb.ok).toBe(false);
    await stopDaemon();
    // without the daemon's mark, the path: rule admits nothing
    await lab.exec(host, ['nft', 'delete', 'table', 'inet', 'portwarden_programs']);
    expect((await client('clientC', 3)).ok).toBe(false);
  }, 400_000);
});
