import ipaddr from 'ipaddr.js';
import { cidrsOverlap, parseCidr } from '../catalog/address.ts';
import { isMap, isPair, isScalar, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { ZodError } from 'zod';
import { parsePortSpec } from '../catalog/port-spec.ts';
import { portSetHas, unionPortSets, type PortSet } from '../catalog/port-set.ts';
import type { PortRange, Protocol } from '../catalog/types.ts';
import {
  isPortwardenError,
  PortwardenError,
  yamlCode,
  type Diagnostic,
  type ErrorCode,
  type SourceLocation,
} from '../errors.ts';
import { suggestClosest } from '../suggest.ts';
import { IDENTIFIER_HINTS, KNOWN_KEYS, policySchema, type PolicyDocument } from './schema.ts';
import type { Cidr, Forward, Policy, PolicyRule, ProgramRule, Route, Zone } from './types.ts';

type Path = readonly (string | number)[];

/** The result of loading: a policy when there were no errors, and every problem found. */
export interface LoadResult {
  policy: Policy | null;
  diagnostics: Diagnostic[];
}

class Locator {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
    private readonly file: string,
  ) {}

  /** The range [start, end) of source offsets as a location. */
  range(start: number, end: number, path?: Path): SourceLocation {
    const from = this.lines.linePos(start);
    const to = this.lines.linePos(Math.max(start, end));
    return {
      file: this.file,
      line: from.line,
      col: from.col,
      endLine: to.line,
      endCol: to.col,
      ...(path ? { path: [...path] } : {}),
    };
  }

  /** The range of the node at `path` (its key, when `key` is given), or of its nearest existing ancestor. */
  at(path: Path, key?: string): SourceLocation {
    for (let depth = path.length; depth >= 0; depth--) {
      const node = this.doc.getIn(path.slice(0, depth), true) as Node | undefined;
      if (!node || !('range' in node) || !node.range) continue;
      let [start, end] = node.range;
      if (depth === path.length && key !== undefined && isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === key);
        const keyNode = pair?.key;
        if (isScalar(keyNode) && keyNode.range) [start, end] = keyNode.range;
      } else if (depth < path.length && isMap(node)) {
        // The path runs past what exists (a missing key): point at the first key of the parent.
        const first = node.items[0]?.key;
        end = isScalar(first) && first.range ? first.range[1] : start;
      }
      return this.range(start, end, path);
    }
    return { file: this.file, line: 1, col: 1, path: [...path] };
  }
}

/** "zone \"external\", inbound rule 2" — where in the policy a path is, in words. */
function describePath(path: Path): string {
  const [top, second, third, fourth] = path;
  if (top === 'zones' && typeof second === 'string') {
    if ((third === 'inbound' || third === 'outbound') && typeof fourth === 'number') {
      return `${third} rule ${fourth + 1} of zone "${second}"`;
    }
    if (typeof third === 'string' && path.length === 3) return `"${third}" of zone "${second}"`;
    return `zone "${second}"`;
  }
  if ((top === 'forwards' || top === 'routing' || top === 'programs') && typeof second === 'number') {
    const noun = top === 'forwards' ? 'forward' : top === 'routing' ? 'route' : 'program';
    return `${noun} ${second + 1}`;
  }
  if (typeof top === 'string' && path.length === 1) return `"${top}"`;
  return path.length === 0 ? 'the policy' : `"${path.join('.')}"`;
}

function knownKeysFor(path: Path): readonly string[] {
  const [top, , third] = path;
  if (path.length === 0) return KNOWN_KEYS['root'] ?? [];
  if (top === 'zones' && path.length === 2) return KNOWN_KEYS['zone'] ?? [];
  if (top === 'zones' && (third === 'inbound' || third === 'outbound') && path.length === 4)
    return KNOWN_KEYS[third] ?? [];
  if (top === 'zones' && third === 'ftp') return KNOWN_KEYS['ftp'] ?? [];
  if (top === 'forwards') return KNOWN_KEYS['forward'] ?? [];
  if (top === 'routing') return KNOWN_KEYS['route'] ?? [];
  if (top === 'programs' && path.length === 2) return KNOWN_KEYS['program'] ?? [];
  if (top === 'programs' && path.length === 4) return KNOWN_KEYS['outbound'] ?? [];
  if (typeof top === 'string' && path.length === 1) return KNOWN_KEYS[top] ?? [];
  return [];
}

