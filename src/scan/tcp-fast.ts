import { getSystemErrorName } from 'node:util';
import { classifyErrno, connectProbe, type Connector, type ProbeOutcome } from './tcp.ts';
import { settleOnce } from '../system/settle.ts';

/**
 * A lighter connector on libuv's TCP handle (Node's internal tcp_wrap binding), without the
 * net.Socket stream machinery: ~4x less CPU per probe, which is what lets a JavaScript scanner keep
 * up with nmap. When the binding is not there (another runtime, a future Node), the portable
 * net.Socket connector is used instead.
 */

interface TcpHandle {
  connect(req: ConnectReq, address: string, port: number): number;
  connect6(req: ConnectReq, address: string, port: number): number;
  getsockname(out: { address?: string; port?: number }): number;
  getpeername(out: { address?: string; port?: number }): number;
  close(callback?: () => void): void;
}

interface ConnectReq {
  oncomplete: (status: number) => void;
  address: string;
  port: number;
}

interface TcpWrapBinding {
  TCP: new (type: number) => TcpHandle;
  TCPConnectWrap: new () => ConnectReq;
  constants: { SOCKET: number };
}

function loadBinding(): TcpWrapBinding | null {
  try {
    const binding = (process as unknown as { binding(name: string): unknown }).binding(
      'tcp_wrap',
    ) as Partial<TcpWrapBinding>;
    if (
      typeof binding.TCP === 'function' &&
      typeof binding.TCPConnectWrap === 'function' &&
      binding.constants
    ) {
      return binding as TcpWrapBinding;
    }
  } catch {
    return null;
  }
  return null;
}

const binding = loadBinding();

function errnoName(status: number): string {
  try {
    return getSystemErrorName(status);
  } catch {
    return 'UNKNOWN';
  }
}

const fastProbe: Connector = (address, port, timeoutMs) => {
  if (!binding) return connectProbe(address, port, timeoutMs);
  const start = performance.now();
  const handle = new binding.TCP(binding.constants.SOCKET);
  const req = new binding.TCPConnectWrap();
  const timeout = (): ProbeOutcome => ({ kind: 'timeout' });
  return settleOnce<ProbeOutcome>(
    { timeoutMs, onTimeout: timeout, cleanup: () => handle.close() },
    (finish) => {
      req.oncomplete = (status: number) => {
        const rttMs = performance.now() - start;
        if (status !== 0) return finish(classifyErrno(errnoName(status), rttMs));
        const local: { address?: string; port?: number } = {};
        const peer: { address?: string; port?: number } = {};
        handle.getsockname(local);
        handle.getpeername(peer);
        // Loopback trap: the kernel picked the probed port as source and the SYN met itself.
        if (local.port === port && local.address === peer.address) return finish({ kind: 'self-connect' });
        finish({ kind: 'open', rttMs });
      };
      req.address = address;
      req.port = port;
      const err = address.includes(':')
        ? handle.connect6(req, address, port)
        : handle.connect(req, address, port);
      if (err !== 0) finish(classifyErrno(errnoName(err), 0));
    },
  );
};

/** The default connector: the light one when available. */
export const defaultConnector: Connector = binding ? fastProbe : connectProbe;

/** Whether the light connector is in use (for the bench and the report). */
export const FAST_CONNECT = binding !== null;
