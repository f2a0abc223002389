import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import type { AuditReport } from '../../src/audit/run.ts';
import { NetnsLab } from '../../src/lab/netns.ts';
import { BIN, ROOT } from '../helpers/cli.ts';
import { describeRootTier } from '../helpers/root-tier.ts';

const LISTEN = fileURLToPath(new URL('../fixtures/servers/listen.mjs', import.meta.url));

await describeRootTier(
  'audit reads a ruleset written by ufw',
  ['ip', 'nft', 'ufw', 'unshare', 'iptables-save'],
  () => {
    const lab = new NetnsLab('ufw');
    const dir = mkdtempSync(join(tmpdir(), 'pw-ufw-'));
    afterAll(async () => {
      await lab.dispose();
      rmSync(dir, { recursive: true, force: true });
    });

    it('ufw default deny + allow 22/tcp: ssh reachable, telnet not, no unknowns', async () => {
      const ns = await lab.addNamespace('h');
      const peer = await lab.addNamespace('p');
      await lab.link({ ns, ifname: 'eth0' }, { ns: peer, ifname: 'eth0' });
      await lab.addAddress(ns, 'eth0', '198.51.100.1/24');
      // ufw writes its configuration under /etc/ufw: a private mount namespace gets a copy, so the
      // machine's own ufw configuration and firewall are never touched; sysctl.conf is emptied so
      // ufw changes no kernel settings either.
      const script = [
        'set -e',
        `cp -a /etc/ufw ${dir}/ufw`,
        `cp /etc/default/ufw ${dir}/default-ufw`,
        `: > ${dir}/ufw/sysctl.conf`,
        `mount --bind ${dir}/ufw /etc/ufw`,
        `mount --bind ${dir}/default-ufw /etc/default/ufw`,
        'ufw --force enable >/dev/null',
        'ufw allow 22/tcp >/dev/null',
        `"${process.execPath}" "${LISTEN}" tcp:0.0.0.0:22 tcp:0.0.0.0:23 > ${dir}/ready 2>/dev/null &`,
        'listener=$!',
        // The listener goes away with this shell, whatever happens below.
        'trap "kill $listener" EXIT',
        `while [ ! -s ${dir}/ready ]; do sleep 0.05; done`,
        `cd "${ROOT}" && "${process.execPath}" "${BIN}" audit --json --profile server`,
      ].join('\n');
      const { stdout } = await lab.exec(ns, ['unshare', '-m', 'sh', '-c', script], { timeoutMs: 30_000 });
      const report = JSON.parse(stdout) as AuditReport;
      expect(report.ruleset?.tools).toContain('ufw');
      expect(report.exposure.find((r) => r.localPort === 22)?.reachable).toBe('yes');
      expect(report.exposure.find((r) => r.localPort === 23)?.reachable).toBe('no');
      expect(report.notModelled).toEqual([]);
      expect(report.findings.some((f) => f.port === 23)).toBe(false);
    }, 60_000);
  },
);
