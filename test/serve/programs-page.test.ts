import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProgramStore } from '../../src/programs/store.ts';
import type { Attempt, ProgramIdentity } from '../../src/programs/types.ts';
import { WatchStore } from '../../src/watch/store.ts';
import { BIN } from '../helpers/cli.ts';
import { launchChromium } from '../helpers/browser.ts';

/**
 * The programs page in headless Chromium against the built `portwarden serve`: a prompt written to
 * the watch database appears without a reload, a click answers it through the API (token cookie), and
 * the answer is in the database where the daemon reads it.
 */

const program = (exe: string, pid: number): ProgramIdentity => ({
  exe,
  sha256: 'ab'.repeat(32),
  pid,
  startTime: 5,
  uid: 1000,
  user: 'alice',
  unit: 'app.service',
  container: null,
  cmdline: `${exe} --sync`,
});
const attempt: Attempt = {
  protocol: 'tcp',
  family: 4,
  localAddress: '198.51.100.1',
  localPort: 40000,
  remoteAddress: '203.0.113.5',
  remotePort: 443,
};

describe('programs page in headless Chromium (screenshot in test-artifacts/)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-programs-page-'));
  const dbPath = join(dir, 'watch.db');
  const dataPath = join(dir, 'data.json');
  const artifacts = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
  let child: ChildProcess;
  let browser: Browser;
  let base = '';
  let token = '';
  let store: WatchStore;
  let programs: ProgramStore;

  beforeAll(async () => {
    mkdirSync(artifacts, { recursive: true });
    writeFileSync(
      dataPath,
      JSON.stringify({
        sockets: [],
        interfaces: [],
        nftJson: null,
        rulesetReason: 'none',
        legacyRules: 0,
        warnings: [],
      }),
    );
    store = new WatchStore(dbPath);
    programs = new ProgramStore(store.db);
    const now = Date.now();
    programs.addPrompt({
      program: program('/opt/sync/agent', 4242),
      changed: false,
      attempt,
      at: now,
      deadline: now + 60_000,
    });
    programs.logConnections([
      {
        at: now - 1000,
        attempt,
        program: program('/usr/bin/curl', 17),
        verdict: 'allowed',
        reason: 'decision 1 (allow port)',
      },
    ]);
    child = spawn(
      process.execPath,
      [BIN, 'serve', '--port', '0', '--json', '--data', dataPath, '--db', dbPath],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    ({ base, token } = await new Promise<{ base: string; token: string }>((resolve, reject) => {
      let out = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('\n')) {
          const started = JSON.parse(out) as { url: string; token: string };
          resolve({ base: started.url.replace(/\/$/, ''), token: started.token });
        }
      });
      child.once('exit', (code) => reject(new Error(`serve exited ${code}`)));
    }));
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    child?.kill('SIGTERM');
    store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows prompts live and answers them through the API', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    await page.goto(`${base}/programs?token=${token}`);
    await page.waitForSelector('#content[data-state="ready"]');
    expect(await page.locator('nav a.active').textContent()).toBe('Programs');
    const first = page.locator('[data-exe="/opt/sync/agent"]');
    expect(await first.textContent()).toMatch(
      /\/opt\/sync\/agent wants tcp 203\.0\.113\.5:443.*pid 4242.*alice.*app\.service/,
    );
    expect(await page.locator('[data-testid="programs"] tbody tr').first().textContent()).toMatch(
      /\/usr\/bin\/curl.*1.*0/,
    );

    // a new prompt appears without a reload
    const now = Date.now();
    programs.addPrompt({
      program: program('/opt/other/tool', 5151),
      changed: true,
      attempt: { ...attempt, remotePort: 8443 },
      at: now,
      deadline: now + 60_000,
    });
    const second = page.locator('[data-exe="/opt/other/tool"]');
    await second.waitFor({ timeout: 5000 });
    expect(await second.textContent()).toMatch(/changed since its last decision/);
    await page.screenshot({ path: `${artifacts}dashboard-programs.png`, fullPage: true });

    await first.locator('button[data-answer="allow-destination"]').click();
    await page.waitForSelector('[data-testid="status"]:has-text("allow-destination")');
    expect(programs.recentPrompts().find((p) => p.program.exe === '/opt/sync/agent')).toMatchObject({
      answer: 'allow-destination',
      answeredBy: 'dashboard',
    });
    // an answered prompt leaves the list (the daemon acts on it); the other one stays
    await page.locator('[data-exe="/opt/sync/agent"]').waitFor({ state: 'detached', timeout: 5000 });
    expect(await page.locator('[data-exe="/opt/other/tool"]').count()).toBe(1);
    await page.close();
    expect(problems).toEqual([]);
  }, 60_000);
});
