import { formatAddress, parseAddress } from '../catalog/address.ts';
import { PortwardenError } from '../errors.ts';

/**
 * The recorder: verify's own nftables tables in the lab's host namespace, which write down where each
 * probe packet got to. Two points bracket the ruleset under test:
 *
 * - **in**, before any of its chains: netdev ingress of every lab interface at the lowest priority
 *   (packets from peers), and the output hook at the lowest priority (packets the host sends);
 * - **pass**, after all of its chains: input and postrouting at priority INT_MAX-1, one below
 *   conntrack's confirmation, so a recorded probe is dropped there before conntrack keeps an entry for
 *   it (the table never fills, whatever the probe count) and before it could reach a socket or a wire.
 *
 * A probe seen at *in* and not at *pass* was dropped by the ruleset; one not seen at *in* never got to
 * the ruleset and is sent again. Probes are told from all other traffic by their source ports
 * (PROBE_SPORT_FIRST.. plus the attempt) and, for TCP, a bare SYN. Large sets cost the kernel a
 * quadratic dump, so the recorder keeps exact per-port records only for the minority: probes the
 * policy expects to pass (at *in* and at *pass*) and probes that pass although the policy blocks them
 * (sharded by port, 64 sets a family). Every other probe is only counted per (source, destination,
 * protocol): when the count at *in* equals the number sent, every one of them arrived, and each one
 * not recorded at *pass* was blocked.
 */

export const PROBE_SPORT_FIRST = 61000;
export const PROBE_SPORT_LAST = 61063;
/** Lowest and highest netfilter priorities; conntrack confirms at INT_MAX. */
export const PRIORITY_FIRST = -2147483648;
export const PRIORITY_PASS = 2147483646;

export const TABLE_IN_NETDEV = 'pwverify_in';
export const TABLE_IN_INET = 'pwverify_out';
export const TABLE_PASS = 'pwverify_pass';

const SHARDS = 64;

/** Source, destination, protocol and a destination port range: one element of an expectation set. */
export interface KeyRange {
  src: string;
  dst: string;
  protocol: 'tcp' | 'udp';
  from: number;
  to: number;
}

export interface RecorderSpec {
  /** The host's lab interfaces (ingress is watched on each). */
  interfaces: readonly string[];
  /** Probes expected to pass, keyed as they arrive (before NAT). */
  expectIn: readonly KeyRange[];
  /** Probes expected to pass, keyed as they leave the ruleset (after NAT). */
  expectPass: readonly KeyRange[];
}

const FIELDS = { 4: ['ipv4_addr', 'ip'], 6: ['ipv6_addr', 'ip6'] } as const;

/** An interface name as an nft string; the lab only makes names the kernel accepts (max 15 bytes). */
function deviceName(ifname: string): string {
  if (!/^[A-Za-z0-9_.@-]{1,15}$/.test(ifname))
    throw new PortwardenError('INTERNAL', `lab interface name "${ifname}" is not a kernel interface name`);
  return `"${ifname}"`;
}

function familyOf(address: string): 4 | 6 {
  return address.includes(':') ? 6 : 4;
}

/** Keys: (source, destination, protocol, destination port), or the source port for the counters. */
function keyType(family: 4 | 6): string {
  const addr = FIELDS[family][0];
  return `${addr} . ${addr} . inet_proto . inet_service`;
}

function keyExpr(family: 4 | 6, port: 'dport' | 'sport' = 'dport'): string {
  const p = FIELDS[family][1];
  return `${p} saddr . ${p} daddr . meta l4proto . th ${port}`;
}

/**
 * The key after the ruleset: the source as the connection began (masquerade and SNAT undone through
 * conntrack's original tuple), the destination as the packet now has it (after DNAT), so a forward
 * is recorded where it leads and a masqueraded probe is still known by its sender.
 */
function passKeyExpr(family: 4 | 6, port: 'dport' | 'sport' = 'dport'): string {
  const p = FIELDS[family][1];
  return `ct original ${p} saddr . ${p} daddr . meta l4proto . th ${port}`;
}

function elements(ranges: readonly KeyRange[], family: 4 | 6): string {
  const mine = ranges.filter((r) => familyOf(r.dst) === family);
  if (mine.length === 0) return '';
  const items = mine.map(
    (r) => `${r.src} . ${r.dst} . ${r.protocol} . ${r.from === r.to ? r.from : `${r.from}-${r.to}`}`,
  );
  return ` elements = { ${items.join(', ')} };`;
}

