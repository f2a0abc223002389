import { PROGRAM_MARK_BASE, programMark } from '../compile/program-mark.ts';
import { portSetHas } from '../catalog/port-set.ts';
import type { Policy } from '../policy/types.ts';
import { cidrContains } from '../catalog/address.ts';
import type { Answer, Attempt, Decision, ProgramIdentity, ProgramsMode } from './types.ts';

/** What the daemon does with one attributed attempt. */
export type Outcome =
  | { kind: 'allow'; mark: number; reason: string }
  | { kind: 'deny'; reason: string }
  | { kind: 'ask'; changed: boolean };

function covers(d: Decision, a: Attempt): boolean {
  if (d.scope === 'always') return true;
  if (d.protocol !== a.protocol || d.remotePort !== a.remotePort) return false;
  return d.scope === 'port' || d.remoteAddress === a.remoteAddress;
}

/** The policy `path:` rule that lets this program reach this destination, as its index. */
export function policyRuleFor(policy: Policy | null, exe: string, a: Attempt): number | null {
  if (!policy) return null;
  for (const [index, p] of policy.programs.entries()) {
    if (p.match.kind !== 'path' || p.match.path !== exe) continue;
    for (const rule of p.outbound) {
      if (!portSetHas(rule.ports, a.protocol, a.remotePort)) continue;
      if (rule.peers.length === 0 || rule.peers.some((c) => cidrContains(c, a.remoteAddress))) return index;
    }
  }
  return null;
}

/**
 * Decides an attempt from the stored decisions of this executable, then the policy's `path:` rules,
 * then the mode. Decisions are bound to the sha256: a decision for another sha256 at the same path
 * means the binary changed, which is asked again (and denied in enforce) — never allowed.
 */
export function decideAttempt(input: {
  program: ProgramIdentity;
  attempt: Attempt;
  decisions: readonly Decision[];
  policy: Policy | null;
  mode: ProgramsMode;
}): Outcome {
  const { program, attempt, mode } = input;
  const mine = input.decisions.filter((d) => d.exe === program.exe);
  const current = mine.filter((d) => d.sha256 !== null && d.sha256 === program.sha256);
  const changed = mine.length > 0 && current.length === 0;
  const deny = current.find((d) => d.verdict === 'deny' && covers(d, attempt));
  if (deny) return { kind: 'deny', reason: `decision ${deny.id} (deny ${deny.scope})` };
  const rule = changed ? null : policyRuleFor(input.policy, program.exe, attempt);
  const allow = current.find((d) => d.verdict === 'allow' && covers(d, attempt));
  if (rule !== null)
    return { kind: 'allow', mark: programMark(rule), reason: `policy programs[${rule}] (path)` };
  if (allow)
    return { kind: 'allow', mark: PROGRAM_MARK_BASE, reason: `decision ${allow.id} (allow ${allow.scope})` };
  if (mode === 'learn') return { kind: 'allow', mark: PROGRAM_MARK_BASE, reason: 'learn' };
  if (mode === 'enforce')
    return { kind: 'deny', reason: changed ? 'enforce: the executable changed' : 'enforce: no decision' };
  return { kind: 'ask', changed };
}

/** The decision an answer stores (none for the one-off answers). */
export function decisionOf(
  answer: Answer,
  program: Pick<ProgramIdentity, 'exe' | 'sha256'>,
  attempt: Pick<Attempt, 'protocol' | 'remoteAddress' | 'remotePort'>,
): Omit<Decision, 'id' | 'at'> | null {
  const base = { exe: program.exe, sha256: program.sha256 };
  switch (answer) {
    case 'allow-once':
    case 'deny':
      return null;
    case 'allow-destination':
      return { ...base, verdict: 'allow', scope: 'destination', ...destination(attempt) };
    case 'allow-port':
      return { ...base, verdict: 'allow', scope: 'port', ...destination(attempt), remoteAddress: null };
    case 'allow-always':
      return {
        ...base,
        verdict: 'allow',
        scope: 'always',
        protocol: null,
        remoteAddress: null,
        remotePort: null,
      };
    case 'deny-always':
      return {
        ...base,
        verdict: 'deny',
        scope: 'always',
        protocol: null,
        remoteAddress: null,
        remotePort: null,
      };
  }
}

function destination(a: Pick<Attempt, 'protocol' | 'remoteAddress' | 'remotePort'>): {
  protocol: 'tcp' | 'udp';
  remoteAddress: string;
  remotePort: number;
} {
  return { protocol: a.protocol, remoteAddress: a.remoteAddress, remotePort: a.remotePort };
}
