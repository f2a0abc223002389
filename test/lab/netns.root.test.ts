import { afterAll, expect, it } from 'vitest';
import { NetnsLab } from '../../src/lab/netns.ts';
import { runCommand } from '../../src/system/run.ts';
import { describeRootTier } from '../helpers/root-tier.ts';

const SERVER = `require('net').createServer((s) => s.end('hello from b')).listen(7000, '198.51.100.2', () => console.log('ready'))`;
const CLIENT = `require('net').connect(7000, '198.51.100.2').on('data', (d) => process.stdout.write(d))`;

await describeRootTier('netns lab', ['ip'], () => {
  const lab = new NetnsLab('labt');
  afterAll(() => lab.dispose());

  it('links two namespaces over veth and passes packets between them', async () => {
    const a = await lab.addNamespace('a');
    const b = await lab.addNamespace('b');
    await lab.link({ ns: a, ifname: 'eth0' }, { ns: b, ifname: 'eth0' });
    await lab.addAddress(a, 'eth0', '198.51.100.1/24');
    await lab.addAddress(b, 'eth0', '198.51.100.2/24');
    const server = lab.spawn(b, [process.execPath, '-e', SERVER]);
    await new Promise((resolve) => server.stdout?.once('data', resolve));
    const client = await lab.exec(a, [process.execPath, '-e', CLIENT], { timeoutMs: 10_000 });
    expect(client.stdout).toBe('hello from b');
  });

  it('removes its namespaces on dispose', async () => {
    const other = new NetnsLab('gone');
    const ns = await other.addNamespace();
    expect((await runCommand('ip', ['netns', 'list'])).stdout).toContain(ns);
    await other.dispose();
    expect((await runCommand('ip', ['netns', 'list'])).stdout).not.toContain(ns);
  });
});
