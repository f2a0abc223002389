/**
 * The model of what the kernel has loaded: nftables chains read from `nft -j list ruleset` (which
 * also shows iptables-nft, ufw, firewalld and Docker rules) and, next to them, the x_tables chains of
 * iptables-legacy read from `iptables-legacy-save`. The kernel runs both sets of hooks; a packet must
 * pass both. Parsing lives in parse.ts, evaluation in evaluate.ts (chains) and path.ts (the hooks in
 * kernel order), the overview in summarise.ts.
 */

export type Family = 4 | 6;
export type Verdict = 'accept' | 'drop' | 'reject' | 'unknown';
export type Hook = 'ingress' | 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting' | 'egress';

type Json = unknown;

export interface NftChain {
  family: string;
  table: string;
  name: string;
  hook: Hook | null;
  type: string | null;
  prio: number;
  policy: 'accept' | 'drop';
  rules: NftRule[];
  /** Devices of an ingress/egress chain (null: not known; nft 1.0.6 leaves them out of its JSON). */
  devices: string[] | null;
  /** `nft` for nftables (incl. iptables-nft), `legacy` for x_tables (iptables-legacy). */
  origin: 'nft' | 'legacy';
}

export interface NftRule {
  family: string;
  table: string;
  chain: string;
  handle: number;
  comment: string | null;
  expr: Json[];
  /** The same rule as `iptables-save` prints it, for rules with xt extensions nft shows only by name. */
  iptables: string | null;
  origin?: 'nft' | 'legacy';
}

export interface NftSet {
  family: string;
  table: string;
  name: string;
  /** Elements: keys (sets) or [key, verdict] pairs (verdict maps). */
  elem: Json[];
  isMap: boolean;
}

export interface Ruleset {
  tables: { family: string; name: string; origin?: 'nft' | 'legacy' }[];
  chains: NftChain[];
  sets: NftSet[];
}

export function obj(value: Json): Record<string, Json> | null {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, Json>)
    : null;
}

/** "inet filter", or "iptables-legacy ip filter" for x_tables. */
export function tableLabel(chain: Pick<NftChain, 'family' | 'table' | 'origin'>): string {
  return `${chain.origin === 'legacy' ? 'iptables-legacy ' : ''}${chain.family} ${chain.table}`;
}
