import { describe, expect, it } from 'vitest';
import { parsePortSpec } from '../../src/catalog/port-spec.ts';
import { matchesSocketFilter, type SocketFilter } from '../../src/inventory/filter.ts';
import type { SocketOwner } from '../../src/inventory/types.ts';
import { makeSocket } from '../helpers/socket.ts';

const owner = (over: Partial<SocketOwner>): SocketOwner => ({
  pid: 100,
  startTime: 1,
  name: 'nginx',
  exe: '/usr/sbin/nginx',
  exeDeleted: false,
  uid: 33,
  user: 'www-data',
  cmdline: null,
  unit: 'nginx.service',
  container: null,
  ...over,
});

const web = makeSocket({
  uid: 33,
  processes: [owner({}), owner({ pid: 1, name: 'systemd', unit: 'web.socket', user: 'root', uid: 0 })],
});
const orphan = makeSocket({ uid: 1000, processes: [] });
const outbound = makeSocket({ localPort: 51000, remotePort: 443, state: 'ESTABLISHED' });

describe('matchesSocketFilter', () => {
  it.each<[string, SocketFilter, boolean]>([
    ['port in a range', { ports: parsePortSpec('79-81') }, true],
    ['udp mark on a tcp socket', { ports: parsePortSpec('U:80') }, false],
    ['unit without its suffix', { unit: 'nginx' }, true],
    ['a .socket unit', { unit: 'web' }, true],
    ['unit of another owner than the pid', { unit: 'web', pid: 100 }, false],
    ['user name', { user: 'www-data' }, true],
    ['uid', { user: '0' }, true],
    ['executable file name', { process: 'nginx' }, true],
    ['unknown process', { process: 'apache2' }, false],
  ])('%s', (_, filter, expected) => {
    expect(matchesSocketFilter(web, filter)).toBe(expected);
  });

  it('a socket with no known owner matches only by its kernel uid', () => {
    expect(matchesSocketFilter(orphan, { user: '1000' })).toBe(true);
    expect(matchesSocketFilter(orphan, { pid: 1000 })).toBe(false);
    expect(matchesSocketFilter(orphan, { process: 'x' })).toBe(false);
  });

  it('a connection matches its remote port too (like lsof -i :443)', () => {
    expect(matchesSocketFilter(outbound, { ports: parsePortSpec('443') })).toBe(true);
    expect(
      matchesSocketFilter(makeSocket({ localPort: 443, remotePort: 0 }), { ports: parsePortSpec('0') }),
    ).toBe(false);
  });
});
