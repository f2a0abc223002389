import type { Outcome } from './cells.ts';

/**
 * Cells where audit is known to disagree with the packets (issue 14), keyed as the suite prints
 * them: `scenario | listener | interface -> address`. Every entry is a bug in the evaluator; the
 * suite fails on an entry whose cell agrees again, so the list never claims more than is true.
 * TRUTH-FAILURES.md (written by each run) lists the current disagreements in this form.
 */
export const KNOWN_FAILURES: ReadonlyMap<string, Outcome> = new Map<string, Outcome>([
  // ufw
  ['ufw | tcp [::]:22 | eth0 -> 2001:db8::1', 'false-not-reachable'],
  ['ufw | tcp [::]:22 | eth0 -> fe80::1', 'false-not-reachable'],
  ['ufw | tcp [::]:22 | eth0 -> 2001:db8:1::1', 'false-not-reachable'],
  ['ufw | tcp [::]:22 | eth1 -> 2001:db8::1', 'false-not-reachable'],
  ['ufw | tcp [::]:22 | eth1 -> 2001:db8:1::1', 'false-not-reachable'],
  ['ufw | tcp [::]:22 | eth1 -> fe80::1', 'false-not-reachable'],
  ['ufw | tcp [::]:80 | eth0 -> 2001:db8::1', 'false-not-reachable'],
  ['ufw | tcp [::]:80 | eth0 -> fe80::1', 'false-not-reachable'],
  ['ufw | tcp [::]:80 | eth0 -> 2001:db8:1::1', 'false-not-reachable'],
  ['ufw | tcp [::]:80 | eth1 -> 2001:db8::1', 'false-not-reachable'],
  ['ufw | tcp [::]:80 | eth1 -> 2001:db8:1::1', 'false-not-reachable'],
  ['ufw | tcp [::]:80 | eth1 -> fe80::1', 'false-not-reachable'],
  ['ufw | tcp [::]:8443 | eth1 -> 2001:db8::1', 'false-not-reachable'],
  ['ufw | tcp [::]:8443 | eth1 -> 2001:db8:1::1', 'false-not-reachable'],
  ['ufw | tcp [::]:8443 | eth1 -> fe80::1', 'false-not-reachable'],
  ['ufw | udp [::]:546 v6only | eth0 -> fe80::1', 'false-not-reachable'],
  ['ufw | udp [::]:546 v6only | eth1 -> fe80::1', 'false-not-reachable'],
  // raw-mangle
  ['raw-mangle | tcp [::]:5601 | eth0 -> 198.51.100.1', 'false-not-reachable'],
  ['raw-mangle | tcp [::]:5601 | eth0 -> 203.0.113.1', 'false-not-reachable'],
  ['raw-mangle | tcp 0.0.0.0:22 | eth0 -> 198.51.100.1', 'false-not-reachable'],
  ['raw-mangle | tcp 0.0.0.0:22 | eth0 -> 203.0.113.1', 'false-not-reachable'],
  ['raw-mangle | tcp 0.0.0.0:22 | eth1 -> 198.51.100.1', 'false-not-reachable'],
  ['raw-mangle | tcp 0.0.0.0:22 | eth1 -> 203.0.113.1', 'false-not-reachable'],
  // openwrt-fw4
  ['openwrt-fw4 | udp [::]:546 v6only | eth1 -> 2001:db8::1', 'false-not-reachable'],
  ['openwrt-fw4 | udp [::]:546 v6only | eth1 -> 2001:db8:1::1', 'false-not-reachable'],
  ['openwrt-fw4 | udp [::]:546 v6only | eth1 -> fe80::1', 'false-not-reachable'],
]);
