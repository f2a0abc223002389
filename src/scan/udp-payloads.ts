/**
 * Protocol payloads for UDP probes, chosen by port, and parsers that name what answered. A UDP
 * service only answers a request it understands, so an empty datagram finds little; these are
 * pure byte builders, tested on their own.
 */

export interface UdpPayload {
  name: string;
  build(id: number): Buffer;
  /** Names the reply when it is the protocol's answer, with a short banner; null otherwise. */
  parse(reply: Buffer, id: number): { service: string; banner?: string } | null;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n & 0xffff);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** A DNS name in wire format: length-prefixed labels and a zero byte. */
export function dnsName(name: string): Buffer {
  const parts = name.split('.').filter((p) => p.length > 0);
  return Buffer.concat([
    ...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, 'ascii')])),
    Buffer.from([0]),
  ]);
}

function dnsQuery(id: number, name: string, type: number, klass: number, flags = 0x0100): Buffer {
  return Buffer.concat([
    u16(id),
    u16(flags),
    u16(1),
    u16(0),
    u16(0),
    u16(0),
    dnsName(name),
    u16(type),
    u16(klass),
  ]);
}

function dnsReply(reply: Buffer, id: number): boolean {
  return reply.length >= 12 && reply.readUInt16BE(0) === (id & 0xffff) && (reply[2] ?? 0) >> 7 === 1;
}

/** BER length and TLV helpers for the SNMP request. */
function ber(tag: number, content: Buffer): Buffer {
  const len = content.length;
  const head =
    len < 128
      ? Buffer.from([tag, len])
      : len < 256
        ? Buffer.from([tag, 0x81, len])
        : Buffer.from([tag, 0x82, len >> 8, len & 0xff]);
  return Buffer.concat([head, content]);
}

function berInt(n: number): Buffer {
  const bytes: number[] = [];
  let v = n >>> 0;
  do {
    bytes.unshift(v & 0xff);
    v >>>= 8;
  } while (v > 0);
  if ((bytes[0] ?? 0) & 0x80) bytes.unshift(0);
  return ber(0x02, Buffer.from(bytes));
}

const SYS_DESCR = Buffer.from([0x2b, 6, 1, 2, 1, 1, 1, 0]); // 1.3.6.1.2.1.1.1.0

/** SNMPv2c GetRequest for sysDescr.0 with community "public". */
export function snmpGet(id: number, version: 0 | 1 = 1): Buffer {
  const varbind = ber(0x30, Buffer.concat([ber(0x06, SYS_DESCR), Buffer.from([0x05, 0x00])]));
  const pdu = ber(0xa0, Buffer.concat([berInt(id & 0x7fffffff), berInt(0), berInt(0), ber(0x30, varbind)]));
  return ber(0x30, Buffer.concat([berInt(version), ber(0x04, Buffer.from('public')), pdu]));
}

/** The sysDescr string of an SNMP GetResponse, found after the OID. */
export function parseSnmpSysDescr(reply: Buffer): string | null {
  if (reply[0] !== 0x30) return null;
  const at = reply.indexOf(SYS_DESCR);
  if (at < 0) return null;
  let i = at + SYS_DESCR.length;
  if (reply[i] !== 0x04) return null;
  let len = reply[i + 1] ?? 0;
  i += 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let k = 0; k < n; k++) len = (len << 8) | (reply[i + k] ?? 0);
    i += n;
  }
  return reply.subarray(i, i + len).toString('utf8');
}

/** NetBIOS name-service node status request for "*". */
function netbiosStatus(id: number): Buffer {
  const name = Buffer.alloc(34);
  name[0] = 32;
  // "*" padded with NULs, each nibble + 'A'
  const raw = Buffer.alloc(16);
  raw[0] = 0x2a;
  for (let i = 0; i < 16; i++) {
    const c = raw[i] ?? 0;
    name[1 + i * 2] = 0x41 + (c >> 4);
    name[2 + i * 2] = 0x41 + (c & 0x0f);
  }
  name[33] = 0;
  return Buffer.concat([u16(id), u16(0), u16(1), u16(0), u16(0), u16(0), name, u16(0x21), u16(1)]);
}

/** ONC RPC call: portmapper (100000) version 2, procedure NULL. */
function rpcNull(id: number): Buffer {
  return Buffer.concat([
    u32(id),
    u32(0),
    u32(2),
    u32(100000),
    u32(2),
    u32(0),
    u32(0),
    u32(0),
    u32(0),
    u32(0),
  ]);
}

