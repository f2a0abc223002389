import { readSysctl } from '../apply/kernel-apply.ts';
import { requiredKernelSettings } from '../apply/kernel-settings.ts';
import { listSockets } from '../inventory/list.ts';
import { localInterfaces } from '../inventory/read-proc.ts';
import { isListening } from '../inventory/parse-proc-net.ts';
import type { Inventory, Socket } from '../inventory/types.ts';
import { readInterfaceDetails, readLiveRuleset, type LiveRuleset } from '../ruleset/read-live.ts';
import type { Policy } from '../policy/types.ts';
import { computeExposure, hostPathOptions, type AuditInterface, type ExposureRow } from './exposure.ts';
import { runFindingRules, type AuditInput, type Finding } from './findings.ts';
import { evaluate, evaluateOutbound, type Decision } from '../ruleset/path.ts';
import { findDnatRules } from './published.ts';
import {
  reachabilityFrom,
  reachabilityUnknown,
  withReachability,
  type ReachableSocket,
  type ReachOf,
} from './reachability.ts';
import { type Ruleset } from '../ruleset/ruleset.ts';
import { summarizeRuleset, type RulesetSummary } from '../ruleset/summarise.ts';
import { parseChainDevices, parseIptablesSave, parseNftJson, withLegacy } from '../ruleset/parse.ts';

export type Profile = 'workstation' | 'server';

/** The whole audit: what reporters print. */
export interface AuditReport {
  host: string;
  generatedAt: string;
  profile: Profile;
  profileSource: 'given' | 'guessed';
  policy: { name: string; file: string } | null;
  /** `unreadable`: the ruleset could not be read, so reachability is unknown (never "no firewall"). */
  method: 'static' | 'no-firewall' | 'unreadable';
  ruleset: RulesetSummary | null;
  notModelled: string[];
  warnings: string[];
  listeners: number;
  findings: Finding[];
  exposure: ExposureRow[];
}

export interface AuditData {
  sockets: readonly Socket[];
  interfaces: readonly AuditInterface[];
  nftJson: string | null;
  /** iptables-save / ip6tables-save text, when iptables-nft wrote rules. */
  iptablesSave?: { ip: string; ip6: string };
  /** iptables-legacy-save / ip6tables-legacy-save text (x_tables), evaluated next to nftables. */
  legacySave?: { ip: string; ip6: string };
  /** `nft list chains` text, for the devices of ingress chains. */
  nftChains?: string;
  rulesetReason: string | null;
  legacyRules: number;
  warnings: string[];
  /** Values of the sysctls the policy needs (for PW012). */
  sysctls?: ReadonlyMap<string, string>;
}

export interface AuditOptions {
  policy?: Policy | null;
  profile?: Profile;
  host?: string;
  env?: Readonly<Record<string, string | undefined>>;
  now?: Date;
}

const EGRESS_PORTS = [443, 25, 4444];

/** A desktop session is a workstation; anything else is audited as a server. */
function guessProfile(env: Readonly<Record<string, string | undefined>>): Profile {
  return env['DISPLAY'] || env['WAYLAND_DISPLAY'] || env['XDG_CURRENT_DESKTOP'] ? 'workstation' : 'server';
}

/** The live ruleset as one model: nftables (with iptables-save text for xt rules) plus legacy x_tables. */
export function rulesetFromData(
  data: Pick<AuditData, 'nftJson' | 'iptablesSave' | 'legacySave' | 'nftChains'>,
): Ruleset | null {
  if (data.nftJson === null) return null;
  const saved = new Map([
    ...parseIptablesSave(data.iptablesSave?.ip ?? '', 'ip'),
    ...parseIptablesSave(data.iptablesSave?.ip6 ?? '', 'ip6'),
  ]);
  const nft = parseNftJson(data.nftJson, saved, parseChainDevices(data.nftChains ?? ''));
  return withLegacy(nft, data.legacySave ?? {});
}

function outInterface(data: AuditData): AuditInterface | undefined {
  return data.interfaces.find(
    (i) =>
      i.name !== 'lo' &&
      !i.bridgePort &&
      i.addresses.some((a) => !a.startsWith('127.') && a !== '::1' && !a.startsWith('fe80')),
  );
}

