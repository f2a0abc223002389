import { PortwardenError } from '../errors.ts';
import { parseLegacySave, translateIptablesRule } from './iptables-rule.ts';
import { obj, type Hook, type NftChain, type NftRule, type Ruleset } from './ruleset.ts';

type Json = unknown;

/** `nft -j list ruleset` and the iptables save formats into the Ruleset model (pure). */

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