/** A value quoted for a one-line message: escaped, and cut when long. */
function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}..."` : text;
}

/** An identifier that failed its pattern: what it had to be, and the rule for that field. */
function identifierProblem(path: Path, value: unknown, problem: string): { message: string; hint?: string } {
  if (path.length === 2 && path[0] === 'zones')
    return { message: `zone name ${shown(path[1])} is not valid`, hint: IDENTIFIER_HINTS['zones'] ?? '' };
  const at = path.findLastIndex((p) => typeof p === 'string');
  const field = String(path[at] ?? 'value');
  const noun = field === 'interfaces' ? 'interface' : field;
  const owner = at > 0 ? `${describePath(path.slice(0, at))}: ` : '';
  const hint = IDENTIFIER_HINTS[field];
  return { message: `${owner}${noun} ${shown(value)} is ${problem}`, ...(hint ? { hint } : {}) };
}

type ZodIssue = ZodError['issues'][number];
type IssuePath = (string | number)[];

/** Unknown keys, each with the closest known key as a hint. */
function unknownKeyDiagnostics(keys: readonly string[], path: IssuePath, at: Locator): Diagnostic[] {
  const where = describePath(path);
  return keys.map((key) => {
    const suggestion = suggestClosest(key, knownKeysFor(path));
    return {
      severity: 'error',
      code: 'POLICY_UNKNOWN_KEY',
      message: `unknown key "${key}" in ${where}`,
      hint: suggestion
        ? `did you mean "${suggestion}"?`
        : `known keys here: ${knownKeysFor(path).join(', ')}`,
      location: at.at(path, key),
    };
  });
}

function valueAt(raw: unknown, path: IssuePath): unknown {
  return path.reduce<unknown>(
    (node, key) =>
      node !== null && typeof node === 'object' ? (node as Record<string | number, unknown>)[key] : undefined,
    raw,
  );
}

function describeValue(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'empty';
  return typeof value === 'object' ? 'a mapping' : `${typeof value} ${JSON.stringify(value)}`;
}

/** The message and hint for a schema issue on a value that is there (or missing). */
function issueText(issue: ZodIssue, path: IssuePath, value: unknown): { message: string; hint?: string } {
  const where = describePath(path);
  const field = String(path[path.length - 1] ?? 'value');
  if (value === undefined)
    return {
      message: `${describePath(path.slice(0, -1))} needs "${field}"`,
      hint: field === 'version' ? 'start the file with `version: 1`' : `add a "${field}:" key`,
    };
  switch (issue.code) {
    case 'invalid_value':
      return {
        message: `${where} cannot be ${JSON.stringify(value)}`,
        hint: `use one of: ${issue.values.map((v) => String(v)).join(', ')}`,
      };
    case 'invalid_type': {
      const expected =
        issue.expected === 'array'
          ? 'a list'
          : issue.expected === 'object'
            ? 'a mapping'
            : `a ${issue.expected}`;
      return { message: `${where} must be ${expected}, not ${describeValue(value)}` };
    }
    case 'invalid_format':
    case 'invalid_key':
      return identifierProblem(path, value, issue.message);
    case 'too_small':
      return { message: `${where} must not be empty` };
    case 'invalid_union':
      return {
        message: `${where} must be a port spec string or a list of them, not ${JSON.stringify(value)}`,
        hint: 'e.g. `allow: ssh, http` or `allow: [tcp/8080, udp/53]`',
      };
    default:
      return { message: `${where}: ${issue.message} (got ${JSON.stringify(value)})` };
  }
}

