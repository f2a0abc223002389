import type Database from 'better-sqlite3';
import type { Answer, Attempt, Decision, ProgramIdentity, Verdict } from './types.ts';

/**
 * The programs part of the watch database (tables made by store.ts's third migration). The daemon,
 * the dashboard and `portwarden ask` each open the database; prompts and answers pass through it.
 * Times are stored as epoch milliseconds and shown as ISO 8601 strings.
 */

/** A question to the user: may this program reach this destination? */
export interface Prompt {
  id: number;
  at: string;
  deadline: string;
  program: ProgramIdentity;
  /** The executable had other decisions under another sha256: it changed since. */
  changed: boolean;
  protocol: 'tcp' | 'udp';
  remoteAddress: string;
  remotePort: number;
  answer: Answer | null;
  answeredAt: string | null;
  answeredBy: string | null;
}

/** One logged connection attempt. */
export interface ConnectionRecord extends Attempt {
  at: string;
  program: ProgramIdentity | null;
  verdict: Verdict;
  reason: string;
}

/** Per executable: what it did, for `portwarden programs` and the dashboard. */
export interface ProgramSummary {
  exe: string;
  sha256: string | null;
  user: string | null;
  unit: string | null;
  allowed: number;
  denied: number;
  firstSeen: string;
  lastSeen: string;
  destinations: {
    protocol: 'tcp' | 'udp';
    remoteAddress: string;
    remotePort: number;
    allowed: number;
    denied: number;
  }[];
}

interface PromptRow {
  id: number;
  at: number;
  deadline: number;
  program: string;
  changed: number;
  protocol: 'tcp' | 'udp';
  remote_address: string;
  remote_port: number;
  answer: Answer | null;
  answered_at: number | null;
  answered_by: string | null;
}

const iso = (ms: number): string => new Date(ms).toISOString();

function toPrompt(r: PromptRow): Prompt {
  return {
    id: r.id,
    at: iso(r.at),
    deadline: iso(r.deadline),
    program: JSON.parse(r.program) as ProgramIdentity,
    changed: r.changed === 1,
    protocol: r.protocol,
    remoteAddress: r.remote_address,
    remotePort: r.remote_port,
    answer: r.answer,
    answeredAt: r.answered_at === null ? null : iso(r.answered_at),
    answeredBy: r.answered_by,
  };
}

export class ProgramStore {
  constructor(readonly db: Database.Database) {}

  decisions(): Decision[] {
    return (
      this.db
        .prepare(
          'SELECT id, at, exe, sha256, verdict, scope, protocol, remote_address, remote_port FROM program_decisions ORDER BY id',
        )
        .all() as {
        id: number;
        at: number;
        exe: string;
        sha256: string | null;
        verdict: Decision['verdict'];
        scope: Decision['scope'];
        protocol: Decision['protocol'];
        remote_address: string | null;
        remote_port: number | null;
      }[]
    ).map((r) => ({
      id: r.id,
      at: r.at,
      exe: r.exe,
      sha256: r.sha256,
      verdict: r.verdict,
      scope: r.scope,
      protocol: r.protocol,
      remoteAddress: r.remote_address,
      remotePort: r.remote_port,
    }));
  }

  addDecision(d: Omit<Decision, 'id' | 'at'>, at: number, source: string): number {
    const result = this.db
      .prepare(
        'INSERT INTO program_decisions (at, exe, sha256, verdict, scope, protocol, remote_address, remote_port, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(at, d.exe, d.sha256, d.verdict, d.scope, d.protocol, d.remoteAddress, d.remotePort, source);
    return Number(result.lastInsertRowid);
  }

  addPrompt(p: {
    program: ProgramIdentity;
    changed: boolean;
    attempt: Attempt;
    at: number;
    deadline: number;
  }): number {
    const result = this.db
      .prepare(
        'INSERT INTO program_prompts (at, deadline, exe, sha256, changed, program, protocol, remote_address, remote_port) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        p.at,
        p.deadline,
        p.program.exe,
        p.program.sha256,
        p.changed ? 1 : 0,
        JSON.stringify(p.program),
        p.attempt.protocol,
        p.attempt.remoteAddress,
        p.attempt.remotePort,
      );
    return Number(result.lastInsertRowid);
  }

  /** Prompts nobody answered yet (the daemon answers them with the default at their deadline). */
  pendingPrompts(): Prompt[] {
    return (
      this.db
        .prepare('SELECT * FROM program_prompts WHERE answer IS NULL AND resolved = 0 ORDER BY id')
        .all() as PromptRow[]
    ).map(toPrompt);
  }

  /** Answered prompts the daemon has not acted on yet. */
  answeredUnresolved(): Prompt[] {
    return (
      this.db
        .prepare('SELECT * FROM program_prompts WHERE answer IS NOT NULL AND resolved = 0 ORDER BY id')
        .all() as PromptRow[]
    ).map(toPrompt);
  }

  recentPrompts(limit = 50): Prompt[] {
    return (
      this.db.prepare('SELECT * FROM program_prompts ORDER BY id DESC LIMIT ?').all(limit) as PromptRow[]
    ).map(toPrompt);
  }

  /** Answers a pending prompt; false when it was already answered (first answer wins) or is unknown. */
  answer(id: number, answer: Answer, by: string, at: number): boolean {
    return (
      this.db
        .prepare(
          'UPDATE program_prompts SET answer = ?, answered_at = ?, answered_by = ? WHERE id = ? AND answer IS NULL AND resolved = 0',
        )
        .run(answer, at, by, id).changes === 1
    );
  }

  markResolved(id: number): void {
    this.db.prepare('UPDATE program_prompts SET resolved = 1 WHERE id = ?').run(id);
  }

  /** Prompts the daemon never acted on (it stopped): closed at its next start, their attempts are gone. */
  closeStalePrompts(at: number): void {
    this.db
      .prepare(
        "UPDATE program_prompts SET resolved = 1, answer = coalesce(answer, 'deny'), answered_by = coalesce(answered_by, 'restart'), answered_at = coalesce(answered_at, ?) WHERE resolved = 0",
      )
      .run(at);
  }

  logConnections(
    records: readonly {
      at: number;
      attempt: Attempt;
      program: ProgramIdentity | null;
      verdict: Verdict;
      reason: string;
    }[],
  ): void {
    const insert = this.db.prepare(
      'INSERT INTO program_connections (at, exe, sha256, pid, start_time, user, unit, container, cmdline, protocol, local_address, local_port, remote_address, remote_port, verdict, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.db.transaction(() => {
      for (const { at, attempt: a, program: p, verdict, reason } of records)
        insert.run(
          at,
          p?.exe ?? null,
          p?.sha256 ?? null,
          p?.pid ?? null,
          p?.startTime ?? null,
          p?.user ?? null,
          p?.unit ?? null,
          p?.container ?? null,
          p?.cmdline ?? null,
          a.protocol,
          a.localAddress,
          a.localPort,
          a.remoteAddress,
          a.remotePort,
          verdict,
          reason,
        );
    })();
  }

