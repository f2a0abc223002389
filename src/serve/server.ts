import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import ipaddr from 'ipaddr.js';
import { auditFromData, type AuditData, type AuditReport } from '../audit/run.ts';
import { BACKENDS, compilePolicy } from '../compile/registry.ts';
import type { Socket } from '../inventory/types.ts';
import type { Policy } from '../policy/types.ts';
import { listenersOf } from '../watch/events.ts';
import type { WatchStore } from '../watch/store.ts';

/**
 * The local dashboard: static pages from web/ and the JSON API under /api/ they use. Loopback by
 * default. A token is always generated: it is required for every request when bound elsewhere, and for
 * every state-changing request (POST) everywhere. Strict headers: a CSP without inline script, no
 * framing, no sniffing; and a Host check so a DNS-rebinding page cannot talk to a loopback server.
 */

export interface DashboardSources {
  /** The machine's data for the audit (live, or a captured file). */
  auditData: () => Promise<AuditData>;
  store: WatchStore | null;
  policy: { file: string; text: string; policy: Policy } | null;
  version: string;
}

export interface ServeOptions {
  host: string;
  port: number;
  token: string;
  sources: DashboardSources;
  /** How long an audit result is reused (ms). */
  cacheMs?: number;
}

const WEB = new URL('../../web/', import.meta.url);
/** Every page is web/page.html with its id (app.js renders by it) and title filled in. */
const PAGES: Record<string, { page: string; title: string }> = {
  '/': { page: 'overview', title: 'Overview' },
  '/listeners': { page: 'listeners', title: 'Listeners' },
  '/findings': { page: 'findings', title: 'Findings' },
  '/history': { page: 'history', title: 'History' },
  '/policy': { page: 'policy', title: 'Policy' },
  '/scans': { page: 'scans', title: 'Scans' },
};
const ASSETS: Record<string, string> = {
  '/app.js': 'application/javascript; charset=utf-8',
  '/app.css': 'text/css; charset=utf-8',
};

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
};

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  try {
    return ipaddr.process(host).range() === 'loopback';
  } catch {
    return false;
  }
}

function sameToken(given: string | undefined, token: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function tokenOf(request: FastifyRequest): string | undefined {
  const auth = request.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7);
  const cookie = /(?:^|;\s*)pw_token=([^;]+)/.exec(request.headers.cookie ?? '');
  if (cookie?.[1]) return decodeURIComponent(cookie[1]);
  const query = (request.query as Record<string, string | undefined>)['token'];
  return query;
}

/** A listener row for the listeners page: inventory owner data joined with the audit's reachability. */
export interface ListenerRow {
  protocol: 'tcp' | 'udp';
  address: string;
  port: number;
  exposure: Socket['exposure'];
  reachable: string;
  service: string | null;
  risk: Socket['risk'];
  pid: number | null;
  process: string | null;
  user: string | null;
  unit: string | null;
  container: string | null;
  netns: string;
}

function listenerRows(data: AuditData, report: AuditReport): ListenerRow[] {
  const reach = new Map(
    report.exposure.map((r) => [`${r.protocol}|${r.localAddress}|${r.localPort}`, r.reachable]),
  );
  return [...listenersOf(data.sockets).values()].map((l) => {
    const p = l.processes[0];
    return {
      protocol: l.protocol,
      address: l.address,
      port: l.port,
      exposure: l.exposure,
      reachable: String(
        reach.get(`${l.protocol}|${l.address}|${l.port}`) ?? (l.exposure === 'loopback' ? 'no' : 'unknown'),
      ),
      service: l.service,
      risk: l.risk,
      pid: p?.pid ?? null,
      process: p?.name ?? null,
      user: p?.user ?? null,
      unit: p?.unit ?? null,
      container: p?.container ?? null,
      netns: l.netns,
    };
  });
}

