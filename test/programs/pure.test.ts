import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../src/compile/registry.ts';
import type { ProcNetRow } from '../../src/inventory/parse-proc-net.ts';
import { loadPolicyOrThrow } from '../../src/policy/load.ts';
import { matchSocket } from '../../src/programs/attribute.ts';
import { decideAttempt, decisionOf } from '../../src/programs/decide.ts';
import { gateRuleset, gateUpdate, parseGateListing } from '../../src/programs/gate.ts';
import { ProgramsGate, type GateIo } from '../../src/programs/gatekeeper.ts';
import { addProgramRules } from '../../src/programs/policy-edit.ts';
import { ProgramStore } from '../../src/programs/store.ts';
import { suggestProgramRules } from '../../src/programs/suggest.ts';
import type { Attempt, Decision, ProgramIdentity } from '../../src/programs/types.ts';
import { buildServer } from '../../src/serve/server.ts';
import { WatchStore } from '../../src/watch/store.ts';

const attempt = (over: Partial<Attempt> = {}): Attempt => ({
  protocol: 'tcp',
  family: 4,
  localAddress: '198.51.100.1',
  localPort: 40000,
  remoteAddress: '203.0.113.5',
  remotePort: 443,
  ...over,
});

const program = (exe: string, sha256 = 'a'.repeat(64), pid = 100): ProgramIdentity => ({
  exe,
  sha256,
  pid,
  startTime: 1,
  uid: 1000,
  user: 'alice',
  unit: null,
  container: null,
  cmdline: exe,
});

const decision = (over: Partial<Decision>): Decision => ({
  id: 1,
  at: 0,
  exe: '/usr/bin/curl',
  sha256: 'a'.repeat(64),
  verdict: 'allow',
  scope: 'always',
  protocol: null,
  remoteAddress: null,
  remotePort: null,
  ...over,
});

