/** Left-aligned text columns sized to their widest cell; ANSI colour codes do not count as width. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  // eslint-disable-next-line no-control-regex -- ANSI colour codes are what we strip
  const visible = (text: string): number => text.replace(/\u001b\[[0-9;]*m/g, '').length;
  const widths = header.map((h, i) => Math.max(visible(h), ...rows.map((r) => visible(r[i] ?? ''))));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat((widths[i] ?? 0) - visible(c))))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
