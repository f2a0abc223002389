import dgram from 'node:dgram';
import net from 'node:net';
import { settleOnce } from '../system/settle.ts';

/**
 * Tiny servers and an FTP client for the verify lab. They run inside the lab's namespaces (through the
 * hidden `portwarden lab-server` / `lab-ftp` commands) and only ever bind or connect to the addresses
 * the lab gave them. Every wait is bounded.
 */

const LISTING = 'portwarden-lab-file\r\n';

/** A spec is `tcp:ADDR:PORT`, `udp:ADDR:PORT` (echo) or `ftp:ADDR:PORT[:FROM-TO]` (passive range). */
export interface ServerSpec {
  kind: 'tcp' | 'udp' | 'ftp';
  host: string;
  port: number;
  passive?: { from: number; to: number };
}

export function parseServerSpec(text: string): ServerSpec {
  const match = /^(tcp|udp|ftp):\[?([^\]]*?)\]?:(\d+)(?::(\d+)-(\d+))?$/.exec(text);
  if (!match) throw new Error(`bad server spec "${text}" (tcp|udp|ftp:ADDR:PORT[:FROM-TO])`);
  const [, kind, host, port, from, to] = match;
  return {
    kind: kind as ServerSpec['kind'],
    host: host ?? '',
    port: Number(port),
    ...(from !== undefined && to !== undefined ? { passive: { from: Number(from), to: Number(to) } } : {}),
  };
}

/** Starts one server; resolves once it listens. */
export function startServer(spec: ServerSpec): Promise<void> {
  if (spec.kind === 'udp') {
    return new Promise((resolve, reject) => {
      const socket = dgram.createSocket(spec.host.includes(':') ? 'udp6' : 'udp4');
      socket.on('message', (data, from) => socket.send(data, from.port, from.address));
      socket.once('error', reject);
      socket.bind(spec.port, spec.host, () => resolve());
    });
  }
  const server = net.createServer(
    spec.kind === 'ftp'
      ? (c) => ftpSession(c, spec)
      : (c) => {
          c.on('error', () => undefined); // scanners reset their connections
          c.end('portwarden lab\r\n');
        },
  );
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: spec.host, port: spec.port }, () => resolve());
  });
}

function listenOnRange(host: string, range: { from: number; to: number } | undefined): Promise<net.Server> {
  const ports = range
    ? Array.from({ length: Math.min(50, range.to - range.from + 1) }, (_, i) => range.from + i)
    : [0];
  return ports.reduce<Promise<net.Server>>(
    (previous, port) =>
      previous.catch(
        () =>
          new Promise((resolve, reject) => {
            const server = net.createServer();
            server.once('error', reject);
            server.listen({ host, port }, () => resolve(server));
          }),
      ),
    Promise.reject(new Error('no port')),
  );
}

function ftpSession(control: net.Socket, spec: ServerSpec): void {
  control.setEncoding('utf8');
  control.on('error', () => undefined);
  const idle = setTimeout(() => control.destroy(), 15_000);
  control.on('close', () => clearTimeout(idle));
  const reply = (line: string): void => void control.write(`${line}\r\n`);
  let passive: net.Server | null = null;
  let passiveConnection: Promise<net.Socket> | null = null;
  let active: { host: string; port: number } | null = null;
  let buffer = '';
  reply('220 portwarden lab FTP');
  const handle = async (line: string): Promise<void> => {
    const [verb = '', ...rest] = line.split(' ');
    const arg = rest.join(' ');
    switch (verb.toUpperCase()) {
      case 'USER':
        return reply('331 any password');
      case 'PASS':
        return reply('230 logged in');
      case 'TYPE':
        return reply('200 ok');
      case 'PASV':
      case 'EPSV': {
        passive?.close();
        passive = await listenOnRange(control.localAddress ?? spec.host, spec.passive);
        const server = passive;
        // the client may connect before it sends LIST: take the connection as soon as it comes
        passiveConnection = new Promise((resolve) => server.once('connection', resolve));
        const port = (passive.address() as net.AddressInfo).port;
        if (verb.toUpperCase() === 'EPSV') return reply(`229 Entering Extended Passive Mode (|||${port}|)`);
        const h = (control.localAddress ?? '')
          .replace(/^::ffff:/, '')
          .split('.')
          .join(',');
        return reply(`227 Entering Passive Mode (${h},${port >> 8},${port & 255})`);
      }
      case 'PORT': {
        const n = arg.split(',').map(Number);
        active = { host: n.slice(0, 4).join('.'), port: (n[4] ?? 0) * 256 + (n[5] ?? 0) };
        return reply('200 PORT ok');
      }
      case 'EPRT': {
        const [, , host = '', port = '0'] = arg.split('|');
        active = { host, port: Number(port) };
        return reply('200 EPRT ok');
      }
      case 'LIST':
      case 'NLST': {
        const data = await openData(control, passiveConnection, active);
        if (!data) return reply("425 can't open data connection");
        reply('150 here comes the listing');
        data.end(LISTING, () => reply('226 done'));
        passive?.close();
        passive = null;
        passiveConnection = null;
        active = null;
        return;
      }
      case 'QUIT':
        reply('221 bye');
        control.end();
        return;
      default:
        return reply('502 not implemented');
    }
  };
  let chain = Promise.resolve();
  control.on('data', (chunk: string) => {
    buffer += chunk;
    for (let index = buffer.indexOf('\n'); index >= 0; index = buffer.indexOf('\n')) {
      const line = buffer.slice(0, index).trim();
      buffer = buffer.slice(index + 1);
      chain = chain.then(() => handle(line)).catch(() => reply('451 local error'));
    }
  });
}