function dynamicSet(name: string, type: string, counter = false): string {
  return `  set ${name} { type ${type}; flags dynamic;${counter ? ' counter;' : ''} size 4194304; }`;
}

/** The common head of a recording chain: only probes go on. */
const PROBE_FILTER = [
  '    meta l4proto != { tcp, udp } return',
  '    meta l4proto tcp tcp flags & (fin|syn|rst|ack) != syn return',
  `    th sport != ${PROBE_SPORT_FIRST}-${PROBE_SPORT_LAST} return`,
];

function inTable(family: 'netdev' | 'inet', name: string, spec: RecorderSpec, hooks: string[]): string {
  const nfproto = (f: 4 | 6): string =>
    family === 'netdev' ? `meta protocol ${f === 4 ? 'ip' : 'ip6'}` : `meta nfproto ipv${f}`;
  const lines = [`table ${family} ${name} {`];
  for (const f of [4, 6] as const) {
    lines.push(`  set exp${f} { type ${keyType(f)}; flags interval;${elements(spec.expectIn, f)} }`);
    lines.push(dynamicSet(`inp${f}`, keyType(f)));
    lines.push(dynamicSet(`cin${f}`, keyType(f), true));
  }
  lines.push(...hooks);
  lines.push(
    '  chain rec {',
    ...PROBE_FILTER,
    `    ${nfproto(4)} jump rec4`,
    `    ${nfproto(6)} jump rec6`,
    '  }',
  );
  for (const f of [4, 6] as const) {
    lines.push(
      `  chain rec${f} {`,
      `    update @cin${f} { ${keyExpr(f, 'sport')} }`,
      `    ${keyExpr(f)} @exp${f} update @inp${f} { ${keyExpr(f)} }`,
      '  }',
    );
  }
  lines.push('}');
  return lines.join('\n');
}

/** The tables recording arrivals (*in*); loaded before the ruleset under test. */
export function recorderInRuleset(spec: RecorderSpec): string {
  const ingress = spec.interfaces.map(
    (ifname, i) =>
      `  chain ing${i} { type filter hook ingress device ${deviceName(ifname)} priority ${PRIORITY_FIRST}; policy accept; jump rec; }`,
  );
  const output = [
    `  chain output { type filter hook output priority ${PRIORITY_FIRST}; policy accept; jump rec; }`,
  ];
  return `${inTable('netdev', TABLE_IN_NETDEV, spec, ingress)}\n${inTable('inet', TABLE_IN_INET, spec, output)}\n`;
}

function shardRanges(): { from: number; to: number }[] {
  const width = 65536 / SHARDS;
  return Array.from({ length: SHARDS }, (_, i) => ({ from: i * width, to: i * width + width - 1 }));
}

