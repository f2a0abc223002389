import { PortwardenError } from '../errors.ts';
import { parseLegacySave, translateIptablesRule } from './iptables-rule.ts';

/**
 * The model of what the kernel has loaded: nftables chains read from `nft -j list ruleset` (which
 * also shows iptables-nft, ufw, firewalld and Docker rules) and, next to them, the x_tables chains of
 * iptables-legacy read from `iptables-legacy-save`. The kernel runs both sets of hooks; a packet must
 * pass both. Evaluation lives in evaluate.ts (chains) and path.ts (the hooks in kernel order).
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

/**
 * `iptables-save` / `ip6tables-save` output as rule lines per "family table chain", in order. nft
 * prints iptables extensions (conntrack, multiport, ...) only by name; the save output has them.
 */
export function parseIptablesSave(text: string, family: 'ip' | 'ip6'): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let table = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    const match = /^-A (\S+) (.*)$/.exec(line);
    if (!match?.[1] || !table) continue;
    const key = `${family} ${table} ${match[1]}`;
    const list = out.get(key);
    if (list) list.push(match[2] ?? '');
    else out.set(key, [match[2] ?? '']);
  }
  return out;
}

function invalid(message: string): PortwardenError {
  return new PortwardenError('RULESET_INVALID', message, {
    hint: 'pass the output of `nft -j list ruleset`',
  });
}

function readChain(chain: Record<string, Json>, devices: ReadonlyMap<string, string[]>): NftChain {
  const c: NftChain = {
    family: String(chain['family']),
    table: String(chain['table']),
    name: String(chain['name']),
    hook: typeof chain['hook'] === 'string' ? (chain['hook'] as Hook) : null,
    type: typeof chain['type'] === 'string' ? chain['type'] : null,
    prio: typeof chain['prio'] === 'number' ? chain['prio'] : 0,
    policy: chain['policy'] === 'drop' ? 'drop' : 'accept',
    rules: [],
    devices: null,
    origin: 'nft',
  };
  const dev = chain['dev'] ?? chain['device'] ?? chain['devices'];
  if (typeof dev === 'string') c.devices = [dev];
  else if (Array.isArray(dev)) c.devices = dev.map(String);
  else c.devices = devices.get(`${c.family} ${c.table} ${c.name}`) ?? null;
  return c;
}

function readRule(rule: Record<string, Json>): NftRule {
  return {
    family: String(rule['family']),
    table: String(rule['table']),
    chain: String(rule['chain']),
    handle: typeof rule['handle'] === 'number' ? rule['handle'] : 0,
    comment: typeof rule['comment'] === 'string' ? rule['comment'] : null,
    expr: Array.isArray(rule['expr']) ? rule['expr'] : [],
    iptables: null,
    origin: 'nft',
  };
}

