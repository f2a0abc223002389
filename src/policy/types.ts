import type { PortSet } from '../catalog/port-set.ts';
import type { PortRange, Protocol } from '../catalog/types.ts';
import type { SourceLocation } from '../errors.ts';
import type { Verdict } from './schema.ts';

export type { Verdict };

/** A parsed address block; `text` is its canonical form (198.51.100.0/24, 2001:db8::/32). */
export interface Cidr {
  family: 4 | 6;
  address: string;
  prefix: number;
  text: string;
}

/** One allow rule after normalisation: ports as merged ranges, peers as parsed CIDRs (empty = any). */
export interface PolicyRule {
  ports: PortSet;
  /** Sources (inbound) or destinations (outbound); empty means any address of either family. */
  peers: Cidr[];
  /** The rule as the user wrote it, for comments in compiled rulesets. */
  spec: string;
  comment: string | null;
  log: boolean;
  location: SourceLocation;
}

export interface Zone {
  name: string;
  interfaces: string[];
  /** Source addresses that belong to the zone; empty means every source on its interfaces. */
  sources: Cidr[];
  exposure: 'external' | 'internal';
  inbound: PolicyRule[];
  outbound: PolicyRule[];
  /** A declared passive FTP port range, opened for the zone's FTP server. */
  ftpPassive: PortRange | null;
  location: SourceLocation;
}

/** A port forward: connections to `listen` on the zone's interfaces go to `toAddress:toPort`. */
export interface Forward {
  zone: string;
  protocol: Protocol;
  listenPort: number;
  toAddress: string;
  toFamily: 4 | 6;
  toPort: number;
  /** Target on this host's loopback: needs route_localnet (IPv4 only). */
  toLoopback: boolean;
  sources: Cidr[];
  location: SourceLocation;
}

export interface Route {
  from: string;
  to: string;
  ports: PortSet;
  masquerade: boolean;
  spec: string;
  location: SourceLocation;
}

export type ProgramMatch =
  { kind: 'unit'; unit: string } | { kind: 'user'; user: string } | { kind: 'path'; path: string };

export interface ProgramRule {
  match: ProgramMatch;
  outbound: PolicyRule[];
  location: SourceLocation;
}

/** A validated, normalised policy. Compilers read this (through the IR) and never parse strings. */
export interface Policy {
  name: string;
  file: string;
  defaults: { inbound: Verdict; outbound: Verdict; forward: Verdict; log: boolean };
  icmpEcho: boolean;
  coexist: ('docker' | 'libvirt')[];
  zones: Zone[];
  forwards: Forward[];
  routing: Route[];
  programs: ProgramRule[];
  /** FTP (tcp/21) is allowed somewhere: the conntrack helper is attached. */
  ftp: boolean;
}
