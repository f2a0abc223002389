import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NetnsLab } from '../../src/lab/netns.ts';
import { BIN } from '../helpers/cli.ts';
import { describeRootTier } from '../helpers/root-tier.ts';

/**
 * `ports` says what a socket is bound to and, apart from that, whether a peer gets through the loaded
 * firewall — audit's evaluator, checked here against a real connect from a peer namespace.
 */
const LISTENERS = `
const net = require('net');
const open = [[80, '0.0.0.0'], [445, '0.0.0.0'], [3306, '::'], [6379, '127.0.0.1']];
let left = open.length;
for (const [port, host] of open)
  net.createServer((c) => c.on('error', () => {})).listen(port, host, () => --left === 0 && console.log('ready'));
setTimeout(() => {}, 120000);
`;

const RULESET = `
table inet filter {
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iifname "lo" accept
    tcp dport 80 accept
  }
}
`;

interface Row {
  protocol: string;
  localPort: number;
  state: string;
  exposure: string;
  reachable: string | null;
  reachableVia: string[];
  reachableWhy: string | null;
}

await describeRootTier('ports: bound to vs reachable through the firewall', ['ip', 'nft'], () => {
  const lab = new NetnsLab('prch');
  let host = '';
  let peer = '';

  const inside = async (args: string[], env: Record<string, string> = {}): Promise<Row[]> => {
    const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    const result = await lab.exec(host, [
      'env',
      ...envArgs,
      process.execPath,
      BIN,
      'ports',
      '--json',
      ...args,
    ]);
    return (JSON.parse(result.stdout) as { sockets: Row[] }).sockets;
  };
  const connects = async (port: number): Promise<boolean> => {
    const script = `const s=require('net').connect({host:'198.51.100.1',port:${port},timeout:3000});s.on('connect',()=>{console.log('yes');process.exit(0)});s.on('error',()=>{console.log('no');process.exit(0)});s.on('timeout',()=>{console.log('no');process.exit(0)})`;
    const result = await lab.exec(peer, [process.execPath, '-e', script]);
    return result.stdout.trim() === 'yes';
  };

  beforeAll(async () => {
    host = await lab.addNamespace('h');
    peer = await lab.addNamespace('p');
    await lab.link({ ns: host, ifname: 'eth0' }, { ns: peer, ifname: 'eth0' });
    await lab.addAddress(host, 'eth0', '198.51.100.1/24');
    await lab.addAddress(peer, 'eth0', '198.51.100.2/24');
    const child = lab.spawn(host, [process.execPath, '-e', LISTENERS]);
    await once(child.stdout!, 'data');
    await lab.exec(host, ['nft', '-f', '-'], { input: RULESET });
  }, 30_000);

  afterAll(() => lab.dispose());

  it('each listener: bound to all interfaces, reachable only where the firewall lets a real connect in', async () => {
    const rows = await inside([]);
    const of = (port: number) => rows.find((r) => r.protocol === 'tcp' && r.localPort === port);
    for (const [port, exposure, reachable] of [
      [80, 'all', 'yes'],
      [445, 'all', 'no'],
      [3306, 'all', 'no'],
      [6379, 'loopback', 'no'],
    ] as const) {
      expect(of(port), `tcp/${port}`).toMatchObject({ exposure, reachable });
      if (port !== 6379) expect(await connects(port), `a real connect to ${port}`).toBe(reachable === 'yes');
    }
    expect(of(80)?.reachableVia).toEqual(['eth0']);
    expect(of(445)?.reachableWhy).toMatch(/firewall/);
  });

  it('--exposed lists what a peer can reach, not what is bound beyond loopback; -a adds no connections', async () => {
    const peerClient = lab.spawn(peer, [
      process.execPath,
      '-e',
      "require('net').connect(80,'198.51.100.1',()=>console.log('up'));setTimeout(()=>{},60000)",
    ]);
    await once(peerClient.stdout!, 'data');
    for (const args of [['--exposed'], ['--exposed', '-a']]) {
      const rows = await inside(args);
      expect(
        rows.map((r) => `${r.protocol}/${r.localPort} ${r.state}`),
        args.join(' '),
      ).toEqual(['tcp/80 LISTEN']);
    }
    const all = await inside(['-a']);
    expect(all.some((r) => r.state === 'ESTABLISHED' && r.reachable === null)).toBe(true);
    peerClient.kill('SIGKILL');
  });

  it('the same answer from outside the namespace (--netns NAME)', async () => {
    const fromInside = (await inside(['--exposed'])).map((r) => r.localPort);
    const outside = execFileSync(process.execPath, [BIN, 'ports', '--json', '--exposed', '--netns', host], {
      encoding: 'utf8',
    });
    const fromOutside = (JSON.parse(outside) as { sockets: Row[] }).sockets.map((r) => r.localPort);
    expect(fromOutside).toEqual(fromInside);
  });

  it('the dashboard API says what ports says, in the same words', async () => {
    const serve = lab.spawn(host, [process.execPath, BIN, 'serve', '--port', '7781', '--json']);
    const [line] = (await once(serve.stdout!, 'data')) as [Buffer];
    const { url } = JSON.parse(line.toString()) as { url: string };
    const fetched = await lab.exec(host, [
      process.execPath,
      '-e',
      `fetch(${JSON.stringify(new URL('/api/listeners', url).href)}).then((r) => r.text()).then((t) => console.log(t))`,
    ]);
    serve.kill('SIGTERM');
    type ApiRow = Pick<Row, 'protocol' | 'localPort' | 'reachable' | 'reachableVia' | 'reachableWhy'>;
    const api = (JSON.parse(fetched.stdout) as { listeners?: ApiRow[] }).listeners;
    expect(api, fetched.stdout).toBeDefined();
    const words = (r: ApiRow) =>
      `${r.protocol}/${r.localPort} ${r.reachable} ${r.reachableVia.join(',')} ${r.reachableWhy ?? ''}`;
    const cli = (await inside([])).filter((r) => r.reachable !== null);
    // the dashboard sees itself listen on 7781; ports ran before it started
    expect(
      (api ?? [])
        .filter((r) => r.localPort !== 7781)
        .map(words)
        .sort(),
    ).toEqual(cli.map(words).sort());
  });

  it('a ruleset that cannot be read makes every non-loopback listener unknown (and --exposed keeps them)', async () => {
    // nft lives in /usr/sbin: without it on PATH the ruleset cannot be read
    const rows = await inside(['--exposed'], { PATH: '/usr/bin:/bin' });
    expect(rows.map((r) => `${r.localPort} ${r.reachable}`).sort()).toEqual([
      '3306 unknown',
      '445 unknown',
      '80 unknown',
    ]);
    expect(rows[0]?.reachableWhy).toMatch(/could not be read/);
    const text = await lab.exec(host, ['env', 'PATH=/usr/bin:/bin', process.execPath, BIN, 'ports']);
    expect(text.stdout).toMatch(/REACHABLE unknown: the ruleset could not be read/);
  });
});
