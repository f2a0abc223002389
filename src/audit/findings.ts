import { findCuratedByPort } from '../catalog/curated.ts';
import { portSetHas, portSetRanges } from '../catalog/port-set.ts';
import type { RiskLevel } from '../catalog/types.ts';
import type { Socket } from '../inventory/types.ts';
import { expectedInbound } from '../policy/expect.ts';
import { requiredKernelSettings } from '../apply/kernel-settings.ts';
import type { Policy } from '../policy/types.ts';
import { columnsOf, type ExposureRow } from './exposure.ts';
import type { Decision } from '../ruleset/path.ts';
import type { DnatRule } from './published.ts';
import type { RulesetSummary } from '../ruleset/summarise.ts';

export type Severity = RiskLevel;
export const SEVERITIES: readonly Severity[] = ['critical', 'high', 'medium', 'low', 'info'];

/** One problem audit found, with its evidence and a fix. The JSON minimum is a documented contract. */
export interface Finding {
  /** Stable per instance: `<rule>:<protocol>/<port>@<address>` (SARIF partial fingerprint). */
  id: string;
  /** The rule that found it, e.g. PW002. */
  rule: string;
  severity: Severity;
  protocol: 'tcp' | 'udp' | null;
  port: number | null;
  address: string | null;
  message: string;
  fix: string;
  evidence: string[];
}

/** Everything a finding rule may look at. */
export interface AuditInput {
  sockets: readonly Socket[];
  exposure: readonly ExposureRow[];
  ruleset: RulesetSummary | null;
  rulesetReason: string | null;
  dnat: readonly { rule: DnatRule; input: Decision | null; forward: Decision | null }[];
  egress: { decision: Decision; port: number }[];
  policy: Policy | null;
  /** interface name -> zone name, from the policy. */
  zoneOf: ReadonlyMap<string, string>;
  profile: 'workstation' | 'server';
  /** Values of the sysctls the policy needs (read at the edge); absent when they were not read. */
  sysctls?: ReadonlyMap<string, string>;
}

export interface FindingRule {
  id: string;
  name: string;
  title: string;
  /** Default severity (some rules take the catalog's risk level instead). */
  severity: Severity;
  help: string;
  check(input: AuditInput): Finding[];
}

function make(
  rule: FindingRule,
  parts: Omit<Finding, 'id' | 'rule' | 'severity'> & { severity?: Severity },
): Finding {
  const where = parts.protocol ? `${parts.protocol}/${parts.port ?? ''}@${parts.address ?? '*'}` : 'host';
  return { id: `${rule.id}:${where}`, rule: rule.id, severity: parts.severity ?? rule.severity, ...parts };
}

function decisionText(d: Decision | null): string {
  if (!d) return 'no firewall';
  if (d.chain === null && d.verdict === 'unknown') return `unknown: ${d.reasons[0] ?? 'not decidable'}`;
  if (d.chain === null) return `every base chain accepts (${d.verdict})`;
  return `${d.verdict} by ${d.table} chain ${d.chain}${d.handle !== null ? ` rule handle ${d.handle}` : ''}${d.comment ? ` (${d.comment})` : ''}`;
}

function reachableCells(row: ExposureRow) {
  return row.cells.filter((c) => c.reach !== 'no');
}

function where(row: ExposureRow): string {
  return columnsOf(row)
    .filter((c) => c.reach !== 'no')
    .map(
      (c) =>
        `${c.interface}/IPv${c.family}${c.reach === 'unknown' ? ' (unsure)' : ''}${c.restricted && c.onlyFrom.length > 0 ? ` from ${c.onlyFrom.slice(0, 8).join(', ')}${c.onlyFrom.length > 8 ? ', ...' : ''} only` : ''}${c.sourcePorts.length > 0 ? ` when sent from source port ${c.sourcePorts.join('/')}` : ''}`,
    )
    .join(', ');
}

function socketFor(input: AuditInput, row: ExposureRow): Socket | undefined {
  return input.sockets.find(
    (s) =>
      s.protocol === row.protocol && s.localPort === row.localPort && s.localAddress === row.localAddress,
  );
}

