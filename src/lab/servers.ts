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

/** The server side of one FTP control connection: login, PASV/EPSV or PORT/EPRT, LIST, QUIT. */
class FtpServerSession {
  private passive: net.Server | null = null;
  private passiveConnection: Promise<net.Socket> | null = null;
  private active: { host: string; port: number } | null = null;

  constructor(
    private readonly control: net.Socket,
    private readonly spec: ServerSpec,
  ) {}

  reply(line: string): void {
    void this.control.write(`${line}\r\n`);
  }

  async handle(line: string): Promise<void> {
    const [verb = '', ...rest] = line.split(' ');
    const arg = rest.join(' ');
    switch (verb.toUpperCase()) {
      case 'USER':
        return this.reply('331 any password');
      case 'PASS':
        return this.reply('230 logged in');
      case 'TYPE':
        return this.reply('200 ok');
      case 'PASV':
        return this.enterPassive(false);
      case 'EPSV':
        return this.enterPassive(true);
      case 'PORT':
        return this.port(arg);
      case 'EPRT':
        return this.eprt(arg);
      case 'LIST':
      case 'NLST':
        return this.list();
      case 'QUIT':
        this.reply('221 bye');
        this.control.end();
        return;
      default:
        return this.reply('502 not implemented');
    }
  }

  private async enterPassive(extended: boolean): Promise<void> {
    this.passive?.close();
    const server = await listenOnRange(this.control.localAddress ?? this.spec.host, this.spec.passive);
    this.passive = server;
    // the client may connect before it sends LIST: take the connection as soon as it comes
    this.passiveConnection = new Promise((resolve) => server.once('connection', resolve));
    const port = (server.address() as net.AddressInfo).port;
    if (extended) return this.reply(`229 Entering Extended Passive Mode (|||${port}|)`);
    const h = (this.control.localAddress ?? '')
      .replace(/^::ffff:/, '')
      .split('.')
      .join(',');
    this.reply(`227 Entering Passive Mode (${h},${port >> 8},${port & 255})`);
  }

  private port(arg: string): void {
    const n = arg.split(',').map(Number);
    this.active = { host: n.slice(0, 4).join('.'), port: (n[4] ?? 0) * 256 + (n[5] ?? 0) };
    this.reply('200 PORT ok');
  }

  private eprt(arg: string): void {
    const [, , host = '', port = '0'] = arg.split('|');
    this.active = { host, port: Number(port) };
    this.reply('200 EPRT ok');
  }

  private async list(): Promise<void> {
    const data = await openData(this.control, this.passiveConnection, this.active);
    if (!data) return this.reply("425 can't open data connection");
    this.reply('150 here comes the listing');
    data.end(LISTING, () => this.reply('226 done'));
    this.passive?.close();
    this.passive = null;
    this.passiveConnection = null;
    this.active = null;
  }
}

