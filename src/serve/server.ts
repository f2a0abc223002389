import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { auditFromData, type AuditData, type AuditReport } from '../audit/run.ts';
import { BACKENDS, compilePolicy } from '../compile/registry.ts';
import type { Socket } from '../inventory/types.ts';
import type { Policy } from '../policy/types.ts';
import { listenersOf } from '../inventory/listeners.ts';
import type { Reach } from '../audit/exposure.ts';
import { reachabilityFrom } from '../audit/reachability.ts';
import type { WatchStore } from '../watch/store.ts';
import { registerProgramsRoutes } from './programs-routes.ts';

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
  /** Ask the token for every request, loopback GETs too (fleet mode: a TLS proxy in front looks local). */
  alwaysToken?: boolean;
  /** More routes (the fleet's), some authenticating their own requests instead of by the token. */
  plugins?: readonly ServerPlugin[];
}

export interface ServerPlugin {
  register: (app: FastifyInstance) => void;
  authenticates?: (request: FastifyRequest) => boolean;
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

/** The token a request presents; null when its cookie cannot be decoded (a 400, not a crash). */
function tokenOf(request: FastifyRequest): string | undefined | null {
  const auth = request.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7);
  const cookie = /(?:^|;\s*)pw_token=([^;]+)/.exec(request.headers.cookie ?? '');
  if (cookie?.[1]) {
    try {
      return decodeURIComponent(cookie[1]);
    } catch {
      return null;
    }
  }
  const query = (request.query as Record<string, string | undefined>)['token'];
  return query;
}

/** A stored scan may be at most this big: a /22 with a few open ports each fits. */
export const SCAN_BODY_LIMIT = 2 * 1024 * 1024;
/** JSON nested deeper than this is refused before parsing: no result of `scan --json` comes close. */
const MAX_JSON_DEPTH = 64;

/** The nesting depth of a JSON text, counted without parsing it (brackets inside strings skipped). */
function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) max = Math.max(max, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/** The JSON of `portwarden scan --json`, as far as the dashboard reads it; other keys are kept. */
const ScanBody = z.looseObject({
  hosts: z.array(
    z.looseObject({
      address: z.string().max(100),
      ports: z.array(z.looseObject({ state: z.string() })).optional(),
    }),
  ),
});

/** A client error with a status code, answered as JSON by the error handler. */
function httpError(statusCode: number, message: string): Error & { statusCode: number } {
  return Object.assign(new Error(message), { statusCode });
}

/** Keys that could reach an object's prototype in code that merges parsed JSON (fastify refuses them too). */
function refusePoisoning(key: string, value: unknown): unknown {
  const prototype = typeof value === 'object' && value !== null && Object.hasOwn(value, 'prototype');
  if (key === '__proto__' || (key === 'constructor' && prototype))
    throw httpError(400, `the key "${key}" is refused in JSON bodies`);
  return value;
}

function parseJsonBody(text: string): unknown {
  if (jsonDepth(text) > MAX_JSON_DEPTH)
    throw httpError(400, `JSON nested deeper than ${MAX_JSON_DEPTH} levels is refused`);
  try {
    return JSON.parse(text, refusePoisoning);
  } catch (error) {
    if (error instanceof Error && 'statusCode' in error) throw error;
    throw httpError(400, 'the body is not valid JSON');
  }
}

/** What a failed request gets: the status and a JSON error that never echoes the request. */
function clientError(error: Error & { statusCode?: number; code?: string }): {
  status: number;
  message: string;
} {
  const status = error.statusCode ?? 500;
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return {
      status,
      message: `the body is larger than ${SCAN_BODY_LIMIT / 1024 / 1024} MiB, the limit for one stored scan: store fewer targets per scan`,
    };
  if (status >= 500) return { status: 500, message: 'internal error' };
  if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
    return { status, message: 'send JSON (content-type: application/json)' };
  if (error.code?.startsWith('FST_ERR_CTP_EMPTY')) return { status, message: 'the body is empty' };
  return { status, message: error.code?.startsWith('FST_') ? 'bad request' : error.message };
}

function secure(reply: FastifyReply): void {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) void reply.header(name, value);
}

/**
 * What is wrong with the Host of a request, if anything. DNS rebinding: a loopback server answers only
 * to loopback names.
 */
function hostProblem(
  request: FastifyRequest,
  loopbackOnly: boolean,
): { status: number; message: string } | null {
  const host = request.headers.host;
  if (!host) return { status: 400, message: 'a Host header is required' };
  const name = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  if (loopbackOnly && !isLoopback(name))
    return { status: 421, message: 'misdirected request: use a loopback address' };
  return null;
}

/**
 * A listener row for the listeners page: inventory owner data joined with the audit's reachability,
 * in the vocabulary of `ports --json` (localAddress, localPort, reachable, reachableVia, ...).
 */
