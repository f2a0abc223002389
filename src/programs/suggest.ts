import type { ProgramEntry, PathRule } from './policy-edit.ts';
import type { ProgramSummary } from './store.ts';

/**
 * `policy suggest` (pure): per-program egress rules from what `watch --programs learn` recorded. One
 * `path:` program per executable; its destinations become rules, ports that go to the same set of
 * addresses share one rule. Attempts no process could be found for are left out (nothing to name).
 */
export function suggestProgramRules(summaries: readonly ProgramSummary[], now: Date): ProgramEntry[] {
  const out: ProgramEntry[] = [];
  for (const s of summaries) {
    if (s.exe === '?' || !s.exe.startsWith('/')) continue;
    const byPort = new Map<string, Set<string>>();
    for (const d of s.destinations) {
      const port = `${d.protocol}/${d.remotePort}`;
      const set = byPort.get(port) ?? new Set<string>();
      set.add(d.remoteAddress);
      byPort.set(port, set);
    }
    const byAddresses = new Map<string, { ports: string[]; to: string[] }>();
    for (const [port, addresses] of [...byPort].sort(([a], [b]) => a.localeCompare(b))) {
      const to = [...addresses].sort();
      const group = byAddresses.get(to.join(',')) ?? { ports: [], to };
      group.ports.push(port);
      byAddresses.set(to.join(','), group);
    }
    const rules: PathRule[] = [...byAddresses.values()].map((g) => ({ allow: g.ports.join(', '), to: g.to }));
    const seen = `${s.allowed + s.denied} connection(s) ${s.firstSeen} .. ${s.lastSeen}`;
    out.push({
      path: s.exe,
      rules,
      comment: `learned by portwarden watch --programs learn: ${seen}${s.sha256 ? `; sha256 ${s.sha256.slice(0, 16)}` : ''} (suggested ${now.toISOString().slice(0, 10)})`,
    });
  }
  return out;
}
