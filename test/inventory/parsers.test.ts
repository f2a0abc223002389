import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  formatCmdline,
  parseCgroup,
  parseProcStat,
  parseSsV6Only,
  parseSystemdSocketUnits,
} from '../../src/inventory/owners.ts';
import {
  detectListingFormat,
  parseLsof,
  parseTasklistCsv,
  parseWindowsNetstat,
} from '../../src/inventory/parse-foreign.ts';
import { decodeProcAddress, parseIfInet6, parseProcNet } from '../../src/inventory/parse-proc-net.ts';

const fixture = (path: string): string =>
  readFileSync(new URL(`../fixtures/${path}`, import.meta.url), 'utf8');

describe('decodeProcAddress', () => {
  it.each([
    ['0100007F', 'LE', '127.0.0.1', false],
    ['0A01A8C0', 'LE', '192.168.1.10', false],
    ['7F000001', 'BE', '127.0.0.1', false],
    ['00000000000000000000000001000000', 'LE', '::1', false],
    ['00000000000000000000000000000000', 'LE', '::', false],
    ['0000000000000000FFFF00000100007F', 'LE', '127.0.0.1', true],
    ['000080FE000000000000000001000000', 'LE', 'fe80::1', false],
    ['B80D0120000000000000000001000000', 'LE', '2001:db8::1', false],
    ['20010DB8000000000000000000000001', 'BE', '2001:db8::1', false],
  ] as const)('%s (%s) is %s', (hex, order, address, mapped) => {
    expect(decodeProcAddress(hex, order)).toEqual({ address, v4Mapped: mapped });
  });
});