function openData(
  control: net.Socket,
  passive: Promise<net.Socket> | null,
  active: { host: string; port: number } | null,
): Promise<net.Socket | null> {
  return settleOnce<net.Socket | null>({ timeoutMs: 3000, onTimeout: () => null }, (done) => {
    if (passive) {
      void passive.then(done);
      return;
    }
    if (!active) return done(null);
    // Active mode: the data connection comes from port 20 of the server's address, as RFC 959 says.
    const socket = net.connect({
      host: active.host,
      port: active.port,
      localAddress: control.localAddress ?? '',
      localPort: 20,
    });
    socket.once('connect', () => done(socket));
    socket.once('error', () => done(null));
  });
}

export interface FtpClientResult {
  ok: boolean;
  mode: 'passive' | 'active';
  detail: string;
}

/**
 * One FTP session (login, LIST over a data connection, QUIT) in passive (PASV/EPSV) or active
 * (PORT/EPRT) mode. ok when the listing arrived: the firewall let both connections through.
 */
export function ftpClient(
  host: string,
  port: number,
  mode: 'passive' | 'active',
  timeoutMs = 3000,
): Promise<FtpClientResult> {
  const control = net.connect({ host, port });
  control.setEncoding('utf8');
  const servers: net.Server[] = [];
  const sockets: net.Socket[] = [];
  let lastLine = '';
  const cleanup = (): void => {
    for (const s of servers) s.close();
    // a data connection still trying to connect would keep the process alive for a minute
    for (const s of sockets) s.destroy();
    control.destroy();
  };
  const onTimeout = (): FtpClientResult => ({
    ok: false,
    mode,
    detail: `no listing within ${timeoutMs} ms (last: ${lastLine || 'nothing'})`,
  });
  return settleOnce({ timeoutMs, onTimeout, cleanup }, (settle) => {
    const finish = (ok: boolean, detail: string): void => settle({ ok, mode, detail });
    let buffer = '';
    let listing = '';
    const send = (line: string): void => void control.write(`${line}\r\n`);
    const v6 = host.includes(':');
    const receive = (data: net.Socket): void => {
      data.setEncoding('utf8');
      data.on('data', (chunk: string) => (listing += chunk));
      data.on('error', () => undefined);
      data.on('close', () => {
        if (listing === LISTING) finish(true, 'listing received over the data connection');
      });
    };
    control.on('error', (error) => finish(false, `control connection: ${error.message}`));
    control.on('data', (chunk: string) => {
      buffer += chunk;
      for (let index = buffer.indexOf('\n'); index >= 0; index = buffer.indexOf('\n')) {
        const line = buffer.slice(0, index).trim();
        buffer = buffer.slice(index + 1);
        lastLine = line;
        const code = line.slice(0, 3);
        if (code === '220') send('USER anonymous');
        else if (code === '331') send('PASS lab@');
        else if (code === '230') {
          if (mode === 'passive') send(v6 ? 'EPSV' : 'PASV');
          else {
            const server = net.createServer((socket) => {
              sockets.push(socket);
              receive(socket);
            });
            servers.push(server);
            server.listen({ host: control.localAddress ?? '', port: 0 }, () => {
              const p = (server.address() as net.AddressInfo).port;
              const local = (control.localAddress ?? '').replace(/^::ffff:/, '');
              send(v6 ? `EPRT |2|${local}|${p}|` : `PORT ${local.split('.').join(',')},${p >> 8},${p & 255}`);
            });
          }
        } else if (code === '227' || code === '229') {
          const m =
            code === '229' ? /\|\|\|(\d+)\|/.exec(line) : /(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)/.exec(line);
          const dataPort = code === '229' ? Number(m?.[1]) : Number(m?.[5]) * 256 + Number(m?.[6]);
          const dataHost = code === '229' ? host : (m?.slice(1, 5) ?? []).join('.');
          const data = net.connect({ host: dataHost, port: dataPort });
          sockets.push(data);
          data.once('connect', () => send('LIST'));
          data.once('error', (error) =>
            finish(false, `data connection to port ${dataPort}: ${error.message}`),
          );
          receive(data);
        } else if (code === '200') send('LIST');
        else if (code === '425' || code === '451') finish(false, `server: ${line}`);
        else if (code === '226') {
          if (listing === LISTING) finish(true, 'listing received over the data connection');
          else
            setTimeout(
              () =>
                finish(
                  listing === LISTING,
                  listing === LISTING ? 'listing received' : 'transfer ended without the listing',
                ),
              500,
            );
        }
      }
    });
  });
}
