import fc from 'fast-check';
import { loadPolicyOrThrow } from '../../src/policy/load.ts';
import type { Policy } from '../../src/policy/types.ts';

/** Pieces that end lines, close quotes or start statements in some target language. */
export const FRAGMENTS = [
  '\n',
  '"',
  "'",
  '\\',
  '`',
  '$(touch /tmp/pw-injected)',
  ';',
  '#',
  '\0',
  '\r\n',
  '\u2028',
  '\u0085',
  '\u2019',
  '\u201d',
  '\u202e',
  '\ud800',
  '<#',
  '{ }',
  '\nflush ruleset\n',
  '\n-I INPUT 1 -j ACCEPT\n',
  '\npass in quick all keep state\n',
  '\nStart-Process calc.exe\n',
  '" ; touch /tmp/pw-injected ; "',
  "' ; touch /tmp/pw-injected ; '",
  '\\\n',
  '`\n',
  '😀',
  'é'.repeat(70),
  'x'.repeat(300),
];

/** Untrusted text: fragments mixed with arbitrary unicode (lone surrogates and controls included). */
export const hostile: fc.Arbitrary<string> = fc
  .array(
    fc.oneof(
      fc.constantFrom(...FRAGMENTS),
      fc.string({ unit: 'binary', maxLength: 12 }),
      fc.string({ unit: 'grapheme', maxLength: 12 }),
    ),
    { minLength: 1, maxLength: 6 },
  )
  .map((parts) => parts.join(''));

/** A YAML double-quoted scalar holding exactly `text` (every non-ASCII character escaped). */
export function yamlString(text: string): string {
  return JSON.stringify(text).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${(c.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`,
  );
}

/** A policy using every feature the target supports, with its free text in slots C1..C4. */
function policyYaml(target: string, c: readonly string[], units = true): string {
  const [c1 = '', c2 = '', c3 = '', c4 = ''] = c.map(yamlString);
  const lines = [
    'version: 1',
    'zones:',
    '  ext:',
    '    interfaces: [eth0]',
    '    inbound:',
    `      - { allow: ssh, comment: ${c1} }`,
    `      - { allow: https, from: [2001:db8::/32], comment: ${c2} }`,
    '    outbound:',
    `      - { allow: dns, comment: ${c3} }`,
    '  lan:',
    '    interfaces: [eth1]',
    '    sources: [198.51.100.0/24]',
    '    inbound: [{ allow: ssh }]',
  ];
  if (target !== 'windows')
    lines.push(`routing:`, `  - { from: lan, to: ext, allow: https, masquerade: true, comment: ${c4} }`);
  if (target !== 'ipchains')
    lines.push('forwards:', `  - { zone: ext, listen: tcp/8443, to: 198.51.100.20:8080, comment: ${c4} }`);
  const outbound = `outbound: [{ allow: https, to: [203.0.113.5], comment: ${c4} }]`;
  if (target === 'nftables' || target === 'iptables')
    lines.push(
      'programs:',
      `  - { user: root, ${outbound} }`,
      ...(units ? [`  - { unit: backup.service, ${outbound} }`] : []),
    );
  if (target === 'pf') lines.push('programs:', `  - { user: root, ${outbound} }`);
  const path = yamlString(`C:\\${c[3] ?? ''}`);
  if (target === 'windows') lines.push('programs:', `  - { path: ${path}, ${outbound} }`);
  return `${lines.join('\n')}\n`;
}

/** `units: false` leaves out the per-unit rule, for loading where the unit's cgroup cannot exist. */
export function benignPolicyYaml(target: string, units = true): string {
  return policyYaml(target, ['ssh in', 'https in over IPv6', 'dns out', 'backup.exe'], units);
}

/**
 * The target's policy with untrusted text in the file name (and so the policy name) and in every
 * comment and program path, loaded through the real loader.
 */
export function withHostileText(target: string, texts: readonly string[], units = true): Policy {
  const [file = '', ...comments] = texts;
  const policy = loadPolicyOrThrow(policyYaml(target, comments, units), file);
  const got = policy.zones[0]?.inbound[0]?.comment;
  if (got !== (comments[0] ?? '')) throw new Error(`YAML did not round-trip ${JSON.stringify(comments[0])}`);
  return policy;
}