function zodDiagnostics(error: ZodError, raw: unknown, at: Locator): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const issue of error.issues) {
    const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      out.push(...unknownKeyDiagnostics(issue.keys, path, at));
      continue;
    }
    const { message, hint } = issueText(issue, path, valueAt(raw, path));
    out.push({
      severity: 'error',
      code: 'POLICY_INVALID',
      message,
      ...(hint ? { hint } : {}),
      // A bad key (a zone name) is shown at the key, not at its value.
      location: issue.code === 'invalid_key' ? at.at(path.slice(0, -1), String(path.at(-1))) : at.at(path),
    });
  }
  // A misspelt key also makes the real key "missing": report the typo only.
  return out.filter(
    (d) =>
      !(d.code === 'POLICY_INVALID' && / needs "/.test(d.message)) ||
      !out.some(
        (u) =>
          u.code === 'POLICY_UNKNOWN_KEY' &&
          u.hint?.includes(`"${/needs "([^"]+)"/.exec(d.message)?.[1] ?? ''}"`),
      ),
  );
}

function specText(spec: string | number | readonly (string | number)[]): string {
  return typeof spec === 'object' ? spec.map(String).join(', ') : String(spec);
}

class Normaliser {
  readonly diagnostics: Diagnostic[] = [];
  constructor(private readonly at: Locator) {}

  error(code: ErrorCode, message: string, path: Path, hint?: string): void {
    this.diagnostics.push({
      severity: 'error',
      code,
      message,
      ...(hint ? { hint } : {}),
      location: this.at.at(path),
    });
  }

  ports(spec: string | number | readonly (string | number)[], path: Path): PortSet {
    try {
      // In a policy a bare number means TCP, as in nft and iptables rules; say udp/53 for UDP.
      const set = parsePortSpec(specText(spec), { defaultProtocols: ['tcp'] });
      if ([...set.tcp, ...set.udp].some((r) => r.from === 0))
        throw new PortwardenError('PORT_OUT_OF_RANGE', `port 0 is outside 1-65535`, {
          hint: 'no packet has port 0: start ranges at 1 (1-10)',
        });
      return set;
    } catch (error) {
      if (!isPortwardenError(error)) throw error;
      this.error(error.code, `${error.message} in ${describePath(path)}`, path, error.hint);
      return { tcp: [], udp: [] };
    }
  }

  cidrs(list: readonly string[] | undefined, path: Path): Cidr[] {
    const out: Cidr[] = [];
    (list ?? []).forEach((text, i) => {
      try {
        out.push(parseCidr(text));
      } catch {
        this.error(
          'POLICY_BAD_ADDRESS',
          `"${text}" is not an IPv4/IPv6 address or CIDR block`,
          [...path, i],
          'write e.g. 198.51.100.0/24, 203.0.113.5 or 2001:db8::/32',
        );
      }
    });
    return out;
  }

  rules(
    list:
      | readonly {
          allow: string | number | readonly (string | number)[];
          from?: string[];
          to?: string[];
          comment?: string | undefined;
          log?: boolean | undefined;
        }[]
      | undefined,
    path: Path,
    peerKey: 'from' | 'to',
  ): PolicyRule[] {
    return (list ?? []).map((rule, i) => ({
      ports: this.ports(rule.allow, [...path, i, 'allow']),
      peers: this.cidrs(rule[peerKey], [...path, i, peerKey]),
      spec: specText(rule.allow),
      comment: rule.comment ?? null,
      log: rule.log ?? false,
      location: this.at.at([...path, i]),
    }));
  }
}

/** Room for a zone in an iptables chain name (`PW-OUT-` + 21 of the 28 characters it may have). */
const CHAIN_ZONE_CHARS = 21;

/**
 * Targets name chains, sets and macros after the zone with `-` written as `_` (nft, pf) and cut
 * to fit (iptables): two zones that meet there would share one chain, and nft merges chain blocks
 * of one name silently — each zone would get the other's rules.
 */
