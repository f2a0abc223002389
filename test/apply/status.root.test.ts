import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it, vi } from 'vitest';
import type { ApplyStatus } from '../../src/apply/status.ts';
import type { HistoryEntry } from '../../src/apply/state.ts';
import { ApplyLab } from '../helpers/apply-lab.ts';
import { BIN, ROOT } from '../helpers/cli.ts';
import { describeRootTier } from '../helpers/root-tier.ts';

vi.setConfig({ testTimeout: 180_000 });

const WORKSTATION = join(ROOT, 'examples/workstation.yaml');
const ROUTER = join(ROOT, 'examples/router.yaml');
const DUAL_HOMED = join(ROOT, 'examples/web-ftp-dual-homed.yaml');

/** Entries of the real /etc the tools read, bound read-only into the temporary one. */
const SHARED_ETC = ['alternatives', 'protocols', 'services', 'ethertypes'].filter((n) =>
  existsSync(`/etc/${n}`),
);

/** A temporary /etc with mount points for SHARED_ETC. */
function makeEtc(lab: ApplyLab): string {
  const etc = lab.tempDir('pw-etc-');
  for (const name of SHARED_ETC) {
    if (lstatSync(`/etc/${name}`).isDirectory()) mkdirSync(join(etc, name));
    else writeFileSync(join(etc, name), '');
  }
  return etc;
}

/** Every file, directory and symlink under `dir` with its content: to prove unpersist leaves it as it was. */
function tree(dir: string, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    const stat = lstatSync(path);
    if (stat.isSymbolicLink()) out[prefix + name] = `-> ${readlinkSync(path)}`;
    else if (stat.isDirectory())
      Object.assign(out, { [`${prefix}${name}/`]: 'dir' }, tree(path, `${prefix}${name}/`));
    else out[prefix + name] = readFileSync(path, 'utf8');
  }
  return out;
}

