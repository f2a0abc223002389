import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { renderAuditHtml } from '../../src/audit/report-html.ts';
import { renderAuditSarif } from '../../src/audit/report-sarif.ts';
import { renderAuditText } from '../../src/audit/report-text.ts';
import { AUDIT_REPORTERS, findReporter } from '../../src/audit/reporters.ts';
import { auditFromData } from '../../src/audit/run.ts';
import type { Socket } from '../../src/inventory/types.ts';
import { launchChromium } from '../helpers/browser.ts';
import { makeSocket } from '../helpers/socket.ts';
import { loadPolicyOrThrow } from '../../src/policy/load.ts';

const socket = (over: Partial<Socket>): Socket =>
  makeSocket({
    localPort: 23,
    processes: [
      {
        pid: 42,
        startTime: 1,
        name: 'inetd',
        exe: '/usr/sbin/inetd (deleted)',
        exeDeleted: true,
        uid: 0,
        user: 'root',
        cmdline: 'inetd',
        unit: 'inetd.service',
        container: null,
      },
    ],
    service: 'telnet',
    risk: 'critical',
    fix: 'systemctl disable --now inetd.service',
    ...over,
  });

const rulesetJson = readFileSync(new URL('../fixtures/rulesets/dual-homed.json', import.meta.url), 'utf8');
const interfaces = [
  { name: 'lo', addresses: ['127.0.0.1'] },
  { name: 'eth0', addresses: ['203.0.113.1', '2001:db8::1'] },
  { name: 'eth1', addresses: ['198.51.100.1'] },
];
const sockets = [
  socket({}),
  socket({ localPort: 80, service: 'http', risk: null, processes: [], fix: null }),
  socket({
    localPort: 6379,
    localAddress: '127.0.0.1',
    exposure: 'loopback',
    service: 'redis',
    risk: 'critical',
  }),
  socket({
    localPort: 8080,
    family: 6,
    localAddress: '::',
    dualStack: true,
    service: 'http-alt',
    risk: 'medium',
    processes: [],
  }),
];
const noFirewall = auditFromData(
  { sockets, interfaces, nftJson: null, rulesetReason: null, legacyRules: 0, warnings: [] },
  { host: 'web1', profile: 'server', now: new Date('2026-11-22T12:00:00Z') },
);
const policy = loadPolicyOrThrow(
  readFileSync(new URL('../../examples/web-ftp-dual-homed.yaml', import.meta.url), 'utf8'),
  'examples/web-ftp-dual-homed.yaml',
);
const withFirewall = auditFromData(
  { sockets, interfaces, nftJson: rulesetJson, rulesetReason: null, legacyRules: 0, warnings: [] },
  { host: 'web1', profile: 'server', policy, now: new Date('2026-11-22T12:00:00Z') },
);

describe('audit findings from data', () => {
  it('without a firewall: PW001, the critical telnet, the deleted executable', () => {
    const rules = noFirewall.findings.map((f) => `${f.rule}:${f.severity}:${f.port ?? ''}`);
    expect(rules).toEqual(
      expect.arrayContaining(['PW002:critical:23', 'PW001:high:', 'PW009:high:23', 'PW002:medium:8080']),
    );
    expect(noFirewall.findings[0]?.severity).toBe('critical');
    expect(noFirewall.exposure.map((r) => r.localPort)).toEqual([23, 80, 8080]);
  });

  it('with the compiled policy loaded: telnet is blocked, http allowed, the extra 8080 dropped, holes reported', () => {
    const find = (port: number) => withFirewall.exposure.find((r) => r.localPort === port);
    expect(find(23)?.reachable).toBe('no');
    expect(find(80)?.cells.find((c) => c.interface === 'eth0' && c.family === 4)?.reach).toBe('yes');
    expect(find(8080)?.reachable).toBe('no');
    const rules = withFirewall.findings.map((f) => f.rule);
    expect(rules).not.toContain('PW001');
    expect(rules).not.toContain('PW003');
    const holes = withFirewall.findings.filter((f) => f.rule === 'PW004');
    expect(holes.map((f) => f.id)).toEqual([
      'PW004:external/inbound/1',
      'PW004:internal/inbound/1',
      'PW004:internal/inbound/2',
    ]);
    expect(holes[0]?.message).toBe(
      'zone "external" allows tcp/21, tcp/443 (rule "ftp, http, https") but nothing listens there',
    );
    expect(withFirewall.method).toBe('static');
  });
});