  connections(options: { since?: number; limit?: number; exe?: string } = {}): ConnectionRecord[] {
    const rows = this.db
      .prepare(
        `SELECT * FROM program_connections WHERE at >= ? ${options.exe ? 'AND exe = ?' : ''} ORDER BY id DESC LIMIT ?`,
      )
      .all(...[options.since ?? 0, ...(options.exe ? [options.exe] : []), options.limit ?? 500]) as Record<
      string,
      string | number | null
    >[];
    return rows.map((r) => ({
      at: iso(Number(r['at'])),
      protocol: r['protocol'] === 'udp' ? 'udp' : 'tcp',
      family: String(r['remote_address']).includes(':') ? 6 : 4,
      localAddress: String(r['local_address']),
      localPort: Number(r['local_port']),
      remoteAddress: String(r['remote_address']),
      remotePort: Number(r['remote_port']),
      program:
        r['exe'] === null
          ? null
          : {
              exe: String(r['exe']),
              sha256: r['sha256'] === null ? null : String(r['sha256']),
              pid: Number(r['pid']),
              startTime: r['start_time'] === null ? null : Number(r['start_time']),
              uid: null,
              user: r['user'] === null ? null : String(r['user']),
              unit: r['unit'] === null ? null : String(r['unit']),
              container: r['container'] === null ? null : String(r['container']),
              cmdline: r['cmdline'] === null ? null : String(r['cmdline']),
            },
      verdict: r['verdict'] === 'allowed' ? 'allowed' : 'denied',
      reason: String(r['reason']),
    }));
  }

  /** Per executable and destination: counts, first and last seen (attempts without a program under "?"). */
  summary(since = 0): ProgramSummary[] {
    const rows = this.db
      .prepare(
        `SELECT coalesce(exe, '?') AS exe, max(sha256) AS sha256, max(user) AS user, max(unit) AS unit, protocol,
           remote_address, remote_port, sum(verdict = 'allowed') AS allowed, sum(verdict = 'denied') AS denied,
           min(at) AS first, max(at) AS last
         FROM program_connections WHERE at >= ? GROUP BY 1, protocol, remote_address, remote_port ORDER BY 1`,
      )
      .all(since) as {
      exe: string;
      sha256: string | null;
      user: string | null;
      unit: string | null;
      protocol: 'tcp' | 'udp';
      remote_address: string;
      remote_port: number;
      allowed: number;
      denied: number;
      first: number;
      last: number;
    }[];
    const byExe = new Map<string, ProgramSummary>();
    for (const r of rows) {
      let s = byExe.get(r.exe);
      if (!s) {
        s = {
          exe: r.exe,
          sha256: r.sha256,
          user: r.user,
          unit: r.unit,
          allowed: 0,
          denied: 0,
          firstSeen: iso(r.first),
          lastSeen: iso(r.last),
          destinations: [],
        };
        byExe.set(r.exe, s);
      }
      s.allowed += r.allowed;
      s.denied += r.denied;
      if (iso(r.first) < s.firstSeen) s.firstSeen = iso(r.first);
      if (iso(r.last) > s.lastSeen) s.lastSeen = iso(r.last);
      s.destinations.push({
        protocol: r.protocol,
        remoteAddress: r.remote_address,
        remotePort: r.remote_port,
        allowed: r.allowed,
        denied: r.denied,
      });
    }
    return [...byExe.values()];
  }

  /** Deletes log rows and resolved prompts older than the retention (decisions are kept). */
  prune(before: number): number {
    return (
      this.db.prepare('DELETE FROM program_connections WHERE at < ?').run(before).changes +
      this.db.prepare('DELETE FROM program_prompts WHERE resolved = 1 AND at < ?').run(before).changes
    );
  }
}
