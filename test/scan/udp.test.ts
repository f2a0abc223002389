import { describe, expect, it } from 'vitest';
import {
  dnsName,
  parseSnmpSysDescr,
  payloadFor,
  snmpGet,
  UDP_PAYLOADS,
} from '../../src/scan/udp-payloads.ts';
import { scanUdp, type UdpOutcome, type UdpProber } from '../../src/scan/udp.ts';

describe('UDP payloads', () => {
  it('DNS: a version.bind CH TXT query with the id, answered only by a matching response', () => {
    const dns = UDP_PAYLOADS[53]!;
    const query = dns.build(0x1234);
    expect(query.subarray(0, 6)).toEqual(Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01]));
    expect(query.includes(dnsName('version.bind'))).toBe(true);
    expect(query.subarray(-4)).toEqual(Buffer.from([0x00, 0x10, 0x00, 0x03]));
    const reply = Buffer.from(query);
    reply[2] = 0x81;
    expect(dns.parse(reply, 0x1234)).toEqual({ service: 'dns' });
    expect(dns.parse(reply, 0x9999)).toBeNull();
  });

  it('NTP: a v4 client request; a mode-4 reply names the stratum', () => {
    const ntp = UDP_PAYLOADS[123]!;
    const request = ntp.build(1);
    expect(request).toHaveLength(48);
    expect(request[0]).toBe(0x23);
    const reply = Buffer.alloc(48);
    reply[0] = 0x24;
    reply[1] = 2;
    expect(ntp.parse(reply, 1)).toEqual({ service: 'ntp', banner: 'stratum 2' });
  });

  it('SNMP: a v2c GetRequest for sysDescr.0 with community public, and the sysDescr of a reply', () => {
    const request = snmpGet(7);
    expect(request[0]).toBe(0x30);
    expect(request.includes(Buffer.from('public'))).toBe(true);
    expect(request.includes(Buffer.from([0x06, 0x08, 0x2b, 6, 1, 2, 1, 1, 1, 0]))).toBe(true);
    // A GetResponse echoes the varbind with an OCTET STRING value.
    const descr = Buffer.from('Linux gw 6.1.0 x86_64');
    const reply = Buffer.concat([
      Buffer.from([0x30, 0x30, 0x02, 0x01, 0x01, 0x04, 0x06]),
      Buffer.from('public'),
      Buffer.from([0xa2, 0x23, 0x06, 0x08, 0x2b, 6, 1, 2, 1, 1, 1, 0, 0x04, descr.length]),
      descr,
    ]);
    expect(parseSnmpSysDescr(reply)).toBe('Linux gw 6.1.0 x86_64');
    expect(UDP_PAYLOADS[161]!.parse(reply, 7)).toEqual({ service: 'snmp', banner: 'Linux gw 6.1.0 x86_64' });
  });

  it('TFTP: a read request; an ERROR reply still means open', () => {
    const tftp = UDP_PAYLOADS[69]!;
    expect(tftp.build(0).subarray(0, 2)).toEqual(Buffer.from([0, 1]));
    expect(
      tftp.parse(Buffer.concat([Buffer.from([0, 5, 0, 1]), Buffer.from('File not found\0')]), 0),
    ).toEqual({ service: 'tftp', banner: 'File not found' });
  });

  it.each([111, 137, 500, 1900, 5353])('port %i has a protocol payload', (port) => {
    expect(payloadFor(port).name).not.toBe('empty');
    expect(payloadFor(port).build(port * 7919).length).toBeGreaterThan(0);
  });

  it('other ports get an empty datagram', () => {
    expect(payloadFor(40000).build(1)).toHaveLength(0);
  });
});

/** A target that answers like Linux: replies from open ports, ICMP errors within a token bucket. */
function linuxLike(open: Set<number>, closed: Set<number>, clock: { t: number }): UdpProber {
  let tokens = 6;
  let last = 0;
  return (_address, port): Promise<UdpOutcome> => {
    tokens = Math.min(6, tokens + (clock.t - last) / 1000);
    last = clock.t;
    if (open.has(port)) return Promise.resolve({ kind: 'reply', data: Buffer.from('x') });
    if (closed.has(port)) {
      if (tokens >= 1) {
        tokens -= 1;
        return Promise.resolve({ kind: 'unreachable' });
      }
      return Promise.resolve({ kind: 'silence' });
    }
    return Promise.resolve({ kind: 'silence' });
  };
}

describe('scanUdp', () => {
  it('tells closed from filtered although the target rate-limits its ICMP errors', async () => {
    const clock = { t: 0 };
    const open = new Set([5000, 5001]);
    const closed = new Set(Array.from({ length: 20 }, (_, i) => 6000 + i));
    const dropped = Array.from({ length: 10 }, (_, i) => 7000 + i);
    const ports = [...open, ...closed, ...dropped];
    const results = await scanUdp('198.51.100.2', ports, {
      probe: linuxLike(open, closed, clock),
      sleep: (ms) => {
        clock.t += ms;
        return Promise.resolve();
      },
      now: () => clock.t,
    });
    const state = new Map(results.map((r) => [r.port, r.state]));
    for (const p of open) expect(state.get(p)).toBe('open');
    for (const p of closed) expect(state.get(p)).toBe('closed');
    for (const p of dropped) expect(state.get(p)).toBe('open|filtered');
    // 20 closed ports, 6 answered at once, the rest at 1/s: about 14 s of (simulated) waiting.
    expect(clock.t).toBeGreaterThanOrEqual(13_000);
    expect(clock.t).toBeLessThan(20_000);
  });

  it('stops re-probing at the deadline and leaves the rest open|filtered', async () => {
    const clock = { t: 0 };
    const closed = new Set(Array.from({ length: 30 }, (_, i) => 6000 + i));
    const results = await scanUdp('198.51.100.2', [...closed], {
      probe: linuxLike(new Set(), closed, clock),
      sleep: (ms) => {
        clock.t += ms;
        return Promise.resolve();
      },
      now: () => clock.t,
      deadlineMs: 5_000,
    });
    expect(results.filter((r) => r.state === 'closed').length).toBeLessThan(30);
    expect(results).toHaveLength(30);
  });
});