function dnatFindings(firewall: Ruleset, data: AuditData): AuditInput['dnat'] {
  const iface = outInterface(data);
  const local4 = iface?.addresses.find((a) => !a.includes(':')) ?? '192.0.2.1';
  const options = hostPathOptions(data.interfaces);
  return findDnatRules(firewall)
    .filter((r) => r.port !== null && r.family === 4)
    .map((rule) => {
      const packet = {
        family: 4 as const,
        protocol: rule.protocol ?? ('tcp' as const),
        saddr: '203.0.113.77',
        daddr: local4,
        sport: 40000,
        dport: rule.port ?? 0,
        iifname: rule.iifname ?? iface?.name ?? 'eth0',
        daddrLocal: true,
      };
      // What input alone would say of the port, and what the whole path (DNAT, forward) says.
      const input: Decision = evaluate(firewall, ['input'], packet);
      const forward: Decision = evaluate(firewall, 'inbound', packet, { ...options, reply: false });
      return { rule, input, forward };
    });
}

function egressChecks(firewall: Ruleset, data: AuditData): AuditInput['egress'] {
  const iface = outInterface(data);
  if (!iface) return [];
  const local4 = iface.addresses.find((a) => !a.includes(':')) ?? '192.0.2.1';
  return EGRESS_PORTS.map((port) => ({
    port,
    decision: evaluateOutbound(firewall, {
      family: 4,
      protocol: 'tcp',
      saddr: local4,
      daddr: '203.0.113.9',
      sport: 40000,
      dport: port,
      oifname: iface.name,
      daddrLocal: false,
      peer: 'daddr',
    }),
  }));
}

function zonesOf(policy: Policy | null, data: AuditData): Map<string, string> {
  const zoneOf = new Map<string, string>();
  for (const zone of policy?.zones ?? [])
    for (const iface of zone.interfaces)
      for (const real of data.interfaces)
        if (iface === real.name || (iface.endsWith('*') && real.name.startsWith(iface.slice(0, -1))))
          zoneOf.set(real.name, zone.name);
  return zoneOf;
}

/** The loaded ruleset, its summary and the exposure rows of the data's listeners (pure). */
function exposureFromData(data: AuditData): {
  firewall: Ruleset | null;
  summary: RulesetSummary | null;
  unreadable: string | null;
  exposure: ExposureRow[];
} {
  const ruleset = rulesetFromData(data);
  const summary = ruleset ? summarizeRuleset(ruleset) : null;
  const firewall = ruleset && summary?.loaded ? ruleset : null;
  const unreadable = data.nftJson === null ? (data.rulesetReason ?? 'the ruleset was not read') : null;
  const exposure = computeExposure(firewall, data.sockets, data.interfaces, { unreadable });
  return { firewall, summary, unreadable, exposure };
}

/** Audit's reachability of every listener in the data (pure): what `ports`, `watch` and `serve` show. */
export function reachabilityOfData(data: AuditData): ReachOf {
  const { firewall, unreadable, exposure } = exposureFromData(data);
  return reachabilityFrom(exposure, {
    method: firewall ? 'static' : unreadable ? 'unreadable' : 'no-firewall',
    reason: unreadable,
  });
}

/** Pure: joins inventory, ruleset and policy into findings. */
export function auditFromData(data: AuditData, options: AuditOptions = {}): AuditReport {
  const { firewall, summary, unreadable, exposure } = exposureFromData(data);
  const policy = options.policy ?? null;
  const profile = options.profile ?? guessProfile(options.env ?? {});
  const input: AuditInput = {
    sockets: data.sockets,
    exposure,
    ruleset: summary,
    rulesetReason: data.rulesetReason,
    dnat: firewall ? dnatFindings(firewall, data) : [],
    egress: firewall ? egressChecks(firewall, data) : [],
    policy,
    zoneOf: zonesOf(policy, data),
    profile,
    ...(data.sysctls ? { sysctls: data.sysctls } : {}),
  };
  const notModelled = [...new Set(exposure.flatMap((r) => r.notModelled))];
  const warnings = [...data.warnings];
  if (unreadable) warnings.push(`could not read the ruleset: ${unreadable}; reachability is unknown`);
  return {
    host: options.host ?? 'localhost',
    generatedAt: (options.now ?? new Date()).toISOString(),
    profile,
    profileSource: options.profile ? 'given' : 'guessed',
    policy: policy ? { name: policy.name, file: policy.file } : null,
    method: firewall ? 'static' : unreadable ? 'unreadable' : 'no-firewall',
    ruleset: summary,
    notModelled,
    warnings,
    listeners: data.sockets.filter((s) => s.exposure !== 'loopback').length,
    findings: runFindingRules(input),
    exposure,
  };
}

