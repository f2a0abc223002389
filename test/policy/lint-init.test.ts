import { describe, expect, it } from 'vitest';
import { generateStarterPolicy } from '../../src/policy/init.ts';
import { LINT_RULES, lintPolicy } from '../../src/policy/lint.ts';
import { OWN_CODES } from '../../src/errors.ts';
import { loadPolicy, loadPolicyOrThrow } from '../../src/policy/load.ts';

const policy = (body: string) => loadPolicyOrThrow(`version: 1\n${body}`, 'p.yaml');

describe('the lint registry', () => {
  const z = 'zones:\n  z:\n    interfaces: [eth0]\n';
  const triggers: Record<string, { body: string; ssh?: string }> = {
    LINT_RISKY_EXPOSED: { body: `${z}    exposure: external\n    inbound:\n      - allow: telnet\n` },
    LINT_RISKY_FORWARD: { body: `${z}forwards:\n  - { zone: z, listen: tcp/2323, to: 198.51.100.5:23 }\n` },
    LINT_ROUTE_LOCALNET: { body: `${z}forwards:\n  - { zone: z, listen: tcp/8080, to: 127.0.0.1:3000 }\n` },
    LINT_LOCKOUT: { body: z, ssh: '198.51.100.9 50000 198.51.100.1 22' },
    LINT_EGRESS_OPEN: { body: `defaults: { outbound: accept }\n${z}` },
    LINT_FTP_ACTIVE: { body: `${z}    outbound:\n      - allow: tcp/20\n` },
    LINT_FTP_HELPER: { body: `${z}    inbound:\n      - allow: ftp\n` },
  };

  it('has one rule per LINT_ code, each with a description', () => {
    expect(LINT_RULES.map((r) => r.id).sort()).toEqual(OWN_CODES.filter((c) => c.startsWith('LINT_')).sort());
    for (const r of LINT_RULES) expect(r.describe.length).toBeGreaterThan(10);
  });

  it.each(LINT_RULES.map((r) => [r.id, r] as const))(
    '%s fires on its case, with its severity, and only there',
    (id, r) => {
      const trigger = triggers[id];
      expect(trigger).toBeDefined();
      const context = trigger?.ssh ? { sshConnection: trigger.ssh } : {};
      const found = r.check(policy(trigger?.body ?? ''), context);
      expect(found.length).toBeGreaterThan(0);
      for (const d of found) expect(d).toMatchObject({ code: id, severity: r.severity });
      expect(r.check(policy(`${z}    inbound:\n      - allow: ssh\n`), {})).toEqual([]);
    },
  );
});

describe('lintPolicy', () => {
  it('warns about risky services on an external zone, with the catalog advice', () => {
    const diags = lintPolicy(
      policy('zones:\n  external:\n    interfaces: [eth0]\n    inbound:\n      - allow: telnet, http\n'),
    );
    expect(diags).toHaveLength(1);
    expect(diags[0]).toMatchObject({
      severity: 'warning',
      code: 'LINT_RISKY_EXPOSED',
      location: { line: 6 },
    });
    expect(diags[0]?.message).toMatch(/zone "external" .* allows Telnet \(critical risk\)/i);
    expect(diags[0]?.hint).toMatch(/ssh/i);
  });

  it('does not warn when the zone is internal', () => {
    expect(
      lintPolicy(
        policy(
          'zones:\n  lan:\n    interfaces: [eth1]\n    sources: [10.0.0.0/8]\n    inbound:\n      - allow: netbios\n',
        ),
      ),
    ).toEqual([]);
  });

  it('warns about a forward to a risky service', () => {
    const diags = lintPolicy(
      policy(
        'zones:\n  wan:\n    interfaces: [eth0]\nforwards:\n  - zone: wan\n    listen: tcp/6380\n    to: 198.51.100.5:6379\n',
      ),
    );
    expect(diags.map((d) => d.code)).toContain('LINT_RISKY_FORWARD');
  });

  it('warns that an SSH session would be cut off', () => {
    const p = policy('zones:\n  wan:\n    interfaces: [eth0]\n    inbound:\n      - allow: https\n');
    expect(
      lintPolicy(p, { sshConnection: '203.0.113.9 50000 198.51.100.1 22' }).map((d) => d.code),
    ).toContain('LINT_LOCKOUT');
    expect(lintPolicy(p).map((d) => d.code)).not.toContain('LINT_LOCKOUT');
  });

  it('warns about open egress', () => {
    expect(
      lintPolicy(policy('defaults: { outbound: accept }\nzones:\n  z:\n    interfaces: [eth0]\n')).map(
        (d) => d.code,
      ),
    ).toEqual(['LINT_EGRESS_OPEN']);
  });
});

