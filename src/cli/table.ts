// eslint-disable-next-line no-control-regex -- ANSI colour codes are what we strip
const visible = (text: string): number => text.replace(/\u001b\[[0-9;]*m/g, '').length;

/** The narrowest last column worth wrapping into; below it, a long cell is left to the terminal. */
const MIN_WRAP = 16;

/** Splits `text` into pieces of at most `width`, breaking after a `/`, `,` or space where one is near. */
export function wrapCell(text: string, width: number): string[] {
  const pieces: string[] = [];
  let rest = text;
  while (rest.length > width) {
    const window = rest.slice(0, width);
    const cut = Math.max(window.lastIndexOf('/'), window.lastIndexOf(','), window.lastIndexOf(' '));
    const at = cut >= width / 2 ? cut + 1 : width;
    pieces.push(rest.slice(0, at).trimEnd());
    rest = rest.slice(at).trimStart();
  }
  return [...pieces, rest];
}

/**
 * Left-aligned text columns sized to their widest cell; ANSI colour codes do not count as width.
 * With `width` (a terminal's), a last column that would overflow continues on indented lines, so
 * long paths never push the other columns out of line.
 */
export function formatTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  options: { width?: number } = {},
): string {
  const widths = header.map((h, i) => Math.max(visible(h), ...rows.map((r) => visible(r[i] ?? ''))));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat((widths[i] ?? 0) - visible(c))))
      .join('  ')
      .trimEnd();
  const offset = widths.slice(0, -1).reduce((sum, w) => sum + w + 2, 0);
  const room = (options.width ?? 0) - offset;
  const wrapped = (cells: readonly string[]): string => {
    const last = cells[cells.length - 1] ?? '';
    if (room < MIN_WRAP || visible(last) <= room) return line(cells);
    const [first = '', ...more] = wrapCell(last, room);
    return [line([...cells.slice(0, -1), first]), ...more.map((p) => ' '.repeat(offset) + p)].join('\n');
  };
  return [line(header), ...rows.map(wrapped)].join('\n');
}