function ftpSession(control: net.Socket, spec: ServerSpec): void {
  control.setEncoding('utf8');
  control.on('error', () => undefined);
  const idle = setTimeout(() => control.destroy(), 15_000);
  control.on('close', () => clearTimeout(idle));
  const session = new FtpServerSession(control, spec);
  session.reply('220 portwarden lab FTP');
  let buffer = '';
  let chain = Promise.resolve();
  control.on('data', (chunk: string) => {
    buffer += chunk;
    for (let index = buffer.indexOf('\n'); index >= 0; index = buffer.indexOf('\n')) {
      const line = buffer.slice(0, index).trim();
      buffer = buffer.slice(index + 1);
      chain = chain.then(() => session.handle(line)).catch(() => session.reply('451 local error'));
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

/** What an FTP client session keeps: its sockets (closed at the end), the listing so far, the last reply. */
class FtpClientSession {
  readonly servers: net.Server[] = [];
  readonly sockets: net.Socket[] = [];
  lastLine = '';
  private listing = '';
  private buffer = '';

  constructor(
    readonly control: net.Socket,
    readonly host: string,
    readonly mode: 'passive' | 'active',
    private readonly finish: (ok: boolean, detail: string) => void,
  ) {}

  close(): void {
    for (const s of this.servers) s.close();
    // a data connection still trying to connect would keep the process alive for a minute
    for (const s of this.sockets) s.destroy();
    this.control.destroy();
  }

  private send(line: string): void {
    void this.control.write(`${line}\r\n`);
  }

  private get v6(): boolean {
    return this.host.includes(':');
  }

  private receive(data: net.Socket): void {
    data.setEncoding('utf8');
    data.on('data', (chunk: string) => (this.listing += chunk));
    data.on('error', () => undefined);
    data.on('close', () => {
      if (this.listing === LISTING) this.finish(true, 'listing received over the data connection');
    });
  }

  /** Control bytes in, one reply line at a time. */
  onData(chunk: string): void {
    this.buffer += chunk;
    for (let index = this.buffer.indexOf('\n'); index >= 0; index = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, index).trim();
      this.buffer = this.buffer.slice(index + 1);
      this.lastLine = line;
      this.onReply(line);
    }
  }

  private onReply(line: string): void {
    const code = line.slice(0, 3);
    if (code === '220') this.send('USER anonymous');
    else if (code === '331') this.send('PASS lab@');
    else if (code === '230') {
      if (this.mode === 'passive') this.send(this.v6 ? 'EPSV' : 'PASV');
      else this.offerActive();
    } else if (code === '227' || code === '229') this.connectPassive(code, line);
    else if (code === '200') this.send('LIST');
    else if (code === '425' || code === '451') this.finish(false, `server: ${line}`);
    else if (code === '226') this.transferDone();
  }

  /** Active mode: listen here and tell the server where (PORT / EPRT). */
  private offerActive(): void {
    const server = net.createServer((socket) => {
      this.sockets.push(socket);
      this.receive(socket);
    });
    this.servers.push(server);
    server.listen({ host: this.control.localAddress ?? '', port: 0 }, () => {
      const p = (server.address() as net.AddressInfo).port;
      const local = (this.control.localAddress ?? '').replace(/^::ffff:/, '');
      this.send(
        this.v6 ? `EPRT |2|${local}|${p}|` : `PORT ${local.split('.').join(',')},${p >> 8},${p & 255}`,
      );
    });
  }

  /** Passive mode: connect where the 227 / 229 reply says, then ask for the listing. */
  private connectPassive(code: string, line: string): void {
    const m = code === '229' ? /\|\|\|(\d+)\|/.exec(line) : /(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)/.exec(line);
    const dataPort = code === '229' ? Number(m?.[1]) : Number(m?.[5]) * 256 + Number(m?.[6]);
    const dataHost = code === '229' ? this.host : (m?.slice(1, 5) ?? []).join('.');
    const data = net.connect({ host: dataHost, port: dataPort });
    this.sockets.push(data);
    data.once('connect', () => this.send('LIST'));
    data.once('error', (error) =>
      this.finish(false, `data connection to port ${dataPort}: ${error.message}`),
    );
    this.receive(data);
  }

  /** 226: the listing may still be on its way over the data connection; give it half a second. */
  private transferDone(): void {
    if (this.listing === LISTING) return this.finish(true, 'listing received over the data connection');
    setTimeout(() => {
      const ok = this.listing === LISTING;
      this.finish(ok, ok ? 'listing received' : 'transfer ended without the listing');
    }, 500);
  }
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
  let session: FtpClientSession | null = null;
  const onTimeout = (): FtpClientResult => ({
    ok: false,
    mode,
    detail: `no listing within ${timeoutMs} ms (last: ${session?.lastLine || 'nothing'})`,
  });
  const cleanup = (): void => (session ? session.close() : void control.destroy());
  return settleOnce({ timeoutMs, onTimeout, cleanup }, (settle) => {
    const current = new FtpClientSession(control, host, mode, (ok, detail) => settle({ ok, mode, detail }));
    session = current;
    control.on('error', (error) =>
      settle({ ok: false, mode, detail: `control connection: ${error.message}` }),
    );
    control.on('data', (chunk: string) => current.onData(chunk));
  });
}
