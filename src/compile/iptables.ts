import type { PortRange } from '../catalog/types.ts';
import type { Cidr, Verdict } from '../policy/types.ts';
import type { Backend, CompileMeta, CompiledFile } from './backend.ts';
import type { Ir, IrNat, IrProgramRule, IrRoute, IrRule, IrZoneChain } from './ir.ts';
import { logPrefix } from './log-prefix.ts';
import { hashComment, iptablesArg, iptablesComment, iptablesQuoted } from './_quote.ts';

/**
 * iptables-restore / ip6tables-restore files (`.v4` and `.v6`) with the same semantics as the
 * nftables output. Without ipset, ports go into multiport matches of at most 15 ports (a range
 * counts twice) and every address is its own rule, so the rule count grows with ports and peers.
 * Each file replaces the tables it names (filter, nat, raw) as iptables-restore always does.
 */

const MULTIPORT_MAX = 15;

/** Chain names are bare words in `:CHAIN` lines, which take no quoting: only name characters pass. */
function chainName(direction: 'IN' | 'OUT', zone: string): string {
  return `PW-${direction}-${zone.replace(/[^A-Za-z0-9_-]/g, '_')}`.slice(0, 28);
}

function iface(name: string): string {
  return iptablesArg(name.endsWith('*') ? `${name.slice(0, -1)}+` : name);
}

/** Port ranges in multiport-sized chunks: each chunk is one `--dport`/`--dports` argument. */
export function portChunks(list: readonly PortRange[]): string[] {
  const chunks: string[] = [];
  let current: string[] = [];
  let weight = 0;
  for (const r of list) {
    const cost = r.from === r.to ? 1 : 2;
    if (weight + cost > MULTIPORT_MAX) {
      chunks.push(current.join(','));
      current = [];
      weight = 0;
    }
    current.push(r.from === r.to ? String(r.from) : `${r.from}:${r.to}`);
    weight += cost;
  }
  if (current.length > 0) chunks.push(current.join(','));
  return chunks;
}

function portMatch(protocol: string, chunk: string): string {
  const many = chunk.includes(',');
  return `-p ${protocol} ${many ? `-m multiport --dports ${chunk}` : `--dport ${chunk}`}`;
}

function inFamily(cidrs: readonly Cidr[], family: 4 | 6): Cidr[] {
  return cidrs.filter((c) => c.family === family);
}

/** The rule lines of one allow rule for one family ([] when the rule belongs to the other family). */
function ruleLines(chain: string, rule: IrRule, family: 4 | 6, prefix = ''): string[] {
  if (rule.family !== null && rule.family !== family) return [];
  const peers = inFamily(rule.saddr.length > 0 ? rule.saddr : rule.daddr, family);
  const flag = rule.saddr.length > 0 ? '-s' : '-d';
  const addrs = peers.length > 0 ? peers.map((p) => `${flag} ${p.text} `) : [''];
  const lines: string[] = [];
  for (const addr of addrs) {
    for (const chunk of portChunks(rule.ports)) {
      if (rule.log)
        lines.push(
          `-A ${chain} ${prefix}${addr}${portMatch(rule.protocol, chunk)} -j LOG --log-prefix ${iptablesQuoted(`pw:ok:${rule.id}: `.slice(0, 28))}`,
        );
      lines.push(
        `-A ${chain} ${prefix}${addr}${portMatch(rule.protocol, chunk)} ${iptablesComment(rule.comment)} -j ACCEPT`,
      );
    }
  }
  return lines;
}

function tail(
  ir: Ir,
  chain: string,
  direction: 'in' | 'out' | 'fwd',
  zone: string,
  verdict: Verdict | null,
  family: 4 | 6,
): string[] {
  const lines: string[] = [];
  if (ir.log)
    lines.push(
      `-A ${chain} -m limit --limit 5/sec --limit-burst 10 -j LOG --log-prefix ${iptablesQuoted(logPrefix(direction, zone))} --log-level 6`,
    );
  if (verdict === 'reject') {
    lines.push(`-A ${chain} -p tcp -j REJECT --reject-with tcp-reset`);
    lines.push(
      `-A ${chain} -j REJECT --reject-with ${family === 4 ? 'icmp-port-unreachable' : 'icmp6-port-unreachable'}`,
    );
  }
  return lines;
}

