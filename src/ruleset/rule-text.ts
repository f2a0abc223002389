import { obj } from './ruleset.ts';

function text(value: Json): string {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
    ? String(value)
    : '';
}

/**
 * nft JSON expressions back in nft's own syntax, for traces and "unknown because" reasons. Covers the
 * common expressions; anything else is shown as its JSON.
 */

type Json = unknown;

function value(json: Json): string {
  if (json === null || json === undefined) return '';
  if (typeof json === 'string') return /^[\w.:/*-]+$/.test(json) ? json : JSON.stringify(json);
  if (typeof json === 'number' || typeof json === 'boolean') return String(json);
  if (Array.isArray(json)) return json.map(value).join(',');
  const e = obj(json) ?? {};
  const set = e['set'];
  if (set !== undefined) {
    const items = Array.isArray(set) ? set : [set];
    const shown = items
      .slice(0, 8)
      .map((item) => (Array.isArray(item) ? `${value(item[0])} : ${value(item[1])}` : value(item)));
    return `{ ${shown.join(', ')}${items.length > 8 ? `, ... (${items.length} elements)` : ''} }`;
  }
  const prefix = obj(e['prefix']);
  if (prefix) return `${value(prefix['addr'])}/${value(prefix['len'])}`;
  const range = e['range'];
  if (Array.isArray(range)) return `${value(range[0])}-${value(range[1])}`;
  const concat = e['concat'];
  if (Array.isArray(concat)) return concat.map(describeExpr).join(' . ');
  const inner = obj(e['elem']);
  if (inner) return value(inner['val']);
  if (e['|'] !== undefined) return Array.isArray(e['|']) ? e['|'].map(value).join('|') : value(e['|']);
  return describeExpr(json);
}

function operand(json: Json): string {
  const e = obj(json);
  if (!e) return value(json);
  const payload = obj(e['payload']);
  if (payload)
    return payload['protocol'] === undefined
      ? 'payload'
      : `${text(payload['protocol'])} ${text(payload['field'])}`;
  const meta = obj(e['meta']);
  if (meta) return `meta ${String(meta['key'])}`;
  const ct = obj(e['ct']);
  if (ct) return `ct ${ct['key'] === 'pw state' ? 'state' : text(ct['key'])}`;
  const fib = obj(e['fib']);
  if (fib)
    return `fib ${Array.isArray(fib['flags']) ? fib['flags'].join(' . ') : ''} ${String(fib['result'])}`;
  const exthdr = obj(e['exthdr']);
  if (exthdr) return `exthdr ${String(exthdr['name'])}${exthdr['field'] ? ` ${text(exthdr['field'])}` : ''}`;
  for (const op of ['&', '|', '^', '<<', '>>']) {
    const args = e[op];
    if (Array.isArray(args) && args.length === 2) return `${operand(args[0])} ${op} ${value(args[1])}`;
  }
  return value(json);
}

/** One expression (a match, a statement or a verdict) as nft would print it. */
export function describeExpr(json: Json): string {
  const e = obj(json);
  if (!e) return JSON.stringify(json);
  const match = obj(e['match']);
  if (match) {
    const op = match['op'] === '==' || match['op'] === 'in' ? '' : `${String(match['op'])} `;
    return `${operand(match['left'])} ${op}${value(match['right'])}`;
  }
  const key = Object.keys(e)[0] ?? '';
  const body = e[key];
  if (['accept', 'drop', 'reject', 'return', 'continue', 'queue', 'counter', 'notrack'].includes(key))
    return key;
  if (key === 'jump' || key === 'goto') return `${key} ${String(obj(body)?.['target'])}`;
  if (key === 'vmap') return `${operand(obj(body)?.['key'])} vmap ${value(obj(body)?.['data'])}`;
  if (key === 'dnat' || key === 'redirect') {
    const b = obj(body) ?? {};
    return `${key} to ${text(b['addr'])}${b['port'] ? `:${text(b['port'])}` : ''}`;
  }
  if (key === 'limit') {
    const b = obj(body) ?? {};
    return `limit rate ${b['inv'] ? 'over ' : ''}${String(b['rate'])}/${String(b['per'])}`;
  }
  if (key === 'log') return 'log';
  if (key === 'comment') return '';
  if (key === 'mangle') return `${operand(obj(body)?.['key'])} set ${value(obj(body)?.['value'])}`;
  if (key === 'xt') return `xt ${String(obj(body)?.['type'])} ${String(obj(body)?.['name'])}`;
  if (key === 'pw') return String(obj(body)?.['why']);
  const shown = JSON.stringify(json);
  return shown.length > 120 ? `${shown.slice(0, 117)}...` : shown;
}