describe('generateStarterPolicy', () => {
  const text = generateStarterPolicy(
    [
      { protocol: 'tcp', localPort: 22, exposure: 'all', interface: null, owner: 'sshd[812] ssh.service' },
      { protocol: 'tcp', localPort: 23, exposure: 'all', interface: null, owner: 'inetd[90]' },
      { protocol: 'tcp', localPort: 8080, exposure: 'address', interface: 'eth1', owner: 'java[77]' },
      { protocol: 'udp', localPort: 161, exposure: 'address', interface: 'eth1', owner: 'snmpd[55]' },
    ],
    ['lo', 'eth0', 'eth1', 'docker0'],
    'web1',
  );

  it('allows what listens now per interface and comments out risky services with the reason', () => {
    expect(text).toContain(
      '  eth0:\n    interfaces: [eth0]\n    inbound:\n      - allow: tcp/22   # ssh, sshd[812] ssh.service\n      # - allow: tcp/23',
    );
    expect(text).toMatch(/# - allow: tcp\/23 {3}# Telnet, critical: /);
    expect(text).toContain('- allow: tcp/8080');
    expect(text).toMatch(/# - allow: udp\/161 {3}# SNMP/i);
    expect(text).not.toContain('docker0');
  });

  it('is a valid policy as written', () => {
    const { policy: parsed, diagnostics } = loadPolicy(text, 'starter.yaml');
    expect(diagnostics).toEqual([]);
    expect(parsed?.zones.map((z) => z.name)).toEqual(['eth0', 'eth1']);
  });
});

describe('generateStarterPolicy never allows what audit condemns', () => {
  const text = generateStarterPolicy(
    [
      { protocol: 'tcp', localPort: 22, exposure: 'all', interface: null, owner: 'sshd[812]' },
      {
        protocol: 'tcp',
        localPort: 31337,
        exposure: 'all',
        interface: null,
        owner: 'backdoor[15708]',
        exeDeleted: true,
      },
      { protocol: 'tcp', localPort: 2024, exposure: 'all', interface: null, owner: '' },
      { protocol: 'tcp', localPort: 23, exposure: 'all', interface: null, owner: 'inetd[90]' },
    ],
    ['eth0'],
  );
  const active = text.split('\n').filter((l) => /^\s+- allow: (tcp|udp)\//.test(l));

  it('writes deleted executables, unknown owners and critical services commented out with the reason', () => {
    expect(active).toEqual(['      - allow: tcp/22   # ssh, sshd[812]']);
    expect(text).toMatch(
      /# - allow: tcp\/31337 {3}# its executable was deleted or replaced \(audit PW009\).*backdoor\[15708\]/,
    );
    expect(text).toMatch(/# - allow: tcp\/2024 {3}# owner unknown: /);
    expect(text).toMatch(/# - allow: tcp\/23 {3}# Telnet, critical: /);
  });

  it('stays a valid policy whose only inbound rule is the safe one', () => {
    const { policy, diagnostics } = loadPolicy(text, 'starter.yaml');
    expect(diagnostics).toEqual([]);
    expect(policy?.zones[0]?.inbound).toHaveLength(1);
  });
});

describe('generateStarterPolicy with hostile machine names', () => {
  it('process, host and interface names cannot add YAML of their own', () => {
    const evil = '\n  injected:\n    interfaces: [eth9]\n#';
    const text = generateStarterPolicy(
      [
        { protocol: 'tcp', localPort: 8080, exposure: 'all', interface: null, owner: `x[1]${evil}` },
        { protocol: 'tcp', localPort: 23, exposure: 'all', interface: null, owner: `y[2]${evil}` },
      ],
      ['eth0', 'a]#,b'],
      `host${evil}`,
    );
    const { diagnostics } = loadPolicy(text, 'init.yaml');
    expect(diagnostics.filter((d) => d.code.startsWith('YAML_'))).toEqual([]);
    expect(text).not.toMatch(/^\s+injected:/m);
    expect(text).toContain('interfaces: ["a]#,b"]');
    expect(text.split('\n').filter((l) => l.startsWith('  ') && !l.startsWith('   '))).toEqual([
      '  a___b:',
      '  eth0:',
    ]);
  });
});
