import { afterAll, describe, expect, it } from 'vitest';
import { NetnsLab } from '../../src/lab/netns.ts';
import { runCommand } from '../../src/system/run.ts';
import { isPortwardenError } from '../../src/errors.ts';
import { describeRootTier } from '../helpers/root-tier.ts';

describe('runCommand', () => {
  it('collects output and status', async () => {
    const result = await runCommand('sh', ['-c', 'echo out; echo err >&2; exit 3'], { allowFailure: true });
    expect(result).toEqual({ stdout: 'out\n', stderr: 'err\n', status: 3 });
  });

  it('reports a failed command with its status and stderr', async () => {
    await expect(runCommand('sh', ['-c', 'echo broken >&2; exit 5'])).rejects.toThrow(
      /"sh -c .*" exited with status 5: broken/,
    );
  });

  it('reports a missing tool as TOOL_MISSING', async () => {
    const error: unknown = await runCommand('pw-no-such-tool', []).catch((e: unknown) => e);
    expect(isPortwardenError(error) && error.code).toBe('TOOL_MISSING');
  });
});

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
