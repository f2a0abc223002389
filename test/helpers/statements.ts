/**
 * Statement tokenizers for the compiled rulesets, each following its language's real lexer
 * (nft's scanner, iptables-restore's add_param_to_argv, POSIX sh, pfctl's parse.y, PowerShell).
 * They return a statement's "shape": its first word and its number of words. Text that stays inside
 * one quoted token or one comment leaves the shape unchanged; text that starts a new line, closes a
 * quote or substitutes a command changes it. Tests compare a hostile compilation's shape with the
 * same policy compiled from benign strings.
 */

/** Marks a command substitution in the shape: it must never appear in generated code. */
const SUBST = '<SUBSTITUTION>';

class Statements {
  readonly shapes: string[] = [];
  private words: string[] = [];
  private word: string | null = null;

  add(text: string): void {
    this.word = (this.word ?? '') + text;
  }
  endWord(): void {
    if (this.word !== null) this.words.push(this.word);
    this.word = null;
  }
  token(text: string): void {
    this.endWord();
    this.words.push(text);
  }
  get inWord(): boolean {
    return this.word !== null;
  }
  end(): void {
    this.endWord();
    if (this.words.length > 0) this.shapes.push(`${this.words[0]}/${this.words.length}`);
    this.words = [];
  }
}

function closing(text: string, from: number, quote: string): number {
  const end = text.indexOf(quote, from);
  if (end < 0) throw new Error(`unterminated ${quote} at ${from}`);
  return end;
}

/** nft: `"…"` has no escapes; `#` comments to the end of the line; `\n` and `;` end statements. */
export function nftShapes(text: string): string[] {
  const s = new Statements();
  for (let i = 0; i < text.length; i++) {
    const c = text[i] ?? '';
    if (c === '"') {
      const end = closing(text, i + 1, '"');
      s.add(text.slice(i, end + 1));
      i = end;
    } else if (c === '#') i = text.indexOf('\n', i) < 0 ? text.length : text.indexOf('\n', i) - 1;
    else if (c === '\n' || c === ';') s.end();
    else if (c === '{' || c === '}') s.token(c);
    else if (c === ' ' || c === '\t') s.endWord();
    else s.add(c);
  }
  s.end();
  return s.shapes;
}

/** iptables-restore: one statement a line, `#` lines skipped; inside `"…"` a `\` escapes. */
export function iptablesShapes(text: string): string[] {
  const s = new Statements();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    let quoted = false;
    for (let i = 0; i < line.length; i++) {
      const c = line[i] ?? '';
      if (quoted && c === '\\') s.add(line[++i] ?? '');
      else if (c === '"') {
        quoted = !quoted;
        s.add('');
      } else if (!quoted && (c === ' ' || c === '\t')) s.endWord();
      else s.add(c);
    }
    if (quoted) throw new Error(`unterminated quote: ${line}`);
    s.end();
  }
  return s.shapes;
}

function shDouble(text: string, from: number, s: Statements): number {
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') i++;
    else if (c === '`' || (c === '$' && text[i + 1] === '(')) s.token(SUBST);
    else if (c === '"') return i;
  }
  throw new Error('unterminated "');
}

/** POSIX sh: quotes, backslashes, `#` at a word start, `$(…)`/backticks, and the operators. */
export function shShapes(text: string): string[] {
  const s = new Statements();
  for (let i = 0; i < text.length; i++) {
    const c = text[i] ?? '';
    if (c === '\\') {
      if (text[i + 1] !== '\n') s.add(text[i + 1] ?? '');
      i++;
    } else if (c === "'") {
      const end = closing(text, i + 1, "'");
      s.add(text.slice(i + 1, end));
      i = end;
    } else if (c === '"') i = shDouble(text, i + 1, s);
    else if (c === '`' || (c === '$' && text[i + 1] === '(')) s.token(SUBST);
    else if (c === '#' && !s.inWord) i = text.indexOf('\n', i) < 0 ? text.length : text.indexOf('\n', i) - 1;
    else if ('\n;&|'.includes(c)) s.end();
    else if ('<>()'.includes(c)) s.token(c);
    else if (c === ' ' || c === '\t') s.endWord();
    else s.add(c);
  }
  s.end();
  return s.shapes;
}

/**
 * pf.conf: a `\` before a newline joins lines everywhere (comments too); `#` comments to the end of
 * the line; in `"…"` only `\"` is an escape; a newline ends a statement.
 */
export function pfShapes(text: string): string[] {
  const s = new Statements();
  const joined = text.replaceAll('\\\n', '');
  for (let i = 0; i < joined.length; i++) {
    const c = joined[i] ?? '';
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < joined.length && joined[j] !== c) j += joined[j] === '\\' && joined[j + 1] === c ? 2 : 1;
      if (j >= joined.length) throw new Error('unterminated pf string');
      s.add(joined.slice(i, j + 1));
      i = j;
    } else if (c === '#') i = joined.indexOf('\n', i) < 0 ? joined.length : joined.indexOf('\n', i) - 1;
    else if (c === '\n') s.end();
    else if ('{}()<>!=,'.includes(c)) s.token(c);
    else if (c === ' ' || c === '\t') s.endWord();
    else s.add(c);
  }
  s.end();
  return s.shapes;
}

const PS_SINGLE = "'\u2018\u2019\u201a\u201b";
const PS_DOUBLE = '"\u201c\u201d\u201e';

function psSingle(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    if (!PS_SINGLE.includes(text[i] ?? '')) continue;
    if (PS_SINGLE.includes(text[i + 1] ?? '')) i++;
    else return i;
  }
  throw new Error("unterminated '");
}

function psDouble(text: string, from: number, s: Statements): number {
  for (let i = from; i < text.length; i++) {
    const c = text[i] ?? '';
    if (c === '`') i++;
    else if (c === '$' && text[i + 1] === '(') s.token(SUBST);
    else if (PS_DOUBLE.includes(c)) {
      if (PS_DOUBLE.includes(text[i + 1] ?? '')) i++;
      else return i;
    }
  }
  throw new Error('unterminated "');
}

/** PowerShell: '…' (typographic quotes too) and "…" strings, backtick escapes, comments, `;`. */
export function psShapes(text: string): string[] {
  const s = new Statements();
  for (let i = 0; i < text.length; i++) {
    const c = text[i] ?? '';
    if (PS_SINGLE.includes(c)) {
      const end = psSingle(text, i + 1);
      s.add(text.slice(i, end + 1));
      i = end;
    } else if (PS_DOUBLE.includes(c)) i = psDouble(text, i + 1, s);
    else if (c === '`') {
      if (text[i + 1] !== '\n' && text[i + 1] !== '\r') s.add(text[i + 1] ?? '');
      i++;
    } else if (c === '<' && text[i + 1] === '#') i = closing(text, i + 2, '#>') + 1;
    else if (c === '#' && !s.inWord) i = text.indexOf('\n', i) < 0 ? text.length : text.indexOf('\n', i) - 1;
    else if (c === '$' && text[i + 1] === '(') s.token(SUBST);
    else if (c === '\n' || c === ';') s.end();
    else if (c === '|' || c === '&') s.token(c);
    else if (c === ' ' || c === '\t' || c === '\r') s.endWord();
    else s.add(c);
  }
  s.end();
  return s.shapes;
}

/** The shape function for each compile target. */
export const SHAPES: Readonly<Record<string, (text: string) => string[]>> = {
  nftables: nftShapes,
  iptables: iptablesShapes,
  ipchains: shShapes,
  pf: pfShapes,
  windows: psShapes,
};
