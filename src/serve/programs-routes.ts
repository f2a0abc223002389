import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { ProgramStore } from '../programs/store.ts';
import { ANSWERS, isAnswer } from '../programs/types.ts';
import type { DashboardSources } from './server.ts';

/**
 * The dashboard's programs page and its API (watch --programs): pending prompts, the per-program log
 * and the decisions, and answers to prompts (POST, so the server's token check applies). The page
 * polls /api/programs, so a new prompt shows without a reload.
 */

const WEB = new URL('../../web/', import.meta.url);

export function registerProgramsRoutes(app: FastifyInstance, sources: DashboardSources): void {
  const html = readFileSync(new URL('page.html', WEB), 'utf8')
    .replaceAll('{{page}}', 'programs')
    .replaceAll('{{title}}', 'Programs')
    .replace('</head>', '  <script src="/programs.js" defer></script>\n  </head>');
  const script = readFileSync(new URL('programs.js', WEB), 'utf8');
  app.get('/programs', (_request, reply) => reply.type('text/html; charset=utf-8').send(html));
  app.get('/programs.js', (_request, reply) =>
    reply.type('application/javascript; charset=utf-8').send(script),
  );
  const programs = sources.store ? new ProgramStore(sources.store.db) : null;
  app.get('/api/programs', (_request, reply) => {
    if (!programs)
      return reply.send({ available: false, prompts: [], programs: [], decisions: [], connections: [] });
    return reply.send({
      available: true,
      answers: ANSWERS,
      prompts: programs.pendingPrompts(),
      programs: programs.summary(),
      decisions: programs.decisions().map((d) => ({ ...d, at: new Date(d.at).toISOString() })),
      connections: programs.connections({ limit: 100 }),
    });
  });
  app.post('/api/programs/prompts/:id', (request, reply) => {
    if (!programs) return reply.code(409).send({ error: 'no watch database: start serve with --db' });
    const id = Number((request.params as Record<string, string>)['id']);
    const answer = (request.body as Record<string, unknown> | null)?.['answer'];
    if (!Number.isSafeInteger(id) || id < 1)
      return reply.code(400).send({ error: 'the prompt id is not a number' });
    if (!isAnswer(answer)) return reply.code(400).send({ error: `answer is one of ${ANSWERS.join(', ')}` });
    if (!programs.answer(id, answer, 'dashboard', Date.now()))
      return reply.code(409).send({ error: `prompt ${id} is not pending (answered already, or unknown)` });
    return reply.send({ id, answer, accepted: true });
  });
}
