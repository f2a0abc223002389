import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import type { HistoryEntry } from '../../src/apply/state.ts';
import { NetnsLab } from '../../src/lab/netns.ts';
import { runCommand, type RunResult } from '../../src/system/run.ts';
import { BIN, ROOT } from '../helpers/cli.ts';
import { describeRootTier } from '../helpers/root-tier.ts';
import { until } from '../helpers/until.ts';

// namespace tests on a loaded 2-core machine: generous limits, deadlines the tests wait for explicitly
vi.setConfig({ testTimeout: 180_000 });

const WORKSTATION = join(ROOT, 'examples/workstation.yaml');
const DUAL_HOMED = join(ROOT, 'examples/web-ftp-dual-homed.yaml');
const LISTEN = join(ROOT, 'test/fixtures/servers/listen.mjs');

await describeRootTier(
  'apply, confirm and rollback inside a namespace',
  ['ip', 'nft', 'iptables-restore', 'script', 'flock', 'unshare'],
  () => {
    const lab = new NetnsLab('apl');
    const dirs: string[] = [];
    afterAll(async () => {
      await lab.dispose();
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    });

    /** A fresh namespace with eth0 (203.0.113.1) and eth1 (198.51.100.1) (veth ends), and a state dir. */
    async function setup(): Promise<{ ns: string; state: string }> {
      const ns = await lab.addNamespace('h');
      for (const [ifname, cidr] of [
        ['eth0', '203.0.113.1/24'],
        ['eth1', '198.51.100.1/24'],
      ] as const) {
        await lab.exec(ns, ['ip', 'link', 'add', ifname, 'type', 'veth', 'peer', 'name', `${ifname}p`]);
        await lab.exec(ns, ['ip', 'link', 'set', ifname, 'up']);
        await lab.exec(ns, ['ip', 'link', 'set', `${ifname}p`, 'up']);
        await lab.addAddress(ns, ifname, cidr);
      }
      const state = mkdtempSync(join(tmpdir(), 'pw-apply-state-'));
      dirs.push(state);
      return { ns, state };
    }

    function pw(
      ns: string,
      state: string,
      args: readonly string[],
      env: Record<string, string> = {},
    ): Promise<RunResult> {
      const vars = Object.entries({ PORTWARDEN_STATE_DIR: state, NO_COLOR: '1', ...env }).map(
        ([k, v]) => `${k}=${v}`,
      );
      return runCommand(
        'ip',
        ['netns', 'exec', ns, 'env', '-u', 'SSH_CONNECTION', ...vars, process.execPath, BIN, ...args],
        {
          allowFailure: true,
          timeoutMs: 60_000,
        },
      );
    }

    async function table(ns: string): Promise<string> {
      const r = await lab.exec(ns, ['nft', 'list', 'table', 'inet', 'portwarden'], { allowFailure: true });
      return r.status === 0 ? r.stdout.replace(/counter packets \d+ bytes \d+/g, 'counter') : '(none)';
    }

    function history(state: string): HistoryEntry[] {
      if (!existsSync(join(state, 'history.jsonl'))) return [];
      return readFileSync(join(state, 'history.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as HistoryEntry);
    }

    let foreign = '';
    beforeAll(() => {
      foreign =
        'table ip other_tool {\n\tchain keep {\n\t\ttype filter hook input priority 10; policy accept;\n\t}\n}\n';
    });

    it('confirm keeps the new ruleset, and other tables are never touched', async () => {
      const { ns, state } = await setup();
      const other = join(state, 'other.nft');
      writeFileSync(other, foreign);
      await lab.exec(ns, ['nft', '-f', other]);
      const applied = await pw(ns, state, ['apply', WORKSTATION, '--confirm-timeout', '10', '--json']);
      expect(applied.stderr).toBe('');
      expect(applied.status).toBe(0);
      const result = JSON.parse(applied.stdout) as {
        id: string;
        policyHash: string;
        rollbackPid: number;
        deadline: string;
      };
      expect(result.policyHash).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(await table(ns)).toMatch(/chain in_uplink/);
      const confirmed = await pw(ns, state, ['confirm']);
      expect(confirmed.stdout).toMatch(new RegExp(`confirmed ${result.id}`));
      // past the deadline: still the new ruleset, the waiter has gone
      await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(result.deadline) - Date.now() + 1000)));
      expect(await table(ns)).toMatch(/chain in_uplink/);
      expect(existsSync(`/proc/${result.rollbackPid}`)).toBe(false);
      expect(history(state).map((h) => h.event)).toEqual(['applied', 'confirmed']);
      expect(history(state)[0]?.policyFile).toBe(WORKSTATION);
      expect((await lab.exec(ns, ['nft', 'list', 'table', 'ip', 'other_tool'])).stdout).toMatch(/chain keep/);
      const again = await pw(ns, state, ['confirm']);
      expect(again.status).toBe(2);
      expect(again.stderr).toMatch(/no apply is waiting for confirmation/);
    });

    it('without confirm the old ruleset comes back, even when apply was killed with SIGKILL', async () => {
      const { ns, state } = await setup();
      expect((await pw(ns, state, ['apply', WORKSTATION, '--confirm-timeout', '0'])).status).toBe(0);
      const old = await table(ns);
      expect(old).toMatch(/chain in_uplink/);
      // apply on a terminal waits at its prompt; kill its whole process group with SIGKILL there
      const command = `ip netns exec ${ns} env PORTWARDEN_STATE_DIR=${state} ${process.execPath} ${BIN} apply ${DUAL_HOMED} --confirm-timeout 10`;
      const child = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], {
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      try {
        await until('the prompt', () => output.includes('Type "yes"'), 20_000);
        expect(await table(ns)).toMatch(/chain in_internal/);
        process.kill(-(child.pid ?? 0), 'SIGKILL');
        await until('the apply to die', () => child.exitCode !== null || child.signalCode !== null, 5000);
        const pending = (
          JSON.parse(readFileSync(join(state, 'pending.json'), 'utf8')) as { data: { rollbackPid: number } }
        ).data;
        expect(existsSync(`/proc/${pending.rollbackPid}`)).toBe(true);
        await until('the rollback', () => history(state).some((h) => h.event === 'rolled-back'), 30_000);
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      expect(await table(ns)).toBe(old);
      expect(existsSync(join(state, 'pending.json'))).toBe(false);
      expect(history(state).at(-1)).toMatchObject({
        event: 'rolled-back',
        reason: 'no confirmation before the deadline',
      });
    });

    it('`rollback` restores at once, with the iptables backend too', async () => {
      const { ns, state } = await setup();
      const before = (await lab.exec(ns, ['iptables-save', '-t', 'filter'])).stdout;
      expect((await pw(ns, state, ['apply', DUAL_HOMED, '--backend', 'iptables'])).status).toBe(0);
      expect((await lab.exec(ns, ['iptables-save', '-t', 'filter'])).stdout).toMatch(/:INPUT DROP/);
      expect((await lab.exec(ns, ['ip6tables-save', '-t', 'filter'])).stdout).toMatch(/:INPUT DROP/);
      const rolled = await pw(ns, state, ['rollback']);
      expect(rolled.status).toBe(0);
      const strip = (t: string): string => t.replace(/^#.*\n/gm, '');
      expect(strip((await lab.exec(ns, ['iptables-save', '-t', 'filter'])).stdout)).toBe(strip(before));
      expect((await lab.exec(ns, ['ip6tables-save', '-t', 'filter'])).stdout).not.toMatch(/DROP/);
      expect(history(state).map((h) => [h.event, h.reason])).toEqual([
        ['applied', undefined],
        ['rolled-back', 'requested'],
      ]);
    });

    it('the iptables backend will not delete chains it does not own unless forced', async () => {
      const { ns, state } = await setup();
      await lab.exec(ns, ['iptables', '-N', 'DOCKER-USER']);
      await lab.exec(ns, ['iptables', '-A', 'FORWARD', '-j', 'DOCKER-USER']);
      const refused = await pw(ns, state, ['apply', DUAL_HOMED, '--backend', 'iptables']);
      expect(refused.status).toBe(2);
      expect(refused.stderr).toMatch(
        /replaces whole tables, and these chains in them are not portwarden's: DOCKER-USER/,
      );
      expect(refused.stderr).toMatch(/hint: use --backend nftables/);
      expect((await lab.exec(ns, ['iptables-save', '-t', 'filter'])).stdout).toMatch(
        /-A FORWARD -j DOCKER-USER/,
      );
      expect(existsSync(join(state, 'pending.json'))).toBe(false);
      const forced = await pw(ns, state, [
        'apply',
        DUAL_HOMED,
        '--backend',
        'iptables',
        '--force',
        '--confirm-timeout',
        '0',
      ]);
      expect(forced.status).toBe(0);
      expect((await lab.exec(ns, ['iptables-save', '-t', 'filter'])).stdout).not.toMatch(/DOCKER-USER/);
    });

    it('the lock-out guard refuses to cut off the SSH session or the only admin path; --force overrides', async () => {
      const { ns, state } = await setup();
      // the admin workstation 198.51.100.10 may ssh in through eth1; 198.51.100.11 may not
      const allowed = await pw(ns, state, ['apply', DUAL_HOMED, '--confirm-timeout', '0'], {
        SSH_CONNECTION: '198.51.100.10 50000 198.51.100.1 22',
      });
      expect(allowed.status).toBe(0);
      const refused = await pw(ns, state, ['apply', DUAL_HOMED], {
        SSH_CONNECTION: '198.51.100.11 50000 198.51.100.1 22',
      });
      expect(refused.status).toBe(2);
      expect(refused.stderr).toMatch(
        /refusing to apply: your SSH session \(198\.51\.100\.11 -> 198\.51\.100\.1:22 via eth1, zone "internal"\) would be blocked/,
      );
      expect(refused.stderr).toMatch(/hint: .*--force/);
      // sshd listening on all interfaces, and a policy that allows it nowhere
      const sshd = lab.spawn(ns, [process.execPath, LISTEN, 'tcp:0.0.0.0:22']);
      await new Promise<void>((resolve) => sshd.stdout?.once('data', () => resolve()));
      const cut = await pw(ns, state, ['apply', WORKSTATION]);
      expect(cut.status).toBe(2);
      expect(cut.stderr).toMatch(
        /every path of remote administration would be closed: no zone allows node \(tcp\/22\)/,
      );
      const forced = await pw(ns, state, ['apply', WORKSTATION, '--force', '--confirm-timeout', '0']);
      expect(forced.status).toBe(0);
      expect(forced.stderr).toMatch(/overridden by --force/);
      expect(await table(ns)).toMatch(/chain in_uplink/);
      sshd.kill('SIGKILL');
    });

    it('a ruleset the kernel rejects leaves the old one in place; a second apply waits for the first', async () => {
      const { ns, state } = await setup();
      expect((await pw(ns, state, ['apply', WORKSTATION, '--confirm-timeout', '0'])).status).toBe(0);
      const old = await table(ns);
      // a per-program rule for a systemd unit whose cgroup does not exist cannot be loaded
      const bad = join(state, 'bad.yaml');
      writeFileSync(
        bad,
        'version: 1\nname: bad\ndefaults: { inbound: drop, outbound: drop, forward: drop }\nzones:\n  z:\n    interfaces: [eth0]\n    inbound: [{ allow: http }]\nprograms:\n  - unit: no-such-unit-pw.service\n    outbound: [{ allow: https }]\n',
      );
      const failed = await pw(ns, state, ['apply', bad]);
      expect(failed.status).toBe(3);
      expect(failed.stderr).toMatch(/rejected the ruleset/);
      expect(failed.stderr).toMatch(/the one in place is unchanged/);
      expect(await table(ns)).toBe(old);
      expect(existsSync(join(state, 'pending.json'))).toBe(false);
      // a pending apply blocks the next one until confirmed or rolled back
      expect((await pw(ns, state, ['apply', DUAL_HOMED, '--confirm-timeout', '30'])).status).toBe(0);
      const second = await pw(ns, state, ['apply', WORKSTATION]);
      expect(second.status).toBe(2);
      expect(second.stderr).toMatch(/is still waiting for confirmation/);
      expect((await pw(ns, state, ['rollback'])).status).toBe(0);
      expect(await table(ns)).toBe(old);
    });

    it('--dry-run diffs the loaded ruleset against the new one and changes nothing', async () => {
      const { ns, state } = await setup();
      expect((await pw(ns, state, ['apply', WORKSTATION, '--confirm-timeout', '0'])).status).toBe(0);
      const same = await pw(ns, state, ['apply', WORKSTATION, '--dry-run']);
      expect(same.stdout).toMatch(/# no change: the loaded ruleset is already this one/);
      const other = await pw(ns, state, ['apply', DUAL_HOMED, '--dry-run']);
      expect(other.status).toBe(0);
      expect(other.stdout).toMatch(/^--- loaded\n\+\+\+ new$/m);
      expect(other.stdout).toMatch(/^-\tchain out_uplink \{$/m);
      expect(other.stdout).toMatch(/^\+\tchain in_internal \{$/m);
      expect(await table(ns)).toMatch(/chain out_uplink/);
      expect(history(state).map((h) => h.event)).toEqual(['applied']);
    });
  },
);
