import { existsSync } from 'node:fs';
import type { NetnsLab } from '../lab/netns.ts';
import { PortwardenError } from '../errors.ts';

/**
 * The probe sender: a small Python program run inside a lab namespace. verify learns every verdict
 * from the kernel's own records (see recorder.ts), so a probe is one packet sent and forgotten — a TCP
 * SYN or a UDP datagram built by hand and written to a raw socket. Node has no raw sockets; python3's
 * standard library does, and it is on every Debian machine that has iproute2's companions.
 *
 * IPPROTO_RAW sockets (IPv4 with the header included, IPv6 likewise since Linux 4.5) only send: they
 * never receive a copy of incoming traffic, which a raw TCP socket would for every packet in the lab.
 * Raw sends pass the output and postrouting hooks like any other packet, so conntrack and the ruleset
 * under test see an ordinary first packet of a new connection.
 *
 * Input (stdin, one job a line): `SRC DST PROTO SPORT RANGES`, RANGES as `1-19,21-65535`.
 * Output (stdout): `{"sent": N, "refused": N, "errors": {"ENOBUFS": N}}` — `refused` counts EPERM, a
 * packet the output hook dropped (it was recorded before the ruleset ran, so it counts as sent).
 */
export const RAW_SENDER_PY = String.raw`
import errno, json, socket, struct, sys

def fold(s):
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return s

def words(b):
    return sum(struct.unpack('!%dH' % (len(b) // 2), b))

stats = {'sent': 0, 'refused': 0, 'errors': {}}
socks = {}

def sock(family):
    if family not in socks:
        s = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_RAW)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        socks[family] = s
    return socks[family]

def send(src, dst, proto, sport, ranges):
    v6 = ':' in dst
    family = socket.AF_INET6 if v6 else socket.AF_INET
    s = sock(family)
    pnum = 6 if proto == 'tcp' else 17
    saddr = socket.inet_pton(family, src)
    daddr = socket.inet_pton(family, dst)
    if proto == 'tcp':
        l4 = bytearray(struct.pack('!HHIIBBHHH', sport, 0, 0x70770000, 0, 5 << 4, 0x02, 64240, 0, 0))
        coff = 16
    else:
        l4 = bytearray(struct.pack('!HHHH', sport, 0, 8, 0))
        coff = 6
    if v6:
        ip = struct.pack('!IHBB', 6 << 28, len(l4), pnum, 64) + saddr + daddr
        to = (dst, 0, 0, 0)
    else:
        ip = struct.pack('!BBHHHBBH', 0x45, 0, 20 + len(l4), 0, 0x4000, 64, pnum, 0) + saddr + daddr
        to = (dst, 0)
    base = words(saddr + daddr) + pnum + len(l4) + words(bytes(l4))
    packet = bytearray(ip + bytes(l4))
    off = len(ip)
    for part in ranges.split(','):
        lo, _, hi = part.partition('-')
        for port in range(int(lo), int(hi or lo) + 1):
            c = (~fold(base + port)) & 0xffff
            if proto == 'udp' and c == 0:
                c = 0xffff
            struct.pack_into('!H', packet, off + 2, port)
            struct.pack_into('!H', packet, off + coff, c)
            try:
                s.sendto(packet, to)
                stats['sent'] += 1
            except OSError as e:
                if e.errno == errno.EPERM:
                    stats['sent'] += 1
                    stats['refused'] += 1
                else:
                    name = errno.errorcode.get(e.errno, str(e.errno))
                    stats['errors'][name] = stats['errors'].get(name, 0) + 1

for line in sys.stdin:
    f = line.split()
    if len(f) == 5:
        send(f[0], f[1], f[2], int(f[3]), f[4])
json.dump(stats, sys.stdout)
`;

/**
 * Debian's own interpreter when it is there: version managers put a shell-script shim first on PATH
 * that costs more than the whole sender run for small rounds.
 */
function python(): string {
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

/** One line of work for the sender: every port of `ranges` from src:sport to dst. */
export interface SendJob {
  src: string;
  dst: string;
  protocol: 'tcp' | 'udp';
  sport: number;
  /** Port ranges as `1-19,21-65535`. */
  ranges: string;
}

export interface SendStats {
  sent: number;
  refused: number;
  errors: Record<string, number>;
}

/** The sender's input: one job a line (the port sets travel by stdin, never argv). */
export function formatSendJobs(jobs: readonly SendJob[]): string {
  return jobs.map((j) => `${j.src} ${j.dst} ${j.protocol} ${j.sport} ${j.ranges}\n`).join('');
}

/** Sends the jobs from inside `ns` and returns what the sender counted. */
export async function sendProbes(lab: NetnsLab, ns: string, jobs: readonly SendJob[]): Promise<SendStats> {
  if (jobs.length === 0) return { sent: 0, refused: 0, errors: {} };
  const result = await lab.exec(ns, [python(), '-S', '-E', '-c', RAW_SENDER_PY], {
    input: formatSendJobs(jobs),
    timeoutMs: 120_000,
  });
  try {
    return JSON.parse(result.stdout) as SendStats;
  } catch {
    throw new PortwardenError('TOOL_FAILED', `the probe sender in ${ns} printed no result`, {
      hint: `its error output was: ${result.stderr.trim().slice(0, 200) || '(none)'}`,
    });
  }
}
