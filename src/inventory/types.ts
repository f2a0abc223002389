import type { Protocol, RiskLevel } from '../catalog/types.ts';

/** How far a listening socket reaches: loopback only, one local address, or every interface. */
export type Exposure = 'loopback' | 'address' | 'all';

/** A socket as the kernel tables give it, before owners and catalog data are joined. */
export interface RawSocket {
  protocol: Protocol;
  /** The family of the socket itself: an IPv4-mapped address on a v6 socket stays family 6. */
  family: 4 | 6;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  /** netstat-style state: LISTEN, ESTABLISHED, ..., or UNCONN for an unconnected UDP socket. */
  state: string;
  uid: number;
  inode: number;
}

/** A process that holds a file descriptor for the socket. Unknown fields are null, never guessed. */
export interface SocketOwner {
  pid: number;
  /** Clock ticks since boot (field 22 of /proc/<pid>/stat): pid + startTime names a process uniquely. */
  startTime: number | null;
  name: string | null;
  exe: string | null;
  /** True when /proc/<pid>/exe points at a deleted or replaced file. */
  exeDeleted: boolean;
  uid: number | null;
  user: string | null;
  cmdline: string | null;
  /** The systemd unit whose cgroup holds the process, or the `.socket` unit for socket activation. */
  unit: string | null;
  /** `docker:<id>`, `podman:<id>`, `containerd:<id>` or `crio:<id>` when the cgroup names one. */
  container: string | null;
}

/** One row of `portwarden ports`: the JSON minimum documented in README is a stable contract. */
export interface Socket extends RawSocket {
  exposure: Exposure;
  /** The interface owning `localAddress` when the exposure is one address (or a link-local scope). */
  interface: string | null;
  /** For a v6 wildcard socket: true when it also accepts IPv4 (v6only=0); null when not applicable. */
  dualStack: boolean | null;
  /** True when the address was an IPv4-mapped IPv6 address shown here as IPv4. */
  v4Mapped: boolean;
  /** Label of the network namespace: `host`, an `ip netns` name, or `net:[inode]`. */
  netns: string;
  /** Whether an `all`/`address` exposure reaches the host's networks or only a container's namespace. */
  exposureScope: 'host' | 'namespace';
  processes: SocketOwner[];
  /** Catalog name of the service usually on this port (curated first, then IANA). */
  service: string | null;
  risk: RiskLevel | null;
  /** The command that stops and disables whatever owns this socket. */
  fix: string | null;
}

/** How dual-stack status of `::` sockets was learnt. */
export type DualStackSource = 'ss' | 'sysctl-assumed' | 'none';

export interface Inventory {
  sockets: Socket[];
  platform: NodeJS.Platform;
  dualStackSource: DualStackSource;
  /** Honest notes about what could not be seen (other users' processes when not root, ...). */
  warnings: string[];
}

/** A local interface and its addresses, for exposure of sockets bound to one address. */
export interface LocalInterface {
  name: string;
  addresses: string[];
}
