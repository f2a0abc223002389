import { PROGRAM_MARK_BASE } from '../compile/program-mark.ts';
import type { Policy } from '../policy/types.ts';
import type { WatchEvent } from '../watch/events.ts';
import { decideAttempt, decisionOf, type Outcome } from './decide.ts';
import { gateRuleset, gateUpdate, ATTEMPT_TIMEOUT_S } from './gate.ts';
import type { ProgramStore, Prompt } from './store.ts';
import {
  attemptKey,
  type Attempt,
  type Decision,
  type ProgramIdentity,
  type ProgramsMode,
  type Verdict,
} from './types.ts';

/**
 * The daemon side of `watch --programs`: polls the gate's attempts, attributes each to its process,
 * decides from the stored decisions, the policy's `path:` rules and the mode, asks through the
 * database (the dashboard and `portwarden ask` answer there), admits the exact 5-tuple of allowed
 * attempts and logs every attempt. All I/O comes in through `GateIo`, so the core runs in tests
 * without a kernel.
 */

export interface GateIo {
  /** Runs an nft script (`nft -f -`). */
  nft(script: string): Promise<void>;
  /** The attempts currently in the gate's sets. */
  list(): Promise<Attempt[]>;
  attribute(attempts: readonly Attempt[]): Map<Attempt, ProgramIdentity | null>;
}

export interface ProgramsGateOptions {
  mode: ProgramsMode;
  store: ProgramStore;
  io: GateIo;
  policy: Policy | null;
  /** Unanswered prompts are denied after this long. Default 30 s. */
  promptTimeoutMs?: number;
  /** How often the gate is read. Default 200 ms (well inside the 1 s a TCP client waits before it retransmits its SYN). */
  pollMs?: number;
  /** Alerts for prompts and denials; none when alerts are off. */
  alert?: (event: WatchEvent) => void;
  /** An "always" answer, for writing it into the policy file. */
  onAlways?: (decision: Omit<Decision, 'id' | 'at'>, program: ProgramIdentity) => Promise<void>;
  onError?: (error: Error) => void;
  /** The connection log and answered prompts older than this are deleted (hourly). Default 30 days. */
  retentionMs?: number;
  /** Called once the gate is loaded (tests wait for it). */
  onReady?: () => void;
  /** Called after each poll with how many attempts it handled and how long it took. */
  onPoll?: (stats: { attempts: number; ms: number }) => void;
  signal: AbortSignal;
  now?: () => number;
}

interface Known {
  until: number;
  state: 'allowed' | 'denied' | 'pending' | 'unattributed';
}

interface Held {
  prompt: number;
  program: ProgramIdentity;
  attempts: Attempt[];
}

interface Pass {
  admit: { attempt: Attempt; mark: number }[];
  log: { at: number; attempt: Attempt; program: ProgramIdentity | null; verdict: Verdict; reason: string }[];
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

function destination(a: Attempt): string {
  return a.family === 6 ? `[${a.remoteAddress}]:${a.remotePort}` : `${a.remoteAddress}:${a.remotePort}`;
}

/** The gate's state between polls; one per daemon. */
export class ProgramsGate {
  private readonly known = new Map<string, Known>();
  /** Pending prompts by program + destination, with the attempts they hold. */
  private readonly held = new Map<string, Held>();
  private decisions: Decision[];
  private readonly now: () => number;

  constructor(private readonly options: ProgramsGateOptions) {
    this.now = options.now ?? Date.now;
    this.decisions = options.store.decisions();
  }

  async start(): Promise<void> {
    await this.options.io.nft(gateRuleset(this.options.mode));
    this.options.store.closeStalePrompts(this.now());
  }

  /** One poll: read, attribute, decide, answer, admit, log. Returns the number of new attempts. */
  async poll(): Promise<number> {
    const { io, store } = this.options;
    const now = this.now();
    const listed = await io.list();
    const fresh = listed.filter((a) => {
      const k = this.known.get(attemptKey(a));
      return !k || k.until <= now;
    });
    const pass: Pass = { admit: [], log: [] };
    const owners = io.attribute(fresh);
    for (const attempt of fresh) this.handle(attempt, owners.get(attempt) ?? null, now, pass);
    this.expirePrompts(now);
    for (const prompt of store.answeredUnresolved()) await this.resolve(prompt, now, pass);
    if (pass.admit.length > 0) await io.nft(gateUpdate(pass.admit, []));
    // forgetting what was read keeps the listing small; a retransmission adds it again
    if (listed.length > 0) await io.nft(gateUpdate([], listed)).catch(() => undefined);
    if (pass.log.length > 0) store.logConnections(pass.log);
    for (const [key, k] of this.known) if (k.until <= now && k.state !== 'pending') this.known.delete(key);
    return fresh.length;
  }

  private remember(attempt: Attempt, state: Known['state'], now: number): void {
    const ttl = state === 'unattributed' ? 1000 : ATTEMPT_TIMEOUT_S * 1000;
    this.known.set(attemptKey(attempt), { state, until: now + ttl });
  }