describe('the reporter registry', () => {
  it('one reporter per format, each rendering the whole report as newline-ended text', () => {
    expect(AUDIT_REPORTERS.map((r) => r.name)).toEqual(['text', 'json', 'sarif', 'html']);
    for (const r of AUDIT_REPORTERS) {
      const text = r.render(withFirewall, { version: '9.9.9' });
      expect(text.endsWith('\n'), r.name).toBe(true);
      expect(text, r.name).toContain('23');
    }
  });

  it('each reporter gives its own format', () => {
    const render = (name: string) => findReporter(name).render(withFirewall, { version: '9.9.9' });
    expect(JSON.parse(render('json'))).toMatchObject({ host: 'web1', findings: expect.any(Array) });
    expect(JSON.parse(render('sarif'))).toMatchObject({
      version: '2.1.0',
      runs: [{ tool: { driver: { version: '9.9.9' } } }],
    });
    expect(render('html')).toMatch(/^<!doctype html>/i);
    expect(render('text')).toBe(`${renderAuditText(withFirewall)}\n`);
    const painted = findReporter('text').render(withFirewall, { version: '', paint: (_s, t) => `<${t}>` });
    expect(painted).toMatch(/<(CRITICAL|HIGH|MEDIUM|LOW|INFO) \(\d+\)>/);
  });

  it('an unknown format is a usage error listing the formats', () => {
    expect(() => findReporter('xml')).toThrow(expect.objectContaining({ code: 'OPTION_INVALID' }));
    expect(() => findReporter('xml')).toThrow(/unknown format "xml"/);
  });
});

describe('report formats', () => {
  it('text groups findings by severity', () => {
    const text = renderAuditText(noFirewall);
    expect(text.indexOf('CRITICAL (1)')).toBeLessThan(text.indexOf('HIGH ('));
    expect(text).toMatch(/\[PW002\] Telnet \(tcp\/23, critical risk\) is reachable on eth0\/IPv4/);
  });

  it('SARIF validates against the official 2.1.0 schema', () => {
    const schemaPath = fileURLToPath(
      import.meta.resolve('@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json'),
    );
    const schema = JSON.parse(readFileSync(schemaPath, 'utf8')) as Record<string, unknown>;
    // The official file is draft-04 ("id"); its keywords are otherwise valid draft-07 for Ajv 8.
    delete schema['$schema'];
    schema['$id'] = schema['id'];
    delete schema['id'];
    const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true, unicodeRegExp: false });
    const validate = ajv.compile(schema);
    for (const report of [noFirewall, withFirewall]) {
      const sarif = renderAuditSarif(report, '0.1.0');
      const ok = validate(sarif);
      expect(validate.errors ?? []).toEqual([]);
      expect(ok).toBe(true);
    }
    // The validator really checks: a run without a driver name is rejected.
    expect(
      validate({ version: '2.1.0', runs: [{ tool: { driver: {} }, results: [{ level: 'severe' }] }] }),
    ).toBe(false);
    const sarif = renderAuditSarif(noFirewall, '0.1.0') as {
      runs: { results: { ruleId: string; level: string }[] }[];
    };
    expect(sarif.runs[0]?.results[0]).toMatchObject({ ruleId: 'PW002', level: 'error' });
  });

  it('HTML escapes everything and draws the exposure matrix; Chromium renders it (screenshot artifact)', async () => {
    const html = renderAuditHtml({ ...noFirewall, host: '<script>alert(1)</script>' });
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;');
    const dir = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}audit-report.html`, renderAuditHtml(withFirewall));
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      await page.goto(`file://${dir}audit-report.html`);
      const reachable = await page.locator('#exposure td.yes').count();
      const blocked = await page.locator('#exposure td.no').count();
      expect(reachable).toBeGreaterThan(0);
      expect(blocked).toBeGreaterThan(0);
      expect(await page.locator('#findings tbody tr').count()).toBe(withFirewall.findings.length);
      await page.screenshot({ path: `${dir}audit-report.png`, fullPage: true });
    } finally {
      await browser.close();
    }
  }, 60_000);
});
