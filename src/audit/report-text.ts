import { SEVERITIES } from './findings.ts';
import type { AuditReport } from './run.ts';

/** Colours a severity label; the CLI passes its paint function so reports stay pure. */
export type Painter = (severity: string, text: string) => string;

/** Findings grouped by severity, then the exposure matrix in brief. */
export function renderAuditText(report: AuditReport, paint: Painter = (_s, t) => t): string {
  const lines: string[] = [];
  const fw = report.ruleset?.loaded
    ? `firewall: ${report.ruleset.tools.join(', ') || 'nftables'} (${report.ruleset.tables.join(', ')})`
    : 'firewall: none loaded';
  lines.push(
    `portwarden audit of ${report.host} — profile ${report.profile} (${report.profileSource}), ${report.listeners} listener(s) beyond loopback`,
    `${fw}; exposure method: ${report.method === 'static' ? 'static evaluation of the live ruleset' : 'no firewall: every bound interface is reachable'}`,
  );
  if (report.policy) lines.push(`policy: ${report.policy.name} (${report.policy.file})`);
  if (report.notModelled.length > 0) lines.push(`not modelled: ${report.notModelled.join('; ')}`);
  lines.push('');
  if (report.findings.length === 0) {
    lines.push('No findings.');
  }
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
  const exposed = report.exposure.filter((r) => r.reachable !== 'no');
  if (report.exposure.length > 0) {
    lines.push(`Exposure (${exposed.length} of ${report.exposure.length} non-loopback listeners reachable):`);
    for (const row of report.exposure) {
      const cells = row.cells
        .map((c) => `${c.interface}/v${c.family}:${c.reach}${c.onlyFrom.length > 0 ? '(restricted)' : ''}`)
        .join(' ');
      lines.push(
        `  ${row.protocol}/${row.localPort} ${row.service ?? ''} ${row.process}  ${cells || 'no interface'}`,
      );
    }
  }
  for (const w of report.warnings) lines.push(`note: ${w}`);
  return lines.join('\n').replace(/\n+$/, '');
}