function essentials(ir: Ir, chain: 'INPUT' | 'OUTPUT', family: 4 | 6): string[] {
  const lo = chain === 'INPUT' ? '-i lo' : '-o lo';
  const lines = [
    `-A ${chain} ${lo} -j ACCEPT`,
    `-A ${chain} -m conntrack --ctstate INVALID -j DROP`,
    `-A ${chain} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
  ];
  if (chain === 'INPUT' && ir.nat.some((n) => n.kind === 'dnat' && n.toFamily === family)) {
    lines.push(`-A ${chain} -m conntrack --ctstate DNAT -j ACCEPT`);
  }
  const echo = ir.icmpEcho ? ['echo-request'] : [];
  if (family === 4) {
    for (const type of ['destination-unreachable', 'time-exceeded', 'parameter-problem', ...echo]) {
      lines.push(`-A ${chain} -p icmp --icmp-type ${type} -j ACCEPT`);
    }
  } else {
    for (const type of [
      'destination-unreachable',
      'packet-too-big',
      'time-exceeded',
      'parameter-problem',
      'router-solicitation',
      'router-advertisement',
      'neighbour-solicitation',
      'neighbour-advertisement',
      ...echo,
    ]) {
      lines.push(`-A ${chain} -p ipv6-icmp --icmpv6-type ${type} -j ACCEPT`);
    }
    for (const type of ['130', '131', '143'])
      lines.push(`-A ${chain} -s fe80::/10 -p ipv6-icmp --icmpv6-type ${type} -j ACCEPT`);
  }
  return lines;
}

/** Jumps into a zone chain: one per interface and (when the zone has sources) per member block. */
function zoneJumps(base: 'INPUT' | 'OUTPUT', chain: IrZoneChain, family: 4 | 6): string[] {
  const flag = base === 'INPUT' ? '-i' : '-o';
  const side = chain.direction === 'in' ? '-s' : '-d';
  const target = chainName(chain.direction === 'in' ? 'IN' : 'OUT', chain.zone);
  const members = inFamily(chain.members, family);
  if (chain.members.length > 0 && members.length === 0) return []; // the zone has no addresses of this family
  const lines: string[] = [];
  for (const name of chain.interfaces) {
    for (const m of members.length > 0 ? members.map((c) => `${side} ${c.text} `) : ['']) {
      lines.push(`-A ${base} ${flag} ${iface(name)} ${m}-j ${target}`);
    }
  }
  return lines;
}

function policyWord(verdict: Verdict): string {
  return verdict === 'accept' ? 'ACCEPT' : 'DROP';
}

function header(ir: Ir, family: 4 | 6, meta: CompileMeta): string[] {
  return [
    hashComment(`Generated by portwarden ${meta.version} from policy "${ir.policyName}" (${ir.policyFile}).`),
    `# Load with \`${family === 4 ? 'iptables-restore' : 'ip6tables-restore'} < FILE\`; it replaces the filter${ir.nat.length > 0 ? ', nat' : ''}${ir.ftpHelper.inbound || ir.ftpHelper.outbound ? ', raw' : ''} table(s).`,
  ];
}

/** The raw table attaching the ftp conntrack helper to tcp/21, when the policy allows FTP. */
function rawTable(ir: Ir): string[] {
  if (!ir.ftpHelper.inbound && !ir.ftpHelper.outbound) return [];
  return [
    '# FTP: the ftp conntrack helper is attached to tcp/21 in the raw table (kernels no longer do it alone).',
    '*raw',
    ':PREROUTING ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ...(ir.ftpHelper.inbound ? ['-A PREROUTING -p tcp --dport 21 -j CT --helper ftp'] : []),
    ...(ir.ftpHelper.outbound ? ['-A OUTPUT -p tcp --dport 21 -j CT --helper ftp'] : []),
    'COMMIT',
  ];
}

function dnatLines(n: IrNat, family: 4 | 6): string[] {
  if (n.kind !== 'dnat') return [];
  const target = family === 4 ? `${n.toAddress}:${n.toPort}` : `[${n.toAddress}]:${n.toPort}`;
  const sources = inFamily(n.saddr, family);
  return n.interfaces.flatMap((name) =>
    (sources.length > 0 ? sources.map((c) => `-s ${c.text} `) : ['']).map(
      (s) =>
        `-A PREROUTING -i ${iface(name)} -m addrtype --dst-type LOCAL ${s}-p ${n.protocol} --dport ${n.port} ${iptablesComment(n.comment)} -j DNAT --to-destination ${target}`,
    ),
  );
}

/** The nat table: port forwards of this family, masquerading; nothing when there are none. */
function natTable(ir: Ir, family: 4 | 6): string[] {
  const dnat = ir.nat.filter((n) => n.kind === 'dnat' && n.toFamily === family);
  const masq = ir.nat.filter((n) => n.kind === 'masquerade');
  if (dnat.length + masq.length === 0) return [];
  const out = [
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':INPUT ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
  ];
  for (const n of dnat) out.push(...dnatLines(n, family));
  for (const n of masq) {
    if (n.kind !== 'masquerade') continue;
    // POSTROUTING cannot match the input interface: masquerade what leaves the outer interface.
    for (const name of n.oif)
      out.push(`-A POSTROUTING -o ${iface(name)} ${iptablesComment(n.comment)} -j MASQUERADE`);
  }
  out.push('COMMIT');
  return out;
}

