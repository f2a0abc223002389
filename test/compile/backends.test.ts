import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BACKENDS, compilePolicy } from '../../src/compile/registry.ts';
import { loadPolicyOrThrow } from '../../src/policy/load.ts';

const policy = (body: string) => loadPolicyOrThrow(`version: 1\n${body}`, 'p.yaml');
const compile = (target: string, body: string) =>
  compilePolicy(policy(body), target, 'test')
    .map((f) => f.content)
    .join('\n');
const web =
  'zones:\n  ext:\n    interfaces: [eth0]\n    inbound:\n      - allow: http, https\n      - allow: ssh\n        from: [198.51.100.10]\n    outbound:\n      - allow: dns\n';

// The feature-by-feature conformance cases live in conformance.test.ts.
describe('every backend', () => {
  it.each(BACKENDS.map((b) => b.name))('%s compiles a plain web server policy deterministically', (name) => {
    expect(compile(name, web)).toBe(compile(name, web));
    expect(compile(name, web)).toMatch(/443/);
  });
});

describe('backend specifics', () => {
  it('ipchains: the seed form, with reply rules and a valid shell script', () => {
    const text = compile('ipchains', web);
    expect(text).toContain('$IPCHAINS -A input -i eth0 -p TCP --dport 80 -j ACCEPT');
    expect(text).toContain('$IPCHAINS -A output -i eth0 -p TCP --sport 80 ! -y -j ACCEPT');
    expect(text).toContain('$IPCHAINS -A input -i eth0 -s 198.51.100.10 -p TCP --dport 22 -j ACCEPT');
    expect(text).toContain('$IPCHAINS -A output -i eth0 -p UDP --dport 53 -j ACCEPT');
    expect(text).toContain('$IPCHAINS -A input -i eth0 -p UDP --sport 53 -j ACCEPT');
    expect(spawnSync('sh', ['-n'], { input: text }).status).toBe(0);
  });

  it('pf: block by default, stateful passes, tables', () => {
    const text = compile('pf', web);
    expect(text).toContain('block in all');
    expect(text).toContain('pass in on $if_ext proto tcp to port { 80 443 } keep state');
    expect(text).toContain('pass in on $if_ext inet proto tcp from 198.51.100.10 to port 22 keep state');
    expect(text).toContain('pass out on $if_ext proto udp to any port 53 keep state');
  });

  it('windows: one PowerShell command per line in the portwarden group, quotes balanced', () => {
    const text = compile(
      'windows',
      `${web}programs:\n  - path: 'C:\\Program Files\\Backup\\backup.exe'\n    outbound: [{ allow: https, to: [203.0.113.5] }]\n`,
    );
    const lines = text.split('\r\n').filter((l) => l !== '' && !l.startsWith('#'));
    for (const line of lines) expect((line.match(/'/g) ?? []).length % 2).toBe(0);
    expect(text).toContain(
      "New-NetFirewallRule -Group 'portwarden' -DisplayName 'portwarden in_ext_1_tcp' -Direction Inbound -InterfaceAlias 'eth0' -Protocol TCP -LocalPort 80,443 -Action Allow",
    );
    expect(text).toContain("-Program 'C:\\Program Files\\Backup\\backup.exe' -RemoteAddress 203.0.113.5");
    expect(text).toContain('-DefaultInboundAction Block -DefaultOutboundAction Block');
  });
});
