import { describe, expect, it } from 'vitest';
import { curatedCatalog, findCuratedByPort, findCuratedService } from '../../src/catalog/curated.ts';
import { parseCuratedCatalog } from '../../src/catalog/curated-schema.ts';
import { explainPort, explainSpecs, riskyServices } from '../../src/catalog/explain.ts';
import { lookupIana } from '../../src/catalog/iana.ts';
import { rangeCategory } from '../../src/catalog/ranges.ts';
import { resolveServiceName } from '../../src/catalog/resolve-name.ts';
import type { Protocol } from '../../src/catalog/types.ts';

// The seed article's Tables A and B, with facts corrected where the article is wrong
// (a DHCP server listens on udp/67, not 68; IANA gives X11 6000-6063).
const SEED_TABLES: [number, Protocol, string][] = [
  [20, 'tcp', 'ftp-data'],
  [21, 'tcp', 'ftp'],
  [22, 'tcp', 'ssh'],
  [23, 'tcp', 'telnet'],
  [25, 'tcp', 'smtp'],
  [53, 'udp', 'dns'],
  [53, 'tcp', 'dns'],
  [67, 'udp', 'dhcp'],
  [68, 'udp', 'dhcp-client'],
  [79, 'tcp', 'finger'],
  [80, 'tcp', 'http'],
  [110, 'tcp', 'pop3'],
  [111, 'tcp', 'rpcbind'],
  [111, 'udp', 'rpcbind'],
  [113, 'tcp', 'ident'],
  [119, 'tcp', 'nntp'],
  [137, 'udp', 'netbios'],
  [138, 'udp', 'netbios'],
  [139, 'tcp', 'netbios'],
  [143, 'tcp', 'imap'],
  [443, 'tcp', 'https'],
  [512, 'tcp', 'rexec'],
  [512, 'udp', 'biff'],
  [513, 'tcp', 'rlogin'],
  [513, 'udp', 'rwho'],
  [514, 'tcp', 'rsh'],
  [514, 'udp', 'syslog'],
  [515, 'tcp', 'lpd'],
  [2049, 'tcp', 'nfs'],
  [98, 'tcp', 'linuxconf'],
  [465, 'tcp', 'smtps'],
  [993, 'tcp', 'imaps'],
  [995, 'tcp', 'pop3s'],
  [1080, 'tcp', 'socks'],
  [3306, 'tcp', 'mysql'],
  [5432, 'tcp', 'postgresql'],
  [6000, 'tcp', 'x11'],
  [6063, 'tcp', 'x11'],
  [6667, 'tcp', 'irc'],
  [8080, 'tcp', 'http-alt'],
];

