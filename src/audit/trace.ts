import ipaddr from 'ipaddr.js';
import { PortwardenError } from '../errors.ts';
import type { AuditInterface } from './exposure.ts';
import { hostPathOptions, PROBE_SPORT } from './exposure.ts';
import { evaluate, type Decision, type Packet, type TraceStep } from '../ruleset/path.ts';
import type { Family, Ruleset } from '../ruleset/ruleset.ts';

/**
 * `portwarden trace tcp 203.0.113.9 -> eth0:22`: the path one probe packet takes through the loaded
 * ruleset — every chain and rule it meets in kernel order, across tables, hooks, nftables and
 * iptables-legacy — and the rule that decides. What `nft monitor trace` shows only after a real
 * packet with a trace mark has been sent; here nothing is sent.
 */

export interface TraceSpec {
  protocol: 'tcp' | 'udp';
  source: string;
  sport: number;
  /** An interface name, or null when the destination was given as an address. */
  iface: string | null;
  address: string | null;
  port: number;
  uid?: number;
}

export interface TraceReport {
  packet: Packet;
  verdict: Decision['verdict'];
  decision: Decision;
  steps: TraceStep[];
}

const HINT = "write it as: portwarden trace tcp 203.0.113.9 '->' eth0:22 (quote the arrow, or leave it out)";

function usage(message: string): PortwardenError {
  return new PortwardenError('USAGE', message, { hint: HINT });
}

function parsePort(text: string, what: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1 || port > 65535)
    throw usage(`${what} "${text}" is not a port (1-65535)`);
  return port;
}

function parseDestination(text: string): { iface: string | null; address: string | null; port: number } {
  const bracket = /^\[([^\]]+)\]:(\S+)$/.exec(text);
  if (bracket) {
    if (!ipaddr.IPv6.isValid(bracket[1] ?? '')) throw usage(`"${bracket[1] ?? ''}" is not an IPv6 address`);
    return { iface: null, address: bracket[1] ?? '', port: parsePort(bracket[2] ?? '', 'destination port') };
  }
  const colon = text.lastIndexOf(':');
  if (colon <= 0) throw usage(`destination "${text}" needs a port: INTERFACE:PORT or ADDRESS:PORT`);
  const host = text.slice(0, colon);
  const port = parsePort(text.slice(colon + 1), 'destination port');
  if (ipaddr.IPv4.isValidFourPartDecimal(host)) return { iface: null, address: host, port };
  if (host.includes(':')) throw usage(`IPv6 destination "${host}" must be in brackets: [${host}]:${port}`);
  if (!/^[\w.@-]{1,15}$/.test(host)) throw usage(`"${host}" is neither an interface name nor an address`);
  return { iface: host, address: null, port };
}

/** Parses `tcp 203.0.113.9 -> eth0:22` (the arrow optional, `SOURCE:PORT` allowed). */
export function parseTraceSpec(words: readonly string[]): TraceSpec {
  const args = words.flatMap((w) => w.split(/(->)/)).filter((w) => w !== '' && w !== '->' && w !== 'to');
  const [protocol, source, destination, ...extra] = args;
  if (protocol !== 'tcp' && protocol !== 'udp')
    throw usage(`protocol "${protocol ?? ''}" must be tcp or udp`);
  if (source === undefined || destination === undefined)
    throw usage('a source address and a destination are required');
  if (extra.length > 0) throw usage(`unexpected "${extra.join(' ')}"`);
  let address = source;
  let sport = PROBE_SPORT;
  const withPort = /^\[([^\]]+)\]:(\d+)$/.exec(source) ?? /^([\d.]+):(\d+)$/.exec(source);
  if (withPort) {
    address = withPort[1] ?? '';
    sport = parsePort(withPort[2] ?? '', 'source port');
  }
  if (!ipaddr.isValid(address) || (!address.includes(':') && !ipaddr.IPv4.isValidFourPartDecimal(address)))
    throw usage(`source "${source}" is not an IP address`);
  return { protocol, source: ipaddr.parse(address).toString(), sport, ...parseDestination(destination) };
}

function familyOf(address: string): Family {
  return address.includes(':') ? 6 : 4;
}

