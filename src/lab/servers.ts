import dgram from 'node:dgram';
import net from 'node:net';

/**
 * Tiny servers and an FTP client for the verify lab. They run inside the lab's namespaces (through the
 * private lab worker, worker-entry.ts) and only ever bind or connect to the addresses
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

/** Calls `handle` with each trimmed line that arrives on a utf8 socket. */
function onLines(socket: net.Socket, handle: (line: string) => void): void {
  let buffer = '';
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    for (let index = buffer.indexOf('\n'); index >= 0; index = buffer.indexOf('\n')) {
      const line = buffer.slice(0, index).trim();
      buffer = buffer.slice(index + 1);
      handle(line);
    }
  });
}

/** The server side of one FTP control connection: where the next data connection comes from. */
interface FtpServerSession {
  control: net.Socket;
  spec: ServerSpec;
  passive: net.Server | null;
  passiveConnection: Promise<net.Socket> | null;
  active: { host: string; port: number } | null;
}

function reply(control: net.Socket, line: string): void {
  void control.write(`${line}\r\n`);
}

function ftpSession(control: net.Socket, spec: ServerSpec): void {
  control.setEncoding('utf8');
  control.on('error', () => undefined);
  const idle = setTimeout(() => control.destroy(), 15_000);
  control.on('close', () => clearTimeout(idle));
  const session: FtpServerSession = { control, spec, passive: null, passiveConnection: null, active: null };
  reply(control, '220 portwarden lab FTP');
  let chain = Promise.resolve();
  onLines(control, (line) => {
    chain = chain.then(() => answerCommand(session, line)).catch(() => reply(control, '451 local error'));
  });
}

async function answerCommand(session: FtpServerSession, line: string): Promise<void> {
  const [verb = '', ...rest] = line.split(' ');
  const arg = rest.join(' ');
  const control = session.control;
  switch (verb.toUpperCase()) {
    case 'USER':
      return reply(control, '331 any password');
    case 'PASS':
      return reply(control, '230 logged in');
    case 'TYPE':
      return reply(control, '200 ok');
    case 'PASV':
    case 'EPSV':
      return reply(control, await enterPassive(session, verb.toUpperCase() === 'EPSV'));
    case 'PORT': {
      const n = arg.split(',').map(Number);
      session.active = { host: n.slice(0, 4).join('.'), port: (n[4] ?? 0) * 256 + (n[5] ?? 0) };
      return reply(control, '200 PORT ok');
    }
    case 'EPRT': {
      const [, , host = '', port = '0'] = arg.split('|');
      session.active = { host, port: Number(port) };
      return reply(control, '200 EPRT ok');
    }
    case 'LIST':
    case 'NLST':
      return sendListing(session);
    case 'QUIT':
      reply(control, '221 bye');
      control.end();
      return;
    default:
      return reply(control, '502 not implemented');
  }
}

/** Listens for the next data connection; returns the 227 (PASV) or 229 (EPSV) reply that names its port. */
async function enterPassive(session: FtpServerSession, extended: boolean): Promise<string> {
  const { control, spec } = session;
  session.passive?.close();
  const server = await listenOnRange(control.localAddress ?? spec.host, spec.passive);
  session.passive = server;
  // the client may connect before it sends LIST: take the connection as soon as it comes
  session.passiveConnection = new Promise((resolve) => server.once('connection', resolve));
  const port = (server.address() as net.AddressInfo).port;
  if (extended) return `229 Entering Extended Passive Mode (|||${port}|)`;
  const h = (control.localAddress ?? '')
    .replace(/^::ffff:/, '')
    .split('.')
    .join(',');
  return `227 Entering Passive Mode (${h},${port >> 8},${port & 255})`;
}

async function sendListing(session: FtpServerSession): Promise<void> {
  const { control } = session;
  const data = await openData(control, session.passiveConnection, session.active);
  if (!data) return reply(control, "425 can't open data connection");
  reply(control, '150 here comes the listing');
  data.end(LISTING, () => reply(control, '226 done'));
  session.passive?.close();
  session.passive = null;
  session.passiveConnection = null;
  session.active = null;
}

function openData(
  control: net.Socket,
  passive: Promise<net.Socket> | null,
  active: { host: string; port: number } | null,
): Promise<net.Socket | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), 3000);
    const done = (socket: net.Socket | null): void => {
      clearTimeout(timer);
      resolve(socket);
    };
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

