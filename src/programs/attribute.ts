import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import ipaddr from 'ipaddr.js';
import type { ProcNetRow } from '../inventory/parse-proc-net.ts';
import { readProcessOwner, readSocketTables, scanSocketHolders } from '../inventory/read-proc.ts';
import type { Attempt, ProgramIdentity } from './types.ts';

/**
 * Attribution of held attempts to their processes, the only /proc access of the programs domain. The
 * gate dropped the packet but the socket still waits (TCP: SYN_SENT; UDP: bound to its source port),
 * so /proc/net shows it with the very 5-tuple of the attempt, its inode leads to the process through
 * /proc/<pid>/fd, and the executable is hashed through /proc/<pid>/exe (the running image, even when
 * the file at the path was replaced since).
 */

function canonical(address: string): string {
  try {
    return ipaddr.process(address).toString();
  } catch {
    return address;
  }
}

function key(protocol: string, local: string, localPort: number, remote: string, remotePort: number): string {
  return `${protocol} ${canonical(local)} ${localPort} ${canonical(remote)} ${remotePort}`;
}

/**
 * The socket row of an attempt: by its whole tuple (a held TCP attempt is in SYN_SENT; in learn it may
 * be established already), or for UDP the socket bound to the source port. A tuple names one socket
 * at a time; a TIME_WAIT row has no inode and so no owner.
 */
export function matchSocket(rows: readonly ProcNetRow[], attempt: Attempt): ProcNetRow | null {
  const want = key(
    attempt.protocol,
    attempt.localAddress,
    attempt.localPort,
    attempt.remoteAddress,
    attempt.remotePort,
  );
  let bound: ProcNetRow | null = null;
  for (const r of rows) {
    if (r.protocol !== attempt.protocol || r.localPort !== attempt.localPort) continue;
    if (key(r.protocol, r.localAddress, r.localPort, r.remoteAddress, r.remotePort) === want) {
      if (r.inode > 0) return r;
    } else if (r.protocol === 'udp' && r.remotePort === 0) {
      // an unconnected UDP socket (sendto) shows no remote end; its local address is the packet's or a wildcard
      const local = canonical(r.localAddress);
      if (local === canonical(attempt.localAddress) || local === '0.0.0.0' || local === '::') bound = r;
    }
  }
  return bound;
}

const hashes = new Map<string, string>();

/** sha256 of a running executable, cached by the file's identity (device, inode, size, mtime). */
export function executableSha256(pid: number): string | null {
  const path = `/proc/${pid}/exe`;
  try {
    const st = statSync(path);
    const id = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
    let hash = hashes.get(id);
    if (hash === undefined) {
      hash = createHash('sha256').update(readFileSync(path)).digest('hex');
      if (hashes.size > 4096) hashes.clear();
      hashes.set(id, hash);
    }
    return hash;
  } catch {
    return null;
  }
}

/** Reads who owns each attempt; an attempt whose socket is gone (or unreadable) maps to null. */
export function attributeAttempts(attempts: readonly Attempt[]): Map<Attempt, ProgramIdentity | null> {
  const out = new Map<Attempt, ProgramIdentity | null>();
  if (attempts.length === 0) return out;
  const rows = readSocketTables('/proc/self/net', { tcp: true, udp: true, all: true });
  const inodes = new Map<Attempt, number>();
  for (const a of attempts) {
    const row = matchSocket(rows, a);
    if (row && row.inode > 0) inodes.set(a, row.inode);
  }
  const { holders } = scanSocketHolders(new Set(inodes.values()));
  for (const a of attempts) {
    const inode = inodes.get(a);
    const pid = inode === undefined ? undefined : holders.get(inode)?.[0];
    out.set(a, pid === undefined ? null : identify(pid));
  }
  return out;
}

function identify(pid: number): ProgramIdentity | null {
  const owner = readProcessOwner(pid);
  if (!owner?.exe) return null;
  return {
    exe: owner.exe.replace(/ \(deleted\)$/, ''),
    sha256: executableSha256(pid),
    pid,
    startTime: owner.startTime,
    uid: owner.uid,
    user: owner.user,
    unit: owner.unit,
    container: owner.container,
    cmdline: owner.cmdline,
  };
}
