import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { compilePolicy } from '../../src/compile/registry.ts';
import { NetnsLab } from '../../src/lab/netns.ts';
import { loadPolicyOrThrow } from '../../src/policy/load.ts';
import { describeRootTier } from '../helpers/root-tier.ts';

const EXAMPLES = new URL('../../examples/', import.meta.url);
const examples = readdirSync(EXAMPLES)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

// nft resolves `socket cgroupv2` paths under /sys/fs/cgroup at load time. Inside a private mount
// namespace a tmpfs stands in for it, so the per-unit example loads without touching the host.
const WITH_FAKE_CGROUP =
  'mount -t tmpfs pwcgroup /sys/fs/cgroup && mkdir -p /sys/fs/cgroup/system.slice/backup.service && ';

await describeRootTier(
  'compiled rulesets load into a throwaway namespace',
  ['ip', 'nft', 'iptables-restore', 'ip6tables-restore', 'unshare'],
  () => {
    const lab = new NetnsLab('cmp');
    let ns = '';
    const dir = mkdtempSync(join(tmpdir(), 'pw-compile-'));

    beforeAll(async () => {
      ns = await lab.addNamespace('fw');
    });
    afterAll(async () => {
      await lab.dispose();
      rmSync(dir, { recursive: true, force: true });
    });

    it.each(examples)('%s: nft -c, nft -f, and nft -f again (the delete/replace idiom)', async (name) => {
      const policy = loadPolicyOrThrow(readFileSync(new URL(name, EXAMPLES), 'utf8'), name);
      const [file] = compilePolicy(policy, 'nftables', 'test');
      const path = join(dir, `${name}.nft`);
      writeFileSync(path, file?.content ?? '');
      const script = `${WITH_FAKE_CGROUP}nft -c -f ${path} && nft -f ${path} && nft -f ${path} && nft list table inet portwarden`;
      const { stdout } = await lab.exec(ns, ['unshare', '-m', 'sh', '-c', script]);
      expect(stdout).toMatch(/chain input \{/);
      // Loading twice leaves one table, not two copies of the rules.
      expect(stdout.match(/chain input \{/g)).toHaveLength(1);
      await lab.exec(ns, ['nft', 'delete', 'table', 'inet', 'portwarden']);
    });

    it.each(examples)('%s: iptables-restore --test and ip6tables-restore --test accept it', async (name) => {
      const policy = loadPolicyOrThrow(readFileSync(new URL(name, EXAMPLES), 'utf8'), name);
      for (const file of compilePolicy(policy, 'iptables', 'test')) {
        const tool = file.suffix === '.v4' ? 'iptables-restore' : 'ip6tables-restore';
        await lab.exec(ns, [tool, '--test'], { input: file.content });
      }
    });

    it('a removed port is really closed after reload (no flush-table leftovers)', async () => {
      const load = async (ports: string) => {
        const policy = loadPolicyOrThrow(
          `version: 1\nzones:\n  z:\n    interfaces: [eth0]\n    inbound:\n      - allow: ${ports}\n`,
          'p.yaml',
        );
        const path = join(dir, 'reload.nft');
        writeFileSync(path, compilePolicy(policy, 'nftables', 'test')[0]?.content ?? '');
        await lab.exec(ns, ['nft', '-f', path]);
        return (await lab.exec(ns, ['nft', 'list', 'set', 'inet', 'portwarden', 'in_z_1_tcp'])).stdout;
      };
      expect(await load('tcp/22, tcp/80')).toMatch(/elements = \{ 22, 80 \}/);
      expect(await load('tcp/22')).toMatch(/elements = \{ 22 \}/);
    });
  },
);