/** The client side of one FTP session: what to close when it ends and what the data connection brought. */
interface FtpClientSession {
  control: net.Socket;
  host: string;
  mode: 'passive' | 'active';
  listing: string;
  servers: net.Server[];
  sockets: net.Socket[];
  finish(ok: boolean, detail: string): void;
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
  return new Promise((resolve) => {
    const control = net.connect({ host, port });
    control.setEncoding('utf8');
    let settled = false;
    let lastLine = '';
    const session: FtpClientSession = {
      control,
      host,
      mode,
      listing: '',
      servers: [],
      sockets: [],
      finish: (ok, detail) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        for (const s of session.servers) s.close();
        // a data connection still trying to connect would keep the process alive for a minute
        for (const s of session.sockets) s.destroy();
        control.destroy();
        resolve({ ok, mode, detail });
      },
    };
    const timer = setTimeout(
      () => session.finish(false, `no listing within ${timeoutMs} ms (last: ${lastLine || 'nothing'})`),
      timeoutMs,
    );
    control.on('error', (error) => session.finish(false, `control connection: ${error.message}`));
    onLines(control, (line) => {
      lastLine = line;
      answerReply(session, line);
    });
  });
}

function send(session: FtpClientSession, line: string): void {
  void session.control.write(`${line}\r\n`);
}

/** The client's next step after one server reply. */
function answerReply(session: FtpClientSession, line: string): void {
  const code = line.slice(0, 3);
  const v6 = session.host.includes(':');
  if (code === '220') send(session, 'USER anonymous');
  else if (code === '331') send(session, 'PASS lab@');
  else if (code === '230') {
    if (session.mode === 'passive') send(session, v6 ? 'EPSV' : 'PASV');
    else offerActivePort(session);
  } else if (code === '227' || code === '229') connectPassive(session, code, line);
  else if (code === '200') send(session, 'LIST');
  else if (code === '425' || code === '451') session.finish(false, `server: ${line}`);
  else if (code === '226') afterTransfer(session);
}

function receiveListing(session: FtpClientSession, data: net.Socket): void {
  data.setEncoding('utf8');
  data.on('data', (chunk: string) => (session.listing += chunk));
  data.on('error', () => undefined);
  data.on('close', () => {
    if (session.listing === LISTING) session.finish(true, 'listing received over the data connection');
  });
}

/** Active mode: listen on the control connection's local address and tell the server with PORT/EPRT. */
function offerActivePort(session: FtpClientSession): void {
  const { control } = session;
  const server = net.createServer((socket) => {
    session.sockets.push(socket);
    receiveListing(session, socket);
  });
  session.servers.push(server);
  server.listen({ host: control.localAddress ?? '', port: 0 }, () => {
    const p = (server.address() as net.AddressInfo).port;
    const local = (control.localAddress ?? '').replace(/^::ffff:/, '');
    send(
      session,
      session.host.includes(':')
        ? `EPRT |2|${local}|${p}|`
        : `PORT ${local.split('.').join(',')},${p >> 8},${p & 255}`,
    );
  });
}

/** Passive mode: connect to the port a 227 (PASV) or 229 (EPSV) reply names, then ask for the listing. */
function connectPassive(session: FtpClientSession, code: '227' | '229', line: string): void {
  const m = code === '229' ? /\|\|\|(\d+)\|/.exec(line) : /(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)/.exec(line);
  const dataPort = code === '229' ? Number(m?.[1]) : Number(m?.[5]) * 256 + Number(m?.[6]);
  const dataHost = code === '229' ? session.host : (m?.slice(1, 5) ?? []).join('.');
  const data = net.connect({ host: dataHost, port: dataPort });
  session.sockets.push(data);
  data.once('connect', () => send(session, 'LIST'));
  data.once('error', (error) =>
    session.finish(false, `data connection to port ${dataPort}: ${error.message}`),
  );
  receiveListing(session, data);
}

/** 226: the listing may still be in flight on the data connection; give it half a second. */
function afterTransfer(session: FtpClientSession): void {
  if (session.listing === LISTING) session.finish(true, 'listing received over the data connection');
  else
    setTimeout(
      () =>
        session.finish(
          session.listing === LISTING,
          session.listing === LISTING ? 'listing received' : 'transfer ended without the listing',
        ),
      500,
    );
}
