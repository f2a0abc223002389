/**
 * The only way policy text reaches a compiled ruleset: one quoting function per target language.
 * A policy is often written by someone else, so every name, comment, user, unit, path and file name
 * is untrusted here. Each function returns text that stays inside one token (a quoted string, an
 * argument) or one comment line of its language: it can never end the line, close the quote or
 * start another statement. Identifiers are also restricted by the policy schema; this is the
 * second wall, so compilers stay safe when called with a Policy built by other code.
 */

/** C0/C1 controls, line and paragraph separators: anything a lexer may take as a line break. */
const BREAKS = /[\p{Cc}\p{Zl}\p{Zp}]/gu;
/** Invisible format characters (bidi overrides, BOM): they make reviewed text lie about itself. */
const INVISIBLE = /\p{Cf}/gu;

/** Half of a surrogate pair without its other half: not encodable as UTF-8. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** The text on one line, with no control or invisible characters and no lone surrogates. */
export function oneLine(text: string): string {
  return text.replace(LONE_SURROGATE, '\uFFFD').replace(BREAKS, ' ').replace(INVISIBLE, '');
}

function utf8Length(codePoint: number): number {
  return codePoint < 0x80 ? 1 : codePoint < 0x800 ? 2 : codePoint < 0x10000 ? 3 : 4;
}

/** The longest prefix of `text` that fits `maxBytes` in UTF-8, never splitting a character. */
export function truncateUtf8(text: string, maxBytes: number): string {
  let bytes = 0;
  let end = 0;
  for (const char of text) {
    bytes += utf8Length(char.codePointAt(0) ?? 0);
    if (bytes > maxBytes) break;
    end += char.length;
  }
  return text.slice(0, end);
}

/** Text that every target takes as one bare word: no quoting needed, and none applied. */
const BARE = /^[A-Za-z0-9_][A-Za-z0-9_.:,/+@%=-]*$/;

/** nft's limit on a rule comment, in bytes (NFTNL_UDATA_COMMENT_MAXLEN). */
export const NFT_COMMENT_MAX = 128;

/** nft quoted strings have no escapes at all: a `"` cannot be written, so it becomes `'`. */
export function nftString(text: string): string {
  return `"${oneLine(text).replaceAll('"', "'")}"`;
}

/** A rule comment, cut to nft's 128-byte limit on a character boundary. */
export function nftComment(text: string): string {
  return nftString(truncateUtf8(oneLine(text).replaceAll('"', "'"), NFT_COMMENT_MAX));
}

/** A `#` comment line of nft, iptables-restore and POSIX sh: in all three it ends at the newline, no continuation. */
export function hashComment(text: string): string {
  return `# ${oneLine(text)}`;
}

/** xt_comment keeps 255 bytes; longer comments would be cut by the kernel, maybe inside a character. */
export const IPTABLES_COMMENT_MAX = 255;

/** One iptables-restore argument, always double-quoted; inside quotes `\` escapes the next character. */
export function iptablesQuoted(text: string): string {
  return `"${oneLine(text).replace(/["\\]/g, '\\$&')}"`;
}

/** One iptables-restore argument: bare when it is a plain word, quoted otherwise. */
export function iptablesArg(text: string): string {
  return BARE.test(text) ? text : iptablesQuoted(text);
}

/** `-m comment --comment "…"`, cut to the kernel's limit. */
export function iptablesComment(text: string): string {
  return `-m comment --comment ${iptablesQuoted(truncateUtf8(oneLine(text), IPTABLES_COMMENT_MAX))}`;
}

/** One POSIX sh word: bare when plain, else single-quoted (nothing is special inside but `'`). */
export function shWord(text: string): string {
  return BARE.test(text) ? text : `'${oneLine(text).replaceAll("'", `'\\''`)}'`;
}

/**
 * pf's lexer has no escape for a backslash: `\"` is a quote, and `\` at the end of a line continues
 * it (comments included). Backslashes become `/`, so neither can happen.
 */
function pfText(text: string): string {
  return oneLine(text).replaceAll('\\', '/');
}

/** A pf string, always quoted: a bare word could be a keyword (`all`, `quick`) or a list (`,`). */
export function pfString(text: string): string {
  return `"${pfText(text).replaceAll('"', '\\"')}"`;
}

/** A `#` comment line of pf.conf. */
export function pfComment(text: string): string {
  return `# ${pfText(text)}`;
}

/** A YAML scalar (the starter policy): bare when plain, else a JSON string, which YAML reads as is. */
export function yamlScalar(text: string): string {
  return /^[A-Za-z0-9_][A-Za-z0-9_.@-]*\*?$/.test(text) ? text : JSON.stringify(oneLine(text));
}

/** A `#` comment of YAML: the rest of the line only. */
export function yamlComment(text: string): string {
  return `# ${oneLine(text)}`;
}

/** PowerShell takes the typographic single quotes as `'` too; each is doubled inside '…'. */
export function psString(text: string): string {
  return `'${oneLine(text).replace(/['\u2018\u2019\u201a\u201b]/g, '$&$&')}'`;
}

/** A `#` comment line of a PowerShell script. */
export function psComment(text: string): string {
  return `# ${oneLine(text)}`;
}