/** The table recording what got through (*pass*); loaded after the ruleset under test. */
export function recorderPassRuleset(spec: RecorderSpec): string {
  const lines = [`table inet ${TABLE_PASS} {`];
  for (const f of [4, 6] as const) {
    lines.push(`  set exp${f} { type ${keyType(f)}; flags interval;${elements(spec.expectPass, f)} }`);
    lines.push(dynamicSet(`pp${f}`, keyType(f)));
    lines.push(dynamicSet(`cpass${f}`, keyType(f), true));
    for (let i = 0; i < SHARDS; i++) lines.push(dynamicSet(`un${f}_${i}`, keyType(f)));
  }
  for (const hook of ['input', 'postrouting'])
    lines.push(
      `  chain ${hook} { type filter hook ${hook} priority ${PRIORITY_PASS}; policy accept; jump rec; }`,
    );
  lines.push(
    '  chain rec {',
    ...PROBE_FILTER,
    '    meta nfproto ipv4 jump rec4',
    '    meta nfproto ipv6 jump rec6',
    '  }',
  );
  for (const f of [4, 6] as const) {
    const vmap = shardRanges()
      .map((r, i) => `${r.from}-${r.to} : jump u${f}_${i}`)
      .join(', ');
    lines.push(
      `  chain rec${f} {`,
      // a ruleset may exempt packets from conntrack (notrack): they keep their own addresses
      `    ct state untracked jump raw${f}`,
      `    ${passKeyExpr(f)} @exp${f} update @pp${f} { ${passKeyExpr(f)} } drop`,
      `    th dport vmap { ${vmap} }`,
      '  }',
      `  chain raw${f} {`,
      `    ${keyExpr(f)} @exp${f} update @pp${f} { ${keyExpr(f)} } drop`,
      `    update @cpass${f} { ${keyExpr(f, 'sport')} } update @un${f}_0 { ${keyExpr(f)} } drop`,
      '  }',
    );
    for (let i = 0; i < SHARDS; i++)
      lines.push(
        `  chain u${f}_${i} { update @cpass${f} { ${passKeyExpr(f, 'sport')} } update @un${f}_${i} { ${passKeyExpr(f)} } drop; }`,
      );
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/** nft commands that empty every dynamic set of the recorder (between rounds). */
export function recorderFlush(): string {
  const out: string[] = [];
  for (const f of [4, 6]) {
    for (const table of [`netdev ${TABLE_IN_NETDEV}`, `inet ${TABLE_IN_INET}`])
      out.push(`flush set ${table} inp${f}`, `flush set ${table} cin${f}`);
    out.push(`flush set inet ${TABLE_PASS} pp${f}`, `flush set inet ${TABLE_PASS} cpass${f}`);
    for (let i = 0; i < SHARDS; i++) out.push(`flush set inet ${TABLE_PASS} un${f}_${i}`);
  }
  return `${out.join('\n')}\n`;
}

/** A probe's identity as the recorder keys it. */
export function probeKey(src: string, dst: string, protocol: string, port: number): string {
  return `${src}|${dst}|${protocol}|${port}`;
}

/** A (source, destination, protocol, source port) counter's key. */
export function countKey(src: string, dst: string, protocol: string, sport: number): string {
  return `${src}|${dst}|${protocol}|${sport}`;
}

/** What the recorder saw, read from `nft -j list table ...`. */
export interface Records {
  /** Probes expected to pass that arrived. */
  arrivedExpected: Set<string>;
  /** Probes counted at *in* per (source, destination, protocol, source port = attempt). */
  arrivedCount: Map<string, number>;
  /** Probes recorded at *pass* (expected or not); the unexpected ones only when read in full. */
  passed: Set<string>;
  /** Unexpected passes counted per (source, destination, protocol, source port = attempt). */
  passedCount: Map<string, number>;
}

export function emptyRecords(): Records {
  return { arrivedExpected: new Set(), arrivedCount: new Map(), passed: new Set(), passedCount: new Map() };
}

type Json = unknown;

function isObject(value: Json): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function canonical(address: Json): string {
  const parsed = typeof address === 'string' ? parseAddress(address) : null;
  return parsed ? formatAddress(parsed.family, parsed.value) : String(address);
}

const PROTOCOL_NUMBERS: Record<string, string> = { '6': 'tcp', '17': 'udp' };

function keyParts(value: Json): string[] | undefined {
  if (!isObject(value) || !Array.isArray(value.concat)) return undefined;
  const [src, dst, proto, port] = value.concat as Json[];
  const protocol = PROTOCOL_NUMBERS[String(proto)] ?? String(proto);
  const parts = [canonical(src), canonical(dst), protocol];
  if (typeof port === 'number' || typeof port === 'string') parts.push(String(port));
  return parts;
}

/** The small sets of *pass* (expected passes and the counters), read on every round. */
export const PASS_SUMMARY_SETS = ['pp4', 'pp6', 'cpass4', 'cpass6'];

/** Adds the sets of one `nft -j list table|set` listing to `into`. */
export function readRecords(listing: string, into: Records): Records {
  const parsed = JSON.parse(listing) as { nftables?: Json[] };
  for (const item of parsed.nftables ?? []) {
    if (!isObject(item) || !isObject(item.set)) continue;
    const name = String(item.set.name);
    const elems = Array.isArray(item.set.elem) ? (item.set.elem as Json[]) : [];
    for (const elem of elems) {
      if (/^inp[46]$/.test(name) || /^pp[46]$/.test(name) || /^un[46]_\d+$/.test(name)) {
        const parts = keyParts(elem);
        if (parts) (name.startsWith('inp') ? into.arrivedExpected : into.passed).add(parts.join('|'));
      } else if (/^c(in|pass)[46]$/.test(name) && isObject(elem) && isObject(elem.elem)) {
        const parts = keyParts(elem.elem.val);
        const counter = elem.elem.counter;
        const packets = isObject(counter) ? Number(counter.packets) : 0;
        const counts = name.startsWith('cin') ? into.arrivedCount : into.passedCount;
        if (parts) counts.set(parts.join('|'), (counts.get(parts.join('|')) ?? 0) + packets);
      }
    }
  }
  return into;
}
