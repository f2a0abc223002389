import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NFT_COMMENT_MAX, nftComment, truncateUtf8 } from '../../src/compile/_quote.ts';
import { BACKENDS, compilePolicy } from '../../src/compile/registry.ts';
import { loadPolicy, loadPolicyOrThrow } from '../../src/policy/load.ts';
import type { Policy } from '../../src/policy/types.ts';
import { SHAPES } from '../helpers/statements.ts';
import { FRAGMENTS, benignPolicyYaml, hostile, withHostileText, yamlString } from './_hostile.ts';

/** Compiles to every target and concatenates the files (iptables writes two). */
function compiled(policy: Policy, target: string): string {
  return compilePolicy(policy, target, 'test')
    .map((f) => f.content)
    .join('\n');
}

function expectSameStatements(target: string, benign: Policy, evil: Policy): void {
  const want = compiled(benign, target);
  const got = compiled(evil, target);
  const shapes = SHAPES[target];
  if (!shapes) throw new Error(`no tokenizer for ${target}`);
  expect(shapes(got)).toEqual(shapes(want));
  expect(got.split('\n')).toHaveLength(want.split('\n').length);
}

describe('quoting helpers', () => {
  it('truncateUtf8 never exceeds the byte budget nor splits a character', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), fc.nat(300), (text, max) => {
        const cut = truncateUtf8(text, max);
        expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(max);
        expect(text.startsWith(cut)).toBe(true);
        expect(cut).not.toMatch(/[\uD800-\uDBFF]$/);
        if (Buffer.byteLength(text) <= max) expect(cut).toBe(text);
      }),
    );
  });

  it('an nft comment holds at most 128 bytes between its quotes', () => {
    fc.assert(
      fc.property(hostile, (text) => {
        const quoted = nftComment(text);
        expect(Buffer.byteLength(quoted.slice(1, -1))).toBeLessThanOrEqual(NFT_COMMENT_MAX);
        expect(quoted.slice(1, -1)).not.toMatch(/["\n\r]/);
      }),
    );
  });
});

describe('the schema refuses identifiers that targets cannot name', () => {
  const dangerous = fc
    .tuple(fc.string({ maxLength: 8 }), fc.constantFrom('\n', '"', "'", '`', '\\', ';', '$', '#', '\0', '\r'))
    .map(([a, b]) => `${a}${b}`);
  const fields: [string, (v: string) => string, RegExp][] = [
    ['name', (v) => `name: ${v}\n`, /^name /],
    ['interface', (v) => `zones:\n  z2:\n    interfaces: [${v}]\n`, /^zone "z2": interface /],
    ['user', (v) => `programs:\n  - user: ${v}\n    outbound: [{ allow: https }]\n`, /^program 1: user /],
    ['unit', (v) => `programs:\n  - unit: ${v}\n    outbound: [{ allow: https }]\n`, /^program 1: unit /],
    ['zone name', (v) => `zones:\n  ${v}:\n    interfaces: [eth9]\n`, /^zone name /],
    ['route zone', (v) => `routing:\n  - { from: ${v}, to: lan, allow: https }\n`, /^route 1: from /],
  ];
  it.each(fields)('%s: error with file:line:col and a hint', (_field, snippet, message) => {
    fc.assert(
      fc.property(dangerous, (value) => {
        const text = `version: 1\n${snippet(yamlString(value)).replace(/^zones:\n/m, 'zones:\n  lan: { interfaces: [eth1] }\n')}`;
        const doc = text.includes('zones:') ? text : `${text}zones:\n  lan: { interfaces: [eth1] }\n`;
        const { policy, diagnostics } = loadPolicy(doc, 'p.yaml');
        expect(policy).toBeNull();
        const first = diagnostics.find((d) => message.test(d.message));
        expect(first, JSON.stringify(diagnostics)).toBeDefined();
        expect(first?.hint).toBeTruthy();
        expect(first?.location?.line).toBeGreaterThan(1);
        expect(first?.message).not.toMatch(/\n/);
      }),
      { numRuns: 40 },
    );
  });
});