function programMatch(rule: IrProgramRule): string {
  if (rule.program.kind === 'unit')
    return `-m cgroup --path ${iptablesArg(`system.slice/${rule.program.unit}`)} `;
  if (rule.program.kind === 'user') return `-m owner --uid-owner ${iptablesArg(rule.program.user)} `;
  return '';
}

function inputLines(ir: Ir, family: 4 | 6): string[] {
  return [
    ...essentials(ir, 'INPUT', family),
    ...ir.input.flatMap((chain) => zoneJumps('INPUT', chain, family)),
    ...tail(ir, 'INPUT', 'in', '-', ir.defaults.input, family),
  ];
}

function outputLines(ir: Ir, family: 4 | 6): string[] {
  return [
    ...essentials(ir, 'OUTPUT', family),
    ...ir.programs.flatMap((rule) => ruleLines('OUTPUT', rule, family, programMatch(rule))),
    ...ir.output.flatMap((chain) => zoneJumps('OUTPUT', chain, family)),
    ...tail(ir, 'OUTPUT', 'out', '-', ir.defaults.output, family),
  ];
}

function routeLines(route: IrRoute, family: 4 | 6): string[] {
  const members = inFamily(route.fromMembers, family);
  if (route.fromMembers.length > 0 && members.length === 0) return [];
  const out: string[] = [];
  for (const iif of route.iif)
    for (const oif of route.oif)
      for (const m of members.length > 0 ? members.map((c) => `-s ${c.text} `) : [''])
        out.push(...ruleLines('FORWARD', route, family, `-i ${iface(iif)} -o ${iface(oif)} ${m}`));
  return out;
}

function forwardLines(ir: Ir, family: 4 | 6): string[] {
  const out = [
    '-A FORWARD -m conntrack --ctstate INVALID -j DROP',
    '-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
  ];
  if (ir.nat.some((n) => n.kind === 'dnat' && n.toFamily === family))
    out.push('-A FORWARD -m conntrack --ctstate DNAT -j ACCEPT');
  const bridges = [
    ...(ir.coexist.includes('docker') ? ['docker0', 'br-*'] : []),
    ...(ir.coexist.includes('libvirt') ? ['virbr*'] : []),
  ];
  for (const name of bridges)
    out.push(`-A FORWARD -i ${iface(name)} -j ACCEPT`, `-A FORWARD -o ${iface(name)} -j ACCEPT`);
  for (const route of ir.forward) out.push(...routeLines(route, family));
  out.push(...tail(ir, 'FORWARD', 'fwd', '-', ir.defaults.forward, family));
  return out;
}

/** The filter table: base chains, then each zone's chain with its rules. */
function filterTable(ir: Ir, family: 4 | 6): string[] {
  const zones = [...ir.input, ...ir.output];
  const name = (c: IrZoneChain): string => chainName(c.direction === 'in' ? 'IN' : 'OUT', c.zone);
  return [
    '*filter',
    `:INPUT ${policyWord(ir.defaults.input)} [0:0]`,
    `:FORWARD ${policyWord(ir.defaults.forward)} [0:0]`,
    `:OUTPUT ${policyWord(ir.defaults.output)} [0:0]`,
    ...zones.map((c) => `:${name(c)} - [0:0]`),
    ...inputLines(ir, family),
    ...outputLines(ir, family),
    ...forwardLines(ir, family),
    ...zones.flatMap((c) => [
      ...c.rules.flatMap((rule) => ruleLines(name(c), rule, family)),
      ...tail(ir, name(c), c.direction, c.zone, null, family),
    ]),
    'COMMIT',
  ];
}

function compileFamily(ir: Ir, family: 4 | 6, meta: CompileMeta): string {
  const out = [
    ...header(ir, family, meta),
    ...rawTable(ir),
    ...natTable(ir, family),
    ...filterTable(ir, family),
  ];
  return `${out.join('\n')}\n`;
}

export const iptables: Backend = {
  name: 'iptables',
  description: 'iptables-restore (.v4) and ip6tables-restore (.v6) files',
  extension: 'rules',
  unsupported: {
    'program-path': 'iptables cannot match a program by its executable path; use `unit:` or `user:`',
  },
  compile: (ir, meta): CompiledFile[] => [
    { suffix: '.v4', content: compileFamily(ir, 4, meta) },
    { suffix: '.v6', content: compileFamily(ir, 6, meta) },
  ],
};
