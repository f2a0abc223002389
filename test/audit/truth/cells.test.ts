import { describe, expect, it } from 'vitest';
import {
  auditVerdict,
  enumerateCells,
  judge,
  readExposure,
  truthOf,
  type AuditVerdict,
  type Cell,
  type HostInterface,
  type ProbeResult,
} from './cells.ts';

/** The truth suite's judging, without namespaces: the part that decides what counts as a false answer. */

const ETH0: HostInterface = {
  name: 'eth0',
  addresses: ['198.51.100.1', '2001:db8::1', 'fe80::1'],
  peerAddresses: ['198.51.100.10', '198.51.100.100', '2001:db8::10', 'fe80::10'],
};
const ETH1: HostInterface = {
  name: 'eth1',
  addresses: ['203.0.113.1', 'fe80::1'],
  peerAddresses: ['203.0.113.10', 'fe80::10'],
};

function cellOf(overrides: Partial<Cell> = {}): Cell {
  return {
    key: 'k',
    listener: { proto: 'tcp', host: '0.0.0.0', port: 22 },
    iface: 'eth0',
    dst: '198.51.100.1',
    family: 4,
    sources: ['198.51.100.10', '198.51.100.100'],
    sports: [],
    ...overrides,
  };
}

function verdict(overrides: Partial<AuditVerdict> = {}): AuditVerdict {
  return { reach: 'yes', onlyFrom: [], sourcePorts: [], expressions: [], decision: '', ...overrides };
}

function results(entries: [string, boolean][]): Map<string, ProbeResult> {
  return new Map(entries.map(([id, ok]) => [id, { id, ok, detail: ok ? 'connected' : 'timeout' }]));
}

describe('enumerateCells', () => {
  it('tries a wildcard listener at every local address of its families, link-local only on its own link', () => {
    const cells = enumerateCells('s', [{ proto: 'tcp', host: '::', port: 22 }], [ETH0, ETH1]);
    const eth1 = cells.filter((c) => c.iface === 'eth1').map((c) => c.dst);
    expect(eth1).toEqual(['198.51.100.1', '203.0.113.1', 'fe80::1']);
    expect(cells.find((c) => c.iface === 'eth0' && c.dst === 'fe80::1')?.sources).toEqual([
      '2001:db8::10',
      'fe80::10',
    ]);
    expect(cells.find((c) => c.iface === 'eth0' && c.dst === '2001:db8::1')?.sources).toEqual([
      '2001:db8::10',
    ]);
  });

  it('skips a cell no peer source can send (eth1 has no global IPv6 source)', () => {
    const cells = enumerateCells('s', [{ proto: 'tcp', host: '::', port: 22 }], [ETH0, ETH1]);
    expect(cells.some((c) => c.iface === 'eth1' && c.dst === '2001:db8::1')).toBe(false);
  });

  it('tries an address-bound listener through every interface (weak host model)', () => {
    const cells = enumerateCells('s', [{ proto: 'udp', host: '203.0.113.1', port: 53 }], [ETH0, ETH1]);
    expect(cells.map((c) => `${c.iface} ${c.dst}`)).toEqual(['eth0 203.0.113.1', 'eth1 203.0.113.1']);
  });
});