describe('parseProcNet', () => {
  it('reads every TCP state with ports, uid and inode from a captured /proc/net/tcp', () => {
    const rows = parseProcNet(fixture('proc/tcp'), 'tcp', 4);
    expect(rows.map((r) => r.state)).toEqual([
      'LISTEN',
      'LISTEN',
      'LISTEN',
      'ESTABLISHED',
      'SYN_SENT',
      'SYN_RECV',
      'FIN_WAIT1',
      'FIN_WAIT2',
      'TIME_WAIT',
      'CLOSE',
      'CLOSE_WAIT',
      'LAST_ACK',
      'CLOSING',
      'NEW_SYN_RECV',
    ]);
    expect(rows[0]).toMatchObject({ localAddress: '0.0.0.0', localPort: 22, uid: 0, inode: 19001 });
    expect(rows[1]).toMatchObject({ localAddress: '127.0.0.1', localPort: 6379, uid: 116 });
    expect(rows[3]).toMatchObject({
      localAddress: '192.168.1.10',
      localPort: 22,
      remoteAddress: '192.168.1.100',
      remotePort: 54321,
    });
  });

  it('reads IPv6 words in host order, v4-mapped and link-local addresses', () => {
    const rows = parseProcNet(fixture('proc/tcp6'), 'tcp', 6);
    expect(rows.map((r) => [r.localAddress, r.localPort, r.v4Mapped])).toEqual([
      ['::', 22, false],
      ['::1', 631, false],
      ['127.0.0.1', 8080, true],
      ['fe80::1', 53, false],
      ['2001:db8::1', 443, false],
    ]);
    expect(rows[4]).toMatchObject({
      remoteAddress: 'fe80::2',
      remotePort: 50000,
      state: 'ESTABLISHED',
      family: 6,
    });
  });

  it('names unconnected UDP sockets UNCONN and connected ones ESTABLISHED', () => {
    const rows = parseProcNet(fixture('proc/udp'), 'udp', 4);
    expect(rows.map((r) => [r.localAddress, r.localPort, r.state])).toEqual([
      ['127.0.0.53', 53, 'UNCONN'],
      ['0.0.0.0', 68, 'UNCONN'],
      ['0.0.0.0', 161, 'UNCONN'],
      ['127.0.0.1', 49152, 'ESTABLISHED'],
    ]);
    expect(parseProcNet(fixture('proc/udp6'), 'udp', 6).map((r) => [r.localAddress, r.localPort])).toEqual([
      ['::', 5353],
      ['::1', 547],
    ]);
  });

  it('skips truncated and garbage lines', () => {
    const text = `${fixture('proc/tcp').split('\n').slice(0, 3).join('\n')}\n   9: 0100007F:00\n garbage\n`;
    expect(parseProcNet(text, 'tcp', 4)).toHaveLength(2);
  });

  it('never throws on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string(), fc.constantFrom('tcp' as const, 'udp' as const), (text, protocol) => {
        expect(Array.isArray(parseProcNet(text, protocol, 4))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on lines shaped like /proc/net rows', () => {
    const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9A-F]{${n}}$`));
    const row = fc
      .tuple(fc.nat(999), fc.oneof(hex(8), hex(32), fc.string()), hex(4), hex(2), fc.string())
      .map(
        ([sl, addr, port, st, tail]) =>
          `  ${sl}: ${addr}:${port} ${addr}:${port} ${st} 0:0 0:0 0 0 0 ${tail}`,
      );
    fc.assert(
      fc.property(fc.array(row, { maxLength: 10 }), (lines) => {
        for (const r of parseProcNet(lines.join('\n'), 'tcp', 6)) {
          expect(r.localPort).toBeGreaterThanOrEqual(0);
          expect(r.localPort).toBeLessThanOrEqual(65535);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('parseIfInet6', () => {
  it('maps every address to its interface', () => {
    const text =
      '00000000000000000000000000000001 01 80 10 80       lo\nfe80000000000000021122fffe334455 02 40 20 80     eth0\n';
    expect(parseIfInet6(text)).toEqual([
      { address: '::1', interface: 'lo', scope: 0x10 },
      { address: 'fe80::211:22ff:fe33:4455', interface: 'eth0', scope: 0x20 },
    ]);
  });
});

describe('parseCgroup', () => {
  it.each([
    ['0::/system.slice/nginx.service\n', 'nginx.service', null],
    ['0::/system.slice/cups.socket\n', 'cups.socket', null],
    [
      '0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-firefox-1234.scope\n',
      'app-firefox-1234.scope',
      null,
    ],
    ['0::/init.scope\n', 'init.scope', null],
    [`0::/system.slice/docker-${'a'.repeat(64)}.scope\n`, null, `docker:${'a'.repeat(12)}`],
    [`12:pids:/docker/${'b'.repeat(64)}\n0::/docker/${'b'.repeat(64)}\n`, null, `docker:${'b'.repeat(12)}`],
    [`0::/machine.slice/libpod-${'c'.repeat(64)}.scope/container\n`, null, `podman:${'c'.repeat(12)}`],
    [
      `0::/kubepods.slice/kubepods-burstable.slice/cri-containerd-${'d'.repeat(64)}.scope\n`,
      null,
      `containerd:${'d'.repeat(12)}`,
    ],
    ['0::/\n', null, null],
    ['', null, null],
  ])('%s', (text, unit, container) => {
    expect(parseCgroup(text)).toEqual({ unit, container });
  });
});

describe('parseProcStat', () => {
  it('keeps a comm with spaces and parentheses and reads the start time (field 22)', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
    const stat = parseProcStat(`4242 (my (odd) proc) ${fields.join(' ')}`);
    expect(stat).toEqual({ comm: 'my (odd) proc', startTime: 22 });
  });
  it('returns null on garbage', () => {
    expect(parseProcStat('')).toBeNull();
  });
});

describe('formatCmdline', () => {
  it('joins argv and quotes what a shell would need quoted', () => {
    expect(formatCmdline('/usr/sbin/sshd\0-D\0')).toBe('/usr/sbin/sshd -D');
    expect(formatCmdline("python3\0-c\0print('hi there')\0")).toBe(`python3 -c 'print('\\''hi there'\\'')'`);
    expect(formatCmdline('')).toBeNull();
  });
});

describe('parseSystemdSocketUnits', () => {
  it('reads Listen= lines of every socket unit', () => {
    const text = [
      'Id=cups.socket',
      'Listen=/run/cups/cups.sock (Stream)',
      'Listen=[::]:631 (Stream)',
      '',
      'Id=systemd-resolved-extra.socket',
      'Listen=127.0.0.54:53 (Datagram)',
      'Listen=5355 (Stream)',
      '',
    ].join('\n');
    expect(parseSystemdSocketUnits(text)).toEqual([
      { unit: 'cups.socket', kind: 'Stream', address: '/run/cups/cups.sock', port: null },
      { unit: 'cups.socket', kind: 'Stream', address: '::', port: 631 },
      { unit: 'systemd-resolved-extra.socket', kind: 'Datagram', address: '127.0.0.54', port: 53 },
      { unit: 'systemd-resolved-extra.socket', kind: 'Stream', address: '*', port: 5355 },
    ]);
  });
});

describe('parseSsV6Only', () => {
  it('reads the v6only flag per inode', () => {
    const text = [
      'UNCONN 0      0      [::]:45673 [::]:* ino:26800 sk:2 cgroup:/ v6only:1 <->',
      'LISTEN 0      511       *:45672    *:* ino:26799 sk:1001 cgroup:/ v6only:0 <->',
    ].join('\n');
    expect([...parseSsV6Only(text)]).toEqual([
      [26800, true],
      [26799, false],
    ]);
  });
});

describe('parseLsof (macOS)', () => {
  it('reads listeners, UDP, zone ids, established sockets and merges a socket shared by processes', () => {
    const sockets = parseLsof(fixture('lsof/macos-ftcp.txt'));
    const brief = sockets.map((s) => [
      s.protocol,
      s.family,
      s.localAddress,
      s.localPort,
      s.state,
      s.owners.map((o) => o.pid),
    ]);
    expect(brief).toEqual([
      ['tcp', 6, '::', 22, 'LISTEN', [1]],
      ['tcp', 4, '0.0.0.0', 22, 'LISTEN', [1]],
      ['udp', 4, '0.0.0.0', 5353, 'UNCONN', [312]],
      ['udp', 6, '::', 5353, 'UNCONN', [312]],
      ['tcp', 4, '0.0.0.0', 7000, 'LISTEN', [501]],
      ['tcp', 6, 'fe80::1%lo0', 7000, 'LISTEN', [501]],
      ['tcp', 4, '192.168.1.20', 52311, 'ESTABLISHED', [733]],
      ['udp', 6, '2001:db8::20', 61000, 'ESTABLISHED', [733]],
      ['tcp', 6, '::1', 5432, 'LISTEN', [8812, 8813]],
      ['tcp', 4, '127.0.0.1', 5432, 'LISTEN', [8812]],
    ]);
    expect(sockets[6]).toMatchObject({ remoteAddress: '203.0.113.80', remotePort: 443 });
    expect(sockets[6]?.owners[0]).toMatchObject({ name: 'Google Chrome Helper', user: 'alice', uid: 501 });
  });
  it('reads NUL-terminated field output (-F0)', () => {
    const [socket] = parseLsof(fixture('lsof/macos-nul.txt'));
    expect(socket).toMatchObject({
      protocol: 'tcp',
      localAddress: '0.0.0.0',
      localPort: 631,
      state: 'LISTEN',
    });
    expect(socket?.owners[0]?.name).toBe('launchd');
  });
  it('never throws on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string(), (text) => void parseLsof(text)),
      { numRuns: 300 },
    );
  });
});

describe('parseWindowsNetstat + parseTasklistCsv', () => {
  const tasks = parseTasklistCsv(fixture('windows/tasklist-v.csv'));
  it('reads tasklist CSV with quotes, commas in numbers and unicode names', () => {
    expect(tasks.get(3340)).toEqual({ pid: 3340, name: 'Spotify "beta".exe', user: 'DESKTOP-1\\alice' });
    expect(tasks.get(4536)?.name).toBe('日本語アプリ.exe');
    expect(tasks.get(4)).toEqual({ pid: 4, name: 'System', user: null });
  });
  it('reads TCP and UDP rows, IPv6 with zone ids and *:* remotes', () => {
    const sockets = parseWindowsNetstat(fixture('windows/netstat-ano.txt'), tasks);
    expect(sockets).toHaveLength(16);
    const find = (proto: string, addr: string, port: number) =>
      sockets.find((s) => s.protocol === proto && s.localAddress === addr && s.localPort === port);
    expect(find('tcp', '0.0.0.0', 3389)).toMatchObject({
      state: 'LISTEN',
      owners: [{ pid: 1204, name: 'svchost.exe' }],
    });
    expect(find('tcp', 'fe80::1c2d:3e4f:5a6b:7c8d%12', 139)).toMatchObject({
      family: 6,
      owners: [{ pid: 4, name: 'System' }],
    });
    expect(find('udp', '::1', 1900)).toMatchObject({
      state: 'UNCONN',
      owners: [{ name: '日本語アプリ.exe' }],
    });
    expect(find('tcp', '192.168.1.20', 50312)).toMatchObject({
      state: 'ESTABLISHED',
      remoteAddress: '203.0.113.80',
      remotePort: 443,
    });
    expect(find('tcp', '192.168.1.20', 50313)?.state).toBe('TIME_WAIT');
  });
  it('never throws on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string(), (text) => void parseWindowsNetstat(text)),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.string(), (text) => void parseTasklistCsv(text)),
      { numRuns: 300 },
    );
  });
});

describe('detectListingFormat', () => {
  it.each([
    ['proc/tcp', 'proc-net'],
    ['lsof/macos-ftcp.txt', 'lsof'],
    ['lsof/macos-nul.txt', 'lsof'],
    ['windows/netstat-ano.txt', 'windows-netstat'],
  ])('%s is %s', (path, format) => {
    expect(detectListingFormat(fixture(path))).toBe(format);
  });
});
