import { columnsOf, type ColumnSummary, type ExposureRow } from './exposure.ts';
import { SEVERITIES } from './findings.ts';
import type { AuditReport } from './run.ts';

/** Colours a severity label; the CLI passes its paint function so reports stay pure. */
export type Painter = (severity: string, text: string) => string;

const METHOD: Readonly<Record<AuditReport['method'], string>> = {
  static: 'static evaluation of the live ruleset',
  'no-firewall': 'no firewall: every bound interface is reachable',
  unreadable: 'unknown: the ruleset could not be read',
};

function firewallLine(report: AuditReport): string {
  if (report.method === 'unreadable') return 'firewall: unknown (could not read the ruleset)';
  return report.ruleset?.loaded
    ? `firewall: ${report.ruleset.tools.join(', ') || 'nftables'} (${report.ruleset.tables.join(', ')})`
    : 'firewall: none loaded';
}

function columnText(c: ColumnSummary): string {
  const detail: string[] = [];
  if (c.restricted && c.onlyFrom.length > 0)
    detail.push(
      `from ${c.onlyFrom.slice(0, 4).join(',')}${c.onlyFrom.length > 4 ? `,+${c.onlyFrom.length - 4}` : ''}`,
    );
  if (c.sourcePorts.length > 0) detail.push(`source port ${c.sourcePorts.join(',')}`);
  if (c.reach === 'yes' && c.notes.some((n) => n.startsWith('rate-limited'))) detail.push('rate-limited');
  return `${c.interface}/v${c.family}:${c.reach}${detail.length > 0 ? `(${detail.join('; ')})` : ''}`;
}

function exposureLines(rows: readonly ExposureRow[]): string[] {
  const exposed = rows.filter((r) => r.reachable !== 'no');
  const lines = [`Exposure (${exposed.length} of ${rows.length} non-loopback listeners reachable):`];
  for (const row of rows) {
    const cells = columnsOf(row).map(columnText).join(' ');
    const target = row.dnat ? ` -> ${row.dnat} (DNAT)` : '';
    lines.push(
      `  ${row.protocol}/${row.localPort}${target} ${row.service ?? ''} ${row.process}  ${cells || 'no interface'}`,
    );
  }
  return lines;
}

/** Findings grouped by severity, then the exposure matrix in brief. */
export function renderAuditText(report: AuditReport, paint: Painter = (_s, t) => t): string {
  const lines: string[] = [];
  lines.push(
    `portwarden audit of ${report.host} — profile ${report.profile} (${report.profileSource}), ${report.listeners} listener(s) beyond loopback`,
    `${firewallLine(report)}; exposure method: ${METHOD[report.method]}`,
  );
  if (report.policy) lines.push(`policy: ${report.policy.name} (${report.policy.file})`);
  if (report.notModelled.length > 0) lines.push(`not decided: ${report.notModelled.join('; ')}`);
  lines.push('');
  if (report.findings.length === 0) lines.push('No findings.');
  for (const severity of SEVERITIES) {
    const group = report.findings.filter((f) => f.severity === severity);
    if (group.length === 0) continue;
    lines.push(paint(severity, `${severity.toUpperCase()} (${group.length})`));
    for (const f of group) {
      lines.push(`  [${f.rule}] ${f.message}`, `      fix: ${f.fix}`);
      for (const e of f.evidence.slice(0, 3)) lines.push(`      evidence: ${e}`);
    }
    lines.push('');
  }
  if (report.exposure.length > 0) lines.push(...exposureLines(report.exposure));
  for (const w of report.warnings) lines.push(`note: ${w}`);
  return lines.join('\n').replace(/\n+$/, '');
}
