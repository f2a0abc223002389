/**
 * The prefix of portwarden's drop log lines, a contract with `portwarden watch` (which parses the
 * kernel log): `pw:<in|out|fwd>:<zone>: `. The zone is cut so that the whole prefix fits the 28
 * characters iptables' --log-prefix allows; drops that no zone handled use zone `-`.
 */
export const LOG_PREFIX_MAX = 28;

export function logPrefix(direction: 'in' | 'out' | 'fwd', zone: string): string {
  const head = `pw:${direction}:`;
  return `${head}${zone.slice(0, LOG_PREFIX_MAX - head.length - 2)}: `;
}

/** Reads a prefix back: { direction, zone } or null. */
export function parseLogPrefix(text: string): { direction: 'in' | 'out' | 'fwd'; zone: string } | null {
  const match = /pw:(in|out|fwd):([^:\s]*):/.exec(text);
  if (!match?.[1] || match[2] === undefined) return null;
  return { direction: match[1] as 'in' | 'out' | 'fwd', zone: match[2] };
}
