// The truth suite's listeners: tcp:ADDR:PORT (accepts, then closes), tcp6only:[ADDR]:PORT and
// udp:ADDR:PORT / udp6only:[ADDR]:PORT (echo every datagram back to its sender). Prints "ready" once
// every socket is bound and then serves until killed (the lab kills it).
import dgram from 'node:dgram';
import net from 'node:net';

const keep = [];
for (const spec of process.argv.slice(2)) {
  const first = spec.indexOf(':');
  const last = spec.lastIndexOf(':');
  const kind = spec.slice(0, first);
  const port = Number(spec.slice(last + 1));
  const host = spec.slice(first + 1, last).replace(/^\[|\]$/g, '');
  const v6only = kind.endsWith('6only');
  await new Promise((resolve, reject) => {
    if (kind.startsWith('udp')) {
      const socket = dgram.createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', ipv6Only: v6only });
      socket.on('message', (data, from) => socket.send(data, from.port, from.address));
      socket.on('error', () => undefined);
      socket.once('listening', resolve);
      socket.bind(port, host);
      keep.push(socket);
    } else {
      const server = net.createServer((c) => {
        c.on('error', () => undefined);
        c.end();
      });
      server.once('error', reject);
      server.listen({ host, port, ipv6Only: v6only }, resolve);
      keep.push(server);
    }
  });
}
process.stdout.write('ready\n');
setInterval(() => undefined, 1 << 30);
