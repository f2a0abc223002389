import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { planKernel, sysctlPath } from '../../src/apply/kernel-apply.ts';
import { requiredKernelSettings } from '../../src/apply/kernel-settings.ts';
import { dropDeadCgroupRules } from '../../src/ruleset/load-live.ts';
import { readState, writeState } from '../../src/apply/state.ts';
import { loadPolicyOrThrow } from '../../src/policy/load.ts';
import { ROOT } from '../helpers/cli.ts';

const example = (name: string) => loadPolicyOrThrow(readFileSync(join(ROOT, 'examples', name), 'utf8'), name);

describe('requiredKernelSettings (pure)', () => {
  it('a router needs forwarding in both families, for its routes and its port forward', () => {
    const settings = requiredKernelSettings(example('router.yaml'));
    expect(settings.map((s) => `${s.name}=${s.value}`)).toEqual([
      'net.ipv4.ip_forward=1',
      'net.ipv6.conf.all.forwarding=1',
    ]);
    expect(settings[0]?.reason).toMatch(/routes lan -> wan and forwards tcp\/8443 -> 198\.51\.100\.20:8080/);
    expect(settings[1]?.reason).toMatch(/routes lan -> wan$/);
  });

  it('a workstation needs nothing; FTP needs its conntrack helper module (reported, never loaded by apply)', () => {
    expect(requiredKernelSettings(example('workstation.yaml'))).toEqual([]);
    const ftp = requiredKernelSettings(example('web-ftp-dual-homed.yaml'));
    expect(ftp.find((s) => s.kind === 'module')).toMatchObject({
      name: 'module:nf_conntrack_ftp',
      value: 'loaded',
    });
  });

  it('a forward to 127.0.0.1 needs route_localnet on its zone interfaces (all for a wildcard), not forwarding', () => {
    const policy = loadPolicyOrThrow(
      `version: 1
name: local
defaults: { inbound: drop, outbound: accept, forward: drop }
zones:
  wan: { interfaces: [eth0, wl*], inbound: [] }
forwards:
  - { zone: wan, listen: tcp/8080, to: 127.0.0.1:80 }
`,
      'local.yaml',
    );
    expect(requiredKernelSettings(policy).map((s) => s.name)).toEqual([
      'net.ipv4.conf.eth0.route_localnet',
      'net.ipv4.conf.all.route_localnet',
    ]);
  });
});

describe('planKernel (pure)', () => {
  const required = requiredKernelSettings(example('router.yaml'));
  const values = new Map([
    ['net.ipv4.ip_forward', '0'],
    ['net.ipv6.conf.all.forwarding', '1'],
  ]);
  const read = (name: string) => values.get(name) ?? null;

  it('changes only what differs and remembers the value from before portwarden', () => {
    const plan = planKernel(required, [], read, () => false);
    expect(plan.changes.map((c) => `${c.name} ${c.before}->${c.after}`)).toEqual([
      'net.ipv4.ip_forward 0->1',
    ]);
    expect(plan.managed.map((m) => `${m.name} ${m.original}`)).toEqual([
      'net.ipv4.ip_forward 0',
      'net.ipv6.conf.all.forwarding 1',
    ]);
  });

  it('puts back what an earlier apply set and the new policy no longer needs', () => {
    const previous = [{ name: 'net.ipv4.ip_forward', value: '1', original: '0', reason: 'router' }];
    const plan = planKernel([], previous, () => '1');
    expect(plan.changes).toEqual([
      expect.objectContaining({ name: 'net.ipv4.ip_forward', before: '1', after: '0' }),
    ]);
    expect(plan.managed).toEqual([]);
  });

  it('reports a setting of a missing interface instead of failing', () => {
    const plan = planKernel(
      [{ name: 'net.ipv4.conf.eth9.route_localnet', kind: 'sysctl', value: '1', reason: 'r' }],
      [],
      () => null,
    );
    expect(plan.changes).toEqual([]);
    expect(plan.notes[0]).toMatch(/eth9.route_localnet: does not exist now/);
  });

  it('maps sysctl names to /proc/sys paths, keeping dots in interface names', () => {
    expect(sysctlPath('net.ipv4.ip_forward')).toBe('/proc/sys/net/ipv4/ip_forward');
    expect(sysctlPath('net.ipv4.conf.eth0.100.route_localnet')).toBe(
      '/proc/sys/net/ipv4/conf/eth0.100/route_localnet',
    );
    expect(() => sysctlPath('net/../../etc')).toThrow();
  });
});

describe('dropDeadCgroupRules (pure)', () => {
  const listing = [
    'table inet portwarden {',
    '\tchain out {',
    '\t\tsocket cgroupv2 level 2 "system.slice/alive.service" tcp dport 443 accept',
    '\t\tsocket cgroupv2 level 2 3 tcp dport 443 accept',
    '\t\tsocket cgroupv2 level 2 "system.slice/gone.service" tcp dport 80 accept',
    '\t}',
    '}',
  ].join('\n');

  it('drops rules of cgroups listed by numeric id or no longer present, and keeps the rest', () => {
    const { content, dropped } = dropDeadCgroupRules(listing, (p) => p === 'system.slice/alive.service');
    expect(content).toMatch(/alive\.service/);
    expect(content).not.toMatch(/level 2 3 |gone\.service/);
    expect(dropped).toHaveLength(2);
  });

  it('drops iptables cgroup matches of paths that are gone', () => {
    const rules = '-A PW-OUT -m cgroup --path system.slice/gone.service -j ACCEPT\n-A PW-OUT -j DROP';
    expect(dropDeadCgroupRules(rules, () => false).content).toBe('-A PW-OUT -j DROP');
  });
});

describe('state files: checksummed, and damage is an error, never "nothing there"', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-state-pure-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'x.json');

  it('reads back what it wrote; a missing file is null', () => {
    writeState(path, { id: 'a', n: [1, 2] });
    expect(readState(path, 'h')).toEqual({ id: 'a', n: [1, 2] });
    expect(readState(join(dir, 'none.json'), 'h')).toBeNull();
  });

  it.each([
    ['empty', () => ''],
    ['truncated', (t: string) => t.slice(0, Math.floor(t.length / 2))],
    ['edited', (t: string) => t.replace('"a"', '"b"')],
    ['plain JSON of an old version', () => '{"id":"a"}\n'],
  ])('%s -> STATE_CORRUPT with the hint', (_name, damage) => {
    writeState(path, { id: 'a' });
    writeFileSync(path, damage(readFileSync(path, 'utf8')));
    expect(() => readState(path, 'do this')).toThrow(
      expect.objectContaining({ code: 'STATE_CORRUPT', hint: 'do this' }),
    );
  });
});