const noFirewall: FindingRule = {
  id: 'PW001',
  name: 'no-firewall',
  title: 'No firewall filters inbound traffic',
  severity: 'high',
  help: 'Without an input filter every listening socket is reachable from every network the host is on. Write a policy (`portwarden policy init`) and apply it.',
  check(input) {
    if (input.ruleset?.loaded && !input.ruleset.inputDefaultAccept) return [];
    const why = !input.ruleset
      ? `the ruleset could not be read: ${input.rulesetReason ?? 'unknown reason'}`
      : input.ruleset.inputChains === 0
        ? 'no base chain is attached to the input hook'
        : 'the input chains accept everything by default and drop nothing';
    // A ruleset that could not be read is unknown, not absent: PW011 says so instead.
    if (!input.ruleset && input.rulesetReason) return [];
    return [
      make(this, {
        protocol: null,
        port: null,
        address: null,
        severity: input.profile === 'server' ? 'high' : 'medium',
        message: `no firewall filters inbound traffic: ${why}`,
        fix: 'portwarden policy init -o policy.yaml && portwarden verify policy.yaml && portwarden apply policy.yaml',
        evidence: input.ruleset ? [`tables: ${input.ruleset.tables.join(', ') || 'none'}`] : [],
      }),
    ];
  },
};

const riskyExposed: FindingRule = {
  id: 'PW002',
  name: 'risky-service-exposed',
  title: 'A risky service is reachable from other hosts',
  severity: 'high',
  help: 'The catalog rates this service risky when reachable from untrusted networks: plaintext logins, unauthenticated databases, RPC and file-sharing services. Stop it, bind it to loopback, or filter it.',
  check(input) {
    const out: Finding[] = [];
    for (const row of input.exposure) {
      if (row.reachable === 'no') continue;
      const service = findCuratedByPort(row.localPort, row.protocol).find((s) =>
        ['critical', 'high', 'medium'].includes(s.risk.level),
      );
      if (!service) continue;
      const socket = socketFor(input, row);
      const restricted = reachableCells(row).every((c) => c.onlyFrom.length > 0);
      const severity: Severity = restricted
        ? service.risk.level === 'critical'
          ? 'high'
          : 'medium'
        : service.risk.level;
      out.push(
        make(this, {
          protocol: row.protocol,
          port: row.localPort,
          address: row.localAddress,
          severity,
          message: `${service.name} (${row.protocol}/${row.localPort}, ${service.risk.level} risk) is reachable on ${where(row)}: ${service.risk.reason}`,
          fix: `${service.advice}${service.alternative ? ` Use instead: ${service.alternative}.` : ''}${socket?.fix ? ` To stop it: ${socket.fix}` : ''}`,
          evidence: [
            `listener ${row.localAddress}:${row.localPort} owned by ${row.process}`,
            ...reachableCells(row).map((c) => `${c.interface}/IPv${c.family}: ${decisionText(c.decision)}`),
          ],
        }),
      );
    }
    return out;
  },
};

const unexpectedListener: FindingRule = {
  id: 'PW003',
  name: 'unexpected-listener',
  title: 'A listener is reachable that the policy does not allow',
  severity: 'high',
  help: 'The policy is the source of truth: a reachable service it does not list means the firewall and the policy disagree, or something new started listening.',
  check(input) {
    const policy = input.policy;
    if (!policy) return [];
    const out: Finding[] = [];
    for (const row of input.exposure) {
      for (const cell of reachableCells(row)) {
        const zone = input.zoneOf.get(cell.interface);
        const allowed = zone
          ? expectedInbound(policy, zone, cell.family, cell.onlyFrom[0]?.split('/')[0])
          : { tcp: [], udp: [] };
        if (portSetHas(allowed, row.protocol, row.localPort)) continue;
        out.push(
          make(this, {
            protocol: row.protocol,
            port: row.localPort,
            address: row.localAddress,
            message: `${row.protocol}/${row.localPort} (${row.service ?? 'unknown service'}, ${row.process}) is reachable on ${cell.interface}/IPv${cell.family} but policy "${policy.name}" does not allow it${zone ? ` in zone "${zone}"` : ` (interface ${cell.interface} is in no zone)`}`,
            fix: `stop the service, or add \`- allow: ${row.protocol}/${row.localPort}\` to zone "${zone ?? '?'}" if it is meant to be served; then \`portwarden apply ${policy.file}\``,
            evidence: [`${cell.interface}/IPv${cell.family}: ${decisionText(cell.decision)}`],
          }),
        );
        break;
      }
    }
    return out;
  },
};

