import type { Diagnostic, PortwardenError, SourceLocation } from '../errors.ts';

function where(location: SourceLocation | undefined): string | null {
  if (!location?.file) return null;
  // A file name with a line break or other control would split the error: quote it.
  const file = /[\p{Cc}\p{Zl}\p{Zp}]/u.test(location.file) ? JSON.stringify(location.file) : location.file;
  return [file, location.line, location.col].filter((p) => p !== undefined).join(':');
}

/** The source line of a location with carets under its range (to the end of the line when it runs on). */
function excerpt(location: SourceLocation | undefined, source: string | undefined): string[] {
  const line = location?.line;
  const col = location?.col;
  if (source === undefined || line === undefined || col === undefined) return [];
  const text = source.split('\n')[line - 1];
  if (text === undefined) return [];
  const end =
    location?.endLine === line && location.endCol !== undefined
      ? location.endCol
      : location?.endLine !== undefined && location.endLine > line
        ? text.length + 1
        : col + 1;
  const width = Math.max(1, end - col);
  const gutter = ' '.repeat(String(line).length);
  return [
    `  ${String(line)} | ${text}`,
    `  ${gutter} | ${' '.repeat(Math.max(0, col - 1))}${'^'.repeat(width)}`,
  ];
}

/**
 * Renders an error the way every command prints one:
 *   portwarden: error[POLICY_UNKNOWN_KEY]: unknown key "interfacs" in zone "external"
 *     --> policy.yaml:5:5
 *     5 |     interfacs: [eth0]
 *       |     ^^^^^^^^^
 *   hint: did you mean "interfaces"?
 * The first line alone says what is wrong; the source lines appear when `source` is given.
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

/** One collected problem in the same format; warnings say `warning[CODE]:` instead of `error[CODE]:`. */
export function formatDiagnostic(diagnostic: Diagnostic, source?: string): string {
  const lines = [`portwarden: ${diagnostic.severity}[${diagnostic.code}]: ${diagnostic.message}`];
  const at = where(diagnostic.location);
  if (at !== null) lines.push(`  --> ${at}`);
  lines.push(...excerpt(diagnostic.location, source));
  if (diagnostic.hint) lines.push(`hint: ${diagnostic.hint}`);
  return `${lines.join('\n')}\n`;
}
