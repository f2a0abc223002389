import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BIN, ROOT } from '../helpers/cli.ts';
import { describeRootTier } from '../helpers/root-tier.ts';

const run = (prefix: readonly string[], args: readonly string[]): { stdout: string; stderr: string } => {
  const result = spawnSync('setpriv', [...prefix, process.execPath, BIN, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', NO_COLOR: '1', LANG: 'C' },
  });
  return { stdout: result.stdout, stderr: result.stderr };
};

await describeRootTier('ports says which process it could not read, and why', ['setpriv'], () => {
  let server: ChildProcess;
  let port = 0;

  beforeAll(async () => {
    server = spawn(process.execPath, [
      '-e',
      "const s=require('net').createServer().listen(0,'127.0.0.1',()=>console.log(s.address().port));setTimeout(()=>{},60000)",
    ]);
    const [line] = (await once(server.stdout!, 'data')) as [Buffer];
    port = Number(line.toString());
  });

  afterAll(() => {
    server.kill('SIGKILL');
  });

  it('root without CAP_SYS_PTRACE: names the processes and the capability, no "run as root"', () => {
    const result = run(['--bounding-set=-sys_ptrace', '--inh-caps=-all'], ['ports', String(port)]);
    expect(result.stdout).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}\\s+no\\s.*\\? \\(uid 0\\)`));
    expect(result.stderr).toMatch(
      /portwarden: warning: could not read pid \d+ \(.+, uid 0\): it holds capabilities this process lacks \(.*CAP_SYS_PTRACE.*\)/,
    );
    expect(result.stderr).not.toMatch(/run as root/);
  });

  it('not root: says so, names some processes, and gives the root hint', () => {
    const result = run(['--reuid=65534', '--regid=65534', '--clear-groups'], ['ports', String(port)]);
    expect(result.stderr).toMatch(
      /processes? of other users could not be inspected \(pid \d+ .*\): sockets they own show no process; run as root to see every owner/,
    );
  });
});
