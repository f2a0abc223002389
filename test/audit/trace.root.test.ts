import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { AuditReport } from '../../src/audit/run.ts';
import type { TraceReport } from '../../src/audit/trace.ts';
import { NetnsLab } from '../../src/lab/netns.ts';
import { BIN } from '../helpers/cli.ts';
import { describeRootTier } from '../helpers/root-tier.ts';

await describeRootTier(
  'trace and audit in a namespace: nft and iptables-legacy together, and without root',
  ['ip', 'nft', 'iptables-legacy-restore', 'setpriv'],
  () => {
    const lab = new NetnsLab('trc');
    const dir = mkdtempSync(join(tmpdir(), 'pw-trace-'));
    afterAll(async () => {
      await lab.dispose();
      rmSync(dir, { recursive: true, force: true });
    });

    async function host(): Promise<string> {
      const ns = await lab.addNamespace('h');
      const peer = await lab.addNamespace('p');
      await lab.link({ ns, ifname: 'eth0' }, { ns: peer, ifname: 'eth0' });
      await lab.addAddress(ns, 'eth0', '198.51.100.1/24');
      const nft = join(dir, `${ns}.nft`);
      writeFileSync(
        nft,
        'table inet f {\n chain input { type filter hook input priority 0; policy drop;\n  ct state established,related accept\n  tcp dport { 22, 23 } accept\n }\n}\n',
      );
      await lab.exec(ns, ['nft', '-f', nft]);
      await lab.exec(ns, ['iptables-legacy-restore'], {
        input:
          '*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n',
      });
      return ns;
    }

    it('the trace shows the nft chain and the legacy chain in priority order; the legacy policy decides 23', async () => {
      const ns = await host();
      const ok = await lab.exec(ns, [
        process.execPath,
        BIN,
        'trace',
        'tcp',
        '203.0.113.9',
        '->',
        'eth0:22',
        '--json',
      ]);
      const accepted = JSON.parse(ok.stdout) as TraceReport;
      expect(accepted.verdict).toBe('accept');
      const tables = accepted.steps
        .filter((s) => s.result === 'enter' && s.hook === 'input')
        .map((s) => s.table);
      expect(tables).toEqual(['inet f', 'iptables-legacy ip filter']);
      const blocked = await lab.exec(ns, [process.execPath, BIN, 'trace', 'tcp', '203.0.113.9', 'eth0:23']);
      expect(blocked.stdout).toMatch(/verdict: DROP by iptables-legacy ip filter chain INPUT policy drop/);
    });

    it('without root the ruleset cannot be read: audit says unknown (never "no firewall") and --fail-on exits 3', async () => {
      const ns = await host();
      const result = await lab.exec(
        ns,
        [
          'setpriv',
          '--reuid',
          '65534',
          '--regid',
          '65534',
          '--clear-groups',
          process.execPath,
          BIN,
          'audit',
          '--json',
          '--profile',
          'server',
          '--fail-on',
          'high',
        ],
        { allowFailure: true },
      );
      expect(result.status).toBe(3);
      const report = JSON.parse(result.stdout) as AuditReport;
      expect(report.method).toBe('unreadable');
      expect(report.findings.some((f) => f.rule === 'PW001')).toBe(false);
      expect(result.stderr).toMatch(/could not read the ruleset/);
    });
  },
);
