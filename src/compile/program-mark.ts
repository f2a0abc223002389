/**
 * Packet marks shared by the nftables compiler and `watch --programs`: nftables cannot match an
 * executable path, so the daemon vouches for a program by marking the first packets of a connection it
 * attributed to it (in its own table, before the policy's), and a policy `path:` rule matches the mark
 * of its own index. The high half spells "PW"; the low half is the program rule's index + 1, and 0
 * means "let through by an answer that no policy rule stands behind".
 */
export const PROGRAM_MARK_BASE = 0x50570000;

/** The mark that stands for the policy's `programs[index]`. */
export function programMark(index: number): number {
  return PROGRAM_MARK_BASE + index + 1;
}

/** The mark written as nft writes it (`0x50570001`). */
export function formatMark(mark: number): string {
  return `0x${mark.toString(16).padStart(8, '0')}`;
}
