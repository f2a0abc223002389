import type { PortRangeCategory } from './types.ts';

export const MAX_PORT = 65_535;

/** IANA's ranges (RFC 6335): system 0-1023, user 1024-49151, dynamic/private 49152-65535. */
export const PORT_RANGES: readonly { category: PortRangeCategory; from: number; to: number }[] = [
  { category: 'well-known', from: 0, to: 1023 },
  { category: 'registered', from: 1024, to: 49_151 },
  { category: 'dynamic', from: 49_152, to: MAX_PORT },
];

export function isValidPort(port: number): boolean {
  return Number.isInteger(port) && port >= 0 && port <= MAX_PORT;
}

export function rangeCategory(port: number): PortRangeCategory {
  if (port <= 1023) return 'well-known';
  if (port <= 49_151) return 'registered';
  return 'dynamic';
}
