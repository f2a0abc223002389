import type { PortRange } from '../catalog/types.ts';
import type { Cidr, Verdict } from '../policy/types.ts';
import type { Backend, CompileMeta, CompiledFile } from './backend.ts';
import type { Ir, IrNat, IrRule, IrZoneChain } from './ir.ts';
import { logPrefix } from './log-prefix.ts';
import { formatMark, programMark } from './program-mark.ts';
import { hashComment, nftComment, nftString } from './_quote.ts';

/**
 * nftables: one `inet portwarden` table, replaced atomically by `nft -f` (declare, delete, define
 * in one transaction — never `flush ruleset`, which wipes Docker's and libvirt's tables, and never
 * `flush table`, which keeps old set elements). Ports and addresses live in named interval sets,
 * so the rule count grows with rules and zones, not with ports.
 */

const TABLE = 'portwarden';

/** nft identifiers: letters, digits and `_`. */
function ident(text: string): string {
  return text.replace(/[^A-Za-z0-9_]/g, '_');
}

function ranges(list: readonly PortRange[]): string {
  return list.map((r) => (r.from === r.to ? String(r.from) : `${r.from}-${r.to}`)).join(', ');
}

interface SetDef {
  name: string;
  type: 'inet_service' | 'ipv4_addr' | 'ipv6_addr';
  elements: string;
}

class NftWriter {
  readonly sets: SetDef[] = [];
  private readonly setNames = new Set<string>();

  portSet(name: string, ports: readonly PortRange[]): string {
    return this.addSet(name, 'inet_service', ranges(ports));
  }

  addressSet(name: string, family: 4 | 6, cidrs: readonly Cidr[]): string {
    return this.addSet(name, family === 4 ? 'ipv4_addr' : 'ipv6_addr', cidrs.map((c) => c.text).join(', '));
  }

  private addSet(name: string, type: SetDef['type'], elements: string): string {
    const id = ident(name);
    if (!this.setNames.has(id)) {
      this.setNames.add(id);
      this.sets.push({ name: id, type, elements });
    }
    return `@${id}`;
  }
}

/** `ip saddr @x` / `ip6 daddr @y` alternatives for a membership list; [''] when it is empty. */
function membership(w: NftWriter, name: string, side: 'saddr' | 'daddr', cidrs: readonly Cidr[]): string[] {
  if (cidrs.length === 0) return [''];
  const out: string[] = [];
  for (const family of [4, 6] as const) {
    const list = cidrs.filter((c) => c.family === family);
    if (list.length > 0)
      out.push(
        `${family === 4 ? 'ip' : 'ip6'} ${side} ${w.addressSet(`${name}_${family === 4 ? 'v4' : 'v6'}`, family, list)} `,
      );
  }
  return out;
}

function ruleLines(w: NftWriter, rule: IrRule): string[] {
  const ports = w.portSet(rule.id, rule.ports);
  const peers = rule.saddr.length > 0 ? rule.saddr : rule.daddr;
  const side = rule.saddr.length > 0 ? 'saddr' : 'daddr';
  const addr =
    peers.length > 0 && rule.family !== null
      ? `${rule.family === 4 ? 'ip' : 'ip6'} ${side} ${w.addressSet(`${rule.id}_peers`, rule.family, peers)} `
      : '';
  const log = rule.log ? `log prefix ${nftString(`pw:ok:${rule.id}: `.slice(0, 28))} ` : '';
  return [`${addr}${rule.protocol} dport ${ports} counter ${log}accept comment ${nftComment(rule.comment)}`];
}

function endOfChain(
  ir: Ir,
  direction: 'in' | 'out' | 'fwd',
  zone: string,
  verdict: Verdict | null,
): string[] {
  const lines: string[] = [];
  if (ir.log)
    lines.push(
      `limit rate 5/second burst 10 packets log prefix ${nftString(logPrefix(direction, zone))} level info`,
    );
  if (verdict === 'reject')
    lines.push('meta l4proto tcp reject with tcp reset', 'reject with icmpx type port-unreachable');
  return lines;
}

