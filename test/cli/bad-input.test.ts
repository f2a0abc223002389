import { execFileSync } from 'node:child_process';
import {
  closeSync,
  lstatSync,
  readFileSync,
  symlinkSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  writeFileSync,
  ftruncateSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../helpers/cli.ts';

/** Bad input ends in exit 2 with one error line and one hint line, quickly and without a stack. */
function expectUsageError(result: CliResult, message: RegExp): void {
  expect(result.status, result.stderr).toBe(2);
  expect(result.stderr).toMatch(message);
  expect(result.stderr).toMatch(/^hint: /m);
  // error[CODE]: what, then at most: --> file:line:col, the source line, its carets; then the hint
  expect(result.stderr.trimEnd().split('\n').length).toBeLessThanOrEqual(5);
  expect(result.stderr).toMatch(/^portwarden: error\[[A-Z_]+\]: \S/);
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

const POLICY = 'version: 1\nzones:\n  z:\n    interfaces: [eth0]\n    inbound:\n      - allow: ssh\n';
// A hang or an endless read shows up as a timeout (status null), not as a slow pass.
const QUICK = { timeout: 15_000 };

describe('inputs that are not regular files', () => {
  let dir = '';
  let fifo = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pw-bad-'));
    fifo = join(dir, 'policy.fifo');
    execFileSync('mkfifo', [fifo]);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([['policy', 'check'], ['compile']])('%s %s on a FIFO with no writer exits 2 at once', (...verb) => {
    expectUsageError(runCli([...verb, fifo], QUICK), /policy ".*policy\.fifo" is a FIFO, not a file/);
  });

  it.each([
    [['policy', 'check', '/dev/zero'], /policy "\/dev\/zero" is a character device/],
    [['compile', '/dev/urandom'], /policy "\/dev\/urandom" is a character device/],
    [['scan', '-iL', '/dev/zero', '-p', '1'], /target list "\/dev\/zero" is a character device/],
    [['ports', '--from-file', '/dev/urandom'], /listing "\/dev\/urandom" is a character device/],
    [['ports', '--from-file', '/tmp'], /listing "\/tmp" is a directory/],
  ])('%j exits 2 without reading forever', (args, message) => {
    expectUsageError(runCli(args, QUICK), message);
  });

  it('a policy over 16 MiB is refused by its size', () => {
    const big = join(dir, 'big.yaml');
    const fd = openSync(big, 'w');
    ftruncateSync(fd, 17 * 1024 * 1024);
    closeSync(fd);
    expectUsageError(runCli(['policy', 'check', big], QUICK), /is larger than 16 MiB/);
  });

  it('stdin still works for -', () => {
    expect(runCli(['policy', 'check', '-'], { input: POLICY }).status).toBe(0);
  });
});

describe('hostile policy text on the command line', () => {
  it('a file name with newlines compiles to one comment line and errors stay on one line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pw-name-'));
    try {
      const file = join(dir, 'p\nflush ruleset\n#.yaml');
      writeFileSync(file, POLICY);
      const nft = runCli(['compile', file]);
      expect(nft.status).toBe(0);
      expect(nft.stdout).not.toMatch(/^flush ruleset/m);
      writeFileSync(file, `${POLICY}name: "innocent\\nflush ruleset\\n#"\n`);
      const bad = runCli(['policy', 'check', file]);
      expectUsageError(
        bad,
        /^portwarden: error\[POLICY_INVALID\]: name "innocent\\nflush ruleset\\n#" is not a policy name\n {2}--> ".*p\\nflush ruleset\\n#\.yaml":7:7$/m,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('outputs are written all or nothing', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pw-out-'));
    writeFileSync(join(dir, 'p.yaml'), POLICY);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('compile -t iptables -o X when X.v6 is a directory leaves no X.v4 and no temp file', () => {
    mkdirSync(join(dir, 'rules.v6'));
    const result = runCli(['compile', join(dir, 'p.yaml'), '-t', 'iptables', '-o', join(dir, 'rules')]);
    expectUsageError(result, /cannot write ".*rules\.v6": it is a directory/);
    expect(readdirSync(dir).sort()).toEqual(['p.yaml', 'rules.v6']);
  });

  it('compile -o into a missing directory names the file, not a temp file', () => {
    const result = runCli(['compile', join(dir, 'p.yaml'), '-o', join(dir, 'no', 'such', 'out.nft')]);
    expectUsageError(
      result,
      /^portwarden: error\[FILE_UNWRITABLE\]: cannot write ".*out\.nft": its directory does not exist$/m,
    );
    expect(result.stderr).not.toMatch(/FILE_UNREADABLE|pw-tmp/);
  });

  it('scan -oA B when B.json is a directory leaves no B.xml and no B.txt', () => {
    const scanDir = join(dir, 'scan');
    mkdirSync(join(scanDir, 'B.json'), { recursive: true });
    const result = runCli(['scan', '127.0.0.1', '-p', '1', '-oA', join(scanDir, 'B')], QUICK);
    expectUsageError(result, /cannot write ".*B\.json": it is a directory/);
    expect(readdirSync(scanDir)).toEqual(['B.json']);
  });

  it('-o to a FIFO or device is refused (a rename would replace the node); a symlink is written through', () => {
    const fifo = join(dir, 'out.fifo');
    execFileSync('mkfifo', [fifo]);
    const refused = runCli(['compile', join(dir, 'p.yaml'), '-o', fifo], QUICK);
    expectUsageError(refused, /cannot write ".*out\.fifo": it is a FIFO/);
    expect(lstatSync(fifo).isFIFO()).toBe(true);
    rmSync(fifo);
    writeFileSync(join(dir, 'real.nft'), 'old');
    symlinkSync('real.nft', join(dir, 'link.nft'));
    expect(runCli(['compile', join(dir, 'p.yaml'), '-o', join(dir, 'link.nft')]).status).toBe(0);
    expect(lstatSync(join(dir, 'link.nft')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(dir, 'real.nft'), 'utf8')).toMatch(/^#!\/usr\/sbin\/nft -f/);
    rmSync(join(dir, 'link.nft'));
    rmSync(join(dir, 'real.nft'));
  });

  it('policy init -o refuses an existing file without --force and replaces it with --force', () => {
    const target = join(dir, 'init.yaml');
    writeFileSync(target, 'keep me');
    expectUsageError(runCli(['policy', 'init', '-o', target]), /cannot write ".*init\.yaml": it exists/);
    expect(runCli(['policy', 'init', '-o', target, '--force']).status).toBe(0);
    expect(existsSync(target)).toBe(true);
    expect(readdirSync(dir).filter((f) => f.includes('pw-tmp'))).toEqual([]);
  });
});

describe('accepted but wrong, now refused', () => {
  it('allow: 0-10 is refused like allow: 0', () => {
    for (const spec of ['0', '0-10', 'tcp/0-10', 'udp/0']) {
      const result = runCli(['policy', 'check', '-'], { input: POLICY.replace('ssh', spec) });
      expect(result.status, `${spec}: ${result.stderr}`).toBe(2);
      expect(result.stderr).toMatch(/port 0|outside 1-65535/);
    }
  });

  it('scan 127.0.0.1/24/8 exits 2 instead of scanning 127.0.0.0/24', () => {
    expectUsageError(runCli(['scan', '127.0.0.1/24/8', '-p', '1'], QUICK), /127\.0\.0\.1\/24\/8/);
  });

  it('ports --from-file refuses an address or port that cannot exist', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pw-listing-'));
    try {
      const header =
        '\nActive Connections\n\n  Proto  Local Address          Foreign Address        State           PID\n';
      for (const row of ['999.1.1.1:99999', '127.0.0.1:99999', '999.1.1.1:80', 'bogus:80']) {
        const file = join(dir, 'netstat.txt');
        writeFileSync(file, `${header}  TCP    ${row}        0.0.0.0:0              LISTENING       4\n`);
        expectUsageError(runCli(['ports', '--from-file', file]), new RegExp(row.replace(/\./g, '\\.')));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each(['../../etc/passwd', '.', '..', 'a/b', 'x y'])(
    'ports --netns %j exits 2 with the naming rule',
    (name) => {
      const result = runCli(['ports', '--netns', name], QUICK);
      expectUsageError(result, /--netns/);
      expect(result.stderr).toMatch(/\[A-Za-z0-9_.-\]/);
    },
  );
});