/** ISAKMP (IKEv1) main mode header with one SA proposal (3DES/SHA1/PSK/group 2). */
function ikeMainMode(id: number): Buffer {
  const transform = Buffer.concat([
    Buffer.from([0, 0]), // last transform, reserved
    u16(36),
    Buffer.from([1, 1, 0, 0]), // transform #1, KEY_IKE
    Buffer.from([0x80, 0x01, 0x00, 0x05]), // encryption 3DES
    Buffer.from([0x80, 0x02, 0x00, 0x02]), // hash SHA1
    Buffer.from([0x80, 0x03, 0x00, 0x01]), // auth pre-shared key
    Buffer.from([0x80, 0x04, 0x00, 0x02]), // group 2
    Buffer.from([0x80, 0x0b, 0x00, 0x01]), // life type seconds
    Buffer.from([0x80, 0x0c, 0x70, 0x80]), // 28800 s
  ]);
  const proposal = Buffer.concat([
    Buffer.from([0, 0]),
    u16(8 + transform.length),
    Buffer.from([1, 1, 0, 1]),
    transform,
  ]);
  const sa = Buffer.concat([Buffer.from([0, 0]), u16(12 + proposal.length), u32(1), u32(1), proposal]);
  const cookie = Buffer.concat([u32(id), u32(0x70776172)]);
  const header = Buffer.concat([
    cookie,
    Buffer.alloc(8),
    Buffer.from([1, 0x10, 2, 0]),
    u32(0),
    u32(28 + sa.length),
  ]);
  return Buffer.concat([header, sa]);
}

const SSDP_SEARCH = Buffer.from(
  'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n',
);

const printable = (b: Buffer, max = 60): string =>
  b
    .toString('latin1')
    .replace(/[^\x20-\x7e]+/g, ' ')
    .trim()
    .slice(0, max);

export const UDP_PAYLOADS: Readonly<Record<number, UdpPayload>> = {
  53: {
    name: 'dns',
    build: (id) => dnsQuery(id, 'version.bind', 16, 3),
    parse: (r, id) => (dnsReply(r, id) ? { service: 'dns' } : null),
  },
  69: {
    name: 'tftp',
    build: () => Buffer.concat([u16(1), Buffer.from('portwarden-probe\0octet\0')]),
    parse: (r) =>
      r.length >= 4 && (r.readUInt16BE(0) === 5 || r.readUInt16BE(0) === 3)
        ? { service: 'tftp', banner: r.readUInt16BE(0) === 5 ? printable(r.subarray(4)) : 'data' }
        : null,
  },
  111: {
    name: 'rpcbind',
    build: (id) => rpcNull(id),
    parse: (r, id) =>
      r.length >= 8 && r.readUInt32BE(0) === id >>> 0 && r.readUInt32BE(4) === 1
        ? { service: 'rpcbind' }
        : null,
  },
  123: {
    name: 'ntp',
    build: () => Buffer.concat([Buffer.from([0x23]), Buffer.alloc(47)]),
    parse: (r) =>
      r.length >= 48 && ((r[0] ?? 0) & 0x07) === 4
        ? { service: 'ntp', banner: `stratum ${r[1] ?? '?'}` }
        : null,
  },
  137: {
    name: 'netbios-ns',
    build: (id) => netbiosStatus(id),
    parse: (r, id) =>
      r.length >= 12 && r.readUInt16BE(0) === (id & 0xffff) ? { service: 'netbios-ns' } : null,
  },
  161: {
    name: 'snmp',
    build: (id) => snmpGet(id),
    parse: (r) => {
      const descr = parseSnmpSysDescr(r);
      return descr !== null
        ? { service: 'snmp', banner: descr.slice(0, 120) }
        : r[0] === 0x30
          ? { service: 'snmp' }
          : null;
    },
  },
  500: {
    name: 'isakmp',
    build: (id) => ikeMainMode(id),
    parse: (r, id) => (r.length >= 28 && r.readUInt32BE(0) === id >>> 0 ? { service: 'isakmp' } : null),
  },
  1900: {
    name: 'ssdp',
    build: () => SSDP_SEARCH,
    parse: (r) =>
      /^HTTP\/1\.1 200/.test(r.toString('latin1'))
        ? { service: 'ssdp', banner: /SERVER: ([^\r\n]+)/i.exec(r.toString('latin1'))?.[1] ?? '' }
        : null,
  },
  5353: {
    name: 'mdns',
    build: (id) => dnsQuery(id, '_services._dns-sd._udp.local', 12, 1, 0),
    parse: (r) => (r.length >= 12 && (r[2] ?? 0) >> 7 === 1 ? { service: 'mdns' } : null),
  },
};

/** The payload for a port (an empty datagram when no protocol is known). */
export function payloadFor(port: number): UdpPayload {
  return (
    UDP_PAYLOADS[port] ?? {
      name: 'empty',
      build: () => Buffer.alloc(0),
      parse: (r) => ({ service: 'unknown', ...(r.length > 0 ? { banner: printable(r) } : {}) }),
    }
  );
}
