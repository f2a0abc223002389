import type { Diagnostic, PortwardenError, SourceLocation } from '../errors.ts';

function where(location: SourceLocation | undefined): string {
  if (!location?.file) return '';
  // A file name with a line break or other control would split the one-line error: quote it.
  const file = /[\p{Cc}\p{Zl}\p{Zp}]/u.test(location.file) ? JSON.stringify(location.file) : location.file;
  const parts = [file, location.line, location.col].filter((p) => p !== undefined);
  return `${parts.join(':')}: `;
}

/**
 * Renders an error the way every command prints one:
 *   portwarden: error: policy.yaml:5:5: unknown key "interfacs" in zone "external"
 *   hint: did you mean "interfaces"?
 * `source`, when given, adds the offending line with a caret under the column.
 */
export function formatError(error: PortwardenError, source?: string): string {
  if (error.diagnostics.length > 0) {
    return error.diagnostics.map((d) => formatDiagnostic(d, source)).join('');
  }
  return formatDiagnostic(
    {
      severity: 'error',
      code: error.code,
      message: error.message,
      ...(error.hint ? { hint: error.hint } : {}),
      ...(error.location ? { location: error.location } : {}),
    },
    source,
  );
}

/** One collected problem in the same format; warnings say `warning:` instead of `error:`. */
export function formatDiagnostic(diagnostic: Diagnostic, source?: string): string {
  const error = diagnostic;
  const lines = [`portwarden: ${diagnostic.severity}: ${where(error.location)}${error.message}`];
  const line = error.location?.line;
  const col = error.location?.col;
  const text = source !== undefined && line !== undefined ? source.split('\n')[line - 1] : undefined;
  if (text !== undefined && col !== undefined) {
    const gutter = String(line).length;
    lines.push(
      `  ${String(line)} | ${text}`,
      `  ${' '.repeat(gutter)} | ${' '.repeat(Math.max(0, col - 1))}^`,
    );
  }
  if (error.hint) lines.push(`hint: ${error.hint}`);
  return `${lines.join('\n')}\n`;
}