describe('judge', () => {
  const cell = cellOf();
  const open = truthOf(
    cell,
    0,
    results([
      ['0.0.0', true],
      ['0.1.0', false],
    ]),
  );
  const closed = truthOf(
    cell,
    0,
    results([
      ['0.0.0', false],
      ['0.1.0', false],
    ]),
  );

  it('agrees when audit and the packets say the same', () => {
    expect(judge(cell, verdict(), open).outcome).toBe('agree');
    expect(judge(cell, verdict({ reach: 'no' }), closed).outcome).toBe('agree');
  });

  it('calls "reachable" with nobody getting through a false reachable, and the reverse a false not reachable', () => {
    expect(judge(cell, verdict(), closed).outcome).toBe('false-reachable');
    expect(judge(cell, verdict({ reach: 'no' }), open).outcome).toBe('false-not-reachable');
    expect(judge(cell, verdict({ reach: 'absent' }), open).outcome).toBe('false-not-reachable');
  });

  it('holds audit to its onlyFrom source by source', () => {
    expect(judge(cell, verdict({ onlyFrom: ['198.51.100.0/26'] }), open).outcome).toBe('agree');
    expect(judge(cell, verdict({ onlyFrom: ['198.51.100.64/26'] }), open).outcome).toBe(
      'false-not-reachable',
    );
    expect(judge(cell, verdict({ onlyFrom: ['198.51.100.0/24'] }), open).outcome).toBe('false-reachable');
  });

  it('does not count a range none of the peer sources lies in against audit', () => {
    expect(judge(cell, verdict({ onlyFrom: ['192.0.2.0/24'] }), closed).outcome).toBe('agree');
  });

  it('holds audit to the source ports it names', () => {
    const dhcp = cellOf({ sports: [67] });
    const only67 = truthOf(
      dhcp,
      0,
      results([
        ['0.0.0', false],
        ['0.0.67', true],
      ]),
    );
    expect(judge(dhcp, verdict({ sourcePorts: [67] }), only67).outcome).toBe('agree');
    expect(judge(dhcp, verdict(), only67).outcome).toBe('false-reachable');
    const any = truthOf(
      dhcp,
      0,
      results([
        ['0.0.0', true],
        ['0.0.67', true],
      ]),
    );
    expect(judge(dhcp, verdict({ sourcePorts: [67] }), any).outcome).toBe('false-not-reachable');
  });

  it('passes an unknown through with its expression', () => {
    const judged = judge(cell, verdict({ reach: 'unknown', expressions: ['-m foo'] }), open);
    expect(judged).toMatchObject({ outcome: 'unknown', why: '-m foo' });
  });
});

describe('auditVerdict', () => {
  const report = {
    exposure: [
      {
        protocol: 'tcp',
        localAddress: '::',
        localPort: 8451,
        notModelled: [],
        cells: [
          { interface: 'eth1', family: 4, address: '203.0.113.1', reach: 'no', onlyFrom: [], decision: null },
          {
            interface: 'eth1',
            family: 4,
            address: '203.0.113.3',
            reach: 'yes',
            onlyFrom: [],
            decision: null,
          },
        ],
      },
      {
        protocol: 'tcp',
        localAddress: '0.0.0.0',
        localPort: 8080,
        notModelled: [],
        cells: [{ interface: 'eth0', family: 4, reach: 'no', onlyFrom: [], decision: null }],
      },
      {
        protocol: 'tcp',
        localAddress: '0.0.0.0',
        localPort: 8080,
        dnat: '198.51.100.130:80',
        notModelled: [],
        cells: [{ interface: 'eth0', family: 4, reach: 'yes', onlyFrom: [], decision: null }],
      },
    ],
  };
  const rows = readExposure(report);
  const at = (port: number, iface: string, dst: string) =>
    auditVerdict(rows, cellOf({ listener: { proto: 'tcp', host: '::', port }, iface, dst }));

  it('reads the cell for the address probed when audit evaluates per address', () => {
    expect(at(8451, 'eth1', '203.0.113.3').reach).toBe('yes');
    expect(at(8451, 'eth1', '203.0.113.1').reach).toBe('no');
    expect(at(8451, 'eth1', '203.0.113.9').reach).toBe('absent');
  });

  it('takes the most open of the rows for one port (a listener and its DNAT)', () => {
    expect(at(8080, 'eth0', '198.51.100.1').reach).toBe('yes');
  });

  it('is absent where no row speaks for the port', () => {
    expect(at(9999, 'eth0', '198.51.100.1').reach).toBe('absent');
  });
});
