import { PortwardenError } from '../errors.ts';
import { didYouMean } from '../suggest.ts';
import { portSetFromRanges, type PortSet } from './port-set.ts';
import { MAX_PORT } from './ranges.ts';
import { knownServiceNames, resolveServiceName } from './resolve-name.ts';
import type { Protocol, ProtocolPortRange } from './types.ts';

export interface PortSpecOptions {
  /** Protocols for bare numbers and ranges with no `tcp/` or `T:` mark. Default: `['tcp']`, like nmap. */
  defaultProtocols?: readonly Protocol[];
}

const SPEC_HINT =
  'write ports like 22, 20-21, 1024-, tcp/80, udp/53, T:80,U:53, - (all) or service names like ssh';
const NUMERIC_RANGE = /^(\d*)\s*([-:])\s*(\d*)$/;
const NAME = /^[a-z0-9][a-z0-9._+-]*$/i;

interface ItemContext {
  spec: string;
  item: string;
  protocols: readonly Protocol[];
}

function fail(
  code: 'PORT_SPEC_INVALID' | 'PORT_OUT_OF_RANGE' | 'PORT_RANGE_REVERSED',
  message: string,
  hint = SPEC_HINT,
): never {
  throw new PortwardenError(code, message, { hint });
}

function toPort(text: string, ctx: ItemContext): number {
  const port = Number(text);
  if (port > MAX_PORT) {
    fail(
      'PORT_OUT_OF_RANGE',
      `port ${text} is out of range 0-${MAX_PORT} in "${ctx.spec}"`,
      'ports are 0 to 65535',
    );
  }
  return port;
}

function parseRange(text: string, ctx: ItemContext): { from: number; to: number } | undefined {
  if (/^\d+$/.test(text)) {
    const port = toPort(text, ctx);
    return { from: port, to: port };
  }
  if (text === '-') return { from: 1, to: MAX_PORT };
  const match = NUMERIC_RANGE.exec(text);
  if (!match) return undefined;
  const [, low = '', , high = ''] = match;
  const from = low === '' ? 1 : toPort(low, ctx);
  const to = high === '' ? MAX_PORT : toPort(high, ctx);
  if (from > to) {
    fail(
      'PORT_RANGE_REVERSED',
      `port range "${text}" is reversed in "${ctx.spec}"`,
      `write it low to high: ${to}-${from}`,
    );
  }
  return { from, to };
}

function resolveName(name: string, ctx: ItemContext): ProtocolPortRange[] {
  const ranges = resolveServiceName(name);
  if (!ranges) {
    throw new PortwardenError('PORT_UNKNOWN_NAME', `unknown service name "${name}" in "${ctx.spec}"`, {
      hint: didYouMean(name, knownServiceNames()) ?? 'run `portwarden explain <port>` to look a service up',
    });
  }
  const kept = ranges.filter((r) => ctx.protocols.includes(r.protocol));
  if (kept.length === 0) {
    const has = [...new Set(ranges.map((r) => r.protocol))].join('/');
    fail(
      'PORT_SPEC_INVALID',
      `service "${name}" has no ${ctx.protocols.join('/')} port in "${ctx.spec}"`,
      `"${name}" is ${has} only`,
    );
  }
  return kept;
}

function parseBody(body: string, ctx: ItemContext, explicit: boolean): ProtocolPortRange[] {
  const range = parseRange(body, ctx);
  if (range) return ctx.protocols.map((protocol) => ({ protocol, ...range }));
  if (NAME.test(body) && /[a-z]/i.test(body)) {
    // A name with no protocol mark keeps all its own protocols (dns is tcp and udp).
    return resolveName(body, explicit ? ctx : { ...ctx, protocols: ['tcp', 'udp'] });
  }
  fail('PORT_SPEC_INVALID', `cannot read "${ctx.item}" as a port, range or service name in "${ctx.spec}"`);
}

function protocolOf(text: string): Protocol | undefined {
  const lower = text.toLowerCase();
  return lower === 'tcp' || lower === 't' ? 'tcp' : lower === 'udp' || lower === 'u' ? 'udp' : undefined;
}

interface ParserState {
  mode: readonly Protocol[] | undefined;
}

function parseItem(
  item: string,
  spec: string,
  state: ParserState,
  defaults: readonly Protocol[],
): ProtocolPortRange[] {
  const prefix = /^([a-z]):(.*)$/i.exec(item);
  if (prefix && !/^\d/.test(item)) {
    const protocol = protocolOf(prefix[1] ?? '');
    if (!protocol) {
      throw new PortwardenError('PROTOCOL_UNKNOWN', `unknown protocol prefix "${prefix[1]}:" in "${spec}"`, {
        hint: 'use T: for tcp or U: for udp (sctp is not supported)',
      });
    }
    state.mode = [protocol];
    const rest = (prefix[2] ?? '').trim();
    if (rest === '') throw emptyItem(spec);
    return parseItem(rest, spec, state, defaults);
  }
  const slash = /^([a-z]+)\/(.+)$/i.exec(item) ?? /^(.+)\/([a-z]+)$/i.exec(item);
  if (slash) {
    const [, left = '', right = ''] = slash;
    const protocol = protocolOf(left) ?? protocolOf(right);
    const body = protocolOf(left) ? right : left;
    if (!protocol) {
      throw new PortwardenError('PROTOCOL_UNKNOWN', `unknown protocol in "${item}" of "${spec}"`, {
        hint: 'use tcp/PORT or udp/PORT (sctp is not supported)',
      });
    }
    return parseBody(body.trim(), { spec, item, protocols: [protocol] }, true);
  }
  const explicit = state.mode !== undefined;
  return parseBody(item, { spec, item, protocols: state.mode ?? defaults }, explicit);
}

function emptyItem(spec: string): PortwardenError {
  return new PortwardenError('PORT_SPEC_EMPTY', `empty item in port list "${spec}"`, {
    hint: 'remove the doubled or trailing comma',
  });
}

/**
 * Parses a port specification into merged ranges per protocol. Accepts `22`, `20-21`, `20:21`,
 * `tcp/80`, `53/udp`, `T:80,U:53` (nmap: a prefix holds for the items after it), `-` (1-65535),
 * `1024-`, `-1023`, service names (`ssh`, `domain`) and groups (`netbios`, `mail`), mixed freely.
 * Throws a PortwardenError naming the bad item, with a hint.
 */
export function parsePortSpec(spec: string, options: PortSpecOptions = {}): PortSet {
  const defaults = options.defaultProtocols ?? ['tcp'];
  if (spec.trim() === '') {
    throw new PortwardenError('PORT_SPEC_EMPTY', 'the port list is empty', { hint: SPEC_HINT });
  }
  const state: ParserState = { mode: undefined };
  const ranges = spec.split(',').flatMap((raw) => {
    const item = raw.trim();
    if (item === '') throw emptyItem(spec);
    return parseItem(item, spec, state, defaults);
  });
  return portSetFromRanges(ranges);
}

/** Parses several specs (e.g. a YAML list) into one set. */
export function parsePortSpecs(specs: readonly string[], options: PortSpecOptions = {}): PortSet {
  return parsePortSpec(specs.join(','), options);
}
