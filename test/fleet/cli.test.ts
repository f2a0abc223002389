import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BIN, ROOT, runCli } from '../helpers/cli.ts';
import { describePostgres } from '../helpers/postgres.ts';

const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', NO_COLOR: '1', LANG: 'C' };

/** Starts the built `serve --db postgres://…` and resolves with its URL once it listens. */
function startServe(db: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [BIN, 'serve', '--db', db, '--port', '0', '--json'], {
    cwd: ROOT,
    env,
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => resolve({ child, url: (JSON.parse(line) as { url: string }).url }));
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}`)));
  });
}

describePostgres('fleet CLI (built binary) on PostgreSQL', (cluster) => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-fleet-cli-'));
  let serve: { child: ChildProcess; url: string } | null = null;
  const fleet = (...args: string[]): ReturnType<typeof runCli> =>
    runCli(['fleet', ...args, '--db', cluster().url]);

  beforeAll(async () => {
    serve = await startServe(cluster().url);
  });
  afterAll(() => {
    serve?.child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  it('add-host prints a token once; the agent uploads with it; fleet queries find this machine', () => {
    const added = fleet('add-host', 'cli-host', '--group', 'lab', '--json');
    expect(added.status, added.stderr).toBe(0);
    expect((JSON.parse(added.stdout) as { token: string }).token).toMatch(/^pwh_[\w-]{32}$/);
    expect(fleet('add-host', 'cli-host').status).toBe(2);
    const rotated = fleet('add-host', 'cli-host', '--rotate');
    expect(rotated.stdout).toMatch(/^pwh_[\w-]{32}\n$/);
    expect(rotated.stderr).toMatch(/--token-file/);
    const token = rotated.stdout.trim();
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, `${token}\n`);

    const agent = (server: string): ReturnType<typeof runCli> =>
      runCli([
        'agent',
        '--server',
        server,
        '--token-file',
        tokenFile,
        '--once',
        '--outbox',
        join(dir, 'outbox.db'),
      ]);
    // offline first: kept in the outbox, exit 3
    const offline = agent('http://127.0.0.1:9/');
    expect(offline.status, offline.stderr).toBe(3);
    expect(offline.stderr).toMatch(/server unreachable: .*1 snapshots and 0 events kept in /);
    const online = agent(serve!.url);
    expect(online.status, online.stderr).toBe(0);

    const hosts = JSON.parse(fleet('hosts', '--json').stdout) as {
      hosts: { name: string; lastSeen: string | null; listeners: number }[];
    };
    const host = hosts.hosts.find((h) => h.name === 'cli-host');
    expect(host?.lastSeen).toMatch(/^\d{4}-\d\d-\d\dT/);
    // serve itself listens on loopback, owned by node: the agent saw it
    const port = Number(new URL(serve!.url).port);
    const running = JSON.parse(fleet('running', 'node', '--json').stdout) as {
      listeners: { host: string; localPort: number }[];
    };
    expect(running.listeners).toContainEqual(expect.objectContaining({ host: 'cli-host', localPort: port }));
    const exposing = JSON.parse(fleet('exposing', `tcp/${port}`, '--json').stdout) as {
      listeners: unknown[];
    };
    expect(exposing.listeners).toEqual([]);
  });

  it('fleet mode asks the dashboard token for every request, loopback GETs too (a proxy in front looks local)', async () => {
    const url = new URL(serve!.url);
    const token = url.searchParams.get('token');
    expect(token).toBeTruthy();
    expect((await fetch(new URL('/api/fleet/hosts', url))).status).toBe(401);
    expect((await fetch(new URL('/hosts', url))).status).toBe(401);
    const page = await fetch(new URL(`/hosts?token=${token}`, url));
    expect(page.status).toBe(200);
    const cookie = page.headers.get('set-cookie')?.split(';')[0] ?? '';
    expect((await fetch(new URL('/api/fleet/hosts', url), { headers: { cookie } })).status).toBe(200);
  });

  it('agent --watch: a listener opened while it runs reaches the server as an event; SIGTERM stops it', async () => {
    const added = JSON.parse(fleet('add-host', 'watch-host', '--json').stdout) as { token: string };
    const tokenFile = join(dir, 'watch-token');
    writeFileSync(tokenFile, added.token);
    const agent = spawn(
      process.execPath,
      [
        BIN,
        'agent',
        '--server',
        serve!.url,
        '--token-file',
        tokenFile,
        '--watch',
        '--interval',
        '30',
        '--watch-interval',
        '0.2',
        '--outbox',
        join(dir, 'watch-outbox.db'),
        '--json',
      ],
      { cwd: ROOT, env },
    );
    let out = '';
    agent.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const uploads = (): number => out.split('\n').filter((l) => l.includes('"ok":true')).length;
    const until = async (done: () => boolean): Promise<void> => {
      for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 50));
    };
    await until(() => uploads() >= 2);
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const seen = uploads();
    await until(() => uploads() >= seen + 3);
    server.close();
    agent.kill('SIGTERM');
    const code = await new Promise((resolve) => agent.once('exit', resolve));
    expect(code).toBe(0);
    const changes = JSON.parse(
      fleet('changes', '--host', 'watch-host', '--since', '1d', '--json').stdout,
    ) as {
      events: { kind: string; listenerKey: string }[];
    };
    expect(changes.events).toContainEqual(
      expect.objectContaining({ kind: 'listener-opened', listenerKey: `tcp|127.0.0.1|${port}|host` }),
    );
  }, 30_000);

  it('bad input: exit 2 with a one-line error and a hint, no stack', () => {
    for (const [args, message] of [
      [['agent', '--server', 'ftp://x', '--token', 't'], /is not http\(s\)/],
      [
        ['agent', '--server', 'http://203.0.113.5:7780', '--token', 't'],
        /would send the host token unencrypted/,
      ],
      [['agent', '--server', 'http://127.0.0.1:9'], /needs its host token/],
      [['fleet', 'exposing', 'tcp/99999', '--db', cluster().url], /port/],
      [['fleet', 'changes', '--since', 'monday', '--db', cluster().url], /--since "monday" is not a date/],
      [['fleet', 'hosts', '--db', '/tmp/x.db'], /is not a postgres:\/\/ URL/],
      [['serve', '--db', cluster().url, '--host', '0.0.0.0'], /fleet mode serves plain HTTP/],
      [
        ['scan', '127.0.0.1', '-p', 'U:53', '--queue', cluster().url],
        /--queue shares TCP connect scans only/,
      ],
      [['scan', '127.0.0.1', '-p', '22', '--queue', '/tmp/x.db'], /is not a postgres:\/\/ URL/],
      [['scan-worker', '--queue', 'redis://x'], /is not a postgres:\/\/ URL/],
    ] as const) {
      const result = runCli(args);
      expect(result.status, `${args.join(' ')}: ${result.stderr}`).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).toMatch(/hint: /);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('a wrong token is refused with exit 2 and kept for a retry', () => {
    const tokenFile = join(dir, 'wrong');
    writeFileSync(tokenFile, 'pwh_wrong');
    const result = runCli([
      'agent',
      '--server',
      serve!.url,
      '--token-file',
      tokenFile,
      '--once',
      '--outbox',
      join(dir, 'o2.db'),
    ]);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/the server refused the upload: a registered host token is required/);
  });
});