const needlessHole: FindingRule = {
  id: 'PW004',
  name: 'needless-hole',
  title: 'The policy opens a port with nothing listening behind it',
  severity: 'low',
  help: 'An open port with no service is an invitation for the next thing that binds it. Remove it from the policy until a service needs it.',
  check(input) {
    const policy = input.policy;
    if (!policy) return [];
    const out: Finding[] = [];
    for (const zone of policy.zones) {
      zone.inbound.forEach((rule, index) => {
        const idle: string[] = [];
        for (const range of portSetRanges(rule.ports)) {
          if (range.to - range.from > 16) continue; // passive ranges and the like are meant to be mostly idle
          for (let port = range.from; port <= range.to; port++) {
            const listening = input.sockets.some(
              (s) => s.protocol === range.protocol && s.localPort === port && s.exposure !== 'loopback',
            );
            if (!listening) idle.push(`${range.protocol}/${port}`);
          }
        }
        if (idle.length === 0) return;
        const [protocol, port] = (idle[0] ?? '').split('/');
        out.push({
          ...make(this, {
            protocol: protocol === 'udp' ? 'udp' : 'tcp',
            port: Number(port),
            address: zone.name,
            message: `zone "${zone.name}" allows ${idle.join(', ')} (rule "${rule.spec}") but nothing listens there`,
            fix: `remove ${idle.length === 1 ? 'it' : 'them'} from the rule at ${policy.file}:${rule.location.line ?? '?'}, or start the service that needs ${idle.length === 1 ? 'it' : 'them'}`,
            evidence: [`policy ${policy.file}:${rule.location.line ?? '?'}`],
          }),
          id: `${this.id}:${zone.name}/inbound/${index + 1}`,
        });
      });
    }
    return out;
  },
};

const boundTooWide: FindingRule = {
  id: 'PW005',
  name: 'bound-to-all-interfaces',
  title: 'A service listens on every interface but only one zone needs it',
  severity: 'low',
  help: 'Binding to the one address that needs the service keeps it closed on the other networks even if the firewall changes.',
  check(input) {
    const policy = input.policy;
    if (!policy || policy.zones.length < 2) return [];
    const out: Finding[] = [];
    for (const socket of input.sockets) {
      if (socket.exposure !== 'all') continue;
      const zones = policy.zones.filter((z) =>
        z.inbound.some((r) => portSetHas(r.ports, socket.protocol, socket.localPort)),
      );
      if (zones.length !== 1) continue;
      const zone = zones[0];
      out.push(
        make(this, {
          protocol: socket.protocol,
          port: socket.localPort,
          address: socket.localAddress,
          message: `${socket.protocol}/${socket.localPort} (${socket.service ?? 'service'}) listens on all interfaces but only zone "${zone?.name ?? ''}" (${zone?.interfaces.join(', ') ?? ''}) allows it`,
          fix: `configure the service to bind to the address of ${zone?.interfaces.join('/') ?? 'that interface'} instead of ${socket.localAddress}`,
          evidence: [`policy allows it in zone "${zone?.name ?? ''}" only`],
        }),
      );
    }
    return out;
  },
};

const v6Gap: FindingRule = {
  id: 'PW006',
  name: 'ipv6-open-ipv4-filtered',
  title: 'Reachable over IPv6 although IPv4 is filtered',
  severity: 'high',
  help: 'A firewall written for IPv4 only (ip tables, iptables without ip6tables) leaves the same service open over IPv6.',
  check(input) {
    const out: Finding[] = [];
    for (const row of input.exposure) {
      for (const v6 of row.cells.filter(
        (c) => c.family === 6 && c.reach === 'yes' && c.onlyFrom.length === 0,
      )) {
        const v4 = row.cells.find((c) => c.family === 4 && c.interface === v6.interface);
        if (v4?.reach !== 'no') continue;
        out.push(
          make(this, {
            protocol: row.protocol,
            port: row.localPort,
            address: row.localAddress,
            message: `${row.protocol}/${row.localPort} (${row.service ?? 'service'}) is blocked over IPv4 on ${v6.interface} but reachable over IPv6`,
            fix: 'filter IPv6 too: use an `inet` nftables table (portwarden compiles one) or add the ip6tables rules',
            evidence: [`IPv4: ${decisionText(v4.decision)}`, `IPv6: ${decisionText(v6.decision)}`],
          }),
        );
      }
    }
    return out;
  },
};

