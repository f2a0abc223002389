import { once } from 'node:events';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NetnsLab } from '../../src/lab/netns.ts';
import { BIN } from '../helpers/cli.ts';
import { describeRootTier } from '../helpers/root-tier.ts';

// The case: an outbound connection from a non-loopback address, closed by us (TIME_WAIT) and
// one still open, next to a listener on the same address.
await describeRootTier('ports -a in a namespace: outbound connections are not listeners', ['ip'], () => {
  const lab = new NetnsLab('conn');
  let ns = '';
  let text = '';

  beforeAll(async () => {
    ns = await lab.addNamespace('client');
    const peer = await lab.addNamespace('server');
    await lab.link({ ns, ifname: 'eth0' }, { ns: peer, ifname: 'eth0' });
    await lab.addAddress(ns, 'eth0', '198.51.100.1/24');
    await lab.addAddress(peer, 'eth0', '198.51.100.2/24');
    const server = lab.spawn(peer, [
      process.execPath,
      '-e',
      "require('net').createServer(()=>{}).listen(80,'198.51.100.2',()=>console.log('up'));setTimeout(()=>{},30000)",
    ]);
    await once(server.stdout!, 'data');
    const client = lab.spawn(ns, [
      process.execPath,
      '-e',
      `const net=require('net');net.createServer().listen(8080,'198.51.100.1');
       const a=net.connect(80,'198.51.100.2',()=>{a.end();a.destroy();
       net.connect(80,'198.51.100.2',()=>console.log('up'))});setTimeout(()=>{},30000)`,
    ]);
    await once(client.stdout!, 'data');
    // piped, so no colour
    text = (await lab.exec(ns, [process.execPath, BIN, 'ports', '-a', '-t'])).stdout;
  }, 30_000);

  afterAll(() => lab.dispose());

  it('the listener is "Bound to one address", the connections are under Connections', () => {
    const blocks = text.split('\n\n');
    const oneAddress = blocks.find((b) => b.startsWith('Bound to one address')) ?? '';
    expect(oneAddress).toMatch(/198\.51\.100\.1:8080 \(eth0\)\s+yes \(eth0\)/);
    expect(oneAddress).not.toMatch(/ESTABLISHED|TIME_WAIT|198\.51\.100\.2/);
    const connections = blocks.find((b) => b.startsWith('Connections')) ?? '';
    expect(connections).toMatch(
      /198\.51\.100\.1:\d+ \(eth0\)\s+198\.51\.100\.2:80\s+ESTABLISHED\s+node\[\d+\]/,
    );
    expect(connections).toMatch(/198\.51\.100\.1:\d+ \(eth0\)\s+198\.51\.100\.2:80\s+(TIME_WAIT|FIN_WAIT2)/);
  });
});
