import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { compilePolicy } from '../../src/compile/registry.ts';
import { loadPolicyOrThrow } from '../../src/policy/load.ts';
import { BIN, ROOT, runCli } from '../helpers/cli.ts';
import { describeRootTier } from '../helpers/root-tier.ts';

const EXAMPLE = 'examples/web-ftp-dual-homed.yaml';
const policy = loadPolicyOrThrow(readFileSync(new URL(`../../${EXAMPLE}`, import.meta.url), 'utf8'), EXAMPLE);

type Json = {
  ok: boolean;
  probes: number;
  differences: Record<string, unknown>[];
  undecided?: unknown[];
  checks: string[];
};

await describeRootTier(
  'verify: real packets against the compiled and hand-written rulesets',
  ['ip', 'nft', 'iptables-restore', 'unshare'],
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'pw-verify-test-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const nft = compilePolicy(policy, 'nftables', 'test')[0]?.content ?? '';

    function verify(args: readonly string[]): { status: number | null; json: Json; stderr: string } {
      const result = runCli(['verify', ...args, '--json'], { env: { PORTWARDEN_TEST: '1' } });
      let json: Json = { ok: false, probes: 0, differences: [], checks: [] };
      try {
        json = JSON.parse(result.stdout) as Json;
      } catch {
        // status and stderr say why
      }
      return { status: result.status, json, stderr: result.stderr };
    }

    it.each(
      ['workstation', 'web-ftp-dual-homed', 'dns-dhcp', 'router', 'per-program-egress'].flatMap((example) =>
        (['nftables', 'iptables'] as const).map((backend) => [example, backend] as const),
      ),
    )(
      'examples/%s.yaml verifies with exit 0 on %s',
      (example, backend) => {
        const result = verify([`examples/${example}.yaml`, '--backend', backend, '--ports', '1-100']);
        expect(result.stderr).toBe('');
        expect(result.json.differences).toEqual([]);
        expect(result.status).toBe(0);
        // at least the TCP sweep: 100 ports, in and out, both families, per zone
        expect(result.json.probes).toBeGreaterThanOrEqual(100 * 2 * 2);
        if (example === 'web-ftp-dual-homed')
          expect(result.json.checks).toEqual(
            expect.arrayContaining([
              expect.stringMatching(/routed traffic between 2 zones/),
              expect.stringMatching(/FTP sessions, passive and active/),
              expect.stringMatching(/peer 198\.51\.100\.10 \(from 198\.51\.100\.10\)/),
            ]),
          );
        if (example === 'router') expect(result.json.checks).toContain('1 port forward(s) end to end');
      },
      120_000,
    );

    it('five mistakes in one ruleset are each reported with the right difference', () => {
      let text = nft.replace(
        '\tchain in_external {\n',
        '\tchain in_external {\n\t\ttcp dport 111 accept\n\t\ttcp dport 80 drop\n\t\tmeta nfproto ipv6 tcp dport 25 accept\n\t\tudp dport 161 accept\n',
      );
      text = text.replace('\tchain out_external {\n', '\tchain out_external {\n\t\ttcp dport 25 accept\n');
      const file = join(dir, 'five-mistakes.nft');
      writeFileSync(file, text);
      const result = verify([EXAMPLE, '--ruleset', file, '--ports', '1-200']);
      expect(result.status).toBe(1);
      expect(result.json.ok).toBe(false);
      const peer4 = '203.0.113.5';
      const peer6 = '2001:db8:1::5';
      const d = (family: 4 | 6, rest: Record<string, unknown>): unknown =>
        expect.objectContaining({ zone: 'external', family, peer: family === 4 ? peer4 : peer6, ...rest });
      expect(result.json.differences).toEqual(
        expect.arrayContaining([
          // one port too many
          d(4, { direction: 'inbound', protocol: 'tcp', ports: '111', expected: 'block', observed: 'pass' }),
          // one port missing (both families) and IPv6 open while IPv4 is closed
          d(4, { direction: 'inbound', protocol: 'tcp', ports: '80', expected: 'pass', observed: 'block' }),
          d(6, {
            direction: 'inbound',
            protocol: 'tcp',
            ports: '25,111',
            expected: 'block',
            observed: 'pass',
          }),
          d(6, { direction: 'inbound', protocol: 'tcp', ports: '80', expected: 'pass', observed: 'block' }),
          // a UDP port open
          d(4, { direction: 'inbound', protocol: 'udp', ports: '161', expected: 'block', observed: 'pass' }),
          d(6, { direction: 'inbound', protocol: 'udp', ports: '161', expected: 'block', observed: 'pass' }),
          // egress left open
          d(4, { direction: 'outbound', protocol: 'tcp', ports: '25', expected: 'block', observed: 'pass' }),
          d(6, { direction: 'outbound', protocol: 'tcp', ports: '25', expected: 'block', observed: 'pass' }),
        ]),
      );
      // nothing else: IPv4 tcp/25 inbound stays closed, the internal zone is untouched
      expect(result.json.differences.filter((x) => x['zone'] !== 'external')).toEqual([]);
      expect(result.json.differences).toHaveLength(8);
    }, 120_000);

    it('egress left wide open: every port of every zone and family, as ranges with counts, exit 1', () => {
      const text = nft.replace(
        '\t\toifname "eth0" jump out_external\n',
        '\t\toifname { "eth0", "eth1" } accept\n\t\toifname "eth0" jump out_external\n',
      );
      expect(text).not.toBe(nft);
      const file = join(dir, 'open-egress.nft');
      writeFileSync(file, text);
      const result = verify([EXAMPLE, '--ruleset', file]);
      expect(result.stderr).toBe('');
      expect(result.status).toBe(1);
      const tcpOut = result.json.differences.filter(
        (x) => x['direction'] === 'outbound' && x['protocol'] === 'tcp' && x['expected'] === 'block',
      );
      const main = (zone: string, peer: string): unknown =>
        tcpOut.find((x) => x['zone'] === zone && x['peer'] === peer);
      // external allows nothing new out (FTP data is related); internal allows only dns/http/https to 203.0.113.0/24
      for (const [zone, peer, ports, count] of [
        ['external', '203.0.113.5', '1-65535', 65535],
        ['external', '2001:db8:1::5', '1-65535', 65535],
        ['internal', '198.51.100.5', '1-65535', 65535],
        ['internal', '2001:db8:100::5', '1-65535', 65535],
      ] as const)
        expect(main(zone, peer)).toEqual(expect.objectContaining({ ports, count, observed: 'pass' }));
      // nothing inbound or routed changed
      expect(result.json.differences.filter((x) => x['direction'] !== 'outbound')).toEqual([]);
    }, 300_000);

    it('a rule that ignores `from:` and a zone that ignores its `sources` are caught by the extra peers', () => {
      const text = nft
        .replace('\tchain in_internal {\n', '\tchain in_internal {\n\t\ttcp dport 22 accept\n')
        .replace('\t\tip saddr != @in_internal_members_v4 return\n', '');
      const file = join(dir, 'from-and-sources.nft');
      writeFileSync(file, text);
      const result = verify([EXAMPLE, '--ruleset', file, '--ports', '1-200']);
      expect(result.status).toBe(1);
      expect(result.json.differences).toEqual(
        expect.arrayContaining([
          // ssh is for the admin workstation only, not for another LAN host
          expect.objectContaining({
            zone: 'internal',
            direction: 'inbound',
            family: 4,
            peer: '198.51.100.5',
            protocol: 'tcp',
            ports: '22',
            expected: 'block',
            observed: 'pass',
          }),
          // a host outside the zone's sources gets the zone's services
          expect.objectContaining({
            zone: 'internal',
            direction: 'inbound',
            family: 4,
            peer: '203.0.113.10',
            protocol: 'tcp',
            expected: 'block',
            observed: 'pass',
          }),
        ]),
      );
    }, 120_000);

    it('without the FTP conntrack helper, FTP sessions fail (the helper trap)', () => {
      const text = nft.replace(/\t\ttcp dport 21 ct helper set "ftp_standard"\n/g, '');
      expect(text).not.toBe(nft);
      const file = join(dir, 'no-helper.nft');
      writeFileSync(file, text);
      const result = verify([EXAMPLE, '--ruleset', file, '--ports', '20-22']);
      expect(result.status).toBe(1);
      const ftp = result.json.differences.filter((x) => x['protocol'] === 'ftp');
      expect(ftp).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            zone: 'external',
            family: 4,
            ports: 'passive',
            expected: 'pass',
            observed: 'block',
          }),
          expect.objectContaining({
            zone: 'external',
            family: 4,
            ports: 'active',
            expected: 'pass',
            observed: 'block',
          }),
          expect.objectContaining({
            zone: 'internal',
            family: 6,
            ports: 'passive',
            expected: 'pass',
            observed: 'block',
          }),
        ]),
      );
      expect(result.json.differences.filter((x) => x['protocol'] !== 'ftp')).toEqual([]);
    }, 120_000);

    it('a hole in the forward chain and a broken port forward are caught (router)', () => {
      const router = loadPolicyOrThrow(
        readFileSync(new URL('../../examples/router.yaml', import.meta.url), 'utf8'),
        'examples/router.yaml',
      );
      const base = compilePolicy(router, 'nftables', 'test')[0]?.content ?? '';
      const text = base
        .replace(
          '\t\tct status dnat accept\n\t\tiifname "eth1"',
          '\t\tct status dnat accept\n\t\ttcp dport 23 accept\n\t\tiifname "eth1"',
        )
        .replace(/dnat ip to 198\.51\.100\.20:8080/, 'dnat ip to 198.51.100.20:8081');
      expect(text).toContain('tcp dport 23 accept');
      const file = join(dir, 'router-broken.nft');
      writeFileSync(file, text);
      const result = verify(['examples/router.yaml', '--ruleset', file, '--ports', '1-100']);
      expect(result.status).toBe(1);
      expect(result.json.differences).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            zone: 'wan',
            toZone: 'lan',
            direction: 'routed',
            family: 4,
            protocol: 'tcp',
            ports: '23',
            expected: 'block',
            observed: 'pass',
          }),
          expect.objectContaining({
            zone: 'lan',
            toZone: 'wan',
            direction: 'routed',
            family: 6,
            protocol: 'tcp',
            ports: '23',
            expected: 'block',
            observed: 'pass',
          }),
          expect.objectContaining({
            zone: 'wan',
            direction: 'forward',
            protocol: 'tcp',
            ports: '8443->198.51.100.20:8080',
            expected: 'pass',
            observed: 'block',
          }),
        ]),
      );
    }, 120_000);

    it('a hand-written iptables ruleset (.v4 and .v6) is checked too', () => {
      const base = join(dir, 'hand');
      const compiled = compilePolicy(policy, 'iptables', 'test');
      for (const f of compiled) {
        // the IPv6 file opens 3306: only IPv6 should differ
        const content =
          f.suffix === '.v6'
            ? f.content.replace(/(-A PW-IN-external )/, '-A PW-IN-external -p tcp --dport 3306 -j ACCEPT\n$1')
            : f.content;
        writeFileSync(`${base}${f.suffix}`, content);
      }
      const result = verify([
        EXAMPLE,
        '--backend',
        'iptables',
        '--ruleset',
        `${base}.v4`,
        '--ports',
        '3300-3310',
      ]);
      expect(result.status).toBe(1);
      expect(result.json.differences).toEqual([
        expect.objectContaining({
          zone: 'external',
          direction: 'inbound',
          family: 6,
          protocol: 'tcp',
          ports: '3306',
          count: 1,
          expected: 'block',
          observed: 'pass',
        }),
      ]);
    }, 120_000);

    it('Ctrl-C removes every namespace and process of the lab', async () => {
      const child = spawn(process.execPath, [BIN, 'verify', EXAMPLE], {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const ours = (): string[] =>
        spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
          .stdout.split('\n')
          .map((l) => l.split(' ')[0] ?? '')
          .filter((n) => n.startsWith(`pwvfy${((child.pid ?? 0) % 10_000).toString(36)}`));
      // wait until the lab runs processes inside its namespaces (probe senders, servers)
      const inside = (): number[] =>
        ours().flatMap((ns) =>
          spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
            .stdout.split('\n')
            .filter(Boolean)
            .map(Number),
        );
      const scanners = (): number[] =>
        inside().filter((pid) => {
          try {
            return /python3$/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '');
          } catch {
            return false;
          }
        });
      const deadline = Date.now() + 30_000;
      let pids: number[] = [];
      while (pids.length === 0 && Date.now() < deadline) {
        pids = scanners();
        if (pids.length === 0) await new Promise((r) => setTimeout(r, 100));
      }
      expect(pids.length).toBeGreaterThan(0);
      child.kill('SIGINT');
      await new Promise((resolve) => child.once('exit', resolve));
      expect(ours()).toEqual([]);
      // every process that ran inside the lab is gone (only this lab's: other test files run scans too)
      const alive = (pid: number): boolean => {
        try {
          // a zombie waiting for init to reap it has already stopped
          return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
        } catch {
          return false;
        }
      };
      const until = Date.now() + 1000;
      while (pids.some(alive) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      expect(pids.filter(alive)).toEqual([]);
    }, 60_000);
  },
);
