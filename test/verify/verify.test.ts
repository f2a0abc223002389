import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compilePolicy } from '../../src/compile/registry.ts';
import { loadPolicyOrThrow } from '../../src/policy/load.ts';
import { comparePorts, planLab } from '../../src/verify/plan.ts';
import { runCli } from '../helpers/cli.ts';
import { describeRootTier } from '../helpers/root-tier.ts';

const EXAMPLE = 'examples/web-ftp-dual-homed.yaml';
const policy = loadPolicyOrThrow(readFileSync(new URL(`../../${EXAMPLE}`, import.meta.url), 'utf8'), EXAMPLE);

describe('planLab and comparePorts (pure)', () => {
  it('puts each zone peer inside the zone sources, on the policy interface names', () => {
    expect(planLab(policy)).toEqual([
      {
        zone: 'external',
        hostIf: 'eth0',
        v4: { host: '203.0.113.1', peer: '203.0.113.5', prefix: 26 },
        v6: { host: '2001:db8:1::1', peer: '2001:db8:1::5', prefix: 64 },
      },
      {
        zone: 'internal',
        hostIf: 'eth1',
        v4: { host: '198.51.100.1', peer: '198.51.100.5', prefix: 24 },
        v6: { host: '2001:db8:100::1', peer: '2001:db8:100::5', prefix: 48 },
      },
    ]);
  });

  it('reports ports that pass but should be blocked and the reverse, as ranges', () => {
    const observed = new Map<number, string>([
      [21, 'closed'],
      [22, 'filtered'],
      [80, 'open'],
      [81, 'closed'],
      [82, 'closed'],
      [443, 'filtered'],
    ]);
    const expected = {
      tcp: [
        { protocol: 'tcp' as const, from: 21, to: 22 },
        { protocol: 'tcp' as const, from: 80, to: 80 },
        { protocol: 'tcp' as const, from: 443, to: 443 },
      ],
      udp: [],
    };
    expect(
      comparePorts({ zone: 'z', direction: 'inbound', family: 4, protocol: 'tcp' }, expected, observed),
    ).toEqual([
      {
        zone: 'z',
        direction: 'inbound',
        family: 4,
        protocol: 'tcp',
        ports: '22,443',
        expected: 'pass',
        observed: 'block',
      },
      {
        zone: 'z',
        direction: 'inbound',
        family: 4,
        protocol: 'tcp',
        ports: '81-82',
        expected: 'block',
        observed: 'pass',
      },
    ]);
  });
});

await describeRootTier(
  'verify: real packets against the compiled and hand-written rulesets',
  ['ip', 'nft', 'unshare'],
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'pw-verify-test-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const nft = compilePolicy(policy, 'nftables', 'test')[0]?.content ?? '';

    it('the compiled dual-homed ruleset verifies with exit 0', () => {
      const result = runCli(['verify', EXAMPLE, '--ports', '1-200', '--json']);
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      const json = JSON.parse(result.stdout) as { ok: boolean; probes: number; differences: unknown[] };
      expect(json).toMatchObject({ ok: true, differences: [] });
      expect(json.probes).toBe(200 * 2 * 2 * 2);
    }, 120_000);

    it.each([
      [
        'one port too many',
        'tcp dport 111 accept',
        [4, 6].map((family) => ({
          zone: 'external',
          direction: 'inbound',
          family,
          ports: '111',
          expected: 'block',
          observed: 'pass',
        })),
      ],
      [
        'IPv6 open while IPv4 is closed',
        'meta nfproto ipv6 tcp dport 25 accept',
        [
          {
            zone: 'external',
            direction: 'inbound',
            family: 6,
            ports: '25',
            expected: 'block',
            observed: 'pass',
          },
        ],
      ],
      [
        'one port missing',
        'tcp dport 80 drop',
        [4, 6].map((family) => ({
          zone: 'external',
          direction: 'inbound',
          family,
          ports: '80',
          expected: 'pass',
          observed: 'block',
        })),
      ],
    ])(
      'a wrong ruleset is caught: %s',
      (_name, rule, differences) => {
        const file = join(dir, `${rule.replace(/\W+/g, '-')}.nft`);
        writeFileSync(file, nft.replace('\tchain in_external {\n', `\tchain in_external {\n\t\t${rule}\n`));
        const result = runCli(['verify', EXAMPLE, '--ruleset', file, '--ports', '1-200', '--json']);
        expect(result.status).toBe(1);
        const json = JSON.parse(result.stdout) as { ok: boolean; differences: Record<string, unknown>[] };
        expect(json.ok).toBe(false);
        expect(json.differences).toEqual(
          differences.map((d): unknown => expect.objectContaining({ ...d, protocol: 'tcp' })),
        );
      },
      120_000,
    );

    it('egress left open is caught', () => {
      const file = join(dir, 'egress-open.nft');
      writeFileSync(
        file,
        nft.replace('\tchain out_external {\n', '\tchain out_external {\n\t\ttcp dport 25 accept\n'),
      );
      const json = JSON.parse(
        runCli(['verify', EXAMPLE, '--ruleset', file, '--ports', '1-200', '--json']).stdout,
      ) as { differences: Record<string, unknown>[] };
      expect(json.differences).toEqual(
        [4, 6].map((family): unknown =>
          expect.objectContaining({
            zone: 'external',
            direction: 'outbound',
            family,
            ports: '25',
            expected: 'block',
            observed: 'pass',
          }),
        ),
      );
    }, 120_000);
  },
);
