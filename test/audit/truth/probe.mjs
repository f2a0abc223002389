// The truth suite's peer: reads a JSON list of probes on stdin, runs them all at once and prints one
// JSON result per probe. TCP is reachable when the handshake completes (connect), not on RST, ICMP or
// silence; UDP is reachable when the echo server's reply carrying the probe's id comes back. Every
// probe ends after timeoutMs, so the whole run is bounded by the slowest single probe (per group).
// A timeout is declared from setImmediate, after the event loop's poll phase: on a loaded machine a
// handshake that completed in time is still counted, not lost to a timer that ran first.
// A probe with delayMs starts that long after this process read its probes (a rate-limited ruleset).
import dgram from 'node:dgram';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

const probes = JSON.parse(
  await new Promise((resolve) => {
    let text = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk) => (text += chunk));
    process.stdin.on('end', () => resolve(text));
  }),
);

const started = Date.now();
/** Resolves once the probe's start time (delayMs after start-up) has come. */
const startOf = (probe) => sleep(Math.max(0, started + (probe.delayMs ?? 0) - Date.now()));

async function tcp(probe) {
  await startOf(probe);
  return new Promise((resolve) => {
    const socket = net.connect({
      host: probe.dst,
      port: probe.port,
      localAddress: probe.src,
      ...(probe.sport ? { localPort: probe.sport } : {}),
    });
    let settled = false;
    const done = (ok, detail) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ id: probe.id, ok, detail });
    };
    const timer = setTimeout(() => setImmediate(() => done(false, 'timeout')), probe.timeoutMs);
    socket.once('connect', () => done(true, 'connected'));
    socket.once('error', (error) => done(false, error.code ?? error.message));
  });
}

/** One socket per source address and port: sends every probe of the group, matches echoes by id. */
function udpGroup(group) {
  const first = group[0];
  return new Promise((resolve) => {
    const socket = dgram.createSocket(first.src.includes(':') ? 'udp6' : 'udp4');
    const waiting = new Map(group.map((p) => [p.id, p]));
    const results = [];
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      for (const p of waiting.values()) results.push({ id: p.id, ok: false, detail: 'no reply' });
      socket.close();
      resolve(results);
    };
    let timer;
    socket.on('message', (data) => {
      const id = data.toString('utf8');
      if (!waiting.delete(id)) return;
      results.push({ id, ok: true, detail: 'echo' });
      if (waiting.size === 0) finish();
    });
    socket.on('error', () => undefined);
    socket.bind({ address: first.src, port: first.sport ?? 0 }, async () => {
      for (const p of group) {
        await startOf(p);
        socket.send(p.id, p.port, p.dst);
      }
      // the wait starts once the group's last datagram is out
      if (!finished) timer = setTimeout(() => setImmediate(finish), first.timeoutMs);
    });
  });
}

function byKey(list, key) {
  const groups = new Map();
  for (const item of list) groups.set(key(item), [...(groups.get(key(item)) ?? []), item]);
  return [...groups.values()];
}

async function inSeries(group) {
  const results = [];
  for (const probe of group) results.push(await tcp(probe));
  return results;
}

const tcpProbes = probes.filter((p) => p.proto === 'tcp');
const udpProbes = probes.filter((p) => p.proto === 'udp');
// A fixed TCP source port can hold one connection at a time; UDP shares a socket per source.
const tcpGroups = byKey(tcpProbes, (p) => (p.sport ? `${p.src}|${p.sport}` : p.id));
const udpGroups = byKey(udpProbes, (p) => (p.sport ? `${p.src}|${p.sport}` : `${p.src}|${p.dst}|${p.port}`));
const results = (await Promise.all([...tcpGroups.map(inSeries), ...udpGroups.map(udpGroup)])).flat();
process.stdout.write(JSON.stringify(results));
