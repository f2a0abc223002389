import { readSysctl } from '../apply/kernel-apply.ts';
import { requiredKernelSettings } from '../apply/kernel-settings.ts';
import { listSockets } from '../inventory/list.ts';
import { localInterfaces } from '../inventory/read-proc.ts';
import type { LocalInterface, Socket } from '../inventory/types.ts';
import { readLiveRuleset } from '../lab/read-ruleset.ts';
import type { Policy } from '../policy/types.ts';
import { computeExposure, type ExposureRow } from './exposure.ts';
import { runFindingRules, type AuditInput, type Finding } from './findings.ts';
import {
  evaluateForward,
  evaluateInbound,
  evaluateOutbound,
  findDnatRules,
  parseIptablesSave,
  parseNftJson,
  summarizeRuleset,
  type Ruleset,
  type RulesetSummary,
} from './ruleset.ts';

export type Profile = 'workstation' | 'server';

/** The whole audit: what reporters print. */
export interface AuditReport {
  host: string;
  generatedAt: string;
  profile: Profile;
  profileSource: 'given' | 'guessed';
  policy: { name: string; file: string } | null;
  method: 'static' | 'no-firewall';
  ruleset: RulesetSummary | null;
  notModelled: string[];
  warnings: string[];
  listeners: number;
  findings: Finding[];
  exposure: ExposureRow[];
}

export interface AuditData {
  sockets: readonly Socket[];
  interfaces: readonly LocalInterface[];
  nftJson: string | null;
  /** iptables-save / ip6tables-save text, when iptables-nft wrote rules. */
  iptablesSave?: { ip: string; ip6: string };
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

/** Pure: joins inventory, ruleset and policy into findings. */
export function auditFromData(data: AuditData, options: AuditOptions = {}): AuditReport {
  const saved = new Map([
    ...parseIptablesSave(data.iptablesSave?.ip ?? '', 'ip'),
    ...parseIptablesSave(data.iptablesSave?.ip6 ?? '', 'ip6'),
  ]);
  const ruleset: Ruleset | null = data.nftJson === null ? null : parseNftJson(data.nftJson, saved);
  const summary = ruleset ? summarizeRuleset(ruleset) : null;
  const firewall = ruleset && summary?.loaded ? ruleset : null;
  const exposure = computeExposure(firewall, data.sockets, data.interfaces);
  const outIface = data.interfaces.find(
    (i) => i.name !== 'lo' && i.addresses.some((a) => !a.startsWith('127.') && a !== '::1'),
  );
  const local4 = outIface?.addresses.find((a) => !a.includes(':')) ?? '192.0.2.1';
  const dnat = firewall
    ? findDnatRules(firewall)
        .filter((r) => r.port !== null)
        .map((rule) => {
          const iifname = rule.iifname ?? outIface?.name ?? 'eth0';
          const base = {
            family: 4 as const,
            protocol: rule.protocol ?? ('tcp' as const),
            saddr: '203.0.113.77',
            sport: 40000,
            iifname,
            daddrLocal: true,
          };
          return {
            rule,
            input: evaluateInbound(firewall, { ...base, daddr: local4, dport: rule.port ?? 0 }),
            forward: evaluateForward(firewall, {
              ...base,
              daddr: rule.toAddress ?? '172.17.0.2',
              dport: rule.toPort ?? rule.port ?? 0,
              oifname: 'docker0',
              daddrLocal: false,
            }),
          };
        })
    : [];
  const egress =
    firewall && outIface
      ? EGRESS_PORTS.map((port) => ({
          port,
          decision: evaluateOutbound(firewall, {
            family: 4,
            protocol: 'tcp',
            saddr: local4,
            daddr: '203.0.113.9',
            sport: 40000,
            dport: port,
            oifname: outIface.name,
            daddrLocal: false,
          }),
        }))
      : [];
  const policy = options.policy ?? null;
  const zoneOf = new Map<string, string>();
  for (const zone of policy?.zones ?? []) {
    for (const iface of zone.interfaces) {
      for (const real of data.interfaces) {
        if (iface === real.name || (iface.endsWith('*') && real.name.startsWith(iface.slice(0, -1))))
          zoneOf.set(real.name, zone.name);
      }
    }
  }
  const env = options.env ?? {};
  const profile = options.profile ?? guessProfile(env);
  const input: AuditInput = {
    sockets: data.sockets,
    exposure,
    ruleset: summary,
    rulesetReason: data.rulesetReason,
    dnat,
    egress,
    policy,
    zoneOf,
    profile,
    ...(data.sysctls ? { sysctls: data.sysctls } : {}),
  };
  const notModelled = [...new Set(exposure.flatMap((r) => r.notModelled))];
  if (data.legacyRules > 0)
    notModelled.push(`${data.legacyRules} legacy iptables rules (x_tables) that nft cannot show`);
  const warnings = [...data.warnings];
  if (data.rulesetReason) warnings.push(data.rulesetReason);
  return {
    host: options.host ?? 'localhost',
    generatedAt: (options.now ?? new Date()).toISOString(),
    profile,
    profileSource: options.profile ? 'given' : 'guessed',
    policy: policy ? { name: policy.name, file: policy.file } : null,
    method: firewall ? 'static' : 'no-firewall',
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

/** What an audit of this machine looks at: its sockets, interfaces and live ruleset. */
export async function readAuditData(): Promise<AuditData> {
  const [inventory, live] = await Promise.all([listSockets({}), readLiveRuleset()]);
  return {
    sockets: inventory.sockets,
    interfaces: localInterfaces(),
    nftJson: live.nftJson,
    iptablesSave: live.iptablesSave,
    rulesetReason: live.reason,
    legacyRules: live.legacyRules,
    warnings: inventory.warnings,
  };
}
