import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { canonicalAddress } from '../catalog/address.ts';
import { parsePortSpec } from '../catalog/port-spec.ts';
import { compilePolicy } from '../compile/registry.ts';
import { PortwardenError } from '../errors.ts';
import { NetnsLab } from '../lab/netns.ts';
import { requireTools } from '../system/tools.ts';
import type { Policy } from '../policy/types.ts';
import { verifyFtp } from './ftp.ts';
import { buildLab, loadWithRecorder, placeForwardTargets, type LabNamespaces } from './lab.ts';
import {
  labSide,
  planExtraPeers,
  planLab,
  samplePorts,
  type Difference,
  type ExtraPeer,
  type LabZone,
} from './plan.ts';
import {
  expectations,
  needsFullRecords,
  settleRound,
  summarise,
  Verdicts,
  type PacketGroup,
  type Question,
  type Undecided,
} from './probes.ts';
import { countRanges, formatRanges } from '../catalog/port-set.ts';
import { planQuestions } from './questions.ts';
import { sendProbes, type SendJob } from './raw-sender.ts';
import {
  PASS_SUMMARY_SETS,
  PROBE_SPORT_FIRST,
  TABLE_IN_INET,
  TABLE_IN_NETDEV,
  TABLE_PASS,
  emptyRecords,
  readRecords,
  recorderFlush,
  type Records,
} from './recorder.ts';

export interface VerifyOptions {
  backend: 'nftables' | 'iptables';
  /**
   * A ruleset the user wrote, checked against the policy instead of the compiled one: one nft file,
   * or iptables-restore files with suffix .v4 / .v6 (a missing family stays without rules).
   */
  rulesetFiles?: { suffix: string; content: string }[];
  /** TCP ports probed from and to each zone's main peer (default all 65,535). */
  ports: string;
  /** Rounds of sending before a probe that never reached the ruleset is reported undecided (default 5). */
  maxRounds?: number;
  version: string;
  onStep?: (text: string) => void;
}

export interface VerifyResult {
  /** The ruleset lets through exactly what the policy says, for every probe. */
  ok: boolean;
  differences: Difference[];
  /** Probes no verdict could be had for (they never reached the ruleset, or conntrack dropped packets). */
  undecided: Undecided[];
  /** Probe packets sent, every round counted. */
  probes: number;
  rounds: number;
  lab: { zone: string; interface: string; host: string[]; peer: string[]; extraPeers: string[] }[];
  /** What was checked, one line each (for the text report). */
  checks: string[];
}

const MAX_ROUNDS = 5;

function ranges(spec: string, protocol: 'tcp' | 'udp'): { from: number; to: number }[] {
  return [...parsePortSpec(spec, { defaultProtocols: [protocol] })[protocol]];
}

/** Which namespace sends from each lab address. */
function senders(plan: readonly LabZone[], ns: LabNamespaces): Map<string, string> {
  const out = new Map<string, string>();
  for (const zone of plan)
    for (const family of [4, 6] as const) {
      const a = labSide(zone, family);
      out.set(canonicalAddress(a.host), ns.host);
      out.set(canonicalAddress(a.peer), ns.peers.get(zone.zone) ?? '');
    }
  for (const [address, name] of ns.extraNs) out.set(canonicalAddress(address), name);
  return out;
}

function jobsByNamespace(
  pending: readonly PacketGroup[],
  from: Map<string, string>,
  sport: number,
): Map<string, SendJob[]> {
  const out = new Map<string, SendJob[]>();
  for (const g of pending) {
    const ns = from.get(g.src);
    if (ns === undefined) throw new PortwardenError('INTERNAL', `no lab namespace sends from ${g.src}`);
    const ranges = formatRanges(g.ports);
    out.set(ns, [...(out.get(ns) ?? []), { src: g.src, dst: g.dst, protocol: g.protocol, sport, ranges }]);
  }
  return out;
}

/** Runs several `nft -j list ...` in one process; each prints one JSON document a line. */
async function listRecords(
  lab: NetnsLab,
  host: string,
  what: readonly string[],
  into: Records,
): Promise<Records> {
  const script = what.map((w) => `nft -j list ${w}`).join(' && ');
  const listing = await lab.exec(host, ['sh', '-c', script], { timeoutMs: 300_000 });
  for (const line of listing.stdout.split('\n')) if (line.trim() !== '') readRecords(line, into);
  return into;
}

/** The *in* tables hold only small sets: the expected class port by port, the rest as counters. */
function readArrivals(lab: NetnsLab, host: string): Promise<Records> {
  return listRecords(
    lab,
    host,
    [`table netdev ${TABLE_IN_NETDEV}`, `table inet ${TABLE_IN_INET}`],
    emptyRecords(),
  );
}

