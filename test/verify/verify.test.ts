import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadPolicyOrThrow } from '../../src/policy/load.ts';
import { comparePorts, planLab } from '../../src/verify/plan.ts';
import { BIN, ROOT } from '../helpers/cli.ts';

const EXAMPLE = 'examples/web-ftp-dual-homed.yaml';
const policy = loadPolicyOrThrow(readFileSync(new URL(`../../${EXAMPLE}`, import.meta.url), 'utf8'), EXAMPLE);

describe('verify without root', () => {
  it.runIf(process.getuid?.() === 0)('exits 3 with the reason', () => {
    const r = spawnSync(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, 'verify', EXAMPLE],
      {
        cwd: ROOT,
        encoding: 'utf8',
      },
    );
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/verify builds network namespaces and needs root/);
  });
});

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
