import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AuditReport } from '../../src/audit/run.ts';
import { NetnsLab } from '../../src/lab/netns.ts';
import { BIN } from '../helpers/cli.ts';
import { describeRootTier } from '../helpers/root-tier.ts';

const LISTEN = fileURLToPath(new URL('../fixtures/servers/listen.mjs', import.meta.url));

await describeRootTier('audit inside namespaces with real listeners and rulesets', ['ip', 'nft'], () => {
  const lab = new NetnsLab('aud');
  const dir = mkdtempSync(join(tmpdir(), 'pw-audit-'));

  /** A host namespace with eth0 (198.51.100.1, 2001:db8::1), the listeners and the ruleset given. */
  async function host(listeners: string[], ruleset: string | null): Promise<string> {
    const ns = await lab.addNamespace('h');
    const peer = await lab.addNamespace('p');
    await lab.link({ ns, ifname: 'eth0' }, { ns: peer, ifname: 'eth0' });
    await lab.addAddress(ns, 'eth0', '198.51.100.1/24');
    await lab.addAddress(ns, 'eth0', '2001:db8::1/64');
    if (ruleset !== null) {
      const file = join(dir, `${ns}.nft`);
      writeFileSync(file, ruleset);
      await lab.exec(ns, ['nft', '-f', file]);
    }
    const child = lab.spawn(ns, [process.execPath, LISTEN, ...listeners]);
    await once(child.stdout!, 'data');
    return ns;
  }

  async function audit(ns: string, args: string[] = []): Promise<{ report: AuditReport; status: number }> {
    const result = await lab.exec(
      ns,
      [process.execPath, BIN, 'audit', '--json', '--profile', 'server', ...args],
      {
        allowFailure: true,
      },
    );
    return { report: JSON.parse(result.stdout) as AuditReport, status: result.status };
  }

  let open: AuditReport;
  let dropped: AuditReport;

  beforeAll(async () => {
    const nsOpen = await host(['tcp:0.0.0.0:23', 'tcp:127.0.0.1:6379'], null);
    open = (await audit(nsOpen)).report;
    const nsDrop = await host(
      ['tcp:0.0.0.0:23', 'tcp:0.0.0.0:22'],
      'table inet f {\n chain input { type filter hook input priority 0; policy drop; ct state established,related accept; iif "lo" accept; tcp dport 22 accept; }\n}\n',
    );
    dropped = (await audit(nsDrop)).report;
  }, 60_000);

  afterAll(async () => {
    await lab.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a telnet-like listener on 0.0.0.0:23 with no firewall is a critical finding', () => {
    const telnet = open.findings.find((f) => f.rule === 'PW002' && f.port === 23);
    expect(telnet).toMatchObject({ severity: 'critical', protocol: 'tcp', address: '0.0.0.0' });
    expect(open.findings.some((f) => f.rule === 'PW001')).toBe(true);
    expect(open.method).toBe('no-firewall');
  });

  it('a loopback-only redis-like listener is not exposed', () => {
    expect(open.exposure.some((r) => r.localPort === 6379)).toBe(false);
    expect(open.findings.some((f) => f.port === 6379)).toBe(false);
  });

  it('the same telnet listener behind a drop policy is not exposed, and ssh is', () => {
    const row23 = dropped.exposure.find((r) => r.localPort === 23);
    expect(row23?.reachable).toBe('no');
    expect(row23?.cells[0]?.decision).toMatchObject({ verdict: 'drop', chain: 'input', handle: null });
    expect(dropped.exposure.find((r) => r.localPort === 22)?.reachable).toBe('yes');
    expect(dropped.findings.some((f) => f.port === 23)).toBe(false);
    expect(dropped.findings.some((f) => f.rule === 'PW001')).toBe(false);
    expect(dropped.method).toBe('static');
  });

  it('a policy allowing only http turns an extra listener into a finding; --fail-on high exits 1', async () => {
    const ns = await host(['tcp:0.0.0.0:80', 'tcp:0.0.0.0:8081'], null);
    const policy = join(dir, 'http-only.yaml');
    writeFileSync(
      policy,
      'version: 1\nzones:\n  external:\n    interfaces: [eth0]\n    inbound:\n      - allow: http\n',
    );
    const { report, status } = await audit(ns, [policy, '--fail-on', 'high']);
    const extra = report.findings.filter((f) => f.rule === 'PW003');
    expect(extra.map((f) => f.port)).toEqual([8081]);
    expect(extra[0]?.message).toMatch(/does not allow it in zone "external"/);
    expect(status).toBe(1);
  });

  it('a DNAT-published port is reported although the input chain drops it', async () => {
    const ns = await host(
      [],
      [
        'table inet f {',
        ' chain input { type filter hook input priority 0; policy drop; ct state established,related accept; iif "lo" accept; }',
        ' chain forward { type filter hook forward priority 0; policy accept; }',
        '}',
        'table ip nat {',
        ' chain prerouting { type nat hook prerouting priority dstnat; tcp dport 8080 dnat to 198.51.100.80:80; }',
        '}',
        '',
      ].join('\n'),
    );
    const { report } = await audit(ns);
    const dnat = report.findings.find((f) => f.rule === 'PW007');
    expect(dnat).toMatchObject({ severity: 'high', protocol: 'tcp', port: 8080, address: '198.51.100.80' });
    expect(dnat?.message).toMatch(/although the input chain drops that port/);
  });

  it('IPv6 reachable where IPv4 is filtered (a firewall for the ip family only)', async () => {
    const ns = await host(
      ['tcp:[::]:5432'],
      'table ip f {\n chain input { type filter hook input priority 0; policy drop; ct state established,related accept; iif "lo" accept; }\n}\n',
    );
    const { report } = await audit(ns);
    expect(report.findings.find((f) => f.rule === 'PW006')).toMatchObject({ port: 5432, severity: 'high' });
  });
});
