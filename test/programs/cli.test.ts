import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ProgramStore } from '../../src/programs/store.ts';
import { WatchStore } from '../../src/watch/store.ts';
import { runCli } from '../helpers/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'pw-programs-cli-'));
const db = join(dir, 'watch.db');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('programs commands (the built binary)', () => {
  it.each([
    [['watch', '--programs', 'maybe', '--db', db], /--programs "maybe" is not a mode/],
    [['watch', '--programs', 'ask', '--programs-timeout', '0', '--db', db], /--programs-timeout "0" must be/],
    [['ask', '--db', db, '--id', '1', '--answer', 'perhaps'], /"perhaps" is not an answer/],
    [['ask', '--db', db, '--id', '1'], /--id needs --answer/],
    [['policy', 'suggest', '--write', '--db', db], /--write needs a policy file/],
  ])('%j exits 2 with one line and a hint', (args, message) => {
    const result = runCli(args);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toMatch(/hint: /);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('ask answers a pending prompt once; programs and suggest read the log', () => {
    const store = new WatchStore(db);
    const programs = new ProgramStore(store.db);
    const program = {
      exe: '/opt/app',
      sha256: 'd'.repeat(64),
      pid: 7,
      startTime: 1,
      uid: 0,
      user: 'root',
      unit: null,
      container: null,
      cmdline: '/opt/app',
    };
    const attempt = {
      protocol: 'tcp' as const,
      family: 4 as const,
      localAddress: '198.51.100.1',
      localPort: 40000,
      remoteAddress: '203.0.113.5',
      remotePort: 443,
    };
    const id = programs.addPrompt({ program, changed: false, attempt, at: 0, deadline: 1 });
    programs.logConnections([{ at: 5, attempt, program, verdict: 'allowed', reason: 'learn' }]);
    store.close();
    const listed = runCli(['ask', '--db', db, '--json']);
    expect(JSON.parse(listed.stdout)).toMatchObject({ prompts: [{ id, program: { exe: '/opt/app' } }] });
    expect(runCli(['ask', '--db', db, '--id', String(id), '--answer', 'deny']).stdout).toBe(
      `prompt ${id}: deny\n`,
    );
    const again = runCli(['ask', '--db', db, '--id', String(id), '--answer', 'deny']);
    expect(again.status).toBe(1);
    expect(again.stdout).toMatch(/not pending/);
    const summary = JSON.parse(runCli(['programs', '--db', db, '--json']).stdout) as {
      programs: { exe: string; allowed: number; firstSeen: string }[];
    };
    expect(summary.programs).toEqual([
      expect.objectContaining({ exe: '/opt/app', allowed: 1, firstSeen: '1970-01-01T00:00:00.005Z' }),
    ]);
    const suggested = runCli(['policy', 'suggest', '--db', db]);
    expect(suggested.stdout).toMatch(/- path: \/opt\/app\n/);
    expect(suggested.stdout).toMatch(/allow: tcp\/443\n\s+to: \[ 203\.0\.113\.5 \]/);
  });
});