await describeRootTier(
  'status, history and persist (namespaces, a temporary /etc)',
  ['ip', 'nft', 'unshare', 'mount', 'flock'],
  () => {
    const lab = new ApplyLab('sts');
    afterAll(() => lab.dispose());

    async function status(ns: string, state: string): Promise<{ json: ApplyStatus; status: number }> {
      const r = await lab.pw(ns, state, ['status', '--json']);
      return { json: JSON.parse(r.stdout) as ApplyStatus, status: r.status };
    }

    it('reports what is loaded, from which policy, the pending deadline, and drift after a hand-made change', async () => {
      const { ns, state } = await lab.setup();
      const none = await status(ns, state);
      expect(none.json).toMatchObject({
        loaded: false,
        current: null,
        pending: null,
        drift: null,
        persisted: null,
      });
      expect((await lab.pw(ns, state, ['apply', WORKSTATION, '--confirm-timeout', '30'])).status).toBe(0);
      const pending = await status(ns, state);
      expect(pending.status).toBe(0);
      expect(pending.json.loaded).toBe(true);
      expect(pending.json.current).toMatchObject({ policyFile: WORKSTATION, confirmedAt: null });
      expect(pending.json.current?.policyHash).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(pending.json.pending?.secondsLeft).toBeGreaterThan(20);
      expect(pending.json.pending?.secondsLeft).toBeLessThanOrEqual(30);
      expect(pending.json.drift).toEqual({ drifted: false, diff: '' });
      const text = await lab.pw(ns, state, ['status']);
      expect(text.stdout).toMatch(
        /^pending: +\S+ \(.*workstation\.yaml\) is rolled back in \d+ s unless you run `portwarden confirm`$/m,
      );
      expect(text.stdout).toMatch(/^drift: +none/m);
      expect((await lab.pw(ns, state, ['confirm'])).status).toBe(0);

      await lab.lab.exec(ns, [
        'nft',
        'add',
        'rule',
        'inet',
        'portwarden',
        'in_uplink',
        'tcp',
        'dport',
        '9999',
        'accept',
      ]);
      const drifted = await status(ns, state);
      expect(drifted.status).toBe(1);
      expect(drifted.json.drift?.drifted).toBe(true);
      expect(drifted.json.drift?.diff).toMatch(/^\+\t\ttcp dport 9999 accept$/m);
      expect(drifted.json.pending).toBeNull();
      expect(drifted.json.current?.confirmedAt).toEqual(expect.any(String));
      expect((await lab.pw(ns, state, ['status'])).stdout).toMatch(
        /^drift: +YES: the loaded ruleset differs/m,
      );

      await lab.lab.exec(ns, ['nft', 'delete', 'table', 'inet', 'portwarden']);
      expect((await status(ns, state)).json.loaded).toBe(false);

      const history = await lab.pw(ns, state, ['history']);
      expect(history.stdout).toMatch(
        /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ {2}applied +\S+ {2}nftables {2}.*workstation\.yaml {2}deadline /m,
      );
      expect(history.stdout).toMatch(/^.* {2}confirmed +\S+/m);
      const json = JSON.parse((await lab.pw(ns, state, ['history', '--json'])).stdout) as HistoryEntry[];
      expect(json.map((h) => h.event)).toEqual(['applied', 'confirmed']);
    });

    it('lists the kernel settings it manages', async () => {
      const { ns, state } = await lab.setup();
      expect((await lab.pw(ns, state, ['apply', ROUTER, '--confirm-timeout', '0'])).status).toBe(0);
      const { json } = await status(ns, state);
      expect(json.kernel.map((k) => [k.name, k.now, k.wanted])).toEqual([
        ['net.ipv4.ip_forward', '1', '1'],
        ['net.ipv6.conf.all.forwarding', '1', '1'],
      ]);
      await lab.lab.exec(ns, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=0']);
      expect((await lab.pw(ns, state, ['status'])).stdout).toMatch(
        /^kernel: +net\.ipv4\.ip_forward = 0 \(WANTED 1\): the policy routes/m,
      );
    });

    /** Runs shell lines inside `ns` with a private mount namespace whose /etc is `etc`. */
    async function withEtc(
      ns: string,
      state: string,
      etc: string,
      lines: string[],
    ): Promise<{ stdout: string; stderr: string; status: number }> {
      const pw = `env -u NODE_EXTRA_CA_CERTS PORTWARDEN_STATE_DIR=${state} NO_COLOR=1 ${process.execPath} ${BIN}`;
      // the tools still need a few read-only entries of the real /etc (iptables-restore is an alternatives link)
      const shared = SHARED_ETC.map(
        (name) => `mount --bind /etc/${name} ${etc}/${name} && mount -o remount,bind,ro ${etc}/${name}`,
      );
      const script = [
        'set -e',
        ...shared,
        `mount --rbind ${etc} /etc`,
        ...lines.map((l) => l.replaceAll('PW ', `${pw} `)),
      ].join('\n');
      return lab.lab.exec(ns, ['unshare', '-m', 'sh', '-c', script], {
        allowFailure: true,
        timeoutMs: 90_000,
      });
    }

    it('nftables: persist includes a portwarden file from /etc/nftables.conf that loads at boot; unpersist undoes exactly that', async () => {
      const { ns, state } = await lab.setup();
      const etc = makeEtc(lab);
      writeFileSync(join(etc, 'nftables.conf'), '#!/usr/sbin/nft -f\nflush ruleset\n');
      const before = tree(etc);
      const refused = await withEtc(ns, state, etc, [
        'PW apply ' + ROUTER + ' --confirm-timeout 30',
        'PW persist',
      ]);
      expect(refused.status).toBe(2);
      expect(refused.stderr).toMatch(/not confirmed yet, so it is not persisted/);
      expect(tree(etc)).toEqual(before);
      const r = await withEtc(ns, state, etc, [
        'PW confirm --persist',
        // a boot, simulated: a fresh network namespace loads /etc/nftables.conf
        "unshare -n sh -c 'nft -f /etc/nftables.conf && nft list table inet portwarden' | grep -c 'chain' > /etc/boot-check",
      ]);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/persisted \S+ \(.*router\.yaml\): .*\/etc\/portwarden\/portwarden\.nft/);
      expect(readFileSync(join(etc, 'nftables.conf'), 'utf8')).toBe(
        '#!/usr/sbin/nft -f\nflush ruleset\ninclude "/etc/portwarden/portwarden.nft" # added by portwarden persist\n',
      );
      expect(readFileSync(join(etc, 'portwarden/portwarden.nft'), 'utf8')).toMatch(
        /^table inet portwarden$/m,
      );
      expect(Number(readFileSync(join(etc, 'boot-check'), 'utf8'))).toBeGreaterThan(3);
      expect(readFileSync(join(etc, 'sysctl.d/90-portwarden.conf'), 'utf8')).toMatch(
        /^net\.ipv4\.ip_forward = 1$/m,
      );
      const shown = await withEtc(ns, state, etc, ['PW status --json']);
      expect((JSON.parse(shown.stdout) as ApplyStatus).persisted).toMatchObject({ isCurrent: true });
      const undone = await withEtc(ns, state, etc, ['rm /etc/boot-check', 'PW unpersist']);
      expect(undone.status).toBe(0);
      expect(tree(etc)).toEqual(before);
      expect(existsSync('/etc/portwarden')).toBe(false);
    });

    it('nftables without nftables.conf: a portwarden.service before network-pre.target, enabled by symlink; unpersist removes it', async () => {
      const { ns, state } = await lab.setup();
      const etc = makeEtc(lab);
      mkdirSync(join(etc, 'systemd/system'), { recursive: true });
      const before = tree(etc);
      const r = await withEtc(ns, state, etc, ['PW apply ' + WORKSTATION + ' --confirm-timeout 0 --persist']);
      expect(r.stderr).toBe('');
      const unit = readFileSync(join(etc, 'systemd/system/portwarden.service'), 'utf8');
      expect(unit).toMatch(/^Before=network-pre\.target/m);
      expect(unit).toMatch(/^ExecStart=\S*nft -f \/etc\/portwarden\/portwarden\.nft$/m);
      expect(readlinkSync(join(etc, 'systemd/system/sysinit.target.wants/portwarden.service'))).toBe(
        '/etc/systemd/system/portwarden.service',
      );
      expect(existsSync(join(etc, 'sysctl.d'))).toBe(false);
      expect((await withEtc(ns, state, etc, ['PW unpersist'])).status).toBe(0);
      expect(tree(etc)).toEqual(before);
    });

    it('iptables: rules.v4 / rules.v6 for netfilter-persistent; unpersist puts the earlier rules.v4 back', async () => {
      const { ns, state } = await lab.setup();
      const etc = makeEtc(lab);
      mkdirSync(join(etc, 'iptables'));
      writeFileSync(join(etc, 'iptables/rules.v4'), '*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n');
      const before = tree(etc);
      const r = await withEtc(ns, state, etc, [
        `PW apply ${DUAL_HOMED} --backend iptables --confirm-timeout 0 --persist`,
      ]);
      expect(r.stderr).toBe('');
      expect(readFileSync(join(etc, 'iptables/rules.v4'), 'utf8')).toMatch(/^:INPUT DROP/m);
      expect(readFileSync(join(etc, 'iptables/rules.v6'), 'utf8')).toMatch(/^:INPUT DROP/m);
      expect((await withEtc(ns, state, etc, ['PW unpersist'])).status).toBe(0);
      expect(tree(etc)).toEqual(before);
    });
  },
);
