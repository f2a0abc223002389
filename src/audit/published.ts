import {
  obj,
  tableLabel,
  type Family,
  type NftChain,
  type NftRule,
  type Ruleset,
} from '../ruleset/ruleset.ts';

/**
 * Ports published by DNAT (Docker, kube-proxy NodePorts, hand-written nat rules). A published port
 * need not have a listener on this host; its row comes from the nat chains. Which ports to probe is
 * read from every dport the nat tables mention — kube-proxy matches the port in KUBE-NODEPORTS or
 * KUBE-SVC-* and DNATs in KUBE-SEP-* without one — and whether a probe is really translated, and
 * where to, is left to the evaluator.
 */

type Json = unknown;

/** A DNAT found in a nat chain: which port goes where. */
export interface DnatRule {
  table: string;
  chain: string;
  handle: number;
  protocol: 'tcp' | 'udp' | null;
  port: number | null;
  iifname: string | null;
  /** Translated destination, or null when the rule is an xt target whose details nft cannot show. */
  toAddress: string | null;
  toPort: number | null;
  family: Family | null;
}

function dportMatch(expr: Json): { protocol: 'tcp' | 'udp' | null; ports: number[] } | null {
  const m = obj(obj(expr)?.['match']);
  const payload = obj(obj(m?.['left'])?.['payload']);
  if (!payload || payload['field'] !== 'dport' || m?.['op'] === '!=') return null;
  const proto = payload['protocol'];
  const protocol = proto === 'tcp' || proto === 'udp' ? proto : null;
  const ports: number[] = [];
  const visit = (v: Json): void => {
    if (typeof v === 'number') ports.push(v);
    else if (Array.isArray(v)) v.forEach(visit);
    else if (obj(v)?.['set'] !== undefined) visit(obj(v)?.['set']);
    else if (Array.isArray(obj(v)?.['range'])) {
      const [a, b] = obj(v)?.['range'] as [Json, Json];
      if (typeof a === 'number' && typeof b === 'number' && b - a < 64)
        for (let p = a; p <= b; p++) ports.push(p);
    }
  };
  visit(m?.['right']);
  return { protocol, ports };
}

function natChains(ruleset: Ruleset): NftChain[] {
  const natTables = new Set(
    ruleset.chains.filter((c) => c.type === 'nat').map((c) => `${c.origin}/${c.family}/${c.table}`),
  );
  return ruleset.chains.filter((c) => natTables.has(`${c.origin}/${c.family}/${c.table}`));
}

/** Positions of the l4 protocol and the destination port in a vmap key (plain or concatenated). */
function keyLayout(key: Json): { proto: number; port: number } | null {
  const parts = Array.isArray(obj(key)?.['concat']) ? (obj(key)?.['concat'] as Json[]) : [key];
  const isPort = (p: Json) => obj(obj(p)?.['payload'])?.['field'] === 'dport';
  const isProto = (p: Json) => obj(obj(p)?.['meta'])?.['key'] === 'l4proto';
  const port = parts.findIndex(isPort);
  return port < 0 ? null : { proto: parts.findIndex(isProto), port };
}

/** (protocol, port) keys of a verdict map such as kube-proxy's `meta l4proto . th dport vmap @service-nodeports`. */
function vmapPorts(
  ruleset: Ruleset,
  rule: NftRule,
  expr: Json,
): { protocol: 'tcp' | 'udp' | null; port: number }[] {
  const vmap = obj(obj(expr)?.['vmap']);
  const layout = vmap ? keyLayout(vmap['key']) : null;
  if (!vmap || !layout) return [];
  const data = vmap['data'];
  const pairs =
    typeof data === 'string' && data.startsWith('@')
      ? (ruleset.sets.find(
          (s) => s.family === rule.family && s.table === rule.table && s.name === data.slice(1),
        )?.elem ?? [])
      : Array.isArray(obj(data)?.['set'])
        ? (obj(data)?.['set'] as Json[])
        : [];
  return pairs.flatMap((pair) => {
    const k: Json = Array.isArray(pair) ? (pair[0] as Json) : null;
    const concat = obj(k)?.['concat'];
    const parts: Json[] = Array.isArray(concat) ? concat : [k];
    const port: Json = parts[layout.port];
    const proto: Json = layout.proto >= 0 ? parts[layout.proto] : null;
    if (typeof port !== 'number') return [];
    return [
      {
        protocol: proto === 'tcp' || proto === 6 ? 'tcp' : proto === 'udp' || proto === 17 ? 'udp' : null,
        port,
      },
    ];
  });
}

/** Every (protocol, port) a nat table matches as a destination port: candidates for published ports. */
export function publishedPortCandidates(
  ruleset: Ruleset,
): { protocol: 'tcp' | 'udp'; port: number; family: Family }[] {
  const out = new Map<string, { protocol: 'tcp' | 'udp'; port: number; family: Family }>();
  for (const chain of natChains(ruleset)) {
    const families: Family[] = chain.family === 'ip' ? [4] : chain.family === 'ip6' ? [6] : [4, 6];
    for (const rule of chain.rules) {
      for (const e of rule.expr) {
        const vmap = vmapPorts(ruleset, rule, e).map((h) => ({ protocol: h.protocol, ports: [h.port] }));
        for (const hit of [dportMatch(e), ...vmap]) {
          if (!hit) continue;
          for (const protocol of hit.protocol ? [hit.protocol] : (['tcp', 'udp'] as const))
            for (const port of hit.ports)
              for (const family of families)
                out.set(`${protocol}/${port}/${family}`, { protocol, port, family });
        }
      }
    }
  }
  return [...out.values()];
}

function dnatOf(chain: NftChain, rule: NftRule): DnatRule | null {
  let protocol: DnatRule['protocol'] = null;
  let port: number | null = null;
  let iifname: string | null = null;
  for (const e of rule.expr) {
    const hit = dportMatch(e);
    if (hit?.ports.length === 1) {
      protocol = hit.protocol;
      port = hit.ports[0] ?? null;
    }
    const m = obj(obj(e)?.['match']);
    if (
      obj(obj(m?.['left'])?.['meta'])?.['key'] === 'iifname' &&
      typeof m?.['right'] === 'string' &&
      m['op'] === '=='
    )
      iifname = m['right'];
    const l4 = obj(obj(m?.['left'])?.['meta'])?.['key'] === 'l4proto' ? m?.['right'] : null;
    if ((l4 === 'tcp' || l4 === 'udp') && protocol === null) protocol = l4;
    const dnat = obj(obj(e)?.['dnat']);
    if (dnat) {
      const addr = typeof dnat['addr'] === 'string' ? dnat['addr'] : null;
      return {
        table: tableLabel(chain),
        chain: rule.chain,
        handle: rule.handle,
        protocol,
        port,
        iifname,
        toAddress: addr,
        toPort: typeof dnat['port'] === 'number' ? dnat['port'] : port,
        family:
          dnat['family'] === 'ip6' || (addr?.includes(':') ?? false) ? 6 : chain.family === 'ip6' ? 6 : 4,
      };
    }
  }
  return null;
}

/** Lists the DNAT rules of nat chains (native, iptables-nft and legacy). */
export function findDnatRules(ruleset: Ruleset): DnatRule[] {
  const out: DnatRule[] = [];
  for (const chain of natChains(ruleset))
    for (const rule of chain.rules) {
      const d = dnatOf(chain, rule);
      if (d) out.push(d);
    }
  return out;
}
