import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it, vi } from 'vitest';
import {
  compilePolicy,
  loadPolicyOrThrow,
  verifyPolicy,
  type ApplyResult,
  type ApplyStatus,
  type PendingApply,
} from '../../src/index.ts';
import { ROOT } from '../helpers/cli.ts';
import { ApplyLab, history } from '../helpers/apply-lab.ts';
import { until } from '../helpers/until.ts';
import { describeRootTier } from '../helpers/root-tier.ts';

/** The library's verify and apply called directly, in namespaces (root tier). */

// namespace tests on a loaded 2-core machine: generous limits, deadlines the tests wait for explicitly
vi.setConfig({ testTimeout: 180_000 });

const WORKSTATION = join(ROOT, 'examples/workstation.yaml');
const APPLY_STEP = join(ROOT, 'test/fixtures/library/apply-step.mjs');

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
