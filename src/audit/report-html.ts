import { columnsOf } from './exposure.ts';
import { SEVERITIES } from './findings.ts';
import type { AuditReport } from './run.ts';

function esc(text: string | number | null | undefined): string {
  return String(text ?? '').replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}

const CSS = `
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1d2433;background:#fafbfc}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.15rem;margin-top:2rem}
.meta{color:#5b6576}.counts span{display:inline-block;margin-right:.75rem;padding:.2rem .6rem;border-radius:1rem;color:#fff;font-weight:600}
.critical{background:#7b1fa2}.high{background:#c62828}.medium{background:#ef6c00}.low{background:#0277bd}.info{background:#607d8b}
table{border-collapse:collapse;width:100%;background:#fff;margin-top:.5rem}th,td{border:1px solid #dde2ea;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#eef1f6}td.yes{background:#e53935;color:#fff;text-align:center;font-weight:700}td.no{background:#43a047;color:#fff;text-align:center}
td.unknown{background:#fdd835;text-align:center}td.none{background:#eceff1;color:#90a4ae;text-align:center}
.sev{color:#fff;border-radius:.3rem;padding:0 .4rem;font-size:.8rem;font-weight:700}code{background:#eef1f6;padding:0 .25rem;border-radius:.2rem}
.legend span{margin-right:1rem}
`;

/** A single self-contained HTML file: counts, findings with fixes, and the exposure heatmap. */
export function renderAuditHtml(report: AuditReport): string {
  const columns = [
    ...new Set(report.exposure.flatMap((r) => r.cells.map((c) => `${c.interface}|${c.family}`))),
  ].sort();
  const counts = SEVERITIES.map(
    (s) => `<span class="${s}">${s}: ${report.findings.filter((f) => f.severity === s).length}</span>`,
  ).join('');
  const findings = report.findings
    .map(
      (f) =>
        `<tr><td><span class="sev ${f.severity}">${esc(f.severity)}</span></td><td>${esc(f.rule)}</td><td>${esc(f.protocol ? `${f.protocol}/${f.port ?? ''}` : 'host')}</td><td>${esc(f.message)}<br><small>${f.evidence.map(esc).join('<br>')}</small></td><td><code>${esc(f.fix)}</code></td></tr>`,
    )
    .join('\n');
  const header = columns.map((c) => {
    const [iface, family] = c.split('|');
    return `<th>${esc(iface)} IPv${esc(family)}</th>`;
  });
  const rows = report.exposure
    .map((r) => {
      const cells = columns.map((c) => {
        const cell = columnsOf(r).find((x) => `${x.interface}|${x.family}` === c);
        if (!cell) return '<td class="none">–</td>';
        const label =
          cell.reach === 'yes'
            ? cell.restricted
              ? 'restricted'
              : 'reachable'
            : cell.reach === 'no'
              ? 'blocked'
              : 'unknown';
        const title = [...cell.onlyFrom, ...cell.sourcePorts.map((p) => `source port ${p}`), ...cell.notes];
        return `<td class="${cell.reach}" title="${esc(title.join(', '))}">${label}</td>`;
      });
      return `<tr><th>${esc(r.protocol)}/${esc(r.localPort)}</th><td>${esc(r.service ?? '')}</td><td>${esc(r.risk ?? '')}</td><td>${esc(r.localAddress)}</td><td>${esc(r.process)}</td>${cells.join('')}</tr>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>portwarden audit — ${esc(report.host)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<style>${CSS}</style></head><body>
<h1>portwarden audit — ${esc(report.host)}</h1>
<p class="meta">${esc(report.generatedAt)} · profile ${esc(report.profile)} · ${esc(report.listeners)} listeners beyond loopback · method: ${esc(report.method)}${report.policy ? ` · policy ${esc(report.policy.name)}` : ''}</p>
<p class="counts">${counts}</p>
<h2>Exposure matrix</h2>
<p class="legend"><span>red: reachable from anywhere</span><span>green: blocked</span><span>yellow: could not be decided</span></p>
<table id="exposure"><thead><tr><th>port</th><th>service</th><th>risk</th><th>address</th><th>process</th>${header.join('')}</tr></thead><tbody>
${rows || '<tr><td colspan="5">No listeners beyond loopback.</td></tr>'}
</tbody></table>
<h2>Findings (${report.findings.length})</h2>
<table id="findings"><thead><tr><th>severity</th><th>rule</th><th>port</th><th>what</th><th>fix</th></tr></thead><tbody>
${findings || '<tr><td colspan="5">No findings.</td></tr>'}
</tbody></table>
${report.notModelled.length > 0 ? `<p class="meta">Not modelled: ${esc(report.notModelled.join('; '))}</p>` : ''}
</body></html>
`;
}
