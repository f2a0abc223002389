import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { classifySocket, exposureOf, fixFor, interfaceOf } from '../../src/inventory/classify.ts';
import { inventoryFromText } from '../../src/inventory/list.ts';
import type { SocketOwner } from '../../src/inventory/types.ts';

const owner = (over: Partial<SocketOwner>): SocketOwner => ({
  pid: 100,
  startTime: 1,
  name: 'x',
  exe: '/usr/bin/x',
  exeDeleted: false,
  uid: 0,
  user: 'root',
  cmdline: 'x',
  unit: null,
  container: null,
  ...over,
});

describe('exposureOf', () => {
  it.each([
    ['0.0.0.0', 'all'],
    ['::', 'all'],
    ['127.0.0.1', 'loopback'],
    ['127.0.0.53', 'loopback'],
    ['::1', 'loopback'],
    ['198.51.100.7', 'address'],
    ['fe80::1', 'address'],
  ] as const)('%s is %s', (address, exposure) => expect(exposureOf(address)).toBe(exposure));
});

describe('interfaceOf', () => {
  const ifs = [
    { name: 'eth0', addresses: ['198.51.100.1', 'fe80::1'] },
    { name: 'eth1', addresses: ['203.0.113.1', 'fe80::2'] },
  ];
  it('finds the interface holding an address, and none for an unknown one', () => {
    expect(interfaceOf('203.0.113.1', ifs)).toBe('eth1');
    expect(interfaceOf('fe80::1', ifs)).toBe('eth0');
    expect(interfaceOf('192.0.2.1', ifs)).toBeNull();
  });
  it('adds the scope to a link-local address', () => {
    const socket = classifySocket(
      {
        protocol: 'tcp',
        family: 6,
        localAddress: 'fe80::2',
        localPort: 22,
        remoteAddress: '::',
        remotePort: 0,
        state: 'LISTEN',
        uid: 0,
        inode: 1,
      },
      [],
      { interfaces: ifs, netns: 'host', hostNamespace: true, v6only: new Map(), defaultV6Only: null },
    );
    expect(socket).toMatchObject({
      localAddress: 'fe80::2%eth1',
      interface: 'eth1',
      exposure: 'address',
      service: 'ssh',
    });
  });
});

describe('fixFor', () => {
  it.each([
    [
      [owner({ unit: 'cups.socket', pid: 1, name: 'systemd' }), owner({ unit: 'cups.service' })],
      'systemctl disable --now cups.socket cups.service',
    ],
    [
      [owner({ unit: 'nginx.service' }), owner({ unit: 'nginx.service', pid: 101 })],
      'systemctl disable --now nginx.service',
    ],
    [[owner({ container: 'docker:0123456789ab', unit: null })], 'docker stop 0123456789ab'],
    [[owner({ container: 'podman:0123456789ab' })], 'podman stop 0123456789ab'],
    [[owner({ pid: 300 }), owner({ pid: 200 })], 'kill 200 300'],
    [[owner({ unit: 'session-3.scope', pid: 7 })], 'kill 7'],
    [[], null],
  ] as const)('%j -> %s', (owners, fix) => expect(fixFor(owners)).toBe(fix));
});

describe('dual stack', () => {
  const raw = {
    protocol: 'tcp' as const,
    family: 6 as const,
    localAddress: '::',
    localPort: 80,
    remoteAddress: '::',
    remotePort: 0,
    state: 'LISTEN',
    uid: 0,
    inode: 7,
  };
  const ctx = { interfaces: [], netns: 'host', hostNamespace: true, defaultV6Only: null };
  it('uses the v6only flag when known, the sysctl default otherwise, and null when neither', () => {
    expect(classifySocket(raw, [], { ...ctx, v6only: new Map([[7, true]]) }).dualStack).toBe(false);
    expect(classifySocket(raw, [], { ...ctx, v6only: new Map([[7, false]]) }).dualStack).toBe(true);
    expect(classifySocket(raw, [], { ...ctx, v6only: new Map(), defaultV6Only: false }).dualStack).toBe(true);
    expect(classifySocket(raw, [], { ...ctx, v6only: new Map() }).dualStack).toBeNull();
  });
});

describe('fixFor on a Windows listing', () => {
  const win = (pid: number, name: string | null): SocketOwner => owner({ pid, name });
  it.each([
    [
      [win(4, 'System')],
      445,
      'Stop-Service LanmanServer -Force; Set-Service LanmanServer -StartupType Disabled',
    ],
    [[win(4, 'System')], 5985, 'Stop-Service WinRM -Force; Set-Service WinRM -StartupType Disabled'],
    [[win(4, 'System')], 8080, expect.stringMatching(/^netsh http show servicestate/)],
    [[win(1012, 'svchost.exe')], 135, expect.stringContaining("Win32_Service -Filter 'ProcessId=1012'")],
    [[win(2236, 'dnscache.exe')], 5353, 'taskkill /PID 2236 /F'],
    [[win(0, 'System Idle Process')], 49712, null],
  ] as const)('%j on port %i', (owners, port, fix) => {
    expect(fixFor(owners, { platform: 'win32', port })).toEqual(fix);
  });

  it('is never a POSIX kill for a Windows capture', () => {
    const text = readFileSync(new URL('../fixtures/windows/netstat-ano.txt', import.meta.url), 'utf8');
    const { sockets } = inventoryFromText(text);
    expect(sockets.length).toBeGreaterThan(0);
    for (const s of sockets) expect(s.fix ?? '').not.toMatch(/^kill /);
  });
});
