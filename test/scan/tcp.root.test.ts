import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NetnsLab } from '../../src/lab/netns.ts';
import { BIN } from '../helpers/cli.ts';
import { describeRootTier } from '../helpers/root-tier.ts';

const LISTEN = fileURLToPath(new URL('../fixtures/servers/listen.mjs', import.meta.url));
const PORTS = '22,80,81,1000-1099,2000,2001';

interface ScanJson {
  hosts: {
    address: string;
    ports: { port: number; state: string; reason: string }[];
    extraPorts: { state: string; count: number }[];
  }[];
}

/** Port -> state from our JSON, expanding nothing: the scan below shows every port (<= 25 per state or open). */
function states(json: ScanJson): Map<number, string> {
  return new Map(json.hosts[0]?.ports.map((p) => [p.port, p.state]));
}

/** Port -> state from nmap's (or our) XML, including extraports ranges. */
function xmlStates(xml: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const m of xml.matchAll(/<port protocol="tcp" portid="(\d+)"><state state="([^"]+)"/g))
    out.set(Number(m[1]), m[2] ?? '');
  for (const m of xml.matchAll(/<extraports state="([^"]+)"[^>]*>([\s\S]*?)<\/extraports>/g)) {
    for (const r of (m[2] ?? '').matchAll(/ports="([^"]+)"/g)) {
      for (const part of (r[1] ?? '').split(',')) {
        const [a = '0', b = a] = part.split('-');
        for (let p = Number(a); p <= Number(b); p++) out.set(p, m[1] ?? '');
      }
    }
  }
  return out;
}

await describeRootTier(
  'TCP connect scan across a veth pair, with a firewall in the target',
  ['ip', 'nft'],
  () => {
    const lab = new NetnsLab('scn');
    const dir = mkdtempSync(join(tmpdir(), 'pw-scan-'));
    let scanner = '';
    let json: ScanJson;

    beforeAll(async () => {
      scanner = await lab.addNamespace('s');
      const target = await lab.addNamespace('t');
      await lab.link({ ns: scanner, ifname: 'eth0' }, { ns: target, ifname: 'eth0' });
      await lab.addAddress(scanner, 'eth0', '198.51.100.1/24');
      await lab.addAddress(target, 'eth0', '198.51.100.2/24');
      const rules = join(dir, 'target.nft');
      writeFileSync(
        rules,
        [
          'table inet t {',
          '  chain input {',
          '    type filter hook input priority 0; policy accept;',
          '    tcp dport 1000-1099 drop',
          '    tcp dport 2000 reject with tcp reset',
          '    tcp dport 2001 reject with icmp type admin-prohibited',
          '  }',
          '}',
          '',
        ].join('\n'),
      );
      await lab.exec(target, ['nft', '-f', rules]);
      const child = lab.spawn(target, [process.execPath, LISTEN, 'tcp:0.0.0.0:22', 'tcp:0.0.0.0:80']);
      await once(child.stdout!, 'data');
      const result = await lab.exec(
        scanner,
        [
          process.execPath,
          BIN,
          'scan',
          '198.51.100.2',
          '-p',
          PORTS,
          '--retries',
          '1',
          '--json',
          '--xml',
          join(dir, 'pw.xml'),
        ],
        { timeoutMs: 60_000 },
      );
      json = JSON.parse(result.stdout) as ScanJson;
    }, 90_000);

    afterAll(async () => {
      await lab.dispose();
      rmSync(dir, { recursive: true, force: true });
    });

    it('open, closed, dropped and rejected ports get nmap states', () => {
      const map = xmlStates(readFileSync(join(dir, 'pw.xml'), 'utf8'));
      expect(states(json).get(22)).toBe('open');
      expect(map.get(22)).toBe('open');
      expect(map.get(80)).toBe('open');
      expect(map.get(81)).toBe('closed');
      expect(map.get(2000)).toBe('closed'); // reject with tcp reset looks like no listener
      expect(map.get(2001)).toBe('filtered'); // ICMP admin-prohibited
      const filtered = json.hosts[0]?.extraPorts.find((e) => e.state === 'filtered');
      expect(filtered?.count).toBe(101);
      for (let port = 1000; port <= 1099; port++) expect(map.get(port)).toBe('filtered');
    });

    it('agrees with nmap -sT port by port, and ndiff and xsltproc accept our XML', async (context) => {
      const nmap = await lab.exec(
        scanner,
        [
          'nmap',
          '-sT',
          '-n',
          '-Pn',
          '-T4',
          '--max-retries',
          '1',
          '-p',
          PORTS,
          '198.51.100.2',
          '-oX',
          join(dir, 'nmap.xml'),
        ],
        {
          allowFailure: true,
          timeoutMs: 60_000,
        },
      );
      if (nmap.status !== 0 && process.env['PORTWARDEN_REQUIRE_ROOT_TIERS'] !== '1') {
        context.skip();
        return;
      }
      const ours = xmlStates(readFileSync(join(dir, 'pw.xml'), 'utf8'));
      const theirs = xmlStates(readFileSync(join(dir, 'nmap.xml'), 'utf8'));
      expect(ours.size).toBe(105);
      expect([...ours].filter(([port, state]) => theirs.get(port) !== state)).toEqual([]);
      // Service names come from different tables (the catalog vs nmap-services): without them, ndiff
      // must find no port that differs. It exits 2 when it cannot parse a file.
      for (const name of ['nmap', 'pw']) {
        writeFileSync(
          join(dir, `${name}-states.xml`),
          readFileSync(join(dir, `${name}.xml`), 'utf8').replace(/<service [^>]*\/>/g, ''),
        );
      }
      const ndiff = await lab.exec(
        scanner,
        ['ndiff', join(dir, 'nmap-states.xml'), join(dir, 'pw-states.xml')],
        { allowFailure: true },
      );
      expect(ndiff.status).toBeLessThan(2);
      expect(ndiff.stdout).not.toMatch(/^[-+]\d+\/tcp/m);
      await lab.exec(scanner, ['xsltproc', '-o', join(dir, 'pw.html'), join(dir, 'pw.xml')]);
      expect(readFileSync(join(dir, 'pw.html'), 'utf8')).toContain('198.51.100.2');
    }, 90_000);
  },
);
