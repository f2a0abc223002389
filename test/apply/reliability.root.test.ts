import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { ApplyLab, history, sleep } from '../helpers/apply-lab.ts';
import { until } from '../helpers/until.ts';
import { BIN, ROOT } from '../helpers/cli.ts';
import { describeRootTier } from '../helpers/root-tier.ts';

vi.setConfig({ testTimeout: 180_000 });

const WORKSTATION = join(ROOT, 'examples/workstation.yaml');
const DUAL_HOMED = join(ROOT, 'examples/web-ftp-dual-homed.yaml');
const ROUTER = join(ROOT, 'examples/router.yaml');

/** Damages a state file the way a crash, a full disk or a stray editor would. */
const DAMAGE: [string, (text: string) => string][] = [
  ['empty', () => ''],
  ['truncated', (t) => t.slice(0, Math.floor(t.length / 3))],
  ['garbage', () => '\u0000\u0000{not json'],
];

await describeRootTier(
  'apply never loses the old ruleset (issue 15)',
  ['ip', 'nft', 'flock', 'unshare'],
  () => {
    const lab = new ApplyLab('rel');
    afterAll(() => lab.dispose());

    describe.each(DAMAGE)('a %s pending.json', (_name, damage) => {
      it('is an error that keeps the rollback armed, and the deadline still restores the old ruleset', async () => {
        const { ns, state } = await lab.setup();
        expect((await lab.pw(ns, state, ['apply', WORKSTATION, '--confirm-timeout', '0'])).status).toBe(0);
        const old = await lab.table(ns);
        expect((await lab.pw(ns, state, ['apply', DUAL_HOMED, '--confirm-timeout', '15'])).status).toBe(0);
        const file = join(state, 'pending.json');
        writeFileSync(file, damage(readFileSync(file, 'utf8')));
        const confirm = await lab.pw(ns, state, ['confirm']);
        expect(confirm.status).toBe(3);
        expect(confirm.stderr).toMatch(/error\[STATE_CORRUPT\]|pending\.json" is damaged/);
        expect(confirm.stderr).toMatch(/hint: the rollback stays armed; run `portwarden rollback`/);
        const again = await lab.pw(ns, state, ['apply', WORKSTATION]);
        expect(again.status).toBe(3);
        expect(await lab.table(ns)).toMatch(/chain in_internal/);
        await until(
          'the timed rollback',
          () => history(state).some((h) => h.event === 'rolled-back'),
          40_000,
        );
        expect(await lab.table(ns)).toBe(old);
        expect(history(state).at(-1)?.reason).toMatch(
          /no confirmation before the deadline; .*damaged pending\.json was moved/,
        );
        expect(existsSync(file)).toBe(false);
        expect(readdirSync(state).some((f) => f.startsWith('pending.json.damaged-'))).toBe(true);
      });
    });

    it('`portwarden rollback` works from the second copy when pending.json is damaged', async () => {
      const { ns, state } = await lab.setup();
      expect((await lab.pw(ns, state, ['apply', ROUTER, '--confirm-timeout', '60'])).status).toBe(0);
      expect(await lab.sysctl(ns, 'net.ipv4.ip_forward')).toBe('1');
      writeFileSync(join(state, 'pending.json'), '');
      const rolled = await lab.pw(ns, state, ['rollback']);
      expect(rolled.stderr).toBe('');
      expect(rolled.status).toBe(0);
      expect(await lab.table(ns)).toBe('(none)');
      expect(await lab.sysctl(ns, 'net.ipv4.ip_forward')).toBe('0');
    });

    it('a lock held by another process is respected even while its file is still empty', async () => {
      const { ns, state } = await lab.setup();
      writeFileSync(join(state, 'lock'), '');
      const holder = spawn('flock', [join(state, 'lock'), 'sleep', '20'], { stdio: 'ignore' });
      try {
        await sleep(300);
        const refused = await lab.pw(ns, state, ['apply', WORKSTATION, '--confirm-timeout', '0']);
        expect(refused.status).toBe(2);
        expect(refused.stderr).toMatch(/another portwarden is changing the ruleset right now/);
        expect(await lab.table(ns)).toBe('(none)');
      } finally {
        holder.kill('SIGKILL');
      }
    });

    it('applies racing each other: one wins, the others refuse, and rollback restores the original', async () => {
      const { ns, state } = await lab.setup();
      const policies = [WORKSTATION, DUAL_HOMED, ROUTER, WORKSTATION, DUAL_HOMED, ROUTER];
      const runs = await Promise.all(
        policies.map((p) => lab.pw(ns, state, ['apply', p, '--confirm-timeout', '60'])),
      );
      const won = runs.filter((r) => r.status === 0);
      expect(won).toHaveLength(1);
      for (const lost of runs.filter((r) => r.status !== 0)) {
        expect(lost.status).toBe(2);
        expect(lost.stderr).toMatch(
          /another portwarden \(pid \d+, since .*\) is changing|another portwarden is changing|still waiting for confirmation/,
        );
      }
      expect(history(state).filter((h) => h.event === 'applied')).toHaveLength(1);
      expect((await lab.pw(ns, state, ['rollback'])).status).toBe(0);
      expect(await lab.table(ns)).toBe('(none)');
      expect(await lab.sysctl(ns, 'net.ipv4.ip_forward')).toBe('0');
    });

    it('a snapshot holding a rule of a vanished cgroup still rolls back (proven loadable first)', async () => {
      const { ns, state } = await lab.setup();
      const unitPolicy = join(lab.tempDir('pw-cg-'), 'unit.yaml');
      writeFileSync(
        unitPolicy,
        'version: 1\nname: unit\ndefaults: { inbound: drop, outbound: drop, forward: drop }\nzones:\n  z:\n    interfaces: [eth0]\n    inbound: [{ allow: http }]\nprograms:\n  - unit: pwgone.service\n    outbound: [{ allow: https }]\n',
      );
      // a private cgroup hierarchy (tmpfs) in a mount namespace: nft resolves the unit's path there,
      // and the "unit" disappears when its directory is removed; the machine's cgroups are untouched
      const pw = `env PORTWARDEN_STATE_DIR=${state} NO_COLOR=1 ${process.execPath} ${BIN}`;
      const script = [
        'mount -t tmpfs pwcg /sys/fs/cgroup',
        'mkdir -p /sys/fs/cgroup/system.slice/pwgone.service',
        `${pw} apply ${unitPolicy} --confirm-timeout 0 || exit 10`,
        'rmdir /sys/fs/cgroup/system.slice/pwgone.service',
        "nft list table inet portwarden | grep -q 'cgroupv2 level 2 [0-9]' || exit 11",
        `${pw} apply ${DUAL_HOMED} --confirm-timeout 60 || exit 12`,
        `${pw} rollback || exit 13`,
      ].join('\n');
      const r = await lab.lab.exec(ns, ['unshare', '-m', 'sh', '-c', script], {
        allowFailure: true,
        timeoutMs: 90_000,
      });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const table = await lab.table(ns);
      expect(table).toMatch(/chain in_z/);
      expect(table).not.toMatch(/in_internal|cgroupv2/);
      expect(history(state).at(-1)).toMatchObject({ event: 'rolled-back' });
      expect(history(state).at(-1)?.reason).toMatch(/^requested/);
    });
  },
);