function checkChainNames(zones: readonly Zone[], n: Normaliser, at: Locator): void {
  const seen = new Map<string, string>();
  for (const zone of zones) {
    const key = zone.name.replaceAll('-', '_').slice(0, CHAIN_ZONE_CHARS);
    const other = seen.get(key);
    if (other === undefined) seen.set(key, zone.name);
    else
      n.diagnostics.push({
        severity: 'error',
        code: 'POLICY_INVALID',
        message: `zones "${other}" and "${zone.name}" would share one chain in compiled rulesets`,
        hint: `rename one: zone names must differ other than by "-" versus "_" or after ${CHAIN_ZONE_CHARS} characters`,
        location: at.at(['zones'], zone.name),
      });
  }
}

/** A zone is internal when declared so, when all its sources are private, or when named like a LAN. */
function guessExposure(name: string, sources: readonly Cidr[]): 'external' | 'internal' {
  if (sources.length > 0 && sources.every(isPrivate)) return 'internal';
  return /^(internal|int|lan|private|trusted|home|office|mgmt|management|dmz-internal)$/i.test(name)
    ? 'internal'
    : 'external';
}

type ZoneDocument = PolicyDocument['zones'][string];
type ForwardDocument = NonNullable<PolicyDocument['forwards']>[number];
type RouteDocument = NonNullable<PolicyDocument['routing']>[number];
type ProgramDocument = NonNullable<PolicyDocument['programs']>[number];
type ZoneCheck = (name: string, path: Path) => void;

/** An interface belongs to one zone: the second zone naming it is an error. */
function claimInterfaces(n: Normaliser, name: string, z: ZoneDocument, owners: Map<string, string>): void {
  z.interfaces.forEach((iface, i) => {
    const owner = owners.get(iface);
    if (owner) {
      n.error(
        'POLICY_INTERFACE_TWICE',
        `interface "${iface}" is in zone "${owner}" and zone "${name}"`,
        ['zones', name, 'interfaces', i],
        'an interface belongs to one zone; split traffic by `sources` instead',
      );
    } else owners.set(iface, name);
  });
}

/** The zone's passive FTP data range: exactly one TCP range, or null. */
function ftpPassiveRange(n: Normaliser, z: ZoneDocument, path: Path): PortRange | null {
  if (!z.ftp?.passive) return null;
  const set = n.ports(`tcp/${z.ftp.passive}`, [...path, 'ftp', 'passive']);
  if (set.tcp.length > 1)
    n.error('POLICY_INVALID', `ftp.passive must be one port range like 50000-50100`, [
      ...path,
      'ftp',
      'passive',
    ]);
  return set.tcp.length === 1 ? (set.tcp[0] ?? null) : null;
}

function normaliseZone(
  n: Normaliser,
  at: Locator,
  name: string,
  z: ZoneDocument,
  owners: Map<string, string>,
): Zone {
  const path = ['zones', name];
  claimInterfaces(n, name, z, owners);
  const ftpPassive = ftpPassiveRange(n, z, path);
  const sources = n.cidrs(z.sources, [...path, 'sources']);
  return {
    name,
    interfaces: z.interfaces,
    sources,
    exposure: z.exposure ?? guessExposure(name, sources),
    inbound: n.rules(z.inbound, [...path, 'inbound'], 'from'),
    outbound: n.rules(z.outbound, [...path, 'outbound'], 'to'),
    ftpPassive,
    location: at.at(path),
  };
}

/** Zones sharing sources would make a packet's zone ambiguous. */
function checkOverlappingSources(n: Normaliser, zones: readonly Zone[]): void {
  zones.forEach((a, i) => {
    for (const b of zones.slice(i + 1)) {
      for (const sa of a.sources) {
        const clash = b.sources.find((sb) => cidrsOverlap(sa, sb));
        if (clash) {
          n.error(
            'POLICY_OVERLAPPING_SOURCES',
            `sources ${sa.text} of zone "${a.name}" and ${clash.text} of zone "${b.name}" overlap`,
            ['zones', b.name, 'sources'],
            'give each zone distinct source ranges',
          );
        }
      }
    }
  });
}

