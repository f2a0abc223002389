import { listenerLabel, tally, type Judged, type Outcome } from './cells.ts';
import type { ScenarioResult } from './harness.ts';

/** The truth suite's printed tables and its failure file: strings only, the test prints and writes. */

const OUTCOMES: readonly Outcome[] = ['agree', 'false-reachable', 'false-not-reachable', 'unknown'];

function pad(text: string, width: number): string {
  return text.length >= width ? text : text + ' '.repeat(width - text.length);
}

function truthText(j: Judged): string {
  const { connected } = j.truth;
  return connected.length === 0 ? 'closed' : `open (${connected.join(' ')})`;
}

function auditText(j: Judged): string {
  const from = j.audit.onlyFrom.length > 0 ? ` from ${j.audit.onlyFrom.join(' ')}` : '';
  const ports = j.audit.sourcePorts.length > 0 ? ` sport ${j.audit.sourcePorts.join(' ')}` : '';
  return `${j.audit.reach}${from}${ports}`;
}

function cellLine(j: Judged): string {
  const sports = j.cell.sports.length > 0 && j.truth.reachable && j.truth.anyPort.length === 0;
  return [
    pad(listenerLabel(j.cell.listener), 30),
    pad(j.cell.iface, 8),
    pad(j.cell.dst, 16),
    pad(auditText(j), 30),
    pad(`${truthText(j)}${sports ? ` sport ${j.cell.sports.join(' ')} only` : ''}`, 40),
    j.outcome,
  ].join(' ');
}

/** One scenario: the counts, then every cell that does not agree with why (unknowns with their expression). */
export function renderScenario(
  result: ScenarioResult,
  known: ReadonlyMap<string, Outcome>,
  everyCell = false,
): string {
  const counts = tally(result.judged);
  const head = `${result.scenario.name}: ${result.scenario.title}`;
  const phases = Object.entries(result.phases)
    .map(([name, s]) => `${name} ${s.toFixed(1)}`)
    .join(', ');
  const stats = `${result.judged.length} cells, ${result.probes} probes, ${result.seconds.toFixed(1)} s (${phases}): ${OUTCOMES.map((o) => `${o} ${counts[o]}`).join(', ')}`;
  const odd = result.judged.filter((j) => everyCell || j.outcome !== 'agree');
  const body = odd.map((j) => {
    const tag = known.get(j.cell.key) === j.outcome ? ' [known]' : '';
    return `    ${cellLine(j)}${tag}${j.why ? `\n      ${j.why}` : ''}`;
  });
  return [head, `  ${stats}`, ...body].join('\n');
}

/** All scenarios in one table: the figure to compare with issue 14's 309 cells. */
export function renderSummary(results: readonly ScenarioResult[]): string {
  const header = ['scenario', 'cells', ...OUTCOMES].map((h, i) => pad(h, i === 0 ? 16 : 20)).join('');
  const rows = results.map((r) => {
    const c = tally(r.judged);
    return [r.scenario.name, String(r.judged.length), ...OUTCOMES.map((o) => String(c[o]))]
      .map((v, i) => pad(v, i === 0 ? 16 : 20))
      .join('');
  });
  const all = tally(results.flatMap((r) => r.judged));
  const total = results.reduce((n, r) => n + r.judged.length, 0);
  const foot = ['total', String(total), ...OUTCOMES.map((o) => String(all[o]))]
    .map((v, i) => pad(v, i === 0 ? 16 : 20))
    .join('');
  return [header, ...rows, foot].join('\n');
}

/** Ruleset lines that mention the cell's port, or the handle audit named: where to look first. */
function linesInvolved(result: ScenarioResult, j: Judged): string[] {
  const port = new RegExp(`(^|[^0-9])${j.cell.listener.port}([^0-9]|$)`);
  const handle = /handle (\d+)/.exec(j.audit.decision)?.[1];
  const named = handle ? new RegExp(`# handle ${handle}$`) : null;
  const all = result.rulesetText.split('\n');
  return all.filter((l) => port.test(l) || (named !== null && named.test(l))).map((l) => l.trim());
}

/**
 * TRUTH-FAILURES.md: every cell where audit and the packets disagree, with what audit said, what
 * the probes saw and the ruleset lines involved; each scenario's full ruleset below. For the
 * evaluator's authors, rewritten on every run and never committed.
 */
export function renderFailures(results: readonly ScenarioResult[], errors: readonly string[]): string {
  const out: string[] = [
    '# Truth suite: cells where audit disagrees with real packets',
    '',
    `Written by test/audit/truth/truth.root.test.ts at ${new Date().toISOString()}. Not committed.`,
    '',
    '```',
    renderSummary(results),
    '```',
    '',
  ];
  for (const e of errors) out.push(`- scenario error: ${e}`);
  const disagreeing = results.flatMap((r) => r.judged).filter((j) => j.outcome.startsWith('false-'));
  out.push(
    '<details><summary>these cells as known-failures.ts entries</summary>',
    '',
    '```ts',
    ...disagreeing.map((j) => `  [${JSON.stringify(j.cell.key)}, '${j.outcome}'],`),
    '```',
    '',
    '</details>',
    '',
  );
  for (const result of results) {
    const odd = result.judged.filter((j) => j.outcome !== 'agree');
    if (odd.length === 0) continue;
    out.push(`## ${result.scenario.name}`, '', result.scenario.title, '');
    for (const j of odd) {
      out.push(
        `- **${j.outcome}** \`${listenerLabel(j.cell.listener)}\` via ${j.cell.iface} to ${j.cell.dst} (IPv${j.cell.family})`,
        `  - audit: ${j.audit.reach}${j.audit.onlyFrom.length > 0 ? ` only from ${j.audit.onlyFrom.join(', ')}` : ''}${j.audit.sourcePorts.length > 0 ? ` source ports ${j.audit.sourcePorts.join(', ')}` : ''}; decision ${j.audit.decision}`,
        `  - truth: ${truthText(j)}; probes: ${j.truth.details.join('; ')}`,
        `  - why: ${j.why || '-'}`,
        ...linesInvolved(result, j).map((l) => `  - \`${l}\``),
      );
    }
    out.push(
      '',
      '<details><summary>ruleset</summary>',
      '',
      '```',
      result.rulesetText,
      '```',
      '',
      '</details>',
      '',
    );
  }
  return `${out.join('\n')}\n`;
}
