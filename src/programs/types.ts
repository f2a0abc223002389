/**
 * The per-program firewall (`watch --programs`): vocabulary shared by the gate, the daemon, the store,
 * the CLI and the dashboard. Socket fields use the inventory's names (protocol, localAddress, ...).
 */

/** ask: unknown programs are held and asked about; learn: everything passes and is recorded; enforce: only decided programs pass. */
export const PROGRAMS_MODES = ['ask', 'learn', 'enforce'] as const;
export type ProgramsMode = (typeof PROGRAMS_MODES)[number];

/** The answers a user can give to a prompt. */
export const ANSWERS = [
  'allow-once',
  'allow-destination',
  'allow-port',
  'allow-always',
  'deny',
  'deny-always',
] as const;
export type Answer = (typeof ANSWERS)[number];

/** One new outbound connection attempt the gate held (TCP SYN or first UDP datagram). */
export interface Attempt {
  protocol: 'tcp' | 'udp';
  family: 4 | 6;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
}

/** The process that owns an attempt's socket, read from /proc while the socket still waits. */
export interface ProgramIdentity {
  exe: string;
  /** sha256 of the running executable (read through /proc/<pid>/exe); null when unreadable. */
  sha256: string | null;
  pid: number;
  startTime: number | null;
  uid: number | null;
  user: string | null;
  unit: string | null;
  container: string | null;
  cmdline: string | null;
}

/** What the user (or the policy) decided for a program, bound to its executable's sha256. */
export interface Decision {
  id: number;
  exe: string;
  sha256: string | null;
  verdict: 'allow' | 'deny';
  /** destination: this address, port and protocol; port: this port and protocol anywhere; always: anything. */
  scope: 'destination' | 'port' | 'always';
  protocol: 'tcp' | 'udp' | null;
  remoteAddress: string | null;
  remotePort: number | null;
  at: number;
}

/** How an attempt was decided, for the log. */
export type Verdict = 'allowed' | 'denied';

/** The identity key of an attempt: the socket's own 5-tuple. */
export function attemptKey(a: Attempt): string {
  return `${a.protocol} ${a.localAddress} ${a.localPort} ${a.remoteAddress} ${a.remotePort}`;
}

export function isAnswer(value: unknown): value is Answer {
  return typeof value === 'string' && (ANSWERS as readonly string[]).includes(value);
}
