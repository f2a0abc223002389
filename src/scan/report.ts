import { findCuratedByPort } from '../catalog/curated.ts';
import { lookupIana } from '../catalog/iana.ts';
import type { HostResult, PortResult } from './engine.ts';

/** States with more ports than this are collapsed into extraPorts, as nmap does. */
export const COLLAPSE_OVER = 25;

export interface ScanSummary {
  /** Per protocol scanned: how many ports and which (nmap's scaninfo). */
  protocols: { protocol: 'tcp' | 'udp'; count: number; services: string }[];
  args: string;
  startedAt: number;
  endedAt: number;
  version: string;
  ports: string;
  portCount: number;
  interrupted: boolean;
}

/** The catalog's name for the port (curated first: `http`, not IANA's `www-http`), else IANA's. */
function serviceName(p: PortResult): string {
  return findCuratedByPort(p.port, p.protocol)[0]?.id ?? lookupIana(p.port, p.protocol)?.name ?? 'unknown';
}

interface Collapsed {
  shown: PortResult[];
  extra: {
    protocol: 'tcp' | 'udp';
    state: string;
    count: number;
    reasons: { reason: string; count: number }[];
    ports: number[];
  }[];
}

/** Splits a host's ports into those shown and the states collapsed because they are too many. */
export function collapse(host: HostResult, showAll = false): Collapsed {
  const byState = new Map<string, PortResult[]>();
  for (const p of host.ports) {
    const key = `${p.protocol}|${p.state}`;
    const list = byState.get(key);
    if (list) list.push(p);
    else byState.set(key, [p]);
  }
  const extra: Collapsed['extra'] = [];
  const hidden = new Set<string>();
  if (!showAll) {
    for (const [key, list] of byState) {
      const [protocol = 'tcp', state = ''] = key.split('|');
      if (list.length <= COLLAPSE_OVER || state === 'open') continue;
      hidden.add(key);
      const reasons = new Map<string, number>();
      for (const p of list) reasons.set(p.reason, (reasons.get(p.reason) ?? 0) + 1);
      extra.push({
        protocol: protocol === 'udp' ? 'udp' : 'tcp',
        state,
        count: list.length,
        reasons: [...reasons].map(([reason, count]) => ({ reason, count })),
        ports: list.map((p) => p.port),
      });
    }
  }
  return { shown: host.ports.filter((p) => !hidden.has(`${p.protocol}|${p.state}`)), extra };
}

/** Compresses a sorted port list into nmap's "1-21,23-79" form. */
export function compressPorts(ports: readonly number[]): string {
  const out: string[] = [];
  let start: number | undefined;
  let prev: number | undefined;
  for (const port of ports) {
    if (start === undefined || prev === undefined) {
      start = prev = port;
      continue;
    }
    if (port === prev + 1) {
      prev = port;
      continue;
    }
    out.push(start === prev ? String(start) : `${start}-${prev}`);
    start = prev = port;
  }
  if (start !== undefined && prev !== undefined)
    out.push(start === prev ? String(start) : `${start}-${prev}`);
  return out.join(',');
}

