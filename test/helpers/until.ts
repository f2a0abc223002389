/**
 * Waits for an event instead of a fixed time: polls `check` every `everyMs` until it holds, for at
 * most `ms` (default 15 s), and fails naming `what` when the time runs out.
 */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = 15_000,
  everyMs = 50,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
