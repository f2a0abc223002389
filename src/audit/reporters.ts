import { PortwardenError } from '../errors.ts';
import { renderAuditHtml } from './report-html.ts';
import { renderAuditSarif } from './report-sarif.ts';
import { renderAuditText, type Painter } from './report-text.ts';
import type { AuditReport } from './run.ts';

/** What a reporter may need besides the report. */
export interface ReportContext {
  /** portwarden's version, for formats that name their tool (SARIF). */
  version: string;
  /** Colours severity labels in text; the default leaves them plain. */
  paint?: Painter;
  /** How JSON is written (the CLI's indent); default: two spaces and a newline. */
  stringify?: (value: unknown) => string;
}

/** One audit output format: a plain object, all sharing this interface (like FINDING_RULES). */
export interface AuditReporter {
  name: string;
  description: string;
  /** The whole report as text, ending in a newline. */
  render(report: AuditReport, context: ReportContext): string;
}

const json = (value: unknown, context: ReportContext): string =>
  context.stringify?.(value) ?? `${JSON.stringify(value, null, 2)}\n`;
const line = (text: string): string => (text.endsWith('\n') ? text : `${text}\n`);

/** Every audit format, the default first. */
export const AUDIT_REPORTERS: readonly AuditReporter[] = [
  {
    name: 'text',
    description: 'findings and the exposure table for a terminal',
    render: (report, context) => line(renderAuditText(report, context.paint)),
  },
  {
    name: 'json',
    description: 'the whole report as JSON',
    render: (report, context) => json(report, context),
  },
  {
    name: 'sarif',
    description: 'SARIF 2.1.0 for code scanning (GitHub and others)',
    render: (report, context) => json(renderAuditSarif(report, context.version), context),
  },
  {
    name: 'html',
    description: 'one self-contained HTML page with the exposure heatmap',
    render: (report) => line(renderAuditHtml(report)),
  },
];

/** The reporter of a format name; an unknown name is a usage error listing the formats. */
export function findReporter(name: string): AuditReporter {
  const reporter = AUDIT_REPORTERS.find((r) => r.name === name);
  if (!reporter)
    throw new PortwardenError('OPTION_INVALID', `unknown format "${name}"`, {
      hint: `use one of: ${AUDIT_REPORTERS.map((r) => r.name).join(', ')}`,
    });
  return reporter;
}
