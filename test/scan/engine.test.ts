import { describe, expect, it } from 'vitest';
import { scanTcp, parseFdLimit } from '../../src/scan/engine.ts';
import { classifyErrno, type Connector, type ProbeOutcome } from '../../src/scan/tcp.ts';

const host = [{ address: '198.51.100.1', hostname: null }];

/** A connector answering from a table; counts attempts per port. */
function fake(table: (port: number, attempt: number) => ProbeOutcome) {
  const attempts = new Map<number, number>();
  const connect: Connector = async (_address, port) => {
    const n = attempts.get(port) ?? 0;
    attempts.set(port, n + 1);
    await new Promise((r) => setTimeout(r, 1));
    return table(port, n);
  };
  return { connect, attempts };
}

describe('scanTcp with a fake network', () => {
  it('--rate paces probes and finishes (a waiting pump once re-asked the limiter and never sent)', async () => {
    const { connect } = fake(() => ({ kind: 'closed', rttMs: 1, reason: 'conn-refused' }));
    const started = Date.now();
    const [result] = await scanTcp(host, { ports: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], connect, rate: 100 });
    const ms = Date.now() - started;
    expect(result?.ports).toHaveLength(10);
    // 10 probes at 100/s: 90 ms of waiting at least, and nowhere near the hang
    expect(ms).toBeGreaterThanOrEqual(85);
    expect(ms).toBeLessThan(5000);
  });

  it('maps outcomes to nmap states and reasons, retrying only silence', async () => {
    const { connect, attempts } = fake((port) =>
      port === 22
        ? { kind: 'open', rttMs: 1 }
        : port === 23
          ? { kind: 'closed', rttMs: 1, reason: 'conn-refused' }
          : port === 24
            ? { kind: 'unreachable', rttMs: 1, reason: 'admin-prohibited' }
            : { kind: 'timeout' },
    );
    const [result] = await scanTcp(host, { ports: [22, 23, 24, 25], connect, retries: 2 });
    expect(result?.ports.map((p) => `${p.port}:${p.state}:${p.reason}`)).toEqual([
      '22:open:syn-ack',
      '23:closed:conn-refused',
      '24:filtered:admin-prohibited',
      '25:filtered:no-response',
    ]);
    expect(attempts.get(25)).toBe(3);
    expect(attempts.get(22)).toBe(1);
  });

  it('a retransmission that is answered counts as the real answer (a lost first probe)', async () => {
    const { connect } = fake((port, attempt) =>
      attempt === 0 ? { kind: 'timeout' } : { kind: 'open', rttMs: 1 },
    );
    const [result] = await scanTcp(host, { ports: [80], connect, retries: 1 });
    expect(result?.ports[0]?.state).toBe('open');
  });

  it('never reads EMFILE as closed: the probe is retried until it gets a real answer', async () => {
    const { connect, attempts } = fake((port, attempt) =>
      attempt < 3 ? { kind: 'resource', code: 'EMFILE' } : { kind: 'open', rttMs: 1 },
    );
    const ports = Array.from({ length: 20 }, (_, i) => 1000 + i);
    const [result] = await scanTcp(host, { ports, connect, retries: 0 });
    expect(result?.ports.filter((p) => p.state === 'open')).toHaveLength(20);
    expect(attempts.get(1000)).toBe(4);
  });

  it('retries a self-connect instead of calling the port open', async () => {
    const { connect } = fake((port, attempt) =>
      attempt === 0 ? { kind: 'self-connect' } : { kind: 'closed', rttMs: 1, reason: 'conn-refused' },
    );
    const [result] = await scanTcp(host, { ports: [40000], connect });
    expect(result?.ports[0]).toMatchObject({ state: 'closed' });
  });

  it('stops on abort and returns what it has', async () => {
    const controller = new AbortController();
    const { connect } = fake(() => {
      controller.abort();
      return { kind: 'closed', rttMs: 1, reason: 'conn-refused' };
    });
    const [result] = await scanTcp(host, {
      ports: Array.from({ length: 1000 }, (_, i) => i + 1),
      connect,
      signal: controller.signal,
      concurrency: 4,
    });
    expect(result?.ports.length).toBeGreaterThan(0);
    expect(result?.ports.length).toBeLessThan(1000);
  });

  it('scans several hosts, every port once', async () => {
    const { connect } = fake(() => ({ kind: 'closed', rttMs: 1, reason: 'conn-refused' }));
    const targets = Array.from({ length: 5 }, (_, i) => ({ address: `198.51.100.${i + 1}`, hostname: null }));
    const results = await scanTcp(targets, { ports: [1, 2, 3], connect, hostGroup: 2 });
    expect(results.map((r) => r.address).sort()).toEqual(targets.map((t) => t.address));
    expect(results.every((r) => r.ports.length === 3)).toBe(true);
  });
});

describe('errno classification and limits', () => {
  it.each([
    ['ECONNREFUSED', 'closed'],
    ['ECONNRESET', 'closed'],
    ['EHOSTUNREACH', 'unreachable'],
    ['ENETUNREACH', 'unreachable'],
    ['EPERM', 'unreachable'],
    ['EMFILE', 'resource'],
    ['EADDRNOTAVAIL', 'resource'],
    ['ETIMEDOUT', 'timeout'],
  ])('%s -> %s', (code, kind) => expect(classifyErrno(code, 1).kind).toBe(kind));

  it('reads the soft fd limit', () => {
    expect(
      parseFdLimit(
        'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 20000                files\n',
      ),
    ).toBe(1024);
  });
});
