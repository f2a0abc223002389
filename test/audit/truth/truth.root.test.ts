import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeRootTier } from '../../helpers/root-tier.ts';
import { listenerLabel, type Judged } from './cells.ts';
import { ROOT, runScenario, type ScenarioResult } from './harness.ts';
import { KNOWN_FAILURES } from './known-failures.ts';
import { renderFailures, renderScenario, renderSummary } from './report.ts';
import { SCENARIOS } from './scenarios.ts';

/**
 * Issue 14's truth suite: for every scenario, every listener x interface x host address x family,
 * audit's verdict (the built bin, run inside the host namespace) against a real connect or datagram
 * from the peer on that interface. Disagreements fail unless listed in known-failures.ts; all of
 * them are written to TRUTH-FAILURES.md in the checkout for whoever fixes the evaluator.
 */

/** PORTWARDEN_TRUTH_ONLY=ufw,docker runs only those scenarios (while working on one). */
const ONLY = (process.env['PORTWARDEN_TRUTH_ONLY'] ?? '').split(',').filter((s) => s !== '');
const CHOSEN = SCENARIOS.filter((s) => ONLY.length === 0 || ONLY.includes(s.name));
/** PORTWARDEN_TRUTH_VERBOSE=1 prints every cell, agreeing ones too. */
const VERBOSE = process.env['PORTWARDEN_TRUTH_VERBOSE'] === '1';
/** What the chosen scenarios run: their tools, `ip` for the namespaces, `nft` for audit to read. */
const TOOLS = [...new Set(['ip', 'nft', ...CHOSEN.flatMap((s) => s.tools)])];
/**
 * Scenarios built at once: each is a handful of namespaces and node processes, and much of its time
 * is spent waiting (probe timeouts, process start-up), so three overlap well on 2 cores.
 */
const PARALLEL = 3;

async function inPool<T>(items: readonly T[], width: number, work: (item: T) => Promise<void>) {
  const queue = [...items];
  const worker = async (): Promise<void> => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
  };
  await Promise.all(Array.from({ length: width }, worker));
}

const isFalse = (j: Judged) => j.outcome === 'false-reachable' || j.outcome === 'false-not-reachable';
const describeCell = (j: Judged) => `${j.outcome}: ${j.cell.key} (${j.why})`;

await describeRootTier('audit against real packets (truth suite)', TOOLS, () => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-truth-'));
  const results = new Map<string, ScenarioResult>();
  const errors = new Map<string, string>();

  beforeAll(async () => {
    await inPool(CHOSEN, PARALLEL, async (scenario) => {
      try {
        results.set(
          scenario.name,
          await runScenario(scenario, dir, `t${SCENARIOS.indexOf(scenario).toString(36)}`),
        );
      } catch (error) {
        errors.set(scenario.name, error instanceof Error ? error.message : String(error));
      }
    });
    const ordered = CHOSEN.flatMap((s) => results.get(s.name) ?? []);
    console.log(`truth suite, all scenarios:\n${renderSummary(ordered)}`);
    const failures = renderFailures(
      ordered,
      [...errors].map(([name, message]) => `${name}: ${message}`),
    );
    writeFileSync(join(ROOT, 'TRUTH-FAILURES.md'), failures);
  }, 420_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const scenario of CHOSEN) {
    it(`${scenario.name}: no false "reachable", no false "not reachable", every unknown named`, () => {
      const result = results.get(scenario.name);
      if (!result) throw new Error(`scenario did not run: ${errors.get(scenario.name) ?? 'no result'}`);
      console.log(renderScenario(result, KNOWN_FAILURES, VERBOSE));
      const unexpected = result.judged.filter(
        (j) => isFalse(j) && KNOWN_FAILURES.get(j.cell.key) !== j.outcome,
      );
      expect(unexpected.map(describeCell)).toEqual([]);
      const silent = result.judged.filter((j) => j.outcome === 'unknown' && j.audit.expressions.length === 0);
      expect(silent.map((j) => `${j.cell.key}: unknown without an expression`)).toEqual([]);
    });
  }

  it('known-failures.ts lists only cells that still disagree, as they disagree', () => {
    const judged = new Map([...results.values()].flatMap((r) => r.judged).map((j) => [j.cell.key, j]));
    const ran = new Set(CHOSEN.map((s) => s.name));
    const stale = [...KNOWN_FAILURES]
      .filter(([key]) => ran.has(key.split(' | ')[0] ?? ''))
      .filter(([key, outcome]) => judged.get(key)?.outcome !== outcome)
      .map(
        ([key, outcome]) => `${key}: listed as ${outcome}, now ${judged.get(key)?.outcome ?? 'no such cell'}`,
      );
    expect(stale).toEqual([]);
  });

  it('every listener of every scenario was probed', () => {
    for (const result of results.values()) {
      for (const listener of result.scenario.listeners)
        expect(
          result.judged.some((j) => j.cell.listener === listener),
          listenerLabel(listener),
        ).toBe(true);
    }
  });
});
