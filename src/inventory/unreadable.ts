/** What is known about a process whose open files (or identity) could not be read. */
export interface UnreadableProcess {
  pid: number;
  name: string | null;
  uid: number | null;
  /** It ended between the fd scan and reading who it is. */
  vanished: boolean;
  /** The errno of reading /proc/<pid>/fd, e.g. EACCES. */
  code: string | null;
  /** Its user namespace differs from ours. */
  otherUserNamespace: boolean;
  /** Capabilities it holds that we lack: ptrace access to it needs a superset. */
  missingCapabilities: readonly number[];
  /** The hidepid= option of the /proc mount, when set. */
  hidepid: string | null;
}

// linux/capability.h, in bit order
// prettier-ignore
const CAPABILITY_NAMES = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP',
  'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER',
  'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE',
  'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP',
  'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF',
  'CHECKPOINT_RESTORE',
] as const;

function capabilityName(bit: number): string {
  return `CAP_${CAPABILITY_NAMES[bit] ?? String(bit)}`;
}

/** The capability bits set in `theirs` (a CapPrm mask) but not in `ours` (our CapEff mask). */
export function missingCapabilities(ours: bigint, theirs: bigint): number[] {
  const missing: number[] = [];
  for (let bit = 0; bit < 64; bit++) {
    const mask = 1n << BigInt(bit);
    if ((theirs & mask) !== 0n && (ours & mask) === 0n) missing.push(bit);
  }
  return missing;
}

/** The hex mask of a `CapEff:` / `CapPrm:` line of /proc/<pid>/status, or null. */
export function parseCapabilityMask(status: string, field: 'CapEff' | 'CapPrm'): bigint | null {
  const match = new RegExp(`^${field}:\\s*([0-9a-f]+)$`, 'im').exec(status);
  return match?.[1] ? BigInt(`0x${match[1]}`) : null;
}

/** Why root could not read a process, most specific cause first. */
export function unreadableReason(p: UnreadableProcess): string {
  if (p.vanished) return 'it exited while being read';
  if (p.otherUserNamespace) return 'it runs in another user namespace';
  if (p.missingCapabilities.length > 0) {
    return `it holds capabilities this process lacks (${p.missingCapabilities.map(capabilityName).join(', ')})`;
  }
  if (p.hidepid !== null) return `/proc is mounted with hidepid=${p.hidepid}`;
  return `${p.code ?? 'permission denied'} (a security module such as AppArmor, SELinux or Yama?)`;
}

function label(p: UnreadableProcess): string {
  const who = [p.name, p.uid !== null ? `uid ${p.uid}` : null].filter((x) => x !== null).join(', ');
  return who ? `pid ${p.pid} (${who})` : `pid ${p.pid}`;
}

const SHOWN = 3;

/**
 * One warning per unreadable process (the first few), saying why. Running as root, "run as root" is
 * no advice; otherwise the other users' processes are summed up with that hint.
 */
export function unreadableWarnings(list: readonly UnreadableProcess[], root: boolean): string[] {
  const vanished = list.filter((p) => p.vanished);
  const denied = list.filter((p) => !p.vanished);
  const tail = 'sockets only it holds show no process';
  const lines = (root ? list : vanished)
    .slice(0, SHOWN)
    .map((p) => `could not read ${label(p)}: ${unreadableReason(p)}; ${tail}`);
  const rest = (root ? list.length : vanished.length) - SHOWN;
  if (rest > 0) lines.push(`${rest} more process${rest === 1 ? '' : 'es'} could not be read`);
  if (!root && denied.length > 0) {
    const some = denied.slice(0, SHOWN).map(label).join(', ');
    lines.push(
      `${denied.length} process${denied.length === 1 ? '' : 'es'} of other users could not be inspected (${some}${denied.length > SHOWN ? ', ...' : ''}): sockets they own show no process; run as root to see every owner`,
    );
  }
  return lines;
}