const dnatBypass: FindingRule = {
  id: 'PW007',
  name: 'dnat-bypasses-input',
  title: 'A published (DNAT) port is reachable although the input chain drops it',
  severity: 'high',
  help: 'DNAT happens in prerouting, so the connection crosses the forward chain, not input: input rules (ufw, a host firewall) never see published container ports.',
  check(input) {
    const out: Finding[] = [];
    for (const { rule, input: inDecision, forward } of input.dnat) {
      if (declaredForward(input.policy, rule)) continue;
      if (forward && forward.verdict === 'drop') continue;
      if (forward?.verdict === 'reject') continue;
      const inputBlocks = inDecision?.verdict === 'drop' || inDecision?.verdict === 'reject';
      out.push(
        make(this, {
          protocol: rule.protocol,
          port: rule.port,
          address: rule.toAddress ?? 'published',
          severity: inputBlocks ? 'high' : 'medium',
          message: `${rule.protocol ?? 'any'}/${rule.port ?? '*'} is forwarded by DNAT to ${rule.toAddress ?? '(an iptables DNAT target)'}${rule.toPort ? `:${rule.toPort}` : ''} and ${forward?.verdict === 'accept' ? 'the forward path accepts it' : 'the forward path may accept it'}${inputBlocks ? ', although the input chain drops that port' : ''}`,
          fix: 'publish the port on 127.0.0.1 only (docker run -p 127.0.0.1:PORT:PORT), or filter it in the forward path (DOCKER-USER chain / a forward rule)',
          evidence: [
            `DNAT in ${rule.table} chain ${rule.chain} handle ${rule.handle}`,
            `input: ${decisionText(inDecision)}`,
            `forward: ${decisionText(forward)}`,
          ],
        }),
      );
    }
    return out;
  },
};

/** Whether the policy itself declares this DNAT as a port forward (then PW007 has nothing to say). */
function declaredForward(policy: Policy | null, rule: DnatRule): boolean {
  return (policy?.forwards ?? []).some(
    (f) =>
      f.protocol === rule.protocol &&
      f.listenPort === rule.port &&
      (rule.toAddress === null || rule.toAddress === f.toAddress) &&
      (rule.toPort === null || rule.toPort === f.toPort),
  );
}

const egressOpen: FindingRule = {
  id: 'PW008',
  name: 'egress-open',
  title: 'Outbound traffic is not filtered',
  severity: 'medium',
  help: 'Default-deny egress stops malware calling home and data leaving over unexpected ports; allow what the machine needs and drop the rest.',
  check(input) {
    if (input.egress.length === 0 || !input.egress.every((e) => e.decision.verdict === 'accept')) return [];
    return [
      make(this, {
        protocol: 'tcp',
        port: null,
        address: null,
        severity: input.profile === 'server' ? 'medium' : 'low',
        message: `new outbound connections to any address and port are accepted (probed tcp/${input.egress.map((e) => e.port).join(', tcp/')} to 203.0.113.9)`,
        fix: 'set `defaults: { outbound: drop }` in the policy and allow only what the machine uses (dns, http, https, ntp, ...)',
        evidence: input.egress.map((e) => `tcp/${e.port}: ${decisionText(e.decision)}`),
      }),
    ];
  },
};

const exeDeleted: FindingRule = {
  id: 'PW009',
  name: 'listener-exe-deleted',
  title: 'A listener runs an executable that was deleted or replaced',
  severity: 'high',
  help: 'A process whose binary is gone is either running an old, unpatched version after an upgrade or is malware that removed itself.',
  check(input) {
    const out: Finding[] = [];
    for (const socket of input.sockets) {
      for (const p of socket.processes.filter((o) => o.exeDeleted)) {
        out.push(
          make(this, {
            protocol: socket.protocol,
            port: socket.localPort,
            address: socket.localAddress,
            message: `${p.name ?? '?'}[${p.pid}] listening on ${socket.protocol}/${socket.localPort} runs ${p.exe ?? 'an executable'} which no longer exists on disk`,
            fix: p.unit
              ? `systemctl restart ${p.unit} (and find out why the binary changed)`
              : `restart or kill ${p.pid}, and find out why the binary changed`,
            evidence: [`/proc/${p.pid}/exe -> ${p.exe ?? '?'}`],
          }),
        );
      }
    }
    return out;
  },
};