describe('curated catalog', () => {
  it.each(SEED_TABLES)('covers %i/%s as %s', (port, protocol, id) => {
    expect(findCuratedByPort(port, protocol).map((s) => s.id)).toContain(id);
  });

  it('holds the seed services plus at least 40 more', () => {
    expect(curatedCatalog().services.length).toBeGreaterThanOrEqual(
      new Set(SEED_TABLES.map((r) => r[2])).size + 40,
    );
  });

  it.each([
    [445, 'tcp', 'smb'],
    [135, 'tcp', 'msrpc'],
    [3389, 'tcp', 'rdp'],
    [5900, 'tcp', 'vnc'],
    [6379, 'tcp', 'redis'],
    [27017, 'tcp', 'mongodb'],
    [9200, 'tcp', 'elasticsearch'],
    [11211, 'tcp', 'memcached'],
    [2375, 'tcp', 'docker'],
    [10250, 'tcp', 'kubelet'],
    [2379, 'tcp', 'etcd'],
    [161, 'udp', 'snmp'],
    [123, 'udp', 'ntp'],
    [389, 'tcp', 'ldap'],
    [88, 'udp', 'kerberos'],
    [5060, 'udp', 'sip'],
    [1883, 'tcp', 'mqtt'],
    [5672, 'tcp', 'amqp'],
    [873, 'tcp', 'rsync'],
    [69, 'udp', 'tftp'],
  ] as [number, Protocol, string][])('covers commonly attacked %i/%s (%s)', (port, protocol, id) => {
    expect(findCuratedByPort(port, protocol).map((s) => s.id)).toContain(id);
  });

  it('has unique ids and aliases, and groups that name real services', () => {
    const { services, groups } = curatedCatalog();
    const names = services.flatMap((s) => [s.id, ...s.aliases]);
    expect(new Set(names).size).toBe(names.length);
    for (const [group, members] of groups) {
      expect(names, `group ${group}`).not.toContain(group);
      for (const member of members) expect(findCuratedService(member), `${group} -> ${member}`).toBeDefined();
    }
  });

  it('has distinct top-port lists of useful length', () => {
    const { top } = curatedCatalog();
    expect(new Set(top.tcp).size).toBe(top.tcp.length);
    expect(new Set(top.udp).size).toBe(top.udp.length);
    expect(top.tcp.length).toBeGreaterThanOrEqual(100);
    expect(top.udp.length).toBeGreaterThanOrEqual(40);
  });

  it('rates the classic dangers correctly', () => {
    expect(findCuratedService('telnet')?.risk.level).toBe('critical');
    expect(findCuratedService('telnet')?.alternative).toMatch(/ssh/);
    expect(findCuratedService('ssh')?.risk.level).toBe('low');
    for (const id of ['finger', 'rpcbind', 'netbios', 'x11']) {
      expect(['critical', 'high'], id).toContain(findCuratedService(id)?.risk.level);
    }
  });

  it('rejects malformed data with the bad value named', () => {
    const bad = {
      services: [
        {
          id: 'x',
          name: 'X',
          aliases: [],
          ports: ['tcp/70000'],
          description: 'd',
          risk: 'high',
          reason: 'r',
          advice: 'a',
          alternative: null,
          tags: [],
        },
      ],
      groups: {},
      top: { tcp: [], udp: [] },
    };
    expect(() => parseCuratedCatalog(bad)).toThrow(/tcp\/70000/);
  });

  it('ships a data file that passes the schema and loads identically without it', async () => {
    const raw: unknown = (await import('../../src/catalog/data/services.json', { with: { type: 'json' } }))
      .default;
    expect(parseCuratedCatalog(raw)).toEqual(curatedCatalog());
  });
});

describe('IANA registry and ranges', () => {
  it('knows registered names', () => {
    expect(lookupIana(22, 'tcp')?.name).toBe('ssh');
    expect(lookupIana(53, 'udp')?.name).toBe('domain');
    expect(
      resolveServiceName('domain')
        ?.map((r) => r.protocol)
        .sort(),
    ).toEqual(['tcp', 'udp']);
  });

  it.each([
    [0, 'well-known'],
    [1023, 'well-known'],
    [1024, 'registered'],
    [49_151, 'registered'],
    [49_152, 'dynamic'],
    [65_535, 'dynamic'],
  ] as const)('port %i is %s', (port, category) => {
    expect(rangeCategory(port)).toBe(category);
  });
});

describe('explain', () => {
  it('gives both protocols for a bare port, with names and risk', () => {
    const entries = explainSpecs(['111']);
    expect(entries.map((e) => `${e.protocol}/${e.port}`)).toEqual(['tcp/111', 'udp/111']);
    expect(entries[0]?.names).toEqual(expect.arrayContaining(['sunrpc', 'rpcbind']));
    expect(entries[0]?.risk?.level).toMatch(/high|critical/);
  });

  it('says plainly when a port is unassigned and unknown', () => {
    const entry = explainPort(48_999, 'tcp');
    expect(entry.assigned).toBe(lookupIana(48_999, 'tcp') !== undefined);
    const unknown = explainPort(65_000, 'udp');
    expect(unknown.names).toEqual([]);
    expect(unknown.description).toMatch(/unassigned/);
    expect(unknown.risk).toBeNull();
    expect(unknown.range).toBe('dynamic');
  });

  it('refuses to list more than the limit', () => {
    expect(() => explainSpecs(['-'])).toThrow(/more than/);
  });

  it('lists risky services most severe first', () => {
    const levels = riskyServices().map((s) => s.risk.level);
    expect(levels[0]).toBe('critical');
    expect(levels).not.toContain('low');
    expect(levels.indexOf('medium')).toBeGreaterThan(levels.lastIndexOf('critical'));
  });
});
