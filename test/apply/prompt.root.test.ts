import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { runCommand } from '../../src/system/run.ts';
import { ApplyLab, history, sleep } from '../helpers/apply-lab.ts';
import { ROOT } from '../helpers/cli.ts';
import { describeRootTier } from '../helpers/root-tier.ts';

vi.setConfig({ testTimeout: 180_000 });

const WORKSTATION = join(ROOT, 'examples/workstation.yaml');
const PTY = fileURLToPath(new URL('../helpers/pty-run.py', import.meta.url));

interface PtyRun {
  output: string;
  status: number | null;
  timedOut: boolean;
}

await describeRootTier(
  'apply: the prompt on a real terminal',
  ['ip', 'nft', 'python3', 'flock', 'unshare'],
  () => {
    const lab = new ApplyLab('pty');
    afterAll(() => lab.dispose());

    /** Runs `apply` on a pseudo-terminal, types `answer` at the prompt, and waits for it to end. */
    async function applyOnPty(
      answer: string,
      timeout: number,
    ): Promise<PtyRun & { ns: string; state: string }> {
      const { ns, state } = await lab.setup();
      const argv = lab.argv(ns, state, ['apply', WORKSTATION, '--confirm-timeout', String(timeout)]);
      const r = await runCommand('python3', [PTY, 'Type "yes"', answer, '90', '--', ...argv], {
        timeoutMs: 120_000,
      });
      return { ...(JSON.parse(r.stdout) as PtyRun), ns, state };
    }

    it('"yes" keeps the ruleset, still loaded after the deadline', async () => {
      const run = await applyOnPty('yes\\r', 10);
      expect(run.timedOut).toBe(false);
      expect(run.status).toBe(0);
      expect(run.output).toMatch(/it is rolled back in (10|9|8) s unless you run `portwarden confirm`/);
      expect(run.output).toMatch(/confirmed: the new ruleset stays/);
      const deadline = history(run.state)[0]?.deadline ?? '';
      await sleep(Math.max(0, Date.parse(deadline) - Date.now() + 1000));
      expect(await lab.table(run.ns)).toMatch(/chain in_uplink/);
      expect(history(run.state).map((h) => h.event)).toEqual(['applied', 'confirmed']);
    });

    describe.each([
      ['"no"', 'no\\r', /answered something other than "yes"/],
      ['EOF (Ctrl-D)', '\\x04', /input closed/],
      ['Ctrl-C', '\\x03', /Ctrl-C/],
    ])('%s rolls back at once', (_name, answer, reason) => {
      it('and the old ruleset (none) is back before the deadline', async () => {
        const started = Date.now();
        const run = await applyOnPty(answer, 120);
        expect(run.timedOut).toBe(false);
        expect(Date.now() - started).toBeLessThan(60_000);
        expect(run.status).toBe(0);
        expect(run.output).toMatch(reason);
        expect(run.output).toMatch(/the previous ruleset is in place again/);
        expect(await lab.table(run.ns)).toBe('(none)');
        expect(history(run.state).at(-1)).toMatchObject({
          event: 'rolled-back',
          reason: expect.stringMatching(reason),
        });
      });
    });

    it('no answer: the deadline rolls back', async () => {
      const run = await applyOnPty('', 2);
      expect(run.timedOut).toBe(false);
      expect(run.output).toMatch(/rolled back/);
      expect(await lab.table(run.ns)).toBe('(none)');
      expect(history(run.state).map((h) => h.event)).toEqual(['applied', 'rolled-back']);
    });
  },
);