function zoneChain(w: NftWriter, ir: Ir, chain: IrZoneChain): string[] {
  const side = chain.direction === 'in' ? 'saddr' : 'daddr';
  const lines: string[] = [];
  const members4 = chain.members.filter((c) => c.family === 4);
  const members6 = chain.members.filter((c) => c.family === 6);
  if (chain.members.length > 0) {
    // Only addresses listed in `sources` belong to the zone; everything else falls back to the base chain.
    const name = `${chain.direction}_${chain.zone}_members`;
    if (members4.length > 0) lines.push(`ip ${side} != ${w.addressSet(`${name}_v4`, 4, members4)} return`);
    else lines.push('meta nfproto ipv4 return');
    if (members6.length > 0) lines.push(`ip6 ${side} != ${w.addressSet(`${name}_v6`, 6, members6)} return`);
    else lines.push('meta nfproto ipv6 return');
  }
  for (const rule of chain.rules) lines.push(...ruleLines(w, rule));
  lines.push(...endOfChain(ir, chain.direction, chain.zone, null));
  return lines;
}

const ICMP_IN = ['destination-unreachable', 'time-exceeded', 'parameter-problem'];
const ICMPV6_ESSENTIAL = [
  'destination-unreachable',
  'packet-too-big',
  'time-exceeded',
  'parameter-problem',
  'nd-router-solicit',
  'nd-router-advert',
  'nd-neighbor-solicit',
  'nd-neighbor-advert',
];

function essentials(ir: Ir, direction: 'in' | 'out'): string[] {
  const echo = ir.icmpEcho ? ['echo-request'] : [];
  const lines = [
    direction === 'in' ? 'iif "lo" accept' : 'oif "lo" accept',
    'ct state invalid drop',
    'ct state established,related accept',
  ];
  if (direction === 'in' && ir.nat.some((n) => n.kind === 'dnat')) lines.push('ct status dnat accept');
  lines.push(`icmp type { ${[...ICMP_IN, ...echo].join(', ')} } accept`);
  lines.push(`icmpv6 type { ${[...ICMPV6_ESSENTIAL, ...echo].join(', ')} } accept`);
  // Neighbour discovery and MLD report use link-local sources; without them IPv6 stops working.
  lines.push(
    'icmpv6 type { mld-listener-query, mld-listener-report, mld2-listener-report } ip6 saddr fe80::/10 accept',
  );
  return lines;
}

function programMatch(rule: Ir['programs'][number]): string {
  switch (rule.program.kind) {
    case 'unit':
      // nft resolves the cgroup when the ruleset is loaded: reload after the unit (re)starts.
      return `socket cgroupv2 level 2 ${nftString(`system.slice/${rule.program.unit}`)} `;
    case 'user':
      return `meta skuid ${nftString(rule.program.user)} `;
    case 'path':
      // nft cannot see an executable: `watch --programs` marks the packets it attributed to this program.
      return `meta mark ${formatMark(programMark(rule.programIndex))} `;
  }
}

function natLines(nat: readonly IrNat[]): { pre: string[]; post: string[] } {
  const pre: string[] = [];
  const post: string[] = [];
  for (const n of nat) {
    if (n.kind === 'dnat') {
      const target =
        n.toFamily === 4 ? `ip to ${n.toAddress}:${n.toPort}` : `ip6 to [${n.toAddress}]:${n.toPort}`;
      const family = n.toFamily === 4 ? 'meta nfproto ipv4 ' : 'meta nfproto ipv6 ';
      for (const iface of n.interfaces) {
        const src = n.saddr.filter((c) => c.family === n.toFamily).map((c) => c.text);
        const from = src.length > 0 ? `${n.toFamily === 4 ? 'ip' : 'ip6'} saddr { ${src.join(', ')} } ` : '';
        pre.push(
          // only traffic addressed to this host is forwarded, not traffic routed through it
          `iifname ${nftString(iface)} ${family}fib daddr type local ${from}${n.protocol} dport ${n.port} dnat ${target} comment ${nftComment(n.comment)}`,
        );
      }
    } else {
      for (const iif of n.iif)
        for (const oif of n.oif)
          post.push(
            `iifname ${nftString(iif)} oifname ${nftString(oif)} masquerade comment ${nftComment(n.comment)}`,
          );
    }
  }
  return { pre, post };
}

function chainBlock(name: string, header: string | null, lines: readonly string[]): string {
  const body = [...(header ? [header] : []), ...lines].map((l) => `\t\t${l}`).join('\n');
  return `\tchain ${name} {\n${body}\n\t}`;
}

function policyWord(verdict: Verdict): string {
  return verdict === 'accept' ? 'accept' : 'drop';
}

