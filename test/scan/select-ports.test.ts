import { describe, expect, it } from 'vitest';
import { curatedCatalog } from '../../src/catalog/curated.ts';
import { parsePortSpec } from '../../src/catalog/port-spec.ts';
import { selectPorts } from '../../src/scan/scan.ts';

describe('selectPorts (what scan probes)', () => {
  it('defaults to 1-1023 plus the curated TCP services above it, no UDP', () => {
    const { tcp, udp } = selectPorts({});
    expect(tcp.slice(0, 3)).toEqual([1, 2, 3]);
    expect(tcp).toContain(1023);
    expect(tcp).toContain(3306);
    expect(tcp).not.toContain(1024);
    expect(udp).toEqual([]);
  });

  it('bare numbers are TCP, or UDP with udp (as nmap -sU); T:/U: choose per item', () => {
    expect(selectPorts({ ports: '22,53' })).toEqual({ tcp: [22, 53], udp: [] });
    expect(selectPorts({ ports: '22,53', udp: true })).toEqual({ tcp: [], udp: [22, 53] });
    expect(selectPorts({ ports: 'T:22,U:53,161' })).toEqual({ tcp: [22], udp: [53, 161] });
    expect(selectPorts({ ports: parsePortSpec('ssh,U:ntp') })).toEqual({ tcp: [22], udp: [123] });
  });

  it('top takes the catalog order, per protocol', () => {
    const { top } = curatedCatalog();
    expect(selectPorts({ top: 5 })).toEqual({ tcp: top.tcp.slice(0, 5), udp: [] });
    expect(selectPorts({ top: 5, udp: true })).toEqual({ tcp: [], udp: top.udp.slice(0, 5) });
    expect(selectPorts({ udp: true })).toEqual({ tcp: [], udp: top.udp });
  });

  it('refuses a selection with no port', () => {
    expect(() => selectPorts({ top: 0 })).toThrow(expect.objectContaining({ code: 'OPTION_INVALID' }));
    expect(() => selectPorts({ ports: { tcp: [], udp: [] } })).toThrow(
      expect.objectContaining({ code: 'PORT_SPEC_EMPTY' }),
    );
  });
});
