import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Finding } from '../../src/audit/findings.ts';
import { afterAll, expect, it, vi } from 'vitest';
import { ApplyLab, history } from '../helpers/apply-lab.ts';
import { ROOT } from '../helpers/cli.ts';
import { describeRootTier } from '../helpers/root-tier.ts';

vi.setConfig({ testTimeout: 180_000 });

const ROUTER = join(ROOT, 'examples/router.yaml');

/** A TCP server that answers every connection with its name and the address it saw. */
const SERVER = `require('net').createServer((c) => c.end(process.argv[2] + ' saw ' + c.remoteAddress.replace('::ffff:', '') + '\\n')).listen(+process.argv[1], process.argv[3], () => console.log('ready'))`;
/** A TCP client that prints what it receives; "timeout" after 2 s, "error <code>" on failure. */
const CLIENT = `const s = require('net').connect(+process.argv[2], process.argv[1]); let got = ''; s.setTimeout(2000, () => { console.log('timeout'); process.exit(0); }); s.on('data', (d) => (got += d)); s.on('end', () => { console.log(got.trim()); process.exit(0); }); s.on('error', (e) => { console.log('error ' + e.code); process.exit(0); });`;

await describeRootTier(
  'apply examples/router.yaml routes and forwards (namespace lab)',
  ['ip', 'nft', 'sysctl', 'flock', 'unshare'],
  () => {
    const lab = new ApplyLab('rtr');
    afterAll(() => lab.dispose());

    /** The router with the policy's interface names, a LAN host (198.51.100.20) and a WAN host (203.0.113.10). */
    async function build(): Promise<{ router: string; lan: string; wan: string; state: string }> {
      const router = await lab.lab.addNamespace('rt');
      const lan = await lab.lab.addNamespace('ln');
      const wan = await lab.lab.addNamespace('wn');
      await lab.lab.link({ ns: router, ifname: 'eth0' }, { ns: wan, ifname: 'eth0' });
      await lab.lab.link({ ns: router, ifname: 'eth1' }, { ns: lan, ifname: 'eth0' });
      await lab.lab.addAddress(router, 'eth0', '203.0.113.1/24');
      await lab.lab.addAddress(router, 'eth1', '198.51.100.1/24');
      await lab.lab.addAddress(wan, 'eth0', '203.0.113.10/24');
      await lab.lab.addAddress(lan, 'eth0', '198.51.100.20/24');
      await lab.lab.exec(lan, ['ip', 'route', 'add', 'default', 'via', '198.51.100.1']);
      // the WAN host has no route back to the LAN: replies only work through masquerade
      for (const [ns, port, name] of [
        [wan, '80', 'wan-web'],
        [lan, '8080', 'lan-app'],
      ] as const) {
        const server = lab.lab.spawn(ns, [process.execPath, '-e', SERVER, port, name, '0.0.0.0']);
        await new Promise<void>((resolve) => server.stdout?.once('data', () => resolve()));
      }
      return { router, lan, wan, state: lab.tempDir('pw-router-state-') };
    }

    async function connect(ns: string, host: string, port: number): Promise<string> {
      return (await lab.lab.exec(ns, [process.execPath, '-e', CLIENT, host, String(port)])).stdout.trim();
    }

    it('LAN reaches WAN (masqueraded), WAN reaches the forwarded app, and rollback turns forwarding off again', async () => {
      const { router, lan, wan, state } = await build();
      expect(await lab.sysctl(router, 'net.ipv4.ip_forward')).toBe('0');
      const dry = await lab.pw(router, state, ['apply', ROUTER, '--dry-run']);
      expect(dry.stdout).toMatch(/^# kernel: net\.ipv4\.ip_forward 0 -> 1 \(the policy routes lan -> wan/m);
      expect(dry.stdout).toMatch(/^# kernel: net\.ipv6\.conf\.all\.forwarding 0 -> 1/m);
      expect(await lab.sysctl(router, 'net.ipv4.ip_forward')).toBe('0');

      const applied = await lab.pw(router, state, ['apply', ROUTER, '--confirm-timeout', '120']);
      expect(applied.status).toBe(0);
      expect(applied.stderr).toMatch(/apply: kernel: net\.ipv4\.ip_forward 0 -> 1/);
      expect(await lab.sysctl(router, 'net.ipv4.ip_forward')).toBe('1');
      expect(await lab.sysctl(router, 'net.ipv6.conf.all.forwarding')).toBe('1');
      expect(await connect(lan, '203.0.113.10', 80)).toBe('wan-web saw 203.0.113.1');
      expect(await connect(wan, '203.0.113.1', 8443)).toBe('lan-app saw 203.0.113.10');
      // what the policy does not route stays closed
      expect(await connect(wan, '198.51.100.20', 8080)).toMatch(/^(timeout|error)/);

      const rolled = await lab.pw(router, state, ['rollback']);
      expect(rolled.status).toBe(0);
      expect(await lab.sysctl(router, 'net.ipv4.ip_forward')).toBe('0');
      expect(await lab.sysctl(router, 'net.ipv6.conf.all.forwarding')).toBe('0');
      expect(await lab.table(router)).toBe('(none)');
      expect(await connect(lan, '203.0.113.10', 80)).toMatch(/^(timeout|error)/);
      expect(history(state).map((h) => h.event)).toEqual(['applied', 'rolled-back']);
    });

    it('audit: PW012 when the router policy is loaded but forwarding is off; its own forward is no PW007, a foreign DNAT still is', async () => {
      const { router, state } = await build();
      expect((await lab.pw(router, state, ['apply', ROUTER, '--confirm-timeout', '0'])).status).toBe(0);
      const foreign = join(state, 'foreign.nft');
      writeFileSync(
        foreign,
        'table ip other {\n chain pre { type nat hook prerouting priority dstnat; tcp dport 9000 dnat to 198.51.100.30:80; }\n}\n',
      );
      await lab.lab.exec(router, ['nft', '-f', foreign]);
      await lab.lab.exec(router, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=0']);
      const audit = async (): Promise<Finding[]> => {
        const r = await lab.pw(router, state, ['audit', ROUTER, '--json', '--profile', 'server']);
        return (JSON.parse(r.stdout) as { findings: Finding[] }).findings;
      };
      const off = await audit();
      expect(off.find((f) => f.rule === 'PW012')).toMatchObject({
        id: 'PW012:net.ipv4.ip_forward',
        severity: 'medium',
        message: expect.stringMatching(/the policy routes lan -> wan .*but net\.ipv4\.ip_forward is 0/),
      });
      expect(off.filter((f) => f.rule === 'PW007').map((f) => f.port)).toEqual([9000]);
      await lab.lab.exec(router, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
      expect((await audit()).some((f) => f.rule === 'PW012')).toBe(false);
    });
  },
);
