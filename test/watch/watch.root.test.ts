import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, expect, it } from 'vitest';
import { NetnsLab } from '../../src/lab/netns.ts';
import { BIN, ROOT } from '../helpers/cli.ts';
import { describeRootTier } from '../helpers/root-tier.ts';
import { until } from '../helpers/until.ts';
import { hasBaseline, knockCount } from '../helpers/watch-db.ts';

const LISTEN = join(ROOT, 'test/fixtures/servers/listen.mjs');

interface Event {
  kind: string;
  key: string;
  message: string;
}

await describeRootTier(
  'watch: listeners and knocks in namespaces, events in SQLite and on a webhook',
  ['ip', 'nft', 'dmesg'],
  () => {
    const lab = new NetnsLab('wch');
    const dir = mkdtempSync(join(tmpdir(), 'pw-watch-ns-'));
    const children: ChildProcess[] = [];
    afterAll(async () => {
      for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
      await lab.dispose();
      rmSync(dir, { recursive: true, force: true });
    });

    function startWatch(args: readonly string[]): {
      child: ChildProcess;
      events: Event[];
      stderr: () => string;
    } {
      const child = spawn(process.execPath, [BIN, 'watch', '--interval', '0.3', '--json', ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      const events: Event[] = [];
      let buffer = '';
      let err = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        buffer += chunk.toString();
        const lines = buffer.split('\n');
        buffer = lines.pop() ?? '';
        for (const line of lines) if (line.trim()) events.push(JSON.parse(line) as Event);
      });
      child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
      return { child, events, stderr: () => err };
    }

    async function exited(child: ChildProcess): Promise<number | null> {
      if (child.exitCode === null && child.signalCode === null)
        await new Promise((resolve) => child.once('exit', resolve));
      return child.exitCode;
    }

    async function stop(child: ChildProcess): Promise<number | null> {
      child.kill('SIGTERM');
      return exited(child);
    }

    function dbEvents(db: string): Event[] {
      const conn = new Database(db, { readonly: true });
      try {
        return conn.prepare('SELECT kind, key, message FROM events ORDER BY id').all() as Event[];
      } finally {
        conn.close();
      }
    }

    it('opened and closed listeners reach SQLite and the webhook; a restart neither repeats nor loses one', async () => {
      const ns = await lab.addNamespace('w');
      // an interface with a peer: with loopback alone nobody could reach telnet (reachable: no)
      const peer = await lab.addNamespace('wp');
      await lab.link({ ns, ifname: 'eth0' }, { ns: peer, ifname: 'eth0' });
      await lab.addAddress(ns, 'eth0', '198.51.100.61/24');
      const db = join(dir, 'listeners.db');
      const hooked: Event[] = [];
      const server = createServer((req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          hooked.push(JSON.parse(body) as Event);
          res.end();
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
      try {
        const first = startWatch(['--netns', ns, '--db', db, '--kernel-log', 'none', '--webhook', url]);
        // the baseline sample first (a fixed sleep lost this race on a loaded machine: telnet was in it)
        await until('the baseline', () => hasBaseline(db));
        const telnet = lab.spawn(ns, [process.execPath, LISTEN, 'tcp:0.0.0.0:23']);
        await until('telnet opened on the webhook', () =>
          hooked.some((e) => e.kind === 'risky-exposed' && e.key === `tcp|0.0.0.0|23|${ns}`),
        );
        telnet.kill('SIGKILL');
        await until('telnet closed', () =>
          first.events.some((e) => e.kind === 'listener-closed' && e.key.includes('|23|')),
        );
        expect(await stop(first.child)).toBe(0);
        // while watch is down: a listener opens
        const web = lab.spawn(ns, [process.execPath, LISTEN, 'tcp:127.0.0.1:8080']);
        await new Promise<void>((resolve) => web.stdout?.once('data', () => resolve()));
        // a fixed number of samples, then watch ends by itself: nothing but the new listener may come
        const second = startWatch([
          '--netns',
          ns,
          '--db',
          db,
          '--kernel-log',
          'none',
          '--webhook',
          url,
          '--samples',
          '4',
        ]);
        expect(await exited(second.child)).toBe(0);
        expect(second.events.map((e) => `${e.kind} ${e.key.split('|')[2]}`)).toEqual([
          'listener-opened 8080',
        ]);
        const recorded = dbEvents(db).map((e) => `${e.kind} ${e.key.split('|')[2]}`);
        expect(recorded).toEqual([
          'listener-opened 23',
          'risky-exposed 23',
          'listener-closed 23',
          'listener-opened 8080',
        ]);
        await until('every event on the webhook', () => hooked.length === 4);
        expect(hooked.map((e) => e.kind)).toEqual([
          'listener-opened',
          'risky-exposed',
          'listener-closed',
          'listener-opened',
        ]);
        web.kill('SIGKILL');
      } finally {
        server.close();
      }
    }, 60_000);

    it('a scan from a peer against a drop-logging ruleset shows up as knocks and one port-scan alert', async () => {
      const host = await lab.addNamespace('h');
      const peer = await lab.addNamespace('p');
      await lab.link({ ns: host, ifname: 'eth0' }, { ns: peer, ifname: 'eth0' });
      // addresses no other test lab uses: the kernel log is shared by every namespace
      await lab.addAddress(host, 'eth0', '198.51.100.66/24');
      await lab.addAddress(peer, 'eth0', '198.51.100.77/24');
      const ruleset = join(dir, 'workstation.nft');
      const compiled = spawnSync(
        process.execPath,
        [BIN, 'compile', join(ROOT, 'examples/workstation.yaml'), '-o', ruleset],
        { encoding: 'utf8' },
      );
      expect(compiled.status).toBe(0);
      await lab.exec(host, ['nft', '-f', ruleset]);
      // Kernel logging from namespaces other than the first is off by default; on for this test only
      // (a logging switch: no firewall outside the lab changes).
      const before = readFileSync('/proc/sys/net/netfilter/nf_log_all_netns', 'utf8').trim();
      spawnSync('sysctl', ['-qw', 'net.netfilter.nf_log_all_netns=1']);
      const db = join(dir, 'knocks.db');
      const watch = startWatch([
        '--netns',
        host,
        '--db',
        db,
        '--kernel-log',
        'kmsg',
        '--scan-threshold',
        '8',
      ]);
      try {
        // the kernel log is followed from before the first sample on
        await until('the baseline', () => hasBaseline(db));
        const scan = await lab.exec(peer, [
          process.execPath,
          BIN,
          'scan',
          '198.51.100.66',
          '-p',
          '1-200',
          '--timeout',
          '200',
          '--json',
        ]);
        expect(scan.status).toBe(0);
        await until('the port-scan alert', () => watch.events.some((e) => e.key === 'scan|198.51.100.77'));
        await until('the knocks in the database', () => knockCount(db, '198.51.100.77') >= 8);
      } finally {
        spawnSync('sysctl', ['-qw', `net.netfilter.nf_log_all_netns=${before}`]);
        expect(await stop(watch.child)).toBe(0);
      }
      // other test labs may log drops at the same time: only this peer's scan counts here
      const scans = watch.events.filter((e) => e.kind === 'port-scan' && e.key === 'scan|198.51.100.77');
      expect(scans).toHaveLength(1);
      expect(scans[0]?.message).toMatch(/port scan: 198\.51\.100\.77 knocked on \d+ ports of zone uplink/);
      const conn = new Database(db, { readonly: true });
      const knocks = conn
        .prepare("SELECT source, port, zone, protocol FROM knocks WHERE source = '198.51.100.77'")
        .all() as { port: number; zone: string; protocol: string }[];
      conn.close();
      expect(knocks.length).toBeGreaterThanOrEqual(8);
      expect(knocks.every((k) => k.protocol === 'tcp' && k.port >= 1 && k.port <= 200)).toBe(true);
    }, 60_000);
  },
);
