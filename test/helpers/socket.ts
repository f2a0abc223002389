import type { Socket } from '../../src/inventory/types.ts';

/** An inventory row for tests: an http listener on 0.0.0.0:80 with no known owner, unless overridden. */
export function makeSocket(over: Partial<Socket> = {}): Socket {
  return {
    protocol: 'tcp',
    family: 4,
    localAddress: '0.0.0.0',
    localPort: 80,
    remoteAddress: '0.0.0.0',
    remotePort: 0,
    state: 'LISTEN',
    uid: 0,
    inode: 1,
    exposure: 'all',
    interface: null,
    dualStack: null,
    v4Mapped: false,
    netns: 'host',
    exposureScope: 'host',
    processes: [],
    service: 'http',
    risk: null,
    fix: null,
    ...over,
  };
}