/** Reads this machine (sockets, interfaces, live ruleset) and audits it. */
export async function auditHost(options: AuditOptions = {}): Promise<AuditReport> {
  const sysctls = new Map<string, string>();
  for (const setting of options.policy ? requiredKernelSettings(options.policy) : []) {
    const value = setting.kind === 'sysctl' ? readSysctl(setting.name) : null;
    if (value !== null) sysctls.set(setting.name, value);
  }
  return auditFromData({ ...(await readAuditData()), sysctls }, options);
}

/** Interfaces with prefixes and bridge ports from `ip`, else the plain list from Node. */
async function readInterfaces(netns?: string): Promise<AuditInterface[]> {
  const details = await readInterfaceDetails(netns === undefined ? {} : { netns });
  return details.length > 0 || netns !== undefined ? details : localInterfaces();
}

/**
 * Reachability of `sockets` (all of one network namespace: the host's, or an `ip netns` name) through
 * the ruleset loaded in that namespace, read now.
 */
export async function readReachability(
  sockets: readonly Socket[],
  options: { netns?: string } = {},
): Promise<ReachOf> {
  // loopback-bound listeners need no ruleset: nobody beyond the host reaches them (watch's every sample)
  if (sockets.every((s) => s.exposure === 'loopback' || !isListening(s)))
    return reachabilityUnknown('not evaluated (loopback only)');
  const [live, interfaces] = await Promise.all([readLiveRuleset(options), readInterfaces(options.netns)]);
  return reachabilityOfData(auditDataOf(sockets, live, interfaces, []));
}

/** The audit's input from what was read: sockets, the live ruleset, interfaces, warnings. */
function auditDataOf(
  sockets: readonly Socket[],
  live: LiveRuleset,
  interfaces: AuditInterface[],
  warnings: string[],
): AuditData {
  return {
    sockets,
    interfaces,
    nftJson: live.nftJson,
    iptablesSave: live.iptablesSave,
    legacySave: live.legacySave,
    nftChains: live.nftChains,
    rulesetReason: live.reason,
    legacyRules: live.legacyRules,
    warnings,
  };
}

/** What an audit of this machine looks at: its sockets, interfaces and live ruleset. */
export async function readAuditData(): Promise<AuditData> {
  const [inventory, live, interfaces] = await Promise.all([
    listSockets({}),
    readLiveRuleset(),
    readInterfaces(),
  ]);
  return auditDataOf(inventory.sockets, live, interfaces, inventory.warnings);
}

/**
 * `ports`' sockets with their reachability: the host's and each `ip netns`-named namespace's through
 * the ruleset loaded there; a namespace known only by inode, or a captured listing, is `unknown`.
 */
export async function readSocketsReachability(
  inventory: Inventory,
  options: { captured?: boolean } = {},
): Promise<ReachableSocket[]> {
  const listeners = inventory.sockets.filter((s) => isListening(s));
  const byNetns = new Map<string, ReachOf>();
  for (const label of new Set(listeners.map((s) => s.netns))) {
    const mine = listeners.filter((s) => s.netns === label);
    if (options.captured || inventory.platform !== 'linux')
      byNetns.set(label, reachabilityUnknown('a captured listing: its firewall was not read'));
    else if (label === 'host') byNetns.set(label, await readReachability(mine));
    else if (/^[A-Za-z0-9_.-]+$/.test(label))
      byNetns.set(label, await readReachability(mine, { netns: label }));
    else
      byNetns.set(
        label,
        reachabilityUnknown(`the ruleset of namespace ${label} was not read (give it an \`ip netns\` name)`),
      );
  }
  const unknown = reachabilityUnknown('not evaluated');
  return withReachability(inventory.sockets, (label) => byNetns.get(label) ?? unknown, isListening);
}
