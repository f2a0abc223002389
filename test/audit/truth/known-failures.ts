import type { Outcome } from './cells.ts';

/**
 * Cells where audit is known to disagree with the packets (issue 14), keyed as the suite prints
 * them: `scenario | listener | interface -> address`. Every entry is a bug in the evaluator; the
 * suite fails on an entry whose cell agrees again, so the list never claims more than is true.
 * TRUTH-FAILURES.md (written by each run) lists the current disagreements in this form.
 */
export const KNOWN_FAILURES: ReadonlyMap<string, Outcome> = new Map<string, Outcome>([
  // raw-mangle
  ['raw-mangle | tcp [::]:5601 | eth0 -> 198.51.100.1', 'false-not-reachable'],
  ['raw-mangle | tcp [::]:5601 | eth0 -> 203.0.113.1', 'false-not-reachable'],
  ['raw-mangle | tcp 0.0.0.0:22 | eth0 -> 198.51.100.1', 'false-not-reachable'],
  ['raw-mangle | tcp 0.0.0.0:22 | eth0 -> 203.0.113.1', 'false-not-reachable'],
  ['raw-mangle | tcp 0.0.0.0:22 | eth1 -> 198.51.100.1', 'false-not-reachable'],
  ['raw-mangle | tcp 0.0.0.0:22 | eth1 -> 203.0.113.1', 'false-not-reachable'],
]);
