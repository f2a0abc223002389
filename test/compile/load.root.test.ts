import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { compilePolicy } from '../../src/compile/registry.ts';
import { NetnsLab } from '../../src/lab/netns.ts';
import { loadIntoNamespace } from '../../src/ruleset/load-live.ts';
import { loadPolicyOrThrow } from '../../src/policy/load.ts';
import { describeRootTier } from '../helpers/root-tier.ts';

const EXAMPLES = new URL('../../examples/', import.meta.url);

/** "table chain" → number of rules, from iptables-restore input or iptables-save output. */
function rulesPerChain(text: string): Map<string, number> {
  const out = new Map<string, number>();
  let table = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    const declared = /^:(\S+)/.exec(line);
    if (declared) out.set(`${table} ${declared[1] ?? ''}`, out.get(`${table} ${declared[1] ?? ''}`) ?? 0);
    const rule = /^-A (\S+)/.exec(line);
    if (rule) out.set(`${table} ${rule[1] ?? ''}`, (out.get(`${table} ${rule[1] ?? ''}`) ?? 0) + 1);
  }
  return out;
}
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

    it.each(examples)(
      '%s: iptables-restore --test accepts it, and loaded, iptables-save lists every chain with every rule',
      async (name) => {
        const policy = loadPolicyOrThrow(readFileSync(new URL(name, EXAMPLES), 'utf8'), name);
        const files = compilePolicy(policy, 'iptables', 'test');
        for (const file of files) {
          const tool = file.suffix === '.v4' ? 'iptables-restore' : 'ip6tables-restore';
          const checked = await lab.exec(ns, [tool, '--test'], { input: file.content });
          expect(checked.status).toBe(0);
        }
        const units = policy.programs.flatMap((p) =>
          p.match.kind === 'unit' ? [`system.slice/${p.match.unit}`] : [],
        );
        const loadDir = mkdtempSync(join(dir, 'ipt-'));
        await loadIntoNamespace({ backend: 'iptables', files, units }, (argv) => lab.exec(ns, argv), loadDir);
        for (const file of files) {
          const save = file.suffix === '.v4' ? 'iptables-save' : 'ip6tables-save';
          const saved = rulesPerChain((await lab.exec(ns, [save])).stdout);
          const compiled = rulesPerChain(file.content);
          expect(compiled.size).toBeGreaterThan(0);
          // the kernel holds exactly the chains and rule counts the file declares
          for (const [chain, count] of compiled) expect([chain, saved.get(chain)]).toEqual([chain, count]);
        }
      },
    );

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
