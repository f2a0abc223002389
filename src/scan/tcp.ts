import net from 'node:net';
import { settleOnce } from '../system/settle.ts';

/** What one connect() attempt told us. */
export type ProbeOutcome =
  | { kind: 'open'; rttMs: number }
  | { kind: 'closed'; rttMs: number; reason: 'conn-refused' | 'reset' }
  | { kind: 'unreachable'; rttMs: number; reason: 'host-unreach' | 'net-unreach' | 'admin-prohibited' }
  | { kind: 'timeout' }
  /** Local resources ran out (EMFILE, EADDRNOTAVAIL, ...): the probe says nothing about the port. */
  | { kind: 'resource'; code: string }
  /** The kernel picked the probed port as source port and the socket connected to itself. */
  | { kind: 'self-connect' };

/** A way to try one TCP connection; the engine takes it as a parameter so tests need no network. */
export type Connector = (address: string, port: number, timeoutMs: number) => Promise<ProbeOutcome>;

const RESOURCE = new Set(['EMFILE', 'ENFILE', 'EADDRNOTAVAIL', 'ENOBUFS', 'EAGAIN', 'EADDRINUSE', 'ENOMEM']);

/** Maps a connect() errno to what it says about the port (nmap's reasons). */
export function classifyErrno(code: string | undefined, rttMs: number): ProbeOutcome {
  switch (code) {
    case 'ECONNREFUSED':
      return { kind: 'closed', rttMs, reason: 'conn-refused' };
    case 'ECONNRESET':
      return { kind: 'closed', rttMs, reason: 'reset' };
    case 'EHOSTUNREACH':
      return { kind: 'unreachable', rttMs, reason: 'host-unreach' };
    case 'ENETUNREACH':
      return { kind: 'unreachable', rttMs, reason: 'net-unreach' };
    case 'EACCES':
    case 'EPERM':
      return { kind: 'unreachable', rttMs, reason: 'admin-prohibited' };
    case 'ETIMEDOUT':
      return { kind: 'timeout' };
    default:
      return RESOURCE.has(code ?? '') ? { kind: 'resource', code: code ?? 'unknown' } : { kind: 'timeout' };
  }
}

/** The real connector: one net.Socket per attempt, reset (not FIN) on success, like nmap -sT. */
export const connectProbe: Connector = (address, port, timeoutMs) => {
  const start = performance.now();
  const socket = new net.Socket();
  const cleanup = (outcome: ProbeOutcome): void => {
    if (outcome.kind === 'open' || outcome.kind === 'self-connect') socket.resetAndDestroy();
    else socket.destroy();
  };
  return settleOnce<ProbeOutcome>(
    { timeoutMs, onTimeout: () => ({ kind: 'timeout' }), cleanup },
    (finish) => {
      socket.once('connect', () => {
        // Loopback trap: with the probed port free, the kernel may choose it as the source port and
        // the SYN meets itself (simultaneous open). That is not a listener.
        if (socket.localPort === port && socket.localAddress === socket.remoteAddress)
          finish({ kind: 'self-connect' });
        else finish({ kind: 'open', rttMs: performance.now() - start });
      });
      socket.once('error', (error: NodeJS.ErrnoException) =>
        finish(classifyErrno(error.code, performance.now() - start)),
      );
      try {
        socket.connect({ host: address, port });
      } catch (error) {
        finish(classifyErrno((error as NodeJS.ErrnoException).code, 0));
      }
    },
  );
};