describe('identifier diagnostics: code, file:line:col, message and hint', () => {
  const base = 'version: 1\nzones:\n  lan:\n    interfaces: [eth1]\n';
  it.each([
    ['name: "a;b"\n', 5, 7, 'name "a;b" is not a policy name'],
    ['  "l an": { interfaces: [eth2] }\n', 5, 3, 'zone name "l an" is not valid'],
    [
      '  wan:\n    interfaces: [eth0, "e$x"]\n',
      6,
      24,
      'zone "wan": interface "e$x" is not an interface name',
    ],
    [
      'programs:\n  - user: "root -j ACCEPT"\n    outbound: [{ allow: https }]\n',
      6,
      11,
      'program 1: user "root -j ACCEPT" is not a user name or uid',
    ],
    [
      'programs:\n  - unit: "a.service\\n-A"\n    outbound: [{ allow: https }]\n',
      6,
      11,
      'program 1: unit "a.service\\n-A" is not a systemd unit name',
    ],
    [
      'forwards:\n  - { zone: "lan x", listen: tcp/22, to: 198.51.100.1 }\n',
      6,
      13,
      'forward 1: zone "lan x" is not a zone name',
    ],
  ])('%j', (extra, line, col, message) => {
    const text = extra.startsWith('  ') ? `${base}${extra}` : `${base}${extra}`;
    const { diagnostics } = loadPolicy(text, 'p.yaml');
    expect(diagnostics[0]).toMatchObject({
      code: 'POLICY_INVALID',
      message,
      location: { file: 'p.yaml', line, col },
    });
    expect(diagnostics[0]?.hint).toBeTruthy();
  });
});

describe('hostile free text compiles to exactly the statements of benign text', () => {
  const benign = (target: string): Policy => loadPolicyOrThrow(benignPolicyYaml(target), 'policy.yaml');

  it.each(BACKENDS.map((b) => b.name))(
    '%s: file name, comments and program path (through the loader)',
    (target) => {
      fc.assert(
        fc.property(fc.array(hostile, { minLength: 5, maxLength: 5 }), (texts) => {
          const evil = withHostileText(target, texts);
          expectSameStatements(target, benign(target), evil);
        }),
        { numRuns: 80 },
      );
    },
  );

  it.each(BACKENDS.map((b) => b.name))(
    '%s: names, interfaces, users and units (a Policy built without the schema)',
    (target) => {
      fc.assert(
        fc.property(fc.array(hostile, { minLength: 4, maxLength: 4 }), ([name, iface, user, unit]) => {
          const base = benign(target);
          const evil = structuredClone(base);
          evil.name = name ?? '';
          for (const zone of evil.zones)
            zone.interfaces = zone.interfaces.map(() => (iface ?? '').slice(0, 40));
          for (const p of evil.programs) {
            if (p.match.kind === 'user') p.match = { kind: 'user', user: user ?? '' };
            if (p.match.kind === 'unit') p.match = { kind: 'unit', unit: unit ?? '' };
            if (p.match.kind === 'path') p.match = { kind: 'path', path: unit ?? '' };
          }
          expectSameStatements(target, base, evil);
        }),
        { numRuns: 80 },
      );
    },
  );

  it('the issue reproductions: no bare statement reaches any target', () => {
    const file = 'p\nflush ruleset\n#\nStart-Process calc.exe\n.yaml';
    for (const b of BACKENDS) {
      const policy = withHostileText(b.name, [
        file,
        '\n-I INPUT 1 -j ACCEPT',
        'x"\n$(touch /tmp/pw-x)',
        '',
        '',
      ]);
      const text = compiled(policy, b.name);
      expect(text).not.toMatch(/^\s*(flush ruleset|Start-Process|-I INPUT|\$\(touch)/m);
    }
  });

  it('an unsupported feature is reported on one line, whatever its path or comment holds', () => {
    const policy = withHostileText('windows', [
      'p.yaml',
      'a',
      'b\nflush ruleset',
      'c',
      'x\nStart-Process calc.exe',
    ]);
    for (const target of ['iptables', 'pf']) {
      expect(() => compilePolicy(policy, target, 'test')).toThrow(
        /^target \S+ cannot express program-path \(program "C:\\\\x\\nStart-Process calc\.exe"\)[^\n]*$/,
      );
    }
  });

  it('fragments are in the generator: every one appears in some sample', () => {
    const samples = fc.sample(hostile, { numRuns: 2000, seed: 1 }).join('');
    for (const f of FRAGMENTS.slice(0, 10)) expect(samples).toContain(f);
  });
});
