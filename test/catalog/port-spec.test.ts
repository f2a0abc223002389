import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatPortSet, portSetSize, type PortSet } from '../../src/catalog/port-set.ts';
import { parsePortSpec } from '../../src/catalog/port-spec.ts';
import { isPortwardenError } from '../../src/errors.ts';

const T = (...ranges: [number, number][]): PortSet => ({
  tcp: ranges.map(([from, to]) => ({ from, to })),
  udp: [],
});

describe('parsePortSpec: valid specs', () => {
  it.each<[string, string]>([
    ['22', 'T:22'],
    ['0', 'T:0'],
    ['65535', 'T:65535'],
    ['20-21', 'T:20-21'],
    ['20:21', 'T:20-21'],
    ['tcp/80', 'T:80'],
    ['udp/53', 'U:53'],
    ['53/udp', 'U:53'],
    ['UDP/53', 'U:53'],
    ['T:80,U:53', 'T:80,U:53'],
    ['U:53,111,137,T:21-25,80', 'T:21-25,80,U:53,111,137'],
    ['-', 'T:1-65535'],
    ['1-65535', 'T:1-65535'],
    ['1024-', 'T:1024-65535'],
    ['-1023', 'T:1-1023'],
    ['22, 80 ,443', 'T:22,80,443'],
    ['80,22,81,79', 'T:22,79-81'],
    ['1-10,5-20', 'T:1-20'],
    ['ssh', 'T:22'],
    ['SSH', 'T:22'],
    ['ssh,http', 'T:22,80'],
    ['dns', 'T:53,U:53'],
    ['domain', 'T:53,U:53'],
    ['netbios', 'T:137-139,U:137-139'],
    ['ftp', 'T:21'],
    ['x11', 'T:6000-6063'],
    ['dhcp', 'U:67'],
    ['dhcp-client', 'U:68'],
    ['udp/dns', 'U:53'],
    ['U:dns', 'U:53'],
    ['tcp/20:21', 'T:20-21'],
    ['ssh,tcp/1000-1002,U:161', 'T:22,1000-1002,U:161'],
  ])('%s -> %s', (spec, expected) => {
    expect(formatPortSet(parsePortSpec(spec))).toBe(expected);
  });

  it('applies default protocols to bare numbers only', () => {
    expect(formatPortSet(parsePortSpec('53,ssh', { defaultProtocols: ['tcp', 'udp'] }))).toBe('T:22,53,U:53');
  });

  it('falls back to the IANA registry for names the curated catalog lacks', () => {
    expect(portSetSize(parsePortSpec('gopher'))).toBeGreaterThan(0);
  });
});

describe('parsePortSpec: invalid specs', () => {
  it.each<[string, string, RegExp]>([
    ['', 'PORT_SPEC_EMPTY', /empty/],
    ['   ', 'PORT_SPEC_EMPTY', /empty/],
    ['22,,80', 'PORT_SPEC_EMPTY', /empty item/],
    ['22,', 'PORT_SPEC_EMPTY', /empty item/],
    ['65536', 'PORT_OUT_OF_RANGE', /65536 is out of range/],
    ['1-70000', 'PORT_OUT_OF_RANGE', /70000/],
    ['99999999999999999999', 'PORT_OUT_OF_RANGE', /out of range/],
    ['30-20', 'PORT_RANGE_REVERSED', /"30-20" is reversed/],
    ['sshh', 'PORT_UNKNOWN_NAME', /unknown service name "sshh"/],
    ['nosuchservicexyz', 'PORT_UNKNOWN_NAME', /nosuchservicexyz/],
    ['S:80', 'PROTOCOL_UNKNOWN', /"S:"/],
    ['icmp/8', 'PROTOCOL_UNKNOWN', /icmp\/8/],
    ['T:', 'PORT_SPEC_EMPTY', /empty item/],
    ['22-23-24', 'PORT_SPEC_INVALID', /22-23-24/],
    ['1.5', 'PORT_SPEC_INVALID', /1\.5/],
    ['udp/ssh', 'PORT_SPEC_INVALID', /no udp port/],
    ['$(reboot)', 'PORT_SPEC_INVALID', /cannot read/],
  ])('%j -> %s', (spec, code, message) => {
    let thrown: unknown;
    try {
      parsePortSpec(spec);
    } catch (error) {
      thrown = error;
    }
    expect(isPortwardenError(thrown)).toBe(true);
    if (!isPortwardenError(thrown)) return;
    expect(thrown.code).toBe(code);
    expect(thrown.message).toMatch(message);
    expect(thrown.hint).toBeTruthy();
  });

  it('suggests the closest name for a misspelling', () => {
    expect(() => parsePortSpec('htpps')).toThrow(expect.objectContaining({ hint: 'did you mean "https"?' }));
  });
});

const rangeArb = fc
  .tuple(fc.integer({ min: 0, max: 65_535 }), fc.integer({ min: 0, max: 200 }))
  .map(([from, width]) => ({ from, to: Math.min(65_535, from + width) }));

describe('parsePortSpec: properties', () => {
  it('parse(format(set)) == set', () => {
    fc.assert(
      fc.property(fc.array(rangeArb, { maxLength: 8 }), fc.array(rangeArb, { maxLength: 8 }), (tcp, udp) => {
        fc.pre(tcp.length + udp.length > 0);
        const set = parsePortSpec(formatPortSet({ tcp, udp }).replace(/^$/, '0'));
        expect(parsePortSpec(formatPortSet(set))).toEqual(set);
      }),
    );
  });

  it('produces sorted, disjoint, non-adjacent ranges', () => {
    fc.assert(
      fc.property(fc.array(rangeArb, { minLength: 1, maxLength: 12 }), (ranges) => {
        const spec = ranges.map((r) => `${r.from}-${r.to}`).join(',');
        const { tcp } = parsePortSpec(spec);
        for (let i = 1; i < tcp.length; i++) expect(tcp[i]!.from).toBeGreaterThan(tcp[i - 1]!.to + 1);
      }),
    );
  });

  it('never crashes: any string either parses or throws a PortwardenError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.stringMatching(/^[-,:/0-9TUtcpudp ]{0,20}$/)), (input) => {
        try {
          parsePortSpec(input);
        } catch (error) {
          expect(isPortwardenError(error)).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('matches a hand-built set', () => {
    expect(parsePortSpec('21-25,23')).toEqual(T([21, 25]));
  });
});
