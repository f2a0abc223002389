import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { AuditInterface } from '../../src/audit/exposure.ts';
import { rulesetFromData } from '../../src/audit/run.ts';
import { parseTraceSpec, renderTrace, traceProbe, type TraceReport } from '../../src/audit/trace.ts';
import { isPortwardenError } from '../../src/errors.ts';
import { runCli } from '../helpers/cli.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/rulesets/firewalld.json', import.meta.url));
const IFACES: AuditInterface[] = [
  { name: 'lo', addresses: ['127.0.0.1', '::1'] },
  { name: 'eth0', addresses: ['198.51.100.1', '2001:db8::1'] },
  { name: 'eth1', addresses: ['203.0.113.1'] },
];

describe('parseTraceSpec', () => {
  it.each([
    [
      ['tcp', '203.0.113.9', '->', 'eth0:22'],
      { protocol: 'tcp', source: '203.0.113.9', sport: 40000, iface: 'eth0', port: 22 },
    ],
    [['udp', '203.0.113.9:67', 'eth0:68'], { protocol: 'udp', sport: 67, iface: 'eth0', port: 68 }],
    [['tcp', '203.0.113.9->eth1:443'], { iface: 'eth1', port: 443 }],
    [
      ['tcp', '2001:db8::9', '->', '[2001:db8::1]:22'],
      { source: '2001:db8::9', address: '2001:db8::1', iface: null },
    ],
    [['tcp', '203.0.113.9', 'to', '198.51.100.1:22'], { address: '198.51.100.1', port: 22 }],
  ])('%j', (words, expected) => {
    expect(parseTraceSpec(words)).toMatchObject(expected);
  });
  it.each([
    [['icmp', '203.0.113.4', 'eth0:22'], /protocol "icmp" must be tcp or udp/],
    [['tcp', '1.2.3', 'eth0:22'], /source "1.2.3" is not an IP address/],
    [['tcp', '203.0.113.4', '-'], /destination "-" needs a port/],
    [['tcp', '203.0.113.4', 'eth0:70000'], /destination port "70000" is not a port/],
    [['tcp', '203.0.113.4'], /a source address and a destination are required/],
    [['tcp', '203.0.113.4', '2001:db8::1:22'], /must be in brackets/],
  ])('%j is a usage error with a hint', (words, message) => {
    try {
      parseTraceSpec(words);
      expect.unreachable();
    } catch (error) {
      expect(isPortwardenError(error) && error.code).toBe('USAGE');
      expect(String(error instanceof Error ? error.message : '')).toMatch(message);
      expect(isPortwardenError(error) && error.hint).toMatch(/quote the arrow/);
    }
  });
});

describe('traceProbe on a captured firewalld ruleset', () => {
  const ruleset = rulesetFromData({ nftJson: readFileSync(FIXTURE, 'utf8') });
  const trace = (words: string[]): TraceReport => traceProbe(ruleset!, IFACES, parseTraceSpec(words));

  it('meets prerouting, then input, jumps through the zone chains, and names the accepting rule', () => {
    const report = trace(['tcp', '203.0.113.9', '->', 'eth0:22']);
    expect(report.verdict).toBe('accept');
    const chains = report.steps.filter((s) => s.result === 'enter' && s.table !== '').map((s) => s.chain);
    expect(chains).toEqual([
      'filter_PREROUTING',
      'filter_INPUT',
      'filter_INPUT_ZONES',
      'filter_IN_public',
      'filter_IN_public_allow',
    ]);
    expect(report.decision).toMatchObject({
      table: 'inet firewalld',
      chain: 'filter_IN_public_allow',
      text: 'tcp dport 22 ct state { new, untracked } accept',
    });
    const text = renderTrace(report);
    expect(text).toMatch(/^trace tcp 203\.0\.113\.9:40000 -> 198\.51\.100\.1:22 in on eth0/);
    expect(text).toMatch(
      /verdict: ACCEPT by inet firewalld chain filter_IN_public_allow rule \d+: tcp dport 22/,
    );
  });
  it('a port no zone allows is rejected by the rule after the zones', () => {
    const report = trace(['tcp', '203.0.113.9', 'eth0:23']);
    expect(report.decision).toMatchObject({ verdict: 'reject', chain: 'filter_INPUT', text: 'reject' });
    expect(report.steps.at(-1)).toMatchObject({ chain: 'filter_INPUT', result: 'match', verdict: 'reject' });
  });
});

describe('portwarden trace (CLI)', () => {
  it('bad arguments exit 2 with a hint and no stack', () => {
    const result = runCli(['trace', 'tcp', '1.2.3', 'eth0:22']);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/error\[USAGE\]: source "1\.2\.3" is not an IP address\nhint: write it as/);
    expect(result.stderr).not.toMatch(/at .*\.js/);
  });
  it('traces through a saved ruleset (--ruleset), as text and as JSON', () => {
    const text = runCli(['trace', 'tcp', '203.0.113.9', '->', '198.51.100.1:22', '--ruleset', FIXTURE]);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/verdict: ACCEPT by inet firewalld chain filter_IN_public_allow/);
    const json = runCli(['trace', 'tcp', '203.0.113.9', '198.51.100.1:23', '--ruleset', FIXTURE, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ verdict: 'reject', decision: { chain: 'filter_INPUT' } });
  });
  it('an unreadable --ruleset file exits 2', () => {
    const result = runCli([
      'trace',
      'tcp',
      '203.0.113.9',
      '198.51.100.1:22',
      '--ruleset',
      '/nonexistent.json',
    ]);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/cannot read ruleset "\/nonexistent\.json"/);
  });
});