export async function buildServer(options: ServeOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, bodyLimit: 5 * 1024 * 1024 });
  const loopbackOnly = isLoopback(options.host);
  const { sources } = options;
  let cached: { at: number; data: AuditData; report: AuditReport } | null = null;
  const current = async (): Promise<{ data: AuditData; report: AuditReport }> => {
    if (cached && Date.now() - cached.at < (options.cacheMs ?? 10_000)) return cached;
    const data = await sources.auditData();
    const report = auditFromData(data, { policy: sources.policy?.policy ?? null });
    cached = { at: Date.now(), data, report };
    return cached;
  };

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) void reply.header(name, value);
    if (loopbackOnly) {
      // DNS rebinding: a loopback server answers only to loopback names
      const hostHeader = (request.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
      if (!isLoopback(hostHeader))
        return reply.code(421).send({ error: 'misdirected request: use a loopback address' });
    }
    const needsToken = !loopbackOnly || request.method !== 'GET';
    if (needsToken && !sameToken(tokenOf(request), options.token)) {
      return reply
        .code(401)
        .send({ error: 'a token is required: Authorization: Bearer <token> or ?token=<token>' });
    }
    const query = (request.query as Record<string, string | undefined>)['token'];
    if (query !== undefined && sameToken(query, options.token) && request.method === 'GET') {
      // remember the token in a strict cookie, so pages and their API calls need no query string
      void reply.header(
        'set-cookie',
        `pw_token=${encodeURIComponent(query)}; HttpOnly; SameSite=Strict; Path=/`,
      );
    }
    return undefined;
  });

  const template = readFileSync(new URL('page.html', WEB), 'utf8');
  for (const [path, page] of Object.entries(PAGES)) {
    const html = template.replaceAll('{{page}}', page.page).replaceAll('{{title}}', page.title);
    app.get(path, (_request, reply) => reply.type('text/html; charset=utf-8').send(html));
  }
  for (const [path, type] of Object.entries(ASSETS)) {
    // read once at start, like the page template
    const body = readFileSync(new URL(path.slice(1), WEB), 'utf8');
    app.get(path, (_request, reply) => reply.type(type).send(body));
  }

  // browsers ask for it on every page; no icon, and no 404 noise
  app.get('/favicon.ico', (_request, reply) => reply.code(204).send());
  app.get('/api/overview', async () => {
    const { report } = await current();
    const bySeverity: Record<string, number> = { critical: 0, high: 0, medium: 0, low: 0, info: 0 };
    for (const f of report.findings) bySeverity[f.severity] = (bySeverity[f.severity] ?? 0) + 1;
    const reach: Record<string, number> = {};
    for (const r of report.exposure) reach[String(r.reachable)] = (reach[String(r.reachable)] ?? 0) + 1;
    return {
      host: report.host,
      generatedAt: report.generatedAt,
      version: sources.version,
      profile: report.profile,
      policy: report.policy,
      firewall: report.method === 'static' ? (report.ruleset?.tables ?? []) : [],
      listeners: report.listeners,
      exposure: reach,
      findings: bySeverity,
      watching: sources.store !== null,
    };
  });
  app.get('/api/listeners', async () => {
    const { data, report } = await current();
    return { listeners: listenerRows(data, report) };
  });
  app.get('/api/findings', async () => ({ findings: (await current()).report.findings }));
  app.get('/api/history', (request, reply) => {
    const since = Number((request.query as Record<string, string | undefined>)['since'] ?? 0) || 0;
    const store = sources.store;
    if (!store) return reply.send({ available: false, snapshots: [], events: [], knocks: [] });
    return reply.send({
      available: true,
      snapshots: store.snapshots(since),
      events: store.events({ since, limit: 500 }),
      knocks: store.knocks(since, 5000),
    });
  });
  app.get('/api/policy', (request, reply) => {
    const policy = sources.policy;
    if (!policy) return reply.send({ available: false });
    const target = (request.query as Record<string, string | undefined>)['target'] ?? 'nftables';
    const backend = BACKENDS.find((b) => b.name === target);
    let compiled: { suffix: string; content: string }[] | null = null;
    let error: string | null = null;
    if (!backend) error = `unknown target "${target}"`;
    else {
      try {
        compiled = compilePolicy(policy.policy, backend.name, sources.version);
      } catch (e) {
        error = (e as Error).message;
      }
    }
    return reply.send({
      available: true,
      file: policy.file,
      name: policy.policy.name,
      text: policy.text,
      targets: BACKENDS.map((b) => b.name),
      target,
      compiled,
      error,
    });
  });
  app.get('/api/scans', (_request, reply) =>
    reply.send({
      available: sources.store !== null,
      scans: sources.store?.scans() ?? [],
    }),
  );
  // State-changing: store a scan result (the JSON of `portwarden scan --json`). Token required.
  app.post('/api/scans', async (request, reply) => {
    const store = sources.store;
    if (!store) return reply.code(409).send({ error: 'no watch database: start serve with --db' });
    const body = request.body as { hosts?: { address?: string }[] } | null;
    if (!body || !Array.isArray(body.hosts))
      return reply.code(400).send({ error: 'expected the JSON of `portwarden scan --json`' });
    const targets = body.hosts.map((h) => h.address ?? '?').join(', ');
    store.recordScan(Date.now(), targets, body);
    return reply.code(201).send({ stored: true, targets });
  });
  return app;
}