function resolve(spec: TraceSpec, interfaces: readonly AuditInterface[]): { iface: string; daddr: string } {
  const family = familyOf(spec.source);
  if (spec.iface !== null) {
    const iface = interfaces.find((i) => i.name === spec.iface);
    if (!iface)
      throw new PortwardenError('USAGE', `no interface "${spec.iface}" on this host`, {
        hint: `use one of: ${interfaces.map((i) => i.name).join(', ')}`,
      });
    const own = iface.addresses.filter((a) => familyOf(a) === family);
    const daddr = own.find((a) => !a.startsWith('fe80')) ?? own[0];
    if (!daddr)
      throw new PortwardenError('USAGE', `interface "${spec.iface}" has no IPv${family} address`, {
        hint: 'give the destination as ADDRESS:PORT',
      });
    return { iface: iface.name, daddr: daddr.split('%')[0] ?? daddr };
  }
  const address = spec.address ?? '';
  if (familyOf(address) !== family)
    throw usage(`source ${spec.source} and destination ${address} are not of the same family`);
  const owner = interfaces.find(
    (i) => i.name !== 'lo' && i.addresses.some((a) => a.split('%')[0] === address),
  );
  const first = interfaces.find((i) => i.name !== 'lo' && !i.bridgePort && i.addresses.length > 0);
  return { iface: owner?.name ?? first?.name ?? 'eth0', daddr: address };
}

/** Traces one probe packet through the ruleset. */
export function traceProbe(
  ruleset: Ruleset,
  interfaces: readonly AuditInterface[],
  spec: TraceSpec,
): TraceReport {
  const { iface, daddr } = resolve(spec, interfaces);
  const options = hostPathOptions(interfaces);
  const packet: Packet = {
    family: familyOf(spec.source),
    protocol: spec.protocol,
    saddr: spec.source,
    daddr,
    sport: spec.sport,
    dport: spec.port,
    iifname: iface,
    // The question is always about a port of this host (a saved ruleset may come from another).
    daddrLocal: true,
    daddrOn: interfaces.filter((i) => i.addresses.some((a) => a.split('%')[0] === daddr)).map((i) => i.name),
    ...(spec.uid !== undefined ? { skuid: spec.uid } : {}),
  };
  const { steps, ...decision } = evaluate(ruleset, 'inbound', packet, { ...options, trace: true });
  return { packet, verdict: decision.verdict, decision, steps };
}

function stepLine(s: TraceStep): string {
  if (s.result === 'enter') {
    if (s.table === '') return `${s.hook ?? ''}: ${s.text}`;
    return s.hook && s.prio !== null
      ? `${s.hook.padEnd(11)} ${s.table} chain ${s.chain} (priority ${s.prio})`
      : `${''.padEnd(11)}   -> chain ${s.chain}`;
  }
  if (s.result === 'policy') return `${''.padEnd(15)}policy ${s.verdict ?? ''}`;
  const mark =
    s.result === 'no match'
      ? 'no match'
      : s.result === 'maybe'
        ? `maybe -> ${s.verdict ?? ''}`
        : s.verdict
          ? `match -> ${s.verdict}`
          : 'match';
  return `${''.padEnd(15)}${s.handle !== null ? `[${s.handle}] ` : ''}${s.text}  ... ${mark}`;
}

function verdictLine(d: Decision): string {
  const where =
    d.chain === null
      ? 'no rule decides (nothing filters this path)'
      : `${d.table ?? ''} chain ${d.chain}${d.handle !== null ? ` rule ${d.handle}${d.text ? `: ${d.text}` : ''}` : ` ${d.comment ?? ''}`}`;
  return `verdict: ${d.verdict.toUpperCase()} by ${where}`;
}

/** The trace as text: one line per chain entered and rule met, then the verdict. */
export function renderTrace(report: TraceReport): string {
  const p = report.packet;
  const addr = (a: string) => (a.includes(':') ? `[${a}]` : a);
  const lines = [
    `trace ${p.protocol} ${addr(p.saddr)}:${p.sport} -> ${addr(p.daddr)}:${p.dport} in on ${p.iifname ?? '?'} (${p.protocol === 'tcp' ? 'SYN' : 'datagram'}, first packet from a new source)`,
    ...report.steps.map(stepLine),
    verdictLine(report.decision),
  ];
  for (const n of report.decision.notes ?? []) lines.push(`note: ${n}`);
  for (const r of report.decision.reasons) lines.push(`unknown because: ${r}`);
  return lines.join('\n');
}
