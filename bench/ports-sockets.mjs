// Opens N TCP listeners and M UDP sockets (inside the bench's own namespace), prints "ready <pid>"
// and waits to be killed. Usage: node ports-sockets.mjs <tcp> <udp> [address=127.0.0.1]
import dgram from 'node:dgram';
import net from 'node:net';

const tcp = Number(process.argv[2] ?? 10000);
const udp = Number(process.argv[3] ?? 1000);
const host = process.argv[4] ?? '127.0.0.1';
const keep = [];
for (let i = 0; i < tcp; i++) {
  await new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ host, port: 20000 + i, backlog: 1 }, resolve);
    keep.push(server);
  });
}
for (let i = 0; i < udp; i++) {
  await new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', reject);
    socket.bind(40000 + i, host, resolve);
    keep.push(socket);
  });
}
process.stdout.write(`ready ${process.pid}\n`);
setInterval(() => undefined, 1 << 30);