/** Reports a zone name that no zone has, with the closest one as a suggestion. */
function zoneCheck(n: Normaliser, zones: readonly Zone[]): ZoneCheck {
  const zoneNames = zones.map((z) => z.name);
  return (name, path) => {
    if (zoneNames.includes(name)) return;
    const suggestion = suggestClosest(name, zoneNames);
    n.error(
      'POLICY_UNKNOWN_ZONE',
      `unknown zone "${name}"`,
      path,
      suggestion ? `did you mean "${suggestion}"?` : `zones: ${zoneNames.join(', ')}`,
    );
  };
}

/** The one port a forward listens on, or null (reported unless the spec itself was already wrong). */
function forwardListen(
  n: Normaliser,
  f: ForwardDocument,
  i: number,
  path: Path,
): { protocol: Protocol; port: number } | null {
  const listen = n.ports(f.listen, [...path, 'listen']);
  const protocols = (['tcp', 'udp'] as const).filter((p) => listen[p].length > 0);
  const protocol = protocols[0];
  const only = protocol === undefined ? undefined : listen[protocol];
  const port = only?.[0]?.from;
  if (protocols.length === 1 && only?.length === 1 && port !== undefined && port === only[0]?.to && protocol)
    return { protocol, port };
  if (protocols.length > 0)
    n.error('POLICY_INVALID', `forward ${i + 1} must listen on exactly one port, like tcp/2525`, [
      ...path,
      'listen',
    ]);
  return null;
}

/** A forward's `to` as address, family and port, or null with the problem reported. */
function forwardTarget(
  n: Normaliser,
  f: ForwardDocument,
  i: number,
  path: Path,
  listenPort: number,
): Pick<Forward, 'toAddress' | 'toFamily' | 'toPort' | 'toLoopback'> | null {
  const target = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+|[0-9a-fA-F:]+?))(?::(\d{1,5}))?$/.exec(f.to.trim());
  const toAddress = target?.[1] ?? target?.[2];
  if (
    !target ||
    !toAddress ||
    !ipaddr.isValid(toAddress) ||
    (target[2]?.includes(':') && target[3] !== undefined && !target[1])
  ) {
    n.error(
      'POLICY_BAD_ADDRESS',
      `forward target "${f.to}" is not address:port`,
      [...path, 'to'],
      'write 127.0.0.1:25, 198.51.100.5:8080 or [2001:db8::5]:8080',
    );
    return null;
  }
  const toPort = target[3] === undefined ? listenPort : Number(target[3]);
  if (toPort < 1 || toPort > 65535) {
    n.error('PORT_OUT_OF_RANGE', `forward target port ${toPort} is outside 1-65535`, [...path, 'to']);
    return null;
  }
  const parsed = ipaddr.parse(toAddress);
  const toFamily = parsed.kind() === 'ipv4' ? 4 : 6;
  const toLoopback = parsed.range() === 'loopback';
  if (toLoopback && toFamily === 6) {
    n.error(
      'FEATURE_UNSUPPORTED',
      `forward ${i + 1} targets ::1, but the kernel cannot DNAT to IPv6 loopback`,
      [...path, 'to'],
      'forward to 127.0.0.1 or to a non-loopback address',
    );
    return null;
  }
  return { toAddress: parsed.toString(), toFamily, toPort, toLoopback };
}

function normaliseForward(
  n: Normaliser,
  at: Locator,
  f: ForwardDocument,
  i: number,
  checkZone: ZoneCheck,
): Forward | null {
  const path = ['forwards', i];
  checkZone(f.zone, [...path, 'zone']);
  const listen = forwardListen(n, f, i, path);
  if (!listen) return null;
  const target = forwardTarget(n, f, i, path, listen.port);
  if (!target) return null;
  return {
    zone: f.zone,
    protocol: listen.protocol,
    listenPort: listen.port,
    ...target,
    sources: n.cidrs(f.from, [...path, 'from']),
    location: at.at(path),
  };
}

