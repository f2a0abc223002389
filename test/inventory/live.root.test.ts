import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { listSockets } from '../../src/inventory/list.ts';
import type { Inventory, Socket } from '../../src/inventory/types.ts';
import { NetnsLab } from '../../src/lab/netns.ts';
import { BIN } from '../helpers/cli.ts';
import { describeRootTier } from '../helpers/root-tier.ts';

const SCRIPT = fileURLToPath(new URL('../fixtures/servers/inventory-sockets.mjs', import.meta.url));

await describeRootTier('inventory of a namespace with known sockets', ['ip', 'ss'], () => {
  const lab = new NetnsLab('inv');
  let ns = '';
  let pids = { pid: 0, childPid: 0 };
  let fromOutside: Inventory;
  let fromInside: Inventory;

  beforeAll(async () => {
    ns = await lab.addNamespace('host');
    const peer = await lab.addNamespace('peer');
    await lab.link({ ns, ifname: 'eth0' }, { ns: peer, ifname: 'eth0' });
    await lab.addAddress(ns, 'eth0', '198.51.100.1/24');
    await lab.addAddress(ns, 'eth0', '2001:db8::1/64');
    const child = lab.spawn(ns, [process.execPath, SCRIPT]);
    const [line] = (await once(child.stdout!, 'data')) as [Buffer];
    pids = JSON.parse(line.toString()) as typeof pids;
    fromOutside = await listSockets({ netns: ns });
    const inside = await lab.exec(ns, [process.execPath, BIN, 'ports', '--json']);
    fromInside = JSON.parse(inside.stdout) as Inventory;
  }, 30_000);

  afterAll(() => lab.dispose());

  const find = (inv: Inventory, protocol: string, port: number): Socket | undefined =>
    inv.sockets.find((s) => s.protocol === protocol && s.localPort === port);

  it.each([
    ['tcp', 23, 'all', '0.0.0.0', null, null],
    ['tcp', 6379, 'loopback', '127.0.0.1', null, null],
    ['tcp', 80, 'address', '198.51.100.1', 'eth0', null],
    ['tcp', 8080, 'all', '::', null, false],
    ['tcp', 8081, 'all', '::', null, true],
    ['tcp', 443, 'address', '2001:db8::1', 'eth0', null],
    ['udp', 161, 'all', '0.0.0.0', null, null],
    ['udp', 547, 'loopback', '::1', null, null],
  ] as const)(
    '%s/%i: exposure %s on %s (interface %s, dual stack %s)',
    (protocol, port, exposure, address, iface, dual) => {
      for (const inv of [fromOutside, fromInside]) {
        const socket = find(inv, protocol, port);
        expect(socket, `${protocol}/${port}`).toBeDefined();
        expect(socket).toMatchObject({
          exposure,
          localAddress: address,
          interface: iface,
          dualStack: dual,
          netns: ns,
        });
        expect(socket?.state).toBe(protocol === 'tcp' ? 'LISTEN' : 'UNCONN');
        expect(socket?.processes.map((p) => p.pid)).toContain(pids.pid);
        expect(socket?.processes[0]).toMatchObject({ name: 'node', user: 'root' });
      }
    },
  );

  it('lists both owners of a socket passed to another process, each with its start time', () => {
    const telnet = find(fromOutside, 'tcp', 23);
    expect(telnet?.processes.map((p) => p.pid).sort()).toEqual([pids.pid, pids.childPid].sort());
    for (const p of telnet?.processes ?? []) expect(p.startTime).toBeGreaterThan(0);
    expect(telnet).toMatchObject({ service: 'telnet', risk: 'critical' });
    expect(telnet?.fix).toBe(`kill ${[pids.pid, pids.childPid].sort((a, b) => a - b).join(' ')}`);
  });

  it('says the namespace is not the host and finds no other sockets', () => {
    expect(fromOutside.sockets.every((s) => s.exposureScope === 'namespace')).toBe(true);
    expect(fromOutside.sockets).toHaveLength(8);
    expect(fromOutside.dualStackSource).toBe('ss');
  });

  it('--exposed drops loopback sockets; --udp keeps only UDP', async () => {
    const exposed = await listSockets({ netns: ns, exposedOnly: true });
    expect(exposed.sockets.map((s) => s.localPort).sort((a, b) => a - b)).toEqual([
      23, 80, 161, 443, 8080, 8081,
    ]);
    const udp = await listSockets({ netns: ns, udp: true });
    expect(udp.sockets.map((s) => s.protocol)).toEqual(['udp', 'udp']);
  });

  it('--all adds established connections with their remote end', async () => {
    const client = lab.spawn(ns, [
      process.execPath,
      '-e',
      // 'up' once the greeting came: the server has accepted, so its process holds the other end
      "const s=require('net').connect(6379,'127.0.0.1');s.once('data',()=>console.log('up'));s.on('end',()=>{});setTimeout(()=>{},30000)",
    ]);
    await once(client.stdout!, 'data');
    const all = await listSockets({ netns: ns, all: true, tcp: true });
    const established = all.sockets.filter((s) => s.state === 'ESTABLISHED');
    expect(established.some((s) => s.remotePort === 6379 && s.remoteAddress === '127.0.0.1')).toBe(true);
    expect(established.some((s) => s.localPort === 6379 && s.processes.some((p) => p.pid === pids.pid))).toBe(
      true,
    );
    client.kill('SIGKILL');
  });
});