const baseline: FindingRule = {
  id: 'PW010',
  name: 'baseline-exposure',
  title: 'The host exposes a service its profile should not',
  severity: 'medium',
  help: 'Without a policy, audit holds the host to a baseline: a workstation should expose nothing; a server only what it knowingly serves.',
  check(input) {
    if (input.policy) return [];
    const out: Finding[] = [];
    for (const row of input.exposure) {
      if (row.reachable !== 'yes') continue;
      const curated = findCuratedByPort(row.localPort, row.protocol);
      if (curated.some((s) => ['critical', 'high', 'medium'].includes(s.risk.level))) continue; // PW002 covers it
      if (input.profile === 'server' && curated.length > 0) continue;
      out.push(
        make(this, {
          protocol: row.protocol,
          port: row.localPort,
          address: row.localAddress,
          severity: input.profile === 'workstation' ? 'medium' : 'info',
          message:
            input.profile === 'workstation'
              ? `a workstation should expose nothing, but ${row.protocol}/${row.localPort} (${row.service ?? 'unknown service'}, ${row.process}) is reachable on ${where(row)}`
              : `${row.protocol}/${row.localPort} (${row.service ?? 'not in the catalog'}, ${row.process}) is reachable on ${where(row)}: confirm this server is meant to offer it`,
          fix: socketFor(input, row)?.fix ?? 'stop the service or bind it to 127.0.0.1',
          evidence: reachableCells(row).map(
            (c) => `${c.interface}/IPv${c.family}: ${decisionText(c.decision)}`,
          ),
        }),
      );
    }
    return out;
  },
};

const unknownExposure: FindingRule = {
  id: 'PW011',
  name: 'exposure-not-modelled',
  title: 'Exposure could not be decided from the ruleset',
  severity: 'info',
  help: 'Some rules use extensions the static evaluator cannot model (iptables xt matches shown by nft only by name); check them with iptables-save.',
  check(input) {
    const rows = input.exposure.filter((r) => r.reachable === 'unknown');
    if (rows.length === 0) return [];
    const reasons = [...new Set(rows.flatMap((r) => r.notModelled))];
    return [
      make(this, {
        protocol: null,
        port: null,
        address: null,
        message: `reachability of ${rows.length} listener(s) depends on rules that could not be modelled: ${reasons.slice(0, 3).join('; ')}`,
        fix: 'inspect those rules with `iptables-save` / `nft list ruleset`; portwarden-compiled rulesets use only modelled expressions',
        evidence: rows.map((r) => `${r.protocol}/${r.localPort}`),
      }),
    ];
  },
};

const kernelSettingOff: FindingRule = {
  id: 'PW012',
  name: 'kernel-setting-off',
  title: 'The policy routes or forwards, but the kernel setting that needs is off',
  severity: 'medium',
  help: 'Routing and port forwards need net.ipv4.ip_forward / net.ipv6.conf.all.forwarding, and a forward to 127.0.0.1 needs route_localnet: without them the ruleset is loaded but the traffic it allows never flows.',
  check(input) {
    if (!input.policy || !input.sysctls) return [];
    const out: Finding[] = [];
    for (const setting of requiredKernelSettings(input.policy)) {
      const now = input.sysctls.get(setting.name);
      if (setting.kind !== 'sysctl' || now === undefined || now === setting.value) continue;
      const finding = make(this, {
        protocol: null,
        port: null,
        address: null,
        message: `${setting.reason}, but ${setting.name} is ${now}: that traffic is not ${setting.name.includes('route_localnet') ? 'delivered' : 'routed'}`,
        fix: `\`portwarden apply\` sets it (and rolls it back with the ruleset); by hand: sysctl -w ${setting.name}=${setting.value}, kept in /etc/sysctl.d/`,
        evidence: [`${setting.name} = ${now}`],
      });
      out.push({ ...finding, id: `${this.id}:${setting.name}` });
    }
    return out;
  },
};

/** Every audit rule, in id order. */
export const FINDING_RULES: readonly FindingRule[] = [
  noFirewall,
  riskyExposed,
  unexpectedListener,
  needlessHole,
  boundTooWide,
  v6Gap,
  dnatBypass,
  egressOpen,
  exeDeleted,
  baseline,
  unknownExposure,
  kernelSettingOff,
];

/** Runs every rule; findings come out most severe first, then by port. */
export function runFindingRules(input: AuditInput): Finding[] {
  const findings = FINDING_RULES.flatMap((rule) => rule.check(input));
  const seen = new Set<string>();
  return findings
    .filter((f) => (seen.has(f.id) ? false : (seen.add(f.id), true)))
    .sort(
      (a, b) =>
        SEVERITIES.indexOf(a.severity) - SEVERITIES.indexOf(b.severity) ||
        (a.port ?? 0) - (b.port ?? 0) ||
        a.id.localeCompare(b.id),
    );
}