/** *pass*: the small sets always; the unexpected passes port by port only when their counts do not settle it. */
async function readPasses(
  lab: NetnsLab,
  host: string,
  verdicts: Verdicts,
  sent: readonly PacketGroup[],
  sport: number,
): Promise<{ passes: Records; exact: boolean }> {
  const summary = PASS_SUMMARY_SETS.map((name) => `set inet ${TABLE_PASS} ${name}`);
  const passes = await listRecords(lab, host, summary, emptyRecords());
  if (!needsFullRecords(verdicts, sent, sport, passes)) return { passes, exact: false };
  return { passes: await listRecords(lab, host, [`table inet ${TABLE_PASS}`], passes), exact: true };
}

function total(records: Records): number {
  let n = 0;
  for (const count of records.arrivedCount.values()) n += count;
  return n;
}

/**
 * Arrivals once the lab is quiet: the count at *in* reached what was sent, or stopped growing. Waiting
 * here only saves rounds; it decides nothing (a probe still on its way is simply sent again).
 */
async function settledArrivals(lab: NetnsLab, host: string, sent: number): Promise<Records> {
  let records = await readArrivals(lab, host);
  for (let still = 0, polls = 0; total(records) < sent && still < 3 && polls < 100; polls++) {
    await delay(20);
    const next = await readArrivals(lab, host);
    still = total(next) === total(records) ? still + 1 : 0;
    records = next;
  }
  return records;
}

/**
 * Sum of conntrack's drop counters in a namespace, or null when they cannot be read: the recorder's
 * own ct expressions load conntrack in the lab, so an unreadable file is not "no drops".
 */
async function conntrackDrops(lab: NetnsLab, ns: string): Promise<number | null> {
  const r = await lab.exec(ns, ['cat', '/proc/net/stat/nf_conntrack'], { allowFailure: true });
  const [header, ...rows] = r.stdout.trim().split('\n');
  if (r.status !== 0 || !header) return null;
  const columns = header.trim().split(/\s+/);
  const wanted = ['drop', 'insert_failed', 'early_drop'].map((c) => columns.indexOf(c)).filter((i) => i >= 0);
  if (wanted.length === 0) return null;
  let sum = 0;
  for (const row of rows) {
    const cells = row.trim().split(/\s+/);
    for (const i of wanted) sum += Number.parseInt(cells[i] ?? '0', 16) || 0;
  }
  return sum;
}

async function flushRecorder(lab: NetnsLab, host: string): Promise<void> {
  await lab.exec(host, ['nft', '-f', '-'], { input: recorderFlush() });
}

/** Sends every undecided probe again until each has a verdict or the rounds run out. */
async function probeRounds(
  lab: NetnsLab,
  plan: readonly LabZone[],
  ns: LabNamespaces,
  questions: readonly Question[],
  options: VerifyOptions,
): Promise<{ verdicts: Verdicts; probes: number; rounds: number; troubled: boolean }> {
  const verdicts = new Verdicts(questions);
  const from = senders(plan, ns);
  let probes = 0;
  let rounds = 0;
  let troubled = false;
  for (let round = 0; round < (options.maxRounds ?? MAX_ROUNDS); round++) {
    const pending = verdicts.pending();
    if (pending.length === 0) break;
    rounds += 1;
    const sport = PROBE_SPORT_FIRST + round;
    await flushRecorder(lab, ns.host);
    const dropsBefore = await conntrackDrops(lab, ns.host);
    const jobs = jobsByNamespace(pending, from, sport);
    const stats = await Promise.all([...jobs].map(([name, list]) => sendProbes(lab, name, list)));
    const sent = pending.reduce((n, g) => n + countRanges(g.ports), 0);
    probes += stats.reduce((n, s) => n + s.sent, 0);
    options.onStep?.(`round ${rounds}: sent ${sent} probes`);
    const arrivals = await settledArrivals(lab, ns.host, sent);
    // read *pass* only after *in*: a probe's way from one to the other is one uninterrupted pass
    // through the kernel, so every probe counted at *in* has by now been recorded at *pass* or dropped
    await delay(20);
    const { passes, exact } = await readPasses(lab, ns.host, verdicts, pending, sport);
    const dropsAfter = await conntrackDrops(lab, ns.host);
    const conntrackTrouble = dropsBefore === null || dropsAfter === null || dropsAfter > dropsBefore;
    troubled ||= conntrackTrouble;
    settleRound(verdicts, { sent: pending, sport, arrivals, passes, conntrackTrouble, exact });
    options.onStep?.(
      `round ${rounds}: ${sent} probes sent, ${total(arrivals)} reached the ruleset, ${verdicts.undecidedCount()} without a verdict`,
    );
  }
  return { verdicts, probes, rounds, troubled };
}