export interface ListenerRow {
  protocol: 'tcp' | 'udp';
  localAddress: string;
  localPort: number;
  exposure: Socket['exposure'];
  reachable: Reach;
  reachableVia: string[];
  reachableFrom: string[];
  reachableWhy: string | null;
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
  const reachOf = reachabilityFrom(report.exposure, { method: report.method, reason: data.rulesetReason });
  return [...listenersOf(data.sockets).values()].map((l) => {
    const p = l.processes[0];
    const reach = reachOf(l);
    return {
      protocol: l.protocol,
      localAddress: l.localAddress,
      localPort: l.localPort,
      exposure: l.exposure,
      reachable: reach.reachable,
      reachableVia: reach.via,
      reachableFrom: reach.onlyFrom,
      reachableWhy: reach.why,
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

function answerBadUrl(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
  loopbackOnly: boolean,
): void {
  secure(reply);
  const problem = hostProblem(request, loopbackOnly) ?? {
    status: error.statusCode ?? 400,
    message: 'bad request: the URL is not valid',
  };
  void reply.code(problem.status).send({ error: problem.message });
}

type Sources = ServeOptions['sources'];
type Current = () => Promise<{ data: AuditData; report: AuditReport }>;

/** Fastify with portwarden's JSON parser, error answers and Host check on its own 400s. */
function createApp(loopbackOnly: boolean): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: SCAN_BODY_LIMIT,
    // Node would answer a request without Host itself, with none of our headers: the hook does it
    http: { requireHostHeader: false },
    // fastify's own 400s (a URL it cannot decode) get our headers and Host check, and echo nothing
    frameworkErrors: (error, request, reply) => answerBadUrl(error, request, reply, loopbackOnly),
  });
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(String(body)));
    } catch (error) {
      done(error instanceof Error ? error : new Error(String(error)), undefined);
    }
  });
  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, _request, reply) => {
    const { status, message } = clientError(error);
    return reply.code(status).send({ error: message });
  });
  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ error: 'not found' }));
  return app;
}

/** The audit of this host, computed at most once per `cacheMs` (default 10 s) however many pages ask. */
function cachedAudit(options: ServeOptions): Current {
  let cached: { at: number; data: AuditData; report: AuditReport } | null = null;
  return async () => {
    if (cached && Date.now() - cached.at < (options.cacheMs ?? 10_000)) return cached;
    const data = await options.sources.auditData();
    const report = auditFromData(data, { policy: options.sources.policy?.policy ?? null });
    cached = { at: Date.now(), data, report };
    return cached;
  };
}

/**
 * The gate every request passes first: security headers, the Host check (DNS rebinding), and the
 * token — always for changes, and for reading too unless the server listens on loopback only. A
 * valid ?token= on a GET is remembered in a strict cookie, so pages and their API calls need no query.
 */
export function authorize(
  options: Pick<ServeOptions, 'token' | 'alwaysToken' | 'plugins'>,
  loopbackOnly: boolean,
) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
    secure(reply);
    const problem = hostProblem(request, loopbackOnly);
    if (problem) return reply.code(problem.status).send({ error: problem.message });
    if (options.plugins?.some((p) => p.authenticates?.(request))) return undefined;
    const needsToken = options.alwaysToken === true || !loopbackOnly || request.method !== 'GET';
    const given = needsToken ? tokenOf(request) : undefined;
    if (given === null) return reply.code(400).send({ error: 'the pw_token cookie is malformed' });
    if (needsToken && !sameToken(given, options.token)) {
      return reply
        .code(401)
        .send({ error: 'a token is required: Authorization: Bearer <token> or ?token=<token>' });
    }
    const query = (request.query as Record<string, string | undefined>)['token'];
    if (query !== undefined && sameToken(query, options.token) && request.method === 'GET') {
      void reply.header(
        'set-cookie',
        `pw_token=${encodeURIComponent(query)}; HttpOnly; SameSite=Strict; Path=/`,
      );
    }
    return undefined;
  };
}

/** The dashboard's pages and assets, read once at start. */
function registerPages(app: FastifyInstance): void {
  const template = readFileSync(new URL('page.html', WEB), 'utf8');
  for (const [path, page] of Object.entries(PAGES)) {
    const html = template.replaceAll('{{page}}', page.page).replaceAll('{{title}}', page.title);
    app.get(path, (_request, reply) => reply.type('text/html; charset=utf-8').send(html));
  }
  for (const [path, type] of Object.entries(ASSETS)) {
    const body = readFileSync(new URL(path.slice(1), WEB), 'utf8');
    app.get(path, (_request, reply) => reply.type(type).send(body));
  }
  // browsers ask for it on every page; no icon, and no 404 noise
  app.get('/favicon.ico', (_request, reply) => reply.code(204).send());
}

function overview(report: AuditReport, sources: Sources): Record<string, unknown> {
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
}

