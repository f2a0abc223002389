import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildIr } from '../../src/compile/ir.ts';
import { BACKENDS, compilePolicy } from '../../src/compile/registry.ts';
import { loadPolicyOrThrow } from '../../src/policy/load.ts';

const EXAMPLES = new URL('../../examples/', import.meta.url);
const GOLDEN = new URL('../golden/', import.meta.url);
const update = process.env['UPDATE_GOLDEN'] === '1';
const examples = readdirSync(EXAMPLES)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

function load(name: string) {
  return loadPolicyOrThrow(readFileSync(new URL(name, EXAMPLES), 'utf8'), `examples/${name}`);
}

describe.each(examples)('%s', (name) => {
  const policy = load(name);
  it.each(BACKENDS.map((b) => b.name))('compiles to %s exactly as the golden file', (target) => {
    const backend = BACKENDS.find((b) => b.name === target);
    let files;
    try {
      files = compilePolicy(policy, target, '0.0.0-golden');
    } catch (error) {
      // An unsupported feature is a golden outcome too: the error text is pinned.
      files = [{ suffix: '.error', content: `${(error as Error).message}\n` }];
    }
    for (const file of files) {
      const dir = new URL(`${name.replace(/\.yaml$/, '')}/`, GOLDEN);
      const golden = new URL(`${target}.${backend?.extension ?? 'txt'}${file.suffix}`, dir);
      if (update) {
        mkdirSync(dir, { recursive: true });
        writeFileSync(golden, file.content);
      }
      expect(
        existsSync(golden),
        `missing ${golden.pathname}: run UPDATE_GOLDEN=1 npx vitest run test/compile`,
      ).toBe(true);
      expect(file.content).toBe(readFileSync(golden, 'utf8'));
    }
  });
});

describe('compiler invariants', () => {
  it.each(examples)('%s: nftables never flushes and replaces its own table atomically', (name) => {
    const [nft] = compilePolicy(load(name), 'nftables', 'x');
    const text = nft?.content ?? '';
    expect(text).not.toMatch(/flush (ruleset|table)/);
    expect(text.indexOf('table inet portwarden\ndelete table inet portwarden')).toBeGreaterThan(0);
    expect(text.match(/^table /gm)).toHaveLength(2);
  });

  it('keeps the rule count independent of the number of ports (sets), unlike iptables', () => {
    const many = Array.from({ length: 500 }, (_, i) => `tcp/${10000 + i * 3}`).join(', ');
    const policy = loadPolicyOrThrow(
      `version: 1\nzones:\n  z:\n    interfaces: [eth0]\n    inbound:\n      - allow: ${many}\n`,
      'p.yaml',
    );
    const [nft] = compilePolicy(policy, 'nftables', 'x');
    const [v4] = compilePolicy(policy, 'iptables', 'x');
    expect(nft?.content.match(/dport @/g)).toHaveLength(1);
    expect(v4?.content.match(/--dports /g)?.length).toBe(Math.ceil(500 / 15));
  });

  it('derives the FTP helper from the policy, in the directions used', () => {
    const ir = buildIr(load('web-ftp-dual-homed.yaml'));
    expect(ir.ftpHelper).toEqual({ inbound: true, outbound: false });
    expect(buildIr(load('workstation.yaml')).ftpHelper).toEqual({ inbound: false, outbound: false });
  });

  it('rejects a feature a target cannot express, naming it', () => {
    const policy = loadPolicyOrThrow(
      'version: 1\nzones:\n  z:\n    interfaces: [eth0]\nprograms:\n  - path: /usr/bin/curl\n    outbound: [{ allow: https }]\n',
      'p.yaml',
    );
    expect(() => compilePolicy(policy, 'iptables', 'x')).toThrow(
      /iptables cannot express program-path \(program "\/usr\/bin\/curl"\)/,
    );
    expect(() => compilePolicy(policy, 'nope', 'x')).toThrow(/unknown target "nope"/);
  });
});