/** The input base chain's rules (a jump per zone interface) and the zones' own chains. */
function inputChains(w: NftWriter, ir: Ir): { lines: string[]; zones: string[] } {
  const lines = essentials(ir, 'in');
  for (const chain of ir.input) {
    for (const iface of chain.interfaces)
      lines.push(`iifname ${nftString(iface)} jump in_${ident(chain.zone)}`);
  }
  lines.push(...endOfChain(ir, 'in', '-', ir.defaults.input));
  const zones = ir.input.map((chain) => chainBlock(`in_${ident(chain.zone)}`, null, zoneChain(w, ir, chain)));
  return { lines, zones };
}

/** The output base chain's rules (per-program rules, a jump per zone interface) and the zones' chains. */
function outputChains(w: NftWriter, ir: Ir): { lines: string[]; zones: string[] } {
  const lines = essentials(ir, 'out');
  for (const rule of ir.programs) {
    for (const line of ruleLines(w, rule)) lines.push(programMatch(rule) + line);
  }
  for (const chain of ir.output) {
    for (const iface of chain.interfaces)
      lines.push(`oifname ${nftString(iface)} jump out_${ident(chain.zone)}`);
  }
  lines.push(...endOfChain(ir, 'out', '-', ir.defaults.output));
  const zones = ir.output.map((chain) =>
    chainBlock(`out_${ident(chain.zone)}`, null, zoneChain(w, ir, chain)),
  );
  return { lines, zones };
}

/** Bridges of the container and VM managers the policy coexists with: their forwarding is theirs. */
function coexistLines(ir: Ir, notes: string[]): string[] {
  const lines: string[] = [];
  if (ir.coexist.includes('docker')) {
    notes.push(
      "coexist docker: forwarded traffic of docker0 and br-* bridges is left to Docker's own rules.",
    );
    for (const iface of ['docker0', 'br-*'])
      lines.push(`iifname ${nftString(iface)} accept`, `oifname ${nftString(iface)} accept`);
  }
  if (ir.coexist.includes('libvirt')) {
    notes.push("coexist libvirt: forwarded traffic of virbr* bridges is left to libvirt's own rules.");
    lines.push(`iifname "virbr*" accept`, `oifname "virbr*" accept`);
  }
  return lines;
}

/** The forward base chain's rules: state, coexistence, one rule per route and interface pair. */
function forwardLines(w: NftWriter, ir: Ir, notes: string[]): string[] {
  const lines = ['ct state invalid drop', 'ct state established,related accept'];
  if (ir.nat.some((n) => n.kind === 'dnat')) lines.push('ct status dnat accept');
  lines.push(...coexistLines(ir, notes));
  for (const route of ir.forward) {
    const ports = w.portSet(route.id, route.ports);
    for (const src of membership(w, `fwd_${route.fromZone}_members`, 'saddr', route.fromMembers))
      for (const iif of route.iif)
        for (const oif of route.oif)
          lines.push(
            `iifname ${nftString(iif)} oifname ${nftString(oif)} ${src}${route.protocol} dport ${ports} counter accept comment ${nftComment(route.comment)}`,
          );
  }
  lines.push(...endOfChain(ir, 'fwd', '-', ir.defaults.forward));
  if (ir.defaults.forward !== 'accept' && ir.coexist.length === 0) {
    notes.push(
      'forward policy drop: this also stops Docker/libvirt forwarding unless `coexist: [docker]` or `[libvirt]` is set.',
    );
  }
  return lines;
}

/** The NAT chains (port forwards and masquerading), only those with rules. */
function natChains(ir: Ir, notes: string[]): string[] {
  const { pre, post } = natLines(ir.nat);
  for (const n of ir.nat) {
    if (n.kind === 'dnat' && n.toLoopback) {
      notes.push(
        `${n.comment}: DNAT to 127.0.0.1 needs \`sysctl net.ipv4.conf.<iface>.route_localnet=1\` on ${n.interfaces.join(', ')}.`,
      );
    }
  }
  const chains: string[] = [];
  if (pre.length > 0)
    chains.push(
      chainBlock('nat_prerouting', 'type nat hook prerouting priority dstnat; policy accept;', pre),
    );
  if (post.length > 0)
    chains.push(
      chainBlock('nat_postrouting', 'type nat hook postrouting priority srcnat; policy accept;', post),
    );
  return chains;
}

