import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, linkSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatTable, wrapCell } from '../../src/cli/table.ts';
import { BIN, ROOT, runCli } from '../helpers/cli.ts';

const PTY = fileURLToPath(new URL('../helpers/pty-run.py', import.meta.url));

describe('ports -e: the executable path of each owner', () => {
  let dir = '';
  let exe = '';
  let server: ChildProcess;
  let port = 0;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-exe-'));
    const deep = join(dir, 'a-rather-long-directory-name', 'for-the-exe-column');
    mkdirSync(deep, { recursive: true });
    exe = join(deep, 'node');
    try {
      linkSync(process.execPath, exe); // /proc/<pid>/exe names the link we ran
    } catch {
      copyFileSync(process.execPath, exe);
    }
    server = spawn(exe, [
      '-e',
      "const s=require('net').createServer().listen(0,'127.0.0.1',()=>console.log(s.address().port));setTimeout(()=>{},60000)",
    ]);
    const [line] = (await once(server.stdout!, 'data')) as [Buffer];
    port = Number(line.toString());
  });

  afterAll(() => {
    server.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('piped: one row per socket, the whole path in an EXE column', () => {
    const result = runCli(['ports', '-e', String(port)]);
    expect(result.status).toBe(0);
    const [, header = '', row = ''] = result.stdout.split('\n');
    expect(header).toMatch(/OWNER\s+EXE$/);
    expect(row).toContain(`node[${server.pid}]`);
    expect(row.endsWith(exe)).toBe(true);
    expect(runCli(['ports', String(port)]).stdout).not.toContain(exe);
  });

  it('on a narrow terminal the path wraps under its own column, other columns stay in line', () => {
    const header = runCli(['ports', '-e', String(port)]).stdout.split('\n')[1] ?? '';
    const offset = header.indexOf('EXE');
    const width = offset + 24;
    const command = `stty cols ${width}; NO_COLOR=1 exec "${process.execPath}" "${BIN}" ports -e ${port}`;
    const run = spawnSync('python3', [PTY, '', '', '20', '--', 'sh', '-c', command], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    const { output } = JSON.parse(run.stdout) as { output: string };
    const lines = output.replace(/\r/g, '').split('\n').filter(Boolean);
    const rowAt = lines.findIndex((l) => l.includes(`node[${server.pid}]`));
    const pieces = [lines[rowAt]?.slice(offset) ?? ''];
    for (const l of lines.slice(rowAt + 1)) {
      if (!l.startsWith(' '.repeat(offset))) break;
      pieces.push(l.slice(offset));
    }
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.join('')).toBe(exe);
    // stderr warnings share the terminal; only the table is held to the width
    const table = lines.filter((l) => !l.startsWith('portwarden:'));
    for (const l of table) expect(l.length).toBeLessThanOrEqual(width);
  });
});

describe('formatTable wrapping', () => {
  it('breaks after a slash where one is near, else at the width', () => {
    expect(wrapCell('/usr/local/sbin/daemon', 12)).toEqual(['/usr/local/', 'sbin/daemon']);
    expect(wrapCell('abcdefghij', 4)).toEqual(['abcd', 'efgh', 'ij']);
  });

  it('leaves a table alone without a width, or when the last column fits', () => {
    const rows = [['tcp', '/usr/sbin/sshd']];
    expect(formatTable(['P', 'EXE'], rows)).toBe('P    EXE\ntcp  /usr/sbin/sshd');
    expect(formatTable(['P', 'EXE'], rows, { width: 80 })).toBe('P    EXE\ntcp  /usr/sbin/sshd');
    expect(formatTable(['P', 'EXE'], [['tcp', '/usr/local/sbin/daemon']], { width: 21 })).toBe(
      'P    EXE\ntcp  /usr/local/sbin/\n     daemon',
    );
  });
});