function describeChecks(
  policy: Policy,
  plan: readonly LabZone[],
  extras: readonly ExtraPeer[],
  ports: string,
): string[] {
  const udp = samplePorts(policy, 'udp');
  const checks = plan.map((z) => `zone ${z.zone}: TCP ${ports} and UDP ${udp} in and out, IPv4 and IPv6`);
  if (plan.length > 1)
    checks.push(`routed traffic between ${plan.length} zones (sampled TCP and UDP), IPv4 and IPv6`);
  for (const e of extras)
    checks.push(`zone ${e.zone}: peer ${e.address} (${e.why}), sampled TCP and UDP in and out`);
  if (policy.forwards.length > 0) checks.push(`${policy.forwards.length} port forward(s) end to end`);
  return checks;
}

function describeLab(plan: readonly LabZone[], extras: readonly ExtraPeer[]): VerifyResult['lab'] {
  return plan.map((z) => ({
    zone: z.zone,
    interface: z.hostIf,
    host: [z.v4.host, z.v6.host],
    peer: [z.v4.peer, z.v6.peer],
    extraPeers: extras.filter((e) => e.zone === z.zone).map((e) => e.address),
  }));
}

/** The ruleset under test (the user's files, or the policy compiled) loaded between the recorder's tables. */
async function loadUnderTest(
  lab: NetnsLab,
  host: string,
  policy: Policy,
  plan: readonly LabZone[],
  questions: readonly Question[],
  options: VerifyOptions,
  dir: string,
): Promise<void> {
  const files = options.rulesetFiles ?? compilePolicy(policy, options.backend, options.version);
  const units = policy.programs.flatMap((p) =>
    p.match.kind === 'unit' ? [`system.slice/${p.match.unit}`] : [],
  );
  await loadWithRecorder(
    lab,
    host,
    { backend: options.backend, files, units },
    { interfaces: plan.map((z) => z.hostIf), ...expectations(questions) },
    dir,
  );
}

/**
 * Proves a ruleset against its policy with real packets. The lab: a host namespace with the policy's
 * interface names and the ruleset loaded between verify's recorder tables; per zone a peer namespace
 * (a bridge, so further peers can join) inside the zone's sources, plus peers inside each `from`/`to`
 * range and one outside them. Every probe's verdict is read from the recorder (see recorder.ts), so
 * the result does not depend on timing; FTP is checked with real sessions. Every namespace and
 * process is removed afterwards.
 */
export async function verifyPolicy(policy: Policy, options: VerifyOptions): Promise<VerifyResult> {
  if (process.getuid?.() !== 0) {
    throw new PortwardenError('NOT_ROOT', 'verify builds network namespaces and needs root', {
      hint: 'run it as root (e.g. sudo portwarden verify policy.yaml)',
    });
  }
  const plan = planLab(policy);
  const extras = planExtraPeers(policy, plan);
  const lab = new NetnsLab('vfy');
  const dir = mkdtempSync(join(tmpdir(), 'pw-verify-'));
  try {
    options.onStep?.('building the lab');
    const ns = await buildLab(lab, policy, plan, extras);
    await placeForwardTargets(lab, policy, plan, ns);
    const questions = planQuestions(policy, plan, extras, {
      sweep: ranges(options.ports, 'tcp'),
      tcpSample: ranges(samplePorts(policy, 'tcp', options.ports), 'tcp'),
      udp: ranges(samplePorts(policy, 'udp'), 'udp'),
    });
    options.onStep?.('loading the ruleset between the recorder tables');
    await loadUnderTest(lab, ns.host, policy, plan, questions, options, dir);
    const probing = await probeRounds(lab, plan, ns, questions, options);
    const reason = probing.troubled
      ? `conntrack dropped packets in the lab during the rounds (or its counters could not be read), so no probe there counts as blocked`
      : `never reached the ruleset in ${probing.rounds} round(s) of sending`;
    const { differences, undecided } = summarise(probing.verdicts, reason);
    if (policy.zones.length > 0) options.onStep?.('FTP sessions');
    const ftp = await verifyFtp(lab, policy, plan, ns.host, ns.peers);
    differences.push(...ftp.differences);
    const checks = describeChecks(policy, plan, extras, options.ports);
    if (ftp.sessions > 0) checks.push('FTP sessions, passive and active, where the policy allows FTP');
    return {
      ok: differences.length === 0 && undecided.length === 0,
      differences,
      undecided,
      probes: probing.probes + ftp.sessions,
      rounds: probing.rounds,
      lab: describeLab(plan, extras),
      checks,
    };
  } finally {
    await lab.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Checks that the tools verify needs are present (exit 3 naming the missing one). */
export async function checkVerifyTools(backend: string): Promise<void> {
  await requireTools('verify', [
    'ip',
    'nft',
    'python3',
    ...(backend === 'iptables' ? ['iptables-restore'] : []),
  ]);
}
