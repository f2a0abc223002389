import net from 'node:net';
import tls from 'node:tls';
import { htmlTitle, matchService } from './service-rules.ts';
import { settleOnce } from '../system/settle.ts';

/** What service detection learnt about an open TCP port. */
export interface ServiceInfo {
  name: string;
  product?: string;
  version?: string;
  extraInfo?: string;
  banner?: string;
  tunnel?: 'ssl';
  tls?: { version: string; subject: string; notAfter: string; selfSigned: boolean };
}

const TLS_PORTS = new Set([
  443, 465, 563, 636, 853, 989, 990, 992, 993, 994, 995, 2376, 5061, 6443, 8443, 9443, 10250,
]);

function printable(text: string, max = 120): string {
  return text
    .replace(/[^\x20-\x7e]+/g, ' ')
    .trim()
    .slice(0, max);
}

/** Connects, optionally sends a probe, and collects what comes back within the time given. */
function exchange(
  address: string,
  port: number,
  probe: Buffer | null,
  waitMs: number,
  signal?: AbortSignal,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  const socket = net.connect({ host: address, port });
  const received = (): Buffer => Buffer.concat(chunks);
  const options = { timeoutMs: waitMs, onTimeout: received, cleanup: () => socket.destroy() };
  return settleOnce({ ...options, ...(signal ? { signal } : {}) }, (finish) => {
    socket.on('connect', () => probe && socket.write(probe));
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      size += d.length;
      if (size > 16_384) finish(received());
    });
    socket.on('error', () => finish(received()));
    socket.on('end', () => finish(received()));
  });
}

/** A TLS handshake (certificates are inspected, not trusted), then an HTTP request inside it. */
function tlsProbe(address: string, port: number, waitMs: number): Promise<ServiceInfo | null> {
  const chunks: Buffer[] = [];
  let info: ServiceInfo | null = null;
  const socket = tls.connect({
    host: address,
    port,
    rejectUnauthorized: false,
    servername: net.isIP(address) ? undefined : address,
  });
  // what the handshake and the HTTP answer inside it told, read once when the connection is done
  const result = (): ServiceInfo | null => {
    if (info) {
      const text = Buffer.concat(chunks).toString('latin1');
      const inner = matchService(text);
      if (inner) {
        info.name = inner.service === 'http' ? 'https' : inner.service;
        if (inner.product) info.product = inner.product;
        if (inner.version) info.version = inner.version;
        const title = htmlTitle(text);
        info.banner = printable(`${text.split('\r\n')[0] ?? ''}${title ? ` (${title})` : ''}`);
      }
    }
    return info;
  };
  const options = { timeoutMs: waitMs, onTimeout: result, cleanup: () => socket.destroy() };
  return settleOnce(options, (finish) => {
    socket.on('secureConnect', () => {
      const cert = socket.getPeerCertificate();
      const subject = cert.subject
        ? Object.entries(cert.subject)
            .map(([k, v]) => `${k}=${String(v)}`)
            .join(', ')
        : '';
      const issuer = cert.issuer
        ? Object.entries(cert.issuer)
            .map(([k, v]) => `${k}=${String(v)}`)
            .join(', ')
        : '';
      info = {
        name: 'ssl',
        tunnel: 'ssl',
        tls: {
          version: socket.getProtocol() ?? 'unknown',
          subject,
          notAfter: cert.valid_to ?? '',
          selfSigned: subject !== '' && subject === issuer,
        },
      };
      socket.write(`GET / HTTP/1.0\r\nHost: ${address}\r\nUser-Agent: portwarden\r\n\r\n`);
    });
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('end', () => finish(result()));
    socket.on('error', () => finish(result()));
  });
}

function describe(text: string, match: ReturnType<typeof matchService>): ServiceInfo | null {
  if (!match) return null;
  const title = match.service === 'http' ? htmlTitle(text) : undefined;
  const firstLine = text.split(/\r?\n/)[0] ?? '';
  return {
    name: match.service,
    ...(match.product ? { product: match.product } : {}),
    ...(match.version ? { version: match.version } : {}),
    ...(match.extraInfo ? { extraInfo: match.extraInfo } : {}),
    banner: printable(`${firstLine}${title ? ` (${title})` : ''}`),
  };
}

/** Active probes after a silent connect, most likely first for the port. */
function probesFor(port: number): { name: string; data: Buffer }[] {
  const http = { name: 'http', data: Buffer.from('GET / HTTP/1.0\r\nUser-Agent: portwarden\r\n\r\n') };
  const redis = { name: 'redis', data: Buffer.from('PING\r\nINFO server\r\n') };
  const pg = { name: 'postgresql', data: Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]) };
  const memcached = { name: 'memcached', data: Buffer.from('version\r\n') };
  const byPort: Record<number, { name: string; data: Buffer }[]> = {
    6379: [redis],
    5432: [pg],
    11211: [memcached],
  };
  return [...(byPort[port] ?? []), http, redis, memcached];
}

/**
 * Identifies what listens on an open TCP port, like nmap's NULL probe then targeted probes: wait
 * briefly for a greeting (SSH, FTP, SMTP, POP3, IMAP, MySQL, VNC), else try TLS where it is likely,
 * then HTTP, Redis, PostgreSQL, memcached. Bounded: a few short connections per port.
 */
export async function detectService(
  address: string,
  port: number,
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<ServiceInfo | null> {
  const wait = options.timeoutMs ?? 800;
  if (TLS_PORTS.has(port)) {
    const viaTls = await tlsProbe(address, port, wait * 2);
    if (viaTls) return viaTls;
  }
  const greeting = await exchange(address, port, null, wait, options.signal);
  if (greeting.length > 0) {
    const text = greeting.toString('latin1');
    return describe(text, matchService(text)) ?? { name: 'unknown', banner: printable(text) };
  }
  for (const probe of probesFor(port)) {
    if (options.signal?.aborted) return null;
    const reply = await exchange(address, port, probe.data, wait, options.signal);
    if (reply.length === 0) continue;
    const text = reply.toString('latin1');
    const found = describe(text, matchService(text));
    if (found) return found;
    if (reply[0] === 0x15 || reply[0] === 0x16) break; // a TLS alert/handshake: the port speaks TLS
    return { name: 'unknown', banner: printable(text) };
  }
  if (!TLS_PORTS.has(port)) return tlsProbe(address, port, wait * 2);
  return null;
}
