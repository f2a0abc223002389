import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NetnsLab } from '../../src/lab/netns.ts';
import { BIN } from '../helpers/cli.ts';
import { describeRootTier } from '../helpers/root-tier.ts';

const OPEN = [53, 123, 161, 5353, 40000, 40001, 40002, 40003];
const CLOSED = Array.from({ length: 12 }, (_, i) => 41000 + i);
const DROPPED = Array.from({ length: 8 }, (_, i) => 42000 + i);

// Responders that answer like the real services would enough to be "a reply": DNS flips the QR bit
// of the query, NTP answers mode 4, everything else echoes.
const RESPONDER = `
const dgram = require('node:dgram');
for (const port of ${JSON.stringify(OPEN)}) {
  const s = dgram.createSocket('udp4');
  s.on('message', (msg, rinfo) => {
    let reply = Buffer.from(msg);
    if (port === 53 && reply.length >= 12) reply[2] |= 0x80;
    else if (port === 123) { reply = Buffer.alloc(48); reply[0] = 0x24; reply[1] = 2; }
    else if (reply.length === 0) reply = Buffer.from('hello');
    s.send(reply, rinfo.port, rinfo.address);
  });
  s.bind(port, '0.0.0.0');
}
setTimeout(() => process.stdout.write('ready\\n'), 200);
setInterval(() => {}, 1 << 30);
`;

interface ScanJson {
  hosts: {
    ports: { protocol: string; port: number; state: string; reason: string; service: string }[];
    extraPorts: unknown[];
  }[];
}

await describeRootTier('UDP scan across a veth pair, despite the ICMP rate limit', ['ip', 'nft'], () => {
  const lab = new NetnsLab('udp');
  const dir = mkdtempSync(join(tmpdir(), 'pw-udp-'));
  let json: ScanJson;

  beforeAll(async () => {
    const scanner = await lab.addNamespace('s');
    const target = await lab.addNamespace('t');
    await lab.link({ ns: scanner, ifname: 'eth0' }, { ns: target, ifname: 'eth0' });
    await lab.addAddress(scanner, 'eth0', '198.51.100.1/24');
    await lab.addAddress(target, 'eth0', '198.51.100.2/24');
    const rules = join(dir, 'drop.nft');
    writeFileSync(
      rules,
      `table inet t {\n chain input { type filter hook input priority 0; policy accept; udp dport ${DROPPED[0]}-${DROPPED[DROPPED.length - 1]} drop; }\n}\n`,
    );
    await lab.exec(target, ['nft', '-f', rules]);
    const responder = lab.spawn(target, [process.execPath, '-e', RESPONDER]);
    await once(responder.stdout!, 'data');
    const ports = [...OPEN, ...CLOSED, ...DROPPED].join(',');
    const result = await lab.exec(
      scanner,
      [process.execPath, BIN, 'scan', '198.51.100.2', '-sU', '-p', ports, '--json'],
      { timeoutMs: 90_000 },
    );
    json = JSON.parse(result.stdout) as ScanJson;
  }, 120_000);

  afterAll(async () => {
    await lab.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every port gets its exact state: open, closed (more closed ports than the ICMP burst), open|filtered', () => {
    const state = new Map(json.hosts[0]?.ports.map((p) => [p.port, p.state]));
    expect(json.hosts[0]?.ports.every((p) => p.protocol === 'udp')).toBe(true);
    for (const p of OPEN) expect(state.get(p), `udp/${p}`).toBe('open');
    for (const p of CLOSED) expect(state.get(p), `udp/${p}`).toBe('closed');
    for (const p of DROPPED) expect(state.get(p), `udp/${p}`).toBe('open|filtered');
  });

  it('names what answered from the protocol reply', () => {
    const service = new Map(json.hosts[0]?.ports.map((p) => [p.port, p.service]));
    expect(service.get(53)).toBe('dns');
    expect(service.get(123)).toBe('ntp');
  });
});