/** nmap's port table. */
export function renderScanText(hosts: readonly HostResult[], summary: ScanSummary): string {
  const lines = [`Starting portwarden ${summary.version} ( ${summary.args} )`];
  for (const host of hosts) {
    lines.push(
      `portwarden scan report for ${host.hostname ? `${host.hostname} (${host.address})` : host.address}`,
    );
    if (host.timing.srttMs !== null)
      lines.push(`Host is up (${(host.timing.srttMs / 1000).toFixed(5)}s latency).`);
    const { shown, extra } = collapse(host);
    for (const e of extra) {
      lines.push(
        `Not shown: ${e.count} ${e.state} ${e.protocol} ports (${e.reasons.map((r) => (e.reasons.length > 1 ? `${r.count} ${r.reason}` : r.reason)).join(', ')})`,
      );
    }
    if (shown.length === 0) {
      lines.push(`All ${host.ports.length} scanned ports on ${host.address} are in ignored states.`);
    } else {
      const width = Math.max(9, ...shown.map((p) => `${p.port}/${p.protocol}`.length + 1));
      lines.push(`${'PORT'.padEnd(width)} ${'STATE'.padEnd(13)} SERVICE`);
      for (const p of shown) {
        const described = [p.product, p.version, p.extraInfo ? `(${p.extraInfo})` : undefined]
          .filter(Boolean)
          .join(' ');
        const banner = described ? `  ${described}` : p.banner ? `  ${p.banner}` : '';
        lines.push(
          `${`${p.port}/${p.protocol}`.padEnd(width)} ${p.state.padEnd(13)} ${p.service ?? serviceName(p)}${banner}`,
        );
      }
    }
    lines.push('');
  }
  const seconds = ((summary.endedAt - summary.startedAt) / 1000).toFixed(2);
  lines.push(
    `portwarden done: ${hosts.length} IP address${hosts.length === 1 ? '' : 'es'} scanned in ${seconds} seconds${summary.interrupted ? ' (interrupted: partial results)' : ''}`,
  );
  return lines.join('\n');
}

/** The JSON document (schema in README): every shown port, the collapsed ones as extraPorts. */
export function renderScanJson(hosts: readonly HostResult[], summary: ScanSummary, showAll = false): unknown {
  return {
    scanner: 'portwarden',
    version: summary.version,
    args: summary.args,
    startedAt: new Date(summary.startedAt).toISOString(),
    elapsedSeconds: (summary.endedAt - summary.startedAt) / 1000,
    interrupted: summary.interrupted,
    ports: summary.ports,
    hosts: hosts.map((host) => {
      const { shown, extra } = collapse(host, showAll);
      return {
        address: host.address,
        family: host.address.includes(':') ? 6 : 4,
        hostname: host.hostname,
        ports: shown.map((p) => ({
          protocol: p.protocol,
          port: p.port,
          state: p.state,
          reason: p.reason,
          service: p.service ?? serviceName(p),
          banner: p.banner ?? null,
          ...(p.product ? { product: p.product } : {}),
          ...(p.version ? { version: p.version } : {}),
          ...(p.extraInfo ? { extraInfo: p.extraInfo } : {}),
          ...(p.tls ? { tls: p.tls } : {}),
        })),
        extraPorts: extra.map((e) => ({
          protocol: e.protocol,
          state: e.state,
          count: e.count,
          reasons: e.reasons,
        })),
        timing: host.timing,
      };
    }),
  };
}

function xmlEscape(text: string): string {
  return text.replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] ?? c,
  );
}

function timestr(ms: number): string {
  return new Date(ms).toUTCString().replace(/^(\w+), (\d+) (\w+) (\d+) ([\d:]+) GMT$/, '$1 $3 $2 $5 $4');
}

/** nmap-compatible XML (nmaprun 1.05): ndiff and nmap.xsl read it. */
export function renderScanXml(hosts: readonly HostResult[], summary: ScanSummary): string {
  const out = [...xmlPrologue(summary), ...hosts.flatMap(xmlHost), ...xmlRunstats(hosts, summary)];
  return `${out.join('\n')}\n`;
}

function xmlPrologue(summary: ScanSummary): string[] {
  const start = Math.floor(summary.startedAt / 1000);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE nmaprun>',
    '<?xml-stylesheet href="file:///usr/share/nmap/nmap.xsl" type="text/xsl"?>',
    `<!-- portwarden ${xmlEscape(summary.version)} scan initiated ${timestr(summary.startedAt)} as: ${xmlEscape(summary.args).replace(/--/g, '-&#45;')} -->`,
    `<nmaprun scanner="portwarden" args="${xmlEscape(summary.args)}" start="${start}" startstr="${timestr(summary.startedAt)}" version="${xmlEscape(summary.version)}" xmloutputversion="1.05">`,
    ...summary.protocols.map(
      (p) =>
        `<scaninfo type="${p.protocol === 'tcp' ? 'connect' : 'udp'}" protocol="${p.protocol}" numservices="${p.count}" services="${xmlEscape(p.services)}"/>`,
    ),
    '<verbose level="0"/>',
    '<debugging level="0"/>',
  ];
}