  private handle(attempt: Attempt, program: ProgramIdentity | null, now: number, pass: Pass): void {
    const { mode } = this.options;
    if (!program) {
      // the socket was gone, or is not in this namespace: nothing to vouch for, so never admitted
      this.remember(attempt, 'unattributed', now);
      pass.log.push({
        at: now,
        attempt,
        program,
        verdict: mode === 'learn' ? 'allowed' : 'denied',
        reason: 'no process owns the socket any more',
      });
      return;
    }
    const outcome: Outcome =
      mode === 'learn'
        ? { kind: 'allow', mark: 0, reason: 'learn' }
        : decideAttempt({ program, attempt, decisions: this.decisions, policy: this.options.policy, mode });
    if (outcome.kind === 'allow') {
      this.remember(attempt, 'allowed', now);
      if (mode !== 'learn') pass.admit.push({ attempt, mark: outcome.mark });
      pass.log.push({ at: now, attempt, program, verdict: 'allowed', reason: outcome.reason });
    } else if (outcome.kind === 'deny') {
      this.remember(attempt, 'denied', now);
      pass.log.push({ at: now, attempt, program, verdict: 'denied', reason: outcome.reason });
      this.alert(
        'program-denied',
        `${program.exe} -> ${attempt.protocol} ${destination(attempt)} denied (${outcome.reason})`,
        now,
        { ...attempt, program },
      );
    } else this.ask(attempt, program, outcome.changed, now);
  }

  private ask(attempt: Attempt, program: ProgramIdentity, changed: boolean, now: number): void {
    this.remember(attempt, 'pending', now);
    const key = `${program.exe}|${program.sha256 ?? ''}|${attempt.protocol}|${attempt.remoteAddress}|${attempt.remotePort}`;
    const held = this.held.get(key);
    if (held) {
      held.attempts.push(attempt);
      return;
    }
    const deadline = now + (this.options.promptTimeoutMs ?? 30_000);
    const id = this.options.store.addPrompt({ program, changed, attempt, at: now, deadline });
    this.held.set(key, { prompt: id, program, attempts: [attempt] });
    const what = changed ? 'changed since its last decision' : 'has no decision';
    this.alert(
      'program-ask',
      `${program.exe} (pid ${program.pid}, ${what}) wants ${attempt.protocol} ${destination(attempt)}: answer prompt ${id}`,
      now,
      {
        id,
        deadline: new Date(deadline).toISOString(),
        changed,
        ...attempt,
        program,
      },
    );
  }

  private alert(
    kind: 'program-ask' | 'program-denied',
    message: string,
    at: number,
    program: Record<string, unknown>,
  ): void {
    this.options.alert?.({
      at: new Date(at).toISOString(),
      kind,
      key: `${kind}:${message}`,
      message,
      program,
    });
  }

  private expirePrompts(now: number): void {
    for (const p of this.options.store.pendingPrompts())
      if (Date.parse(p.deadline) <= now) this.options.store.answer(p.id, 'deny', 'timeout', now);
  }

  private async resolve(prompt: Prompt, now: number, pass: Pass): Promise<void> {
    const { store } = this.options;
    store.markResolved(prompt.id);
    const entry = [...this.held.entries()].find(([, h]) => h.prompt === prompt.id);
    if (entry) this.held.delete(entry[0]);
    const answer = prompt.answer ?? 'deny';
    const decision = decisionOf(answer, prompt.program, prompt);
    if (decision) {
      store.addDecision(decision, now, `prompt ${prompt.id} (${prompt.answeredBy ?? '?'})`);
      this.decisions = store.decisions();
      if (decision.verdict === 'allow')
        await this.options
          .onAlways?.(decision, prompt.program)
          .catch((error: unknown) =>
            this.options.onError?.(error instanceof Error ? error : new Error(String(error))),
          );
    }
    const allowed = answer.startsWith('allow');
    for (const attempt of entry?.[1].attempts ?? []) {
      this.remember(attempt, allowed ? 'allowed' : 'denied', now);
      const reason = `prompt ${prompt.id}: ${answer} (${prompt.answeredBy ?? '?'})`;
      if (allowed) pass.admit.push({ attempt, mark: PROGRAM_MARK_BASE });
      pass.log.push({
        at: now,
        attempt,
        program: prompt.program,
        verdict: allowed ? 'allowed' : 'denied',
        reason,
      });
    }
  }
}

/** Runs the gate until the signal aborts. The gate table stays loaded afterwards (see gate.ts). */
export async function runProgramsGate(options: ProgramsGateOptions): Promise<void> {
  const gate = new ProgramsGate(options);
  await gate.start();
  options.onReady?.();
  const pollMs = options.pollMs ?? 200;
  let pruned = 0;
  while (!options.signal.aborted) {
    const started = performance.now();
    try {
      const attempts = await gate.poll();
      options.onPoll?.({ attempts, ms: performance.now() - started });
    } catch (error) {
      options.onError?.(error instanceof Error ? error : new Error(String(error)));
    }
    const now = (options.now ?? Date.now)();
    if (now - pruned > 3_600_000) {
      pruned = now;
      options.store.prune(now - (options.retentionMs ?? 30 * 86_400_000));
    }
    await sleep(pollMs, options.signal);
  }
}
