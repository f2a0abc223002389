import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectService } from '../../src/scan/service-detect.ts';
import { htmlTitle, matchService } from '../../src/scan/service-rules.ts';

describe('match rules on real banners', () => {
  it.each([
    [
      'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n',
      { service: 'ssh', product: 'OpenSSH', version: '9.2p1', extraInfo: 'Debian-2+deb12u3' },
    ],
    ['SSH-2.0-dropbear_2022.83\r\n', { service: 'ssh', product: 'Dropbear sshd', version: '2022.83' }],
    ['220 (vsFTPd 3.0.3)\r\n', { service: 'ftp', product: 'vsftpd', version: '3.0.3' }],
    [
      '220 ProFTPD 1.3.8 Server (Debian) [::ffff:198.51.100.2]\r\n',
      { service: 'ftp', product: 'ProFTPD', version: '1.3.8' },
    ],
    [
      '220 mail.example.org ESMTP Postfix (Debian/GNU)\r\n',
      { service: 'smtp', product: 'Postfix smtpd', extraInfo: 'mail.example.org' },
    ],
    [
      '220 mx.example.org ESMTP Exim 4.96 Sun, 22 Nov 2026\r\n',
      { service: 'smtp', product: 'Exim smtpd', version: '4.96', extraInfo: 'mx.example.org' },
    ],
    ['+OK Dovecot (Debian) ready.\r\n', { service: 'pop3', product: 'Dovecot pop3d' }],
    [
      '* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot (Debian) ready.\r\n',
      { service: 'imap', product: 'Dovecot imapd' },
    ],
    ['RFB 003.008\n', { service: 'vnc', product: 'VNC', extraInfo: 'protocol 003.008' }],
    [
      'J\0\0\0\n8.0.36-0ubuntu0.22.04.1\0\u0008\0\0\0',
      { service: 'mysql', product: 'MySQL', version: '8.0.36-0ubuntu0.22.04.1' },
    ],
    [
      '+PONG\r\n$200\r\n# Server\r\nredis_version:7.2.4\r\n',
      { service: 'redis', product: 'Redis key-value store', version: '7.2.4' },
    ],
    ['-NOAUTH Authentication required.\r\n', { service: 'redis', product: 'Redis key-value store' }],
    ['VERSION 1.6.18\r\n', { service: 'memcached', product: 'Memcached', version: '1.6.18' }],
    ['N', { service: 'postgresql', product: 'PostgreSQL DB' }],
    [
      'HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n\r\n',
      { service: 'http', product: 'nginx', version: '1.22.1' },
    ],
    [
      'HTTP/1.1 403 Forbidden\r\nDate: x\r\nServer: Apache/2.4.57 (Debian)\r\n\r\n',
      { service: 'http', product: 'Apache httpd', version: '2.4.57', extraInfo: 'Debian' },
    ],
    ['HTTP/1.0 404 Not Found\r\n\r\n', { service: 'http' }],
  ] as const)('%j', (banner, expected) => {
    expect(matchService(banner)).toEqual(expected);
  });

  it('finds the HTML title and knows nothing of garbage', () => {
    expect(htmlTitle('<html><head><title>\n  Router   login </title>')).toBe('Router login');
    expect(matchService('\u0000\u0001garbage')).toBeNull();
  });
});

describe('detectService against small loopback servers', () => {
  const servers: { close(): unknown }[] = [];
  const ports: Record<string, number> = {};
  const dir = mkdtempSync(join(tmpdir(), 'pw-sv-'));
  const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

  const listen = async (name: string, server: net.Server) => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    const address = server.address();
    if (address && typeof address === 'object') ports[name] = address.port;
  };

  beforeAll(async () => {
    await listen(
      'ssh',
      net.createServer((c) => c.on('error', () => undefined).write('SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n')),
    );
    await listen(
      'http',
      http.createServer((_q, r) => r.setHeader('Server', 'nginx/1.22.1').end('<title>Lab page</title>')),
    );
    await listen(
      'redis',
      net.createServer((c) =>
        c
          .on('error', () => undefined)
          .on('data', (d: Buffer) => d.toString().includes('PING') && c.write('+PONG\r\n')),
      ),
    );
    if (hasOpenssl) {
      spawnSync('openssl', [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        join(dir, 'k.pem'),
        '-out',
        join(dir, 'c.pem'),
        '-days',
        '2',
        '-subj',
        '/CN=portwarden-test',
      ]);
      const server = tls.createServer(
        { key: readFileSync(join(dir, 'k.pem')), cert: readFileSync(join(dir, 'c.pem')) },
        (s) =>
          s
            .on('error', () => undefined)
            .on('data', () => s.end('HTTP/1.1 200 OK\r\nServer: Apache/2.4.57\r\n\r\n')),
      );
      await listen('tls', server);
    }
  }, 30_000);

  afterAll(() => {
    servers.forEach((s) => s.close());
    rmSync(dir, { recursive: true, force: true });
  });

  it('an SSH greeting', async () => {
    expect(await detectService('127.0.0.1', ports['ssh'] ?? 0)).toMatchObject({
      name: 'ssh',
      product: 'OpenSSH',
      version: '9.2p1',
    });
  });

  it('HTTP with its Server header and title', async () => {
    expect(await detectService('127.0.0.1', ports['http'] ?? 0)).toMatchObject({
      name: 'http',
      product: 'nginx',
      version: '1.22.1',
      banner: 'HTTP/1.1 200 OK (Lab page)',
    });
  });

  it('Redis answering PING', async () => {
    expect(await detectService('127.0.0.1', ports['redis'] ?? 0)).toMatchObject({ name: 'redis' });
  });

  it.skipIf(!hasOpenssl)(
    'TLS with a self-signed certificate, and HTTP inside it',
    async () => {
      const info = await detectService('127.0.0.1', ports['tls'] ?? 0, { timeoutMs: 500 });
      expect(info).toMatchObject({
        name: 'https',
        tunnel: 'ssl',
        product: 'Apache httpd',
        version: '2.4.57',
      });
      expect(info?.tls).toMatchObject({ subject: 'CN=portwarden-test', selfSigned: true });
      expect(info?.tls?.version).toMatch(/^TLSv1\.[23]$/);
    },
    10_000,
  );
});