function xmlHost(host: HostResult): string[] {
  const { shown, extra } = collapse(host);
  const srtt = Math.round((host.timing.srttMs ?? 0) * 1000);
  return [
    `<host starttime="${Math.floor(host.startedAt / 1000)}" endtime="${Math.floor(host.endedAt / 1000)}"><status state="up" reason="user-set" reason_ttl="0"/>`,
    `<address addr="${xmlEscape(host.address)}" addrtype="${host.address.includes(':') ? 'ipv6' : 'ipv4'}"/>`,
    host.hostname
      ? `<hostnames>\n<hostname name="${xmlEscape(host.hostname)}" type="user"/>\n</hostnames>`
      : '<hostnames>\n</hostnames>',
    '<ports>',
    ...extra.flatMap((e) => xmlExtraports(host, e)),
    ...shown.map(xmlPort),
    '</ports>',
    `<times srtt="${srtt}" rttvar="${Math.round(host.timing.rttvarMs * 1000)}" to="${Math.round(host.timing.timeoutMs * 1000)}"/>`,
    '</host>',
  ];
}

/** One collapsed state (`<extraports>`) with the ports behind each of its reasons. */
function xmlExtraports(host: HostResult, e: Collapsed['extra'][number]): string[] {
  return [
    `<extraports state="${e.state}" count="${e.count}">`,
    ...e.reasons.map((r) => {
      const ports = compressPorts(
        host.ports
          .filter((p) => p.protocol === e.protocol && p.state === e.state && p.reason === r.reason)
          .map((p) => p.port),
      );
      return `<extrareasons reason="${xmlEscape(r.reason)}" count="${r.count}" proto="${e.protocol}" ports="${ports}"/>`;
    }),
    '</extraports>',
  ];
}

function xmlPort(p: PortResult): string {
  // Like nmap, a port with no known service name carries no <service> element.
  const name = p.service ?? serviceName(p);
  const probed =
    p.product !== undefined || p.version !== undefined || p.tunnel !== undefined || p.banner !== undefined;
  const attrs = [
    p.product ? ` product="${xmlEscape(p.product)}"` : '',
    p.version ? ` version="${xmlEscape(p.version)}"` : '',
    p.extraInfo ? ` extrainfo="${xmlEscape(p.extraInfo)}"` : '',
    p.tunnel ? ` tunnel="${p.tunnel}"` : '',
  ].join('');
  const service =
    name === 'unknown' && !probed
      ? ''
      : `<service name="${xmlEscape(name)}"${attrs} method="${probed ? 'probed' : 'table'}" conf="${probed ? 10 : 3}"/>`;
  return `<port protocol="${p.protocol}" portid="${p.port}"><state state="${p.state}" reason="${xmlEscape(p.reason)}" reason_ttl="0"/>${service}</port>`;
}

function xmlRunstats(hosts: readonly HostResult[], summary: ScanSummary): string[] {
  const end = Math.floor(summary.endedAt / 1000);
  const elapsed = ((summary.endedAt - summary.startedAt) / 1000).toFixed(2);
  return [
    `<runstats><finished time="${end}" timestr="${timestr(summary.endedAt)}" summary="portwarden done at ${timestr(summary.endedAt)}; ${hosts.length} IP address (${hosts.length} host up) scanned in ${elapsed} seconds" elapsed="${elapsed}" exit="${summary.interrupted ? 'error' : 'success'}"/><hosts up="${hosts.length}" down="0" total="${hosts.length}"/>`,
    '</runstats>',
    '</nmaprun>',
  ];
}