/** The ftp conntrack helper object and the chains that attach it to tcp/21. */
function ftpHelperBlocks(ir: Ir, notes: string[]): { helpers: string[]; chains: string[] } {
  const helpers: string[] = [];
  const chains: string[] = [];
  if (!ir.ftpHelper.inbound && !ir.ftpHelper.outbound) return { helpers, chains };
  notes.push(
    'FTP: kernels no longer attach the ftp conntrack helper by themselves; it is attached to tcp/21 here, so active and passive data connections are accepted as related.',
  );
  helpers.push('\tct helper ftp_standard {\n\t\ttype "ftp" protocol tcp\n\t\tl3proto inet\n\t}');
  const attach = ['tcp dport 21 ct helper set "ftp_standard"'];
  if (ir.ftpHelper.inbound)
    chains.push(
      chainBlock('ftp_helper_in', 'type filter hook prerouting priority filter; policy accept;', attach),
    );
  if (ir.ftpHelper.outbound)
    chains.push(
      chainBlock('ftp_helper_out', 'type filter hook output priority filter; policy accept;', attach),
    );
  return { helpers, chains };
}

/** Notes on what the ruleset cannot do by itself: passive FTP ranges, per-unit cgroups. */
function loadNotes(ir: Ir): string[] {
  const notes = ir.ftpPassive.map(
    (p) => `FTP passive data range ${p.range.from}-${p.range.to} is open inbound in zone "${p.zone}".`,
  );
  if (ir.programs.some((p) => p.program.kind === 'unit')) {
    notes.push(
      "per-unit rules match the unit's cgroup as it exists at load time: reload the ruleset after the unit restarts (`portwarden apply` does).",
    );
  }
  return notes;
}

function baseChain(hook: 'input' | 'output' | 'forward', verdict: Verdict, lines: readonly string[]): string {
  return chainBlock(hook, `type filter hook ${hook} priority filter; policy ${policyWord(verdict)};`, lines);
}

function setBlock(set: NftWriter['sets'][number]): string {
  return `\tset ${set.name} {\n\t\ttype ${set.type}\n\t\tflags interval\n\t\telements = { ${set.elements} }\n\t}`;
}

function fileHeader(ir: Ir, meta: CompileMeta, notes: readonly string[]): string {
  return [
    '#!/usr/sbin/nft -f',
    hashComment(`Generated by portwarden ${meta.version} from policy "${ir.policyName}" (${ir.policyFile}).`),
    '# Load with `nft -f FILE`: it replaces table inet portwarden in one transaction and leaves every',
    '# other table (Docker, libvirt, ...) as it is.',
    ...notes.map(hashComment),
  ].join('\n');
}

/** The table, one function per chain; sets are declared by the chains that use them, in order. */
export function compileNftables(ir: Ir, meta: CompileMeta): string {
  const w = new NftWriter();
  const notes: string[] = [];
  const input = inputChains(w, ir);
  const output = outputChains(w, ir);
  const forward = forwardLines(w, ir, notes);
  const nat = natChains(ir, notes);
  const ftp = ftpHelperBlocks(ir, notes);
  notes.push(...loadNotes(ir));
  if (ir.programs.some((p) => p.program.kind === 'path'))
    notes.push(
      'per-program (path:) rules match a packet mark that `portwarden watch --programs` sets on connections it attributed to that executable; without the daemon they admit nothing.',
    );
  const base = [
    baseChain('input', ir.defaults.input, input.lines),
    baseChain('output', ir.defaults.output, output.lines),
    baseChain('forward', ir.defaults.forward, forward),
  ];
  const blocks = [
    ...ftp.helpers,
    ...w.sets.map(setBlock),
    ...base,
    ...input.zones,
    ...output.zones,
    ...nat,
    ...ftp.chains,
  ];
  return `${fileHeader(ir, meta, notes)}\n\ntable inet ${TABLE}\ndelete table inet ${TABLE}\n\ntable inet ${TABLE} {\n${blocks.join('\n\n')}\n}\n`;
}

export const nftables: Backend = {
  name: 'nftables',
  description: 'nft -f script replacing table inet portwarden atomically (Linux, primary)',
  extension: 'nft',
  unsupported: {},
  compile: (ir, meta): CompiledFile[] => [{ suffix: '', content: compileNftables(ir, meta) }],
};
