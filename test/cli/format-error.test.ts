import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatDiagnostic, formatError } from '../../src/cli/format-error.ts';
import { OWN_CODES, PortwardenError, exitCodeFor, type ErrorCode } from '../../src/errors.ts';
import { loadPolicy } from '../../src/policy/load.ts';

const fixture = (name: string): string =>
  readFileSync(new URL(`../fixtures/policies/broken/${name}.yaml`, import.meta.url), 'utf8');

function rendered(name: string): string {
  const file = `broken/${name}.yaml`;
  const source = fixture(name);
  return loadPolicy(source, file)
    .diagnostics.map((d) => formatDiagnostic(d, source))
    .join('');
}

describe('rendered errors: error[CODE], where, the source with carets under the range, hint', () => {
  it('an unknown key', () => {
    expect(rendered('unknown-key')).toBe(
      [
        'portwarden: error[POLICY_UNKNOWN_KEY]: unknown key "interfacs" in zone "external"',
        '  --> broken/unknown-key.yaml:4:5',
        '  4 |     interfacs: [eth0]',
        '    |     ^^^^^^^^^',
        'hint: did you mean "interfaces"?',
        '',
      ].join('\n'),
    );
  });

  it("yaml's own code for a duplicate key", () => {
    expect(rendered('duplicate-key')).toBe(
      [
        'portwarden: error[YAML_DUPLICATE_KEY]: duplicate key "external"',
        '  --> broken/duplicate-key.yaml:5:3',
        '  5 |   external:',
        '    |   ^^^^^^^^',
        'hint: each key may appear once; merge the two entries',
        '',
      ].join('\n'),
    );
  });

  it('a bad value, underlined whole', () => {
    expect(rendered('bad-cidr')).toMatch(
      /^portwarden: error\[POLICY_BAD_ADDRESS\]: .*\n {2}--> broken\/bad-cidr\.yaml:5:15\n {2}5 \| .*\n {4}\| {15}\^{15}\nhint: /,
    );
  });

  it('a range over several lines underlines to the end of its first line', () => {
    const text = formatDiagnostic(
      {
        severity: 'warning',
        code: 'LINT_LOCKOUT',
        message: 'm',
        location: { file: 'p.yaml', line: 2, col: 3, endLine: 4, endCol: 1 },
      },
      'a\n  bcd\ne\nf\n',
    );
    expect(text).toBe('portwarden: warning[LINT_LOCKOUT]: m\n  --> p.yaml:2:3\n  2 |   bcd\n    |   ^^^\n');
  });

  it('without a location: the one line and the hint', () => {
    const error = new PortwardenError('TARGET_INVALID', 'target "x" is not an address', {
      hint: 'try 127.0.0.1',
    });
    expect(formatError(error)).toBe(
      'portwarden: error[TARGET_INVALID]: target "x" is not an address\nhint: try 127.0.0.1\n',
    );
  });
});

describe('the code list', () => {
  it('every code has a category that decides the exit code; yaml codes are bad input', () => {
    for (const code of OWN_CODES) expect([2, 3, 4]).toContain(exitCodeFor(new PortwardenError(code, 'x')));
    const yaml: ErrorCode = 'YAML_BAD_INDENT';
    expect(exitCodeFor(new PortwardenError(yaml, 'x'))).toBe(2);
  });

  it('every code of the list is raised somewhere (a declared code nothing raises is dead)', () => {
    const src = new URL('../../src/', import.meta.url);
    const text = (readdirSync(src, { recursive: true }) as string[])
      .filter((f) => f.endsWith('.ts') && f !== 'errors.ts')
      .map((f) => readFileSync(new URL(f, src), 'utf8'))
      .join('\n');
    expect(OWN_CODES.filter((code) => !text.includes(`'${code}'`))).toEqual([]);
  });
});