function parseJsonList(text: string): Json[] {
  let data: Json;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw invalid(`the ruleset is not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  const list = obj(data)?.['nftables'];
  if (!Array.isArray(list)) throw invalid('the ruleset JSON has no "nftables" array');
  return list;
}

/** Rules with xt expressions take their meaning from the paired iptables-save line. */
function pairSaveLines(ruleset: Ruleset, saved: ReadonlyMap<string, string[]>): void {
  for (const chain of ruleset.chains) {
    const lines = saved.get(`${chain.family} ${chain.table} ${chain.name}`);
    // Same rules in the same order: pair them up only when the counts agree.
    if (!lines || lines.length !== chain.rules.length) continue;
    chain.rules.forEach((rule, i) => {
      rule.iptables = lines[i] ?? null;
      const hasXt = rule.expr.some((e) => obj(e)?.['xt'] !== undefined);
      if (hasXt && rule.iptables !== null)
        rule.expr = translateIptablesRule(rule.iptables, chain.family === 'ip6' ? 'ip6' : 'ip').expr;
    });
  }
}

/**
 * Parses `nft -j list ruleset` output into the model the evaluator walks. `devices` gives ingress
 * chains their devices ("family table chain" -> names) when the JSON omits them.
 */
export function parseNftJson(
  text: string,
  iptablesSave: ReadonlyMap<string, string[]> = new Map(),
  devices: ReadonlyMap<string, string[]> = new Map(),
): Ruleset {
  const ruleset: Ruleset = { tables: [], chains: [], sets: [] };
  const chains = new Map<string, NftChain>();
  const rules: NftRule[] = [];
  for (const item of parseJsonList(text)) {
    const entry = obj(item);
    if (!entry) continue;
    const table = obj(entry['table']);
    const chain = obj(entry['chain']);
    const rule = obj(entry['rule']);
    const set = obj(entry['set']) ?? obj(entry['map']);
    if (table)
      ruleset.tables.push({ family: String(table['family']), name: String(table['name']), origin: 'nft' });
    if (chain) {
      const c = readChain(chain, devices);
      chains.set(`${c.family}\u0000${c.table}\u0000${c.name}`, c);
      ruleset.chains.push(c);
    }
    if (rule) rules.push(readRule(rule));
    if (set)
      ruleset.sets.push({
        family: String(set['family']),
        table: String(set['table']),
        name: String(set['name']),
        elem: Array.isArray(set['elem']) ? set['elem'] : [],
        isMap: entry['map'] !== undefined,
      });
  }
  for (const rule of rules)
    chains.get(`${rule.family}\u0000${rule.table}\u0000${rule.chain}`)?.rules.push(rule);
  pairSaveLines(ruleset, iptablesSave);
  return ruleset;
}

/** Devices of ingress chains from `nft list chains` text (nft 1.0.6 omits them from its JSON). */
export function parseChainDevices(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let table = '';
  let chain = '';
  for (const line of text.split('\n')) {
    const t = /^\s*table (\S+) (\S+) \{/.exec(line);
    if (t) table = `${t[1] ?? ''} ${t[2] ?? ''}`;
    const c = /^\s*chain (\S+) \{/.exec(line);
    if (c) chain = c[1] ?? '';
    const d = /hook (?:ingress|egress) (?:device "?([^";\s]+)"?|devices = \{([^}]*)\})/.exec(line);
    if (d && table && chain)
      out.set(
        `${table} ${chain}`,
        (d[1] ?? d[2] ?? '')
          .split(',')
          .map((s) => s.trim().replace(/"/g, ''))
          .filter(Boolean),
      );
  }
  return out;
}

/** Adds the x_tables chains of iptables-legacy (`iptables-legacy-save` text) to a ruleset. */
export function withLegacy(ruleset: Ruleset, legacy: { ip?: string; ip6?: string }): Ruleset {
  const extra = [...parseLegacySave(legacy.ip ?? '', 'ip'), ...parseLegacySave(legacy.ip6 ?? '', 'ip6')];
  const tables = [...new Set(extra.map((c) => `${c.family} ${c.table}`))].map((key) => {
    const [family = '', name = ''] = key.split(' ');
    return { family, name, origin: 'legacy' as const };
  });
  return {
    tables: [...ruleset.tables, ...tables],
    chains: [...ruleset.chains, ...extra],
    sets: ruleset.sets,
  };
}

/** "inet filter", or "iptables-legacy ip filter" for x_tables. */
export function tableLabel(chain: Pick<NftChain, 'family' | 'table' | 'origin'>): string {
  return `${chain.origin === 'legacy' ? 'iptables-legacy ' : ''}${chain.family} ${chain.table}`;
}

/** Who wrote which tables, and whether input is filtered at all. */
export interface RulesetSummary {
  loaded: boolean;
  inputChains: number;
  /** True when no input base chain drops or rejects anything: default accept. */
  inputDefaultAccept: boolean;
  tools: string[];
  tables: string[];
}

function dropsSomething(chain: NftChain): boolean {
  return (
    chain.policy === 'drop' ||
    chain.rules.some((r) =>
      r.expr.some((e) => {
        const key = Object.keys(obj(e) ?? {})[0] ?? '';
        const text = JSON.stringify(e);
        return ['drop', 'reject', 'jump', 'goto', 'vmap'].includes(key) || /"(DROP|REJECT)"/.test(text);
      }),
    )
  );
}

function toolsOf(ruleset: Ruleset): string[] {
  const names = ruleset.chains.map((c) => `${c.table}/${c.name}`).join(' ');
  const tools: string[] = [];
  if (/ufw6?-/.test(names)) tools.push('ufw');
  if (/DOCKER/.test(names)) tools.push('docker');
  if (/KUBE-/.test(names)) tools.push('kube-proxy');
  if (/f2b-/.test(names)) tools.push('fail2ban');
  if (ruleset.tables.some((t) => t.name === 'firewalld')) tools.push('firewalld');
  if (/LIBVIRT_/.test(names)) tools.push('libvirt');
  if (ruleset.tables.some((t) => t.name === 'portwarden')) tools.push('portwarden');
  if (ruleset.chains.some((c) => c.origin === 'legacy')) tools.push('iptables-legacy');
  const xtables = ['filter', 'nat', 'mangle', 'raw'];
  if (
    ruleset.tables.some(
      (t) => t.origin !== 'legacy' && (t.family === 'ip' || t.family === 'ip6') && xtables.includes(t.name),
    ) &&
    !tools.includes('ufw')
  )
    tools.push('iptables');
  return tools;
}

export function summarizeRuleset(ruleset: Ruleset): RulesetSummary {
  const input = ruleset.chains.filter(
    (c) => (c.hook === 'input' || c.hook === 'ingress' || c.hook === 'prerouting') && c.type !== 'nat',
  );
  return {
    loaded: ruleset.chains.some((c) => c.hook !== null),
    inputChains: ruleset.chains.filter((c) => c.hook === 'input' && c.type !== 'nat').length,
    inputDefaultAccept: !input.some(dropsSomething),
    tools: toolsOf(ruleset),
    tables: ruleset.tables.map(
      (t) => `${t.origin === 'legacy' ? 'iptables-legacy ' : ''}${t.family} ${t.name}`,
    ),
  };
}