/** /api/overview, /api/listeners, /api/findings: the live audit. */
function registerAuditRoutes(app: FastifyInstance, sources: Sources, current: Current): void {
  app.get('/api/overview', async () => overview((await current()).report, sources));
  app.get('/api/listeners', async () => {
    const { data, report } = await current();
    return { listeners: listenerRows(data, report) };
  });
  app.get('/api/findings', async () => ({ findings: (await current()).report.findings }));
}

/** /api/history: watch's snapshots, events and knocks since a time. */
function registerHistoryRoute(app: FastifyInstance, sources: Sources): void {
  app.get('/api/history', (request, reply) => {
    const raw = (request.query as Record<string, string | undefined>)['since'];
    // an ISO 8601 time, as every time the API gives; milliseconds since the epoch are taken too
    const since = raw === undefined || raw === '' ? 0 : /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw);
    if (!Number.isFinite(since))
      return reply
        .code(400)
        .send({ error: `since "${raw ?? ''}" is not an ISO 8601 time, e.g. 2026-12-01T00:00:00Z` });
    const store = sources.store;
    if (!store) return reply.send({ available: false, snapshots: [], events: [], knocks: [] });
    return reply.send({
      available: true,
      snapshots: store.snapshots(since),
      events: store.events({ since, limit: 500 }),
      knocks: store.knocks(since, 5000),
    });
  });
}

function compiledFor(policy: NonNullable<Sources['policy']>, target: string, version: string) {
  const backend = BACKENDS.find((b) => b.name === target);
  if (!backend) return { compiled: null, error: `unknown target "${target}"` };
  try {
    return { compiled: compilePolicy(policy.policy, backend.name, version), error: null };
  } catch (e) {
    return { compiled: null, error: (e as Error).message };
  }
}

/** /api/policy: the policy's text and its ruleset for a target. */
function registerPolicyRoute(app: FastifyInstance, sources: Sources): void {
  app.get('/api/policy', (request, reply) => {
    const policy = sources.policy;
    if (!policy) return reply.send({ available: false });
    const target = (request.query as Record<string, string | undefined>)['target'] ?? 'nftables';
    const { compiled, error } = compiledFor(policy, target, sources.version);
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
}

/** /api/scans: stored scan results (summaries, one in full) and storing a new one (token required). */
function registerScanRoutes(app: FastifyInstance, sources: Sources): void {
  // summaries only: the results themselves can be megabytes each
  app.get('/api/scans', (_request, reply) =>
    reply.send({ available: sources.store !== null, scans: sources.store?.scans() ?? [] }),
  );
  app.get('/api/scans/:id', (request, reply) => {
    const id = Number((request.params as Record<string, string>)['id']);
    const scan = Number.isSafeInteger(id) ? sources.store?.scan(id) : undefined;
    if (!scan) return reply.code(404).send({ error: 'no stored scan with this id' });
    const { data, ...summary } = scan;
    // stored as validated JSON text: sent as is, never parsed and serialized again
    return reply
      .type('application/json; charset=utf-8')
      .send(`{"scan":${JSON.stringify(summary)},"data":${data}}`);
  });
  app.post('/api/scans', (request, reply) => {
    const store = sources.store;
    if (!store) return reply.code(409).send({ error: 'no watch database: start serve with --db' });
    const parsed = ScanBody.safeParse(request.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.length ? ` at ${issue.path.join('.')}` : '';
      return reply
        .code(400)
        .send({ error: `expected the JSON of \`portwarden scan --json\`${where}: ${issue?.message ?? ''}` });
    }
    const hosts = parsed.data.hosts;
    const shown = hosts.slice(0, 3).map((h) => h.address);
    const targets = hosts.length > 3 ? `${shown.join(', ')} and ${hosts.length - 3} more` : shown.join(', ');
    const open = hosts.reduce((n, h) => n + (h.ports ?? []).filter((p) => p.state === 'open').length, 0);
    const id = store.recordScan(Date.now(), targets, JSON.stringify(parsed.data), {
      hosts: hosts.length,
      open,
    });
    return reply.code(201).send({ stored: true, id, targets });
  });
}

/** The dashboard server: the auth gate first, then pages and API routes (one register function each). */
export function buildServer(options: ServeOptions): Promise<FastifyInstance> {
  const loopbackOnly = isLoopback(options.host);
  const app = createApp(loopbackOnly);
  app.addHook('onRequest', authorize(options, loopbackOnly));
  registerPages(app);
  registerAuditRoutes(app, options.sources, cachedAudit(options));
  registerHistoryRoute(app, options.sources);
  registerPolicyRoute(app, options.sources);
  registerScanRoutes(app, options.sources);
  registerProgramsRoutes(app, options.sources);
  for (const plugin of options.plugins ?? []) plugin.register(app);
  return Promise.resolve(app);
}
