import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type pg from 'pg';
import { z } from 'zod';
import { changesSince, hostDetail, hostsExposing, hostsRunning, listHosts } from './queries.ts';
import { ingestBatchSchema } from './schema.ts';
import { HostRemovedError, type FleetStore } from './store.ts';

/**
 * The fleet's part of the dashboard: the agents' ingest endpoint (authenticated by each host's own
 * token, not the dashboard token), the hosts page and the fleet API. Registered by buildServer as a
 * plugin when serve runs on PostgreSQL.
 */

export const INGEST_PATH = '/api/fleet/ingest';
export const INGEST_BODY_LIMIT = 16 * 1024 * 1024;
const WEB = new URL('../../web/', import.meta.url);

function badRequest(reply: FastifyReply, issues: z.core.$ZodIssue[], what: string): FastifyReply {
  const issue = issues[0];
  const where = issue?.path.length ? ` at ${issue.path.join('.')}` : '';
  return reply.code(400).send({ error: `${what}${where}: ${issue?.message ?? 'invalid'}` });
}

const exposingQuery = z.strictObject({
  protocol: z.enum(['tcp', 'udp']).default('tcp'),
  port: z.coerce.number().int().min(0).max(65535),
  /** `?reachable=1`: only where the host's firewall lets a peer through (or might). */
  reachable: z.enum(['0', '1']).optional(),
});
const runningQuery = z.strictObject({
  name: z.string().min(1).max(200),
  address: z.string().max(100).optional(),
});
const changesQuery = z.strictObject({
  since: z.iso.datetime({ offset: true }).or(z.iso.date()),
  group: z.string().max(200).optional(),
  host: z.string().max(200).optional(),
});

function query(request: FastifyRequest): Record<string, unknown> {
  // the dashboard token may ride in the query string; it is not a query parameter of ours
  const { token: _token, ...rest } = request.query as Record<string, unknown>;
  return rest;
}

export interface FleetPlugin {
  register: (app: FastifyInstance) => void;
  /** Requests this plugin authenticates itself: the dashboard token is not asked for them. */
  authenticates: (request: FastifyRequest) => boolean;
}

export function fleetPlugin(pool: pg.Pool, store: FleetStore): FleetPlugin {
  return {
    authenticates: (request) => request.method === 'POST' && request.url.split('?')[0] === INGEST_PATH,
    register: (app) => registerFleetRoutes(app, pool, store),
  };
}

function registerFleetRoutes(app: FastifyInstance, pool: pg.Pool, store: FleetStore): void {
  // a host with 20,000 listeners sends ~5 MB in one snapshot: more than the dashboard's limit for a scan
  app.post(INGEST_PATH, { bodyLimit: INGEST_BODY_LIMIT }, async (request, reply) => {
    const auth = request.headers.authorization;
    const host = auth?.startsWith('Bearer ') ? await store.hostForToken(auth.slice(7)) : null;
    if (!host)
      return reply
        .code(401)
        .send({ error: 'a registered host token is required (Authorization: Bearer pwh_…)' });
    const parsed = ingestBatchSchema.safeParse(request.body);
    if (!parsed.success) return badRequest(reply, parsed.error.issues, 'not an agent batch');
    try {
      const result = await store.ingest(host.id, parsed.data);
      return await reply.send({ host: host.name, ...result });
    } catch (error) {
      if (error instanceof HostRemovedError) return reply.code(401).send({ error: 'this host was removed' });
      throw error;
    }
  });
  const html = readFileSync(new URL('hosts.html', WEB), 'utf8');
  app.get('/hosts', (_request, reply) => reply.type('text/html; charset=utf-8').send(html));
  const script = readFileSync(new URL('fleet.js', WEB), 'utf8');
  app.get('/fleet.js', (_request, reply) => reply.type('application/javascript; charset=utf-8').send(script));
  app.get('/api/fleet/hosts', async (request) => {
    const group = (request.query as Record<string, string | undefined>)['group'];
    return { hosts: await listHosts(pool, group) };
  });
  app.get('/api/fleet/hosts/:name', async (request, reply) => {
    const detail = await hostDetail(pool, (request.params as Record<string, string>)['name'] ?? '');
    return detail ? reply.send(detail) : reply.code(404).send({ error: 'no host with this name' });
  });
  app.get('/api/fleet/exposing', async (request, reply) => {
    const parsed = exposingQuery.safeParse(query(request));
    if (!parsed.success) return badRequest(reply, parsed.error.issues, 'expected ?protocol=tcp&port=23');
    const { protocol, port, reachable } = parsed.data;
    return { listeners: await hostsExposing(pool, protocol, port, { reachable: reachable === '1' }) };
  });
  app.get('/api/fleet/running', async (request, reply) => {
    const parsed = runningQuery.safeParse(query(request));
    if (!parsed.success)
      return badRequest(reply, parsed.error.issues, 'expected ?name=redis&address=0.0.0.0');
    return { listeners: await hostsRunning(pool, parsed.data.name, parsed.data.address) };
  });
  app.get('/api/fleet/changes', async (request, reply) => {
    const parsed = changesQuery.safeParse(query(request));
    if (!parsed.success)
      return badRequest(reply, parsed.error.issues, 'expected ?since=2026-12-01T00:00:00Z&group=web');
    return { events: await changesSince(pool, parsed.data) };
  });
}