function normaliseRoute(
  n: Normaliser,
  at: Locator,
  r: RouteDocument,
  i: number,
  checkZone: ZoneCheck,
): Route {
  const path = ['routing', i];
  checkZone(r.from, [...path, 'from']);
  checkZone(r.to, [...path, 'to']);
  if (r.from === r.to)
    n.error('POLICY_INVALID', `route ${i + 1} goes from zone "${r.from}" to itself`, [...path, 'to']);
  return {
    from: r.from,
    to: r.to,
    ports: n.ports(r.allow, [...path, 'allow']),
    masquerade: r.masquerade ?? false,
    spec: specText(r.allow),
    location: at.at(path),
  };
}

function normaliseProgram(n: Normaliser, at: Locator, p: ProgramDocument, i: number): ProgramRule | null {
  const path = ['programs', i];
  const given = (['unit', 'user', 'path'] as const).filter((k) => p[k] !== undefined);
  if (given.length !== 1) {
    n.error(
      'POLICY_INVALID',
      `program ${i + 1} needs exactly one of unit, user or path (has ${given.length === 0 ? 'none' : given.join(' and ')})`,
      path,
      'e.g. `unit: backup.service`',
    );
    return null;
  }
  const match =
    p.unit !== undefined
      ? ({ kind: 'unit', unit: p.unit } as const)
      : p.user !== undefined
        ? ({ kind: 'user', user: p.user } as const)
        : ({ kind: 'path', path: p.path ?? '' } as const);
  return { match, outbound: n.rules(p.outbound, [...path, 'outbound'], 'to'), location: at.at(path) };
}

/** The policy's top-level settings, with their defaults. */
function settings(
  doc: PolicyDocument,
  file: string,
): Pick<Policy, 'name' | 'file' | 'defaults' | 'icmpEcho' | 'coexist'> {
  return {
    name: doc.name ?? file.replace(/^.*\//, '').replace(/\.ya?ml$/, ''),
    file,
    defaults: {
      inbound: doc.defaults?.inbound ?? 'drop',
      outbound: doc.defaults?.outbound ?? 'drop',
      forward: doc.defaults?.forward ?? 'drop',
      log: doc.defaults?.log ?? false,
    },
    icmpEcho: doc.icmp?.echo ?? true,
    coexist: [...new Set(doc.coexist ?? [])],
  };
}

/** The validated document as a Policy: values parsed once (ports to ranges, CIDRs), cross-references checked. */
function normalise(
  doc: PolicyDocument,
  file: string,
  at: Locator,
): { policy: Policy; diagnostics: Diagnostic[] } {
  const n = new Normaliser(at);
  const owners = new Map<string, string>();
  const zones = Object.entries(doc.zones).map(([name, z]) => normaliseZone(n, at, name, z, owners));
  checkChainNames(zones, n, at);
  checkOverlappingSources(n, zones);
  const checkZone = zoneCheck(n, zones);
  const forwards = (doc.forwards ?? []).flatMap((f, i) => normaliseForward(n, at, f, i, checkZone) ?? []);
  const routing = (doc.routing ?? []).map((r, i) => normaliseRoute(n, at, r, i, checkZone));
  const programs = (doc.programs ?? []).flatMap((p, i) => normaliseProgram(n, at, p, i) ?? []);
  const allPorts = unionPortSets(
    ...zones.flatMap((z) => [...z.inbound, ...z.outbound].map((r) => r.ports)),
    ...routing.map((r) => r.ports),
  );
  const policy: Policy = {
    ...settings(doc, file),
    zones,
    forwards,
    routing,
    programs,
    ftp: portSetHas(allPorts, 'tcp', 21),
  };
  return { policy, diagnostics: n.diagnostics };
}

const PRIVATE_RANGES = ['private', 'uniqueLocal', 'linkLocal', 'loopback'];

/** RFC 1918, unique-local, link-local or loopback: addresses that cannot come from the Internet. */
export function isPrivate(cidr: Cidr): boolean {
  return PRIVATE_RANGES.includes(ipaddr.parse(cidr.address).range());
}

/**
 * Parses and validates a policy file. Every problem is collected (YAML syntax, schema, semantics)
 * and returned sorted by position; `policy` is null when any is an error.
 */
/** yaml's own errors, each with yaml's code (YAML_DUPLICATE_KEY, YAML_BAD_INDENT, ...) and its range. */
function yamlDiagnostics(doc: Document, text: string, at: Locator): Diagnostic[] {
  return doc.errors.map((e) => {
    const key = /^[\w.-]+/.exec(text.slice(e.pos[0]))?.[0];
    const duplicate = e.code === 'DUPLICATE_KEY' && key !== undefined;
    return {
      severity: 'error' as const,
      code: yamlCode(e.code),
      message: duplicate ? `duplicate key "${key}"` : (e.message.split('\n')[0] ?? e.message),
      hint:
        e.code === 'DUPLICATE_KEY'
          ? 'each key may appear once; merge the two entries'
          : 'check indentation and quoting on this line',
      location: at.range(e.pos[0], duplicate ? e.pos[0] + key.length : e.pos[1]),
    };
  });
}

/** One error at the top of the file: the load stops there. */
function failedAt(file: string, code: ErrorCode, message: string, hint: string): LoadResult {
  return {
    policy: null,
    diagnostics: [{ severity: 'error', code, message, hint, location: { file, line: 1, col: 1 } }],
  };
}

/** The document as plain data, or why it cannot be: aliases are bounded ("billion laughs"). */
function documentData(doc: Document, file: string): { raw: unknown } | { failed: LoadResult } {
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    // the only failure of toJS: an alias expanded more than maxAliasCount times
    const hint = 'remove or fix the YAML alias (*name) it names';
    return { failed: failedAt(file, 'YAML_RESOURCE_EXHAUSTION', (error as Error).message, hint) };
  }
  if (raw === null || raw === undefined) {
    const hint = 'start with `version: 1` and a `zones:` mapping (see examples/)';
    return { failed: failedAt(file, 'POLICY_INVALID', 'the policy file is empty', hint) };
  }
  return { raw };
}