describe('the gate ruleset', () => {
  it('drops undecided attempts in ask and enforce (also when the set is full), never in learn', () => {
    for (const mode of ['ask', 'enforce'] as const) {
      const text = gateRuleset(mode);
      expect(text).toMatch(
        /add @attempts4 \{ ip saddr \. th sport \. ip daddr \. th dport \. meta l4proto \} drop/,
      );
      expect(text).toMatch(/^\t\tdrop$/m);
    }
    const learn = gateRuleset('learn');
    expect(learn).not.toMatch(/\bdrop\b/);
    expect(learn).toMatch(/add @attempts6 \{ ip6 saddr/);
    // established traffic and loopback never meet the daemon
    expect(learn.indexOf('ct state established,related accept')).toBeLessThan(learn.indexOf('@admitted4'));
  });

  it('admits exact 5-tuples with their mark, and forgets what was read', () => {
    const v6 = attempt({
      family: 6,
      localAddress: '2001:db8::1',
      remoteAddress: '2001:db8::2',
      protocol: 'udp',
    });
    expect(gateUpdate([{ attempt: attempt(), mark: 0x50570002 }], [v6])).toBe(
      'add element inet portwarden_programs admitted4 { 198.51.100.1 . 40000 . 203.0.113.5 . 443 . tcp : 0x50570002 }\n' +
        'delete element inet portwarden_programs attempts6 { 2001:db8::1 . 40000 . 2001:db8::2 . 443 . udp }\n',
    );
    expect(gateUpdate([], [])).toBe('');
  });

  it('reads attempts from nft -j list table (as nft 1.0.6 prints them)', () => {
    const json = JSON.stringify({
      nftables: [
        { metainfo: { version: '1.0.6' } },
        {
          set: {
            name: 'attempts4',
            elem: [
              {
                elem: { val: { concat: ['198.51.100.1', 58452, '198.51.100.2', 8080, 'tcp'] }, expires: 59 },
              },
            ],
          },
        },
        { set: { name: 'attempts6', elem: [{ concat: ['2001:db8::1', 5353, '2001:db8::2', 53, 'udp'] }] } },
        { map: { name: 'admitted4', elem: [] } },
      ],
    });
    expect(parseGateListing(json)).toEqual([
      {
        protocol: 'tcp',
        family: 4,
        localAddress: '198.51.100.1',
        localPort: 58452,
        remoteAddress: '198.51.100.2',
        remotePort: 8080,
      },
      {
        protocol: 'udp',
        family: 6,
        localAddress: '2001:db8::1',
        localPort: 5353,
        remoteAddress: '2001:db8::2',
        remotePort: 53,
      },
    ]);
  });
});

describe('deciding an attempt', () => {
  const curl = program('/usr/bin/curl');
  const decide = (
    decisions: Decision[],
    a = attempt(),
    mode: 'ask' | 'enforce' = 'ask',
    policyText?: string,
  ) =>
    decideAttempt({
      program: curl,
      attempt: a,
      decisions,
      policy: policyText ? loadPolicyOrThrow(policyText, 'p.yaml') : null,
      mode,
    });

  it('asks for a program without decisions, denies it in enforce', () => {
    expect(decide([])).toEqual({ kind: 'ask', changed: false });
    expect(decide([], attempt(), 'enforce')).toMatchObject({ kind: 'deny' });
  });

  it('keeps scopes apart: destination, port, always; deny wins', () => {
    const dest = decision({
      scope: 'destination',
      protocol: 'tcp',
      remoteAddress: '203.0.113.5',
      remotePort: 443,
    });
    expect(decide([dest])).toMatchObject({ kind: 'allow', mark: 0x50570000 });
    expect(decide([dest], attempt({ remoteAddress: '203.0.113.6' }))).toMatchObject({ kind: 'ask' });
    expect(decide([dest], attempt({ protocol: 'udp' }))).toMatchObject({ kind: 'ask' });
    const port = decision({ scope: 'port', protocol: 'tcp', remotePort: 443 });
    expect(decide([port], attempt({ remoteAddress: '203.0.113.6' }))).toMatchObject({ kind: 'allow' });
    expect(decide([port], attempt({ remotePort: 80 }))).toMatchObject({ kind: 'ask' });
    expect(decide([decision({}), decision({ id: 2, verdict: 'deny' })])).toMatchObject({ kind: 'deny' });
  });

  it('asks again when the binary changed, even with an allow for the old one and a policy rule', () => {
    const old = decision({ sha256: 'b'.repeat(64) });
    const policy =
      'version: 1\nzones: {}\nprograms:\n  - path: /usr/bin/curl\n    outbound: [{ allow: https }]\n';
    expect(decide([old], attempt(), 'ask', policy)).toEqual({ kind: 'ask', changed: true });
    expect(decide([old], attempt(), 'enforce')).toMatchObject({ kind: 'deny', reason: /changed/ });
    // another program's decisions do not count
    expect(decide([decision({ exe: '/usr/bin/wget' })])).toEqual({ kind: 'ask', changed: false });
  });

  it("lets a policy path: rule through with that rule's mark, only to its destinations", () => {
    const policy =
      'version: 1\nzones: {}\nprograms:\n  - user: nobody\n    outbound: [{ allow: http }]\n  - path: /usr/bin/curl\n    outbound: [{ allow: https, to: [203.0.113.0/24] }]\n';
    expect(decide([], attempt(), 'enforce', policy)).toMatchObject({ kind: 'allow', mark: 0x50570002 });
    expect(decide([], attempt({ remoteAddress: '198.51.100.9' }), 'enforce', policy)).toMatchObject({
      kind: 'deny',
    });
  });

  it('turns answers into decisions (none for the one-off answers)', () => {
    expect(decisionOf('allow-once', curl, attempt())).toBeNull();
    expect(decisionOf('deny', curl, attempt())).toBeNull();
    expect(decisionOf('allow-port', curl, attempt())).toMatchObject({
      scope: 'port',
      remoteAddress: null,
      remotePort: 443,
    });
    expect(decisionOf('deny-always', curl, attempt())).toMatchObject({ verdict: 'deny', scope: 'always' });
  });
});

describe('attributing a socket row', () => {
  const row = (over: Partial<ProcNetRow>): ProcNetRow => ({
    protocol: 'tcp',
    family: 4,
    localAddress: '198.51.100.1',
    localPort: 40000,
    remoteAddress: '203.0.113.5',
    remotePort: 443,
    state: 'SYN_SENT',
    uid: 0,
    inode: 7,
    v4Mapped: false,
    ...over,
  });

  it('finds the socket by its whole tuple, across IPv4-mapped and compressed IPv6 forms', () => {
    const rows = [row({ inode: 1, localPort: 40001 }), row({ inode: 2 }), row({ inode: 3, remotePort: 80 })];
    expect(matchSocket(rows, attempt())?.inode).toBe(2);
    const v6 = row({ family: 6, localAddress: '2001:db8:0:0::1', remoteAddress: '2001:db8::2', inode: 9 });
    expect(
      matchSocket([v6], attempt({ family: 6, localAddress: '2001:db8::1', remoteAddress: '2001:db8::2' }))
        ?.inode,
    ).toBe(9);
    expect(matchSocket([row({ inode: 0, state: 'TIME_WAIT' })], attempt())).toBeNull();
  });

  it('takes an unconnected UDP socket bound to the source port', () => {
    const bound = row({
      protocol: 'udp',
      localAddress: '0.0.0.0',
      remoteAddress: '0.0.0.0',
      remotePort: 0,
      state: 'UNCONN',
      inode: 4,
    });
    expect(matchSocket([bound], attempt({ protocol: 'udp' }))?.inode).toBe(4);
    expect(matchSocket([bound], attempt({ protocol: 'udp', localPort: 1 }))).toBeNull();
  });
});

describe('the daemon core with a simulated kernel', () => {
  function setup(owners: Map<string, ProgramIdentity>) {
    const watch = new WatchStore(':memory:');
    const store = new ProgramStore(watch.db);
    let held: Attempt[] = [];
    const scripts: string[] = [];
    const io: GateIo = {
      nft: (script) => {
        scripts.push(script);
        return Promise.resolve();
      },
      list: () => Promise.resolve(held),
      attribute: (attempts) => new Map(attempts.map((a) => [a, owners.get(String(a.localPort)) ?? null])),
    };
    let now = 1_000_000;
    const gate = new ProgramsGate({
      mode: 'ask',
      store,
      io,
      policy: null,
      signal: new AbortController().signal,
      promptTimeoutMs: 5000,
      now: () => now,
    });
    return {
      store,
      gate,
      scripts,
      hold: (a: Attempt[]) => (held = a),
      advance: (ms: number) => (now += ms),
      admitted: () => scripts.filter((s) => s.startsWith('add element')).join(''),
    };
  }

  it('several programs at once: each attempt is decided for its own program, only its own tuple admitted', async () => {
    const a = attempt({ localPort: 41000 });
    const b = attempt({ localPort: 42000 });
    const lost = attempt({ localPort: 43000 });
    const t = setup(
      new Map([
        ['41000', program('/opt/a')],
        ['42000', program('/opt/b')],
      ]),
    );
    await t.gate.start();
    t.hold([a, b, lost]);
    await t.gate.poll();
    const prompts = t.store.pendingPrompts();
    expect(prompts.map((p) => p.program.exe)).toEqual(['/opt/a', '/opt/b']);
    t.hold([a, b]); // the retransmissions
    await t.gate.poll();
    expect(t.store.pendingPrompts()).toHaveLength(2); // no second prompt for a retransmission
    t.store.answer(prompts[0]?.id ?? 0, 'allow-once', 'test', 0);
    t.store.answer(prompts[1]?.id ?? 0, 'deny', 'test', 0);
    await t.gate.poll();
    expect(t.admitted()).toBe(
      'add element inet portwarden_programs admitted4 { 198.51.100.1 . 41000 . 203.0.113.5 . 443 . tcp : 0x50570000 }\n',
    );
    const log = t.store.connections();
    expect(log.find((c) => c.localPort === 43000)).toMatchObject({ verdict: 'denied', program: null });
    expect(log.find((c) => c.localPort === 42000)).toMatchObject({
      verdict: 'denied',
      reason: /prompt \d+: deny/,
    });
    expect(t.store.decisions()).toEqual([]); // one-off answers store nothing
  });

  it('denies an unanswered prompt at its deadline', async () => {
    const t = setup(new Map([['41000', program('/opt/a')]]));
    await t.gate.start();
    t.hold([attempt({ localPort: 41000 })]);
    await t.gate.poll();
    t.hold([]);
    t.advance(5001);
    await t.gate.poll();
    expect(t.store.pendingPrompts()).toEqual([]);
    expect(t.store.recentPrompts()[0]).toMatchObject({ answer: 'deny', answeredBy: 'timeout' });
    expect(t.admitted()).toBe('');
  });

  it('an "always" answer covers the next connection without asking', async () => {
    const t = setup(
      new Map([
        ['41000', program('/opt/a')],
        ['41001', program('/opt/a')],
      ]),
    );
    await t.gate.start();
    t.hold([attempt({ localPort: 41000 })]);
    await t.gate.poll();
    t.store.answer(t.store.pendingPrompts()[0]?.id ?? 0, 'allow-port', 'test', 0);
    await t.gate.poll();
    t.hold([attempt({ localPort: 41001, remoteAddress: '203.0.113.77' })]);
    await t.gate.poll();
    expect(t.store.pendingPrompts()).toEqual([]);
    expect(t.admitted()).toMatch(/41001 \. 203\.0\.113\.77 \. 443 \. tcp/);
  });
});

describe('writing program rules into a policy', () => {
  const policy = [
    '# my policy',
    'version: 1',
    'zones:',
    '  lan:',
    '    interfaces: [eth0] # the LAN',
    'programs:',
    '  - path: /usr/bin/curl',
    '    outbound:',
    '      - allow: tcp/443',
    '        to: [ 203.0.113.5 ]',
    '',
  ].join('\n');

  it('merges into the existing entry, skips duplicates, keeps comments, and the result compiles', () => {
    const text = addProgramRules(policy, [
      {
        path: '/usr/bin/curl',
        rules: [{ allow: 'tcp/443', to: ['203.0.113.5'] }, { allow: 'tcp/80' }],
        comment: 'x',
      },
      { path: '/opt/new', rules: [{ allow: 'udp/53', to: ['198.51.100.53'] }], comment: 'learned' },
    ]);
    expect(text).toMatch(/^# my policy$/m);
    expect(text).toMatch(/interfaces: \[ eth0 \] # the LAN|interfaces: \[eth0\] # the LAN/);
    expect(text.match(/allow: tcp\/443/g)).toHaveLength(1);
    const loaded = loadPolicyOrThrow(text, 'p.yaml');
    expect(loaded.programs.map((p) => p.match)).toEqual([
      { kind: 'path', path: '/usr/bin/curl' },
      { kind: 'path', path: '/opt/new' },
    ]);
    const nft = compilePolicy(loaded, 'nftables', 'test')[0]?.content ?? '';
    expect(nft).toMatch(
      /meta mark 0x50570002 ip daddr @prog_2_1_udp_v4_peers udp dport @prog_2_1_udp_v4 counter accept/,
    );
  });

  it('suggests one rule per set of addresses, leaving out attempts without a program', () => {
    const entries = suggestProgramRules(
      [
        {
          exe: '/opt/app',
          sha256: 'c'.repeat(64),
          user: 'alice',
          unit: null,
          allowed: 3,
          denied: 0,
          firstSeen: '2026-01-01T00:00:00.000Z',
          lastSeen: '2026-01-02T00:00:00.000Z',
          destinations: [
            { protocol: 'tcp', remoteAddress: '203.0.113.5', remotePort: 443, allowed: 1, denied: 0 },
            { protocol: 'tcp', remoteAddress: '203.0.113.5', remotePort: 80, allowed: 1, denied: 0 },
            { protocol: 'udp', remoteAddress: '198.51.100.53', remotePort: 53, allowed: 1, denied: 0 },
          ],
        },
        {
          exe: '?',
          sha256: null,
          user: null,
          unit: null,
          allowed: 1,
          denied: 0,
          firstSeen: '',
          lastSeen: '',
          destinations: [],
        },
      ],
      new Date('2026-01-03T00:00:00Z'),
    );
    expect(entries).toHaveLength(1);
    expect(entries[0]?.rules).toEqual([
      { allow: 'tcp/443, tcp/80', to: ['203.0.113.5'] },
      { allow: 'udp/53', to: ['198.51.100.53'] },
    ]);
    expect(() =>
      loadPolicyOrThrow(addProgramRules('version: 1\nzones: {}\n', entries), 'p.yaml'),
    ).not.toThrow();
  });
});

describe('the programs API', () => {
  it('answers need the token, a known answer and a pending prompt; the first answer stands', async () => {
    const watch = new WatchStore(':memory:');
    const store = new ProgramStore(watch.db);
    const id = store.addPrompt({
      program: program('/opt/a'),
      changed: false,
      attempt: attempt(),
      at: 0,
      deadline: 10,
    });
    const app = await buildServer({
      host: '127.0.0.1',
      port: 0,
      token: 'tok',
      sources: {
        auditData: () => Promise.reject(new Error('unused')),
        store: watch,
        policy: null,
        version: 't',
      },
    });
    const post = (answer: unknown, auth = true) =>
      app.inject({
        method: 'POST',
        url: `/api/programs/prompts/${id}`,
        headers: {
          host: '127.0.0.1',
          'content-type': 'application/json',
          ...(auth ? { authorization: 'Bearer tok' } : {}),
        },
        payload: JSON.stringify({ answer }),
      });
    expect((await post('allow-once', false)).statusCode).toBe(401);
    expect((await post('maybe')).statusCode).toBe(400);
    const listed = await app.inject({ url: '/api/programs', headers: { host: '127.0.0.1' } });
    const body = listed.json<{
      prompts: { id: number; at: string; remotePort: number; program: { exe: string } }[];
    }>();
    expect(body.prompts[0]).toMatchObject({
      id,
      at: '1970-01-01T00:00:00.000Z',
      remotePort: 443,
      program: { exe: '/opt/a' },
    });
    expect((await post('allow-port')).json()).toEqual({ id, answer: 'allow-port', accepted: true });
    expect((await post('deny')).statusCode).toBe(409);
    await app.close();
  });
});