export function loadPolicy(text: string, file = 'policy.yaml'): LoadResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = new Locator(doc, lineCounter, file);
  const diagnostics = yamlDiagnostics(doc, text, at);
  if (diagnostics.length > 0) return { policy: null, diagnostics: sortDiagnostics(diagnostics) };
  const data = documentData(doc, file);
  if ('failed' in data) return data.failed;
  const parsed = policySchema.safeParse(data.raw);
  if (!parsed.success)
    return { policy: null, diagnostics: sortDiagnostics(zodDiagnostics(parsed.error, data.raw, at)) };
  const { policy, diagnostics: semantic } = normalise(parsed.data, file, at);
  const sorted = sortDiagnostics(semantic);
  return { policy: sorted.some((d) => d.severity === 'error') ? null : policy, diagnostics: sorted };
}

function sortDiagnostics(list: Diagnostic[]): Diagnostic[] {
  return [...list].sort(
    (a, b) =>
      (a.location?.line ?? 0) - (b.location?.line ?? 0) || (a.location?.col ?? 0) - (b.location?.col ?? 0),
  );
}

/** loadPolicy for callers that want the policy or a thrown error (exit 2 with every diagnostic). */
export function loadPolicyOrThrow(text: string, file = 'policy.yaml'): Policy {
  const { policy, diagnostics } = loadPolicy(text, file);
  if (policy) return policy;
  const first = diagnostics.find((d) => d.severity === 'error');
  throw new PortwardenError('POLICY_INVALID', first?.message ?? 'invalid policy', {
    ...(first?.hint ? { hint: first.hint } : {}),
    ...(first?.location ? { location: first.location } : {}),
    diagnostics: diagnostics.filter((d) => d.severity === 'error'),
  });
}
