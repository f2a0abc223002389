// The programs page (served from /programs.js, after app.js): prompts of `watch --programs ask` with
// one button per answer, the per-program log and the decisions. It polls /api/programs every second and
// redraws only when the data changed, so a new prompt appears without a reload. DOM calls only, no
// innerHTML of data. Answers are POSTs: the server wants its token (open the page once with ?token=).
'use strict';

(() => {
  if (document.body.dataset.page !== 'programs') return;

  const LABELS = {
    'allow-once': 'Allow once',
    'allow-destination': 'Always to this destination',
    'allow-port': 'Always to this port',
    'allow-always': 'Always',
    deny: 'Deny',
    'deny-always': 'Deny always',
  };

  function node(tag, attrs, ...children) {
    const n = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined) continue;
      if (key === 'class') n.className = value;
      else n.setAttribute(key, String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      n.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return n;
  }

  function table(testid, headers, rows) {
    return node(
      'table',
      { 'data-testid': testid },
      node(
        'thead',
        {},
        node(
          'tr',
          {},
          headers.map((h) => node('th', {}, h)),
        ),
      ),
      node(
        'tbody',
        {},
        rows.map((cells) =>
          node(
            'tr',
            {},
            cells.map((c) => node('td', {}, c ?? '')),
          ),
        ),
      ),
    );
  }

  const where = (p) =>
    `${p.protocol} ${p.remoteAddress.includes(':') ? `[${p.remoteAddress}]` : p.remoteAddress}:${p.remotePort}`;

  let status = '';

  async function answer(id, value) {
    const response = await fetch(`/api/programs/prompts/${id}`, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ answer: value }),
    });
    const body = await response.json().catch(() => ({}));
    status = response.ok
      ? `prompt ${id}: ${value}`
      : response.status === 401
        ? 'answering needs the token: open this page once with ?token=<the token serve printed>'
        : `prompt ${id}: ${body.error || `HTTP ${response.status}`}`;
    last = '';
    await refresh();
  }

  function promptCard(p) {
    return node(
      'section',
      { class: 'prompt', 'data-testid': `prompt-${p.id}`, 'data-exe': p.program.exe },
      node(
        'h3',
        {},
        `${p.program.exe} wants ${where(p)}`,
        p.changed ? node('span', { class: 'sev sev-high' }, ' changed since its last decision') : null,
      ),
      node(
        'p',
        { class: 'muted' },
        `pid ${p.program.pid} · user ${p.program.user ?? '?'} · ${p.program.unit ?? p.program.container ?? 'no unit'} · sha256 ${(p.program.sha256 ?? '?').slice(0, 16)}… · denied at ${p.deadline} unless answered`,
      ),
      node('p', { class: 'muted' }, p.program.cmdline ?? ''),
      node(
        'p',
        {},
        Object.entries(LABELS).map(([value, label]) => {
          const button = node('button', { type: 'button', 'data-answer': value }, label);
          button.addEventListener('click', () => void answer(p.id, value));
          return button;
        }),
      ),
    );
  }

  function render(data) {
    const content = document.getElementById('content');
    if (!data.available) {
      content.replaceChildren(
        node(
          'p',
          { class: 'muted' },
          'No watch database: run `portwarden watch --programs ask` and serve with --db.',
        ),
      );
      content.dataset.state = 'ready';
      return;
    }
    content.replaceChildren(
      node('p', { role: 'status', 'data-testid': 'status' }, status),
      node('h2', {}, `Waiting for an answer (${data.prompts.length})`),
      data.prompts.length === 0
        ? node('p', { class: 'muted', 'data-testid': 'no-prompts' }, 'No program is waiting.')
        : node('div', { 'data-testid': 'prompts' }, data.prompts.map(promptCard)),
      node('h2', {}, 'Programs'),
      table(
        'programs',
        ['program', 'allowed', 'denied', 'first seen', 'last seen', 'destinations'],
        data.programs.map((s) => [
          s.exe,
          s.allowed,
          s.denied,
          s.firstSeen,
          s.lastSeen,
          s.destinations.map(where).join(', '),
        ]),
      ),
      node('h2', {}, 'Decisions'),
      table(
        'decisions',
        ['id', 'program', 'verdict', 'scope', 'destination', 'sha256', 'at'],
        data.decisions.map((d) => [
          d.id,
          d.exe,
          d.verdict,
          d.scope,
          d.protocol ? `${d.protocol} ${d.remoteAddress ?? '*'}:${d.remotePort}` : 'any',
          (d.sha256 ?? '?').slice(0, 16),
          d.at,
        ]),
      ),
      node('h2', {}, 'Recent connections'),
      table(
        'connections',
        ['at', 'verdict', 'program', 'destination', 'reason'],
        data.connections.map((c) => [c.at, c.verdict, c.program ? c.program.exe : '?', where(c), c.reason]),
      ),
    );
    content.dataset.state = 'ready';
  }

  let last = '';
  async function refresh() {
    try {
      const response = await fetch('/api/programs', { credentials: 'same-origin' });
      const text = await response.text();
      if (text !== last) {
        last = text;
        render(JSON.parse(text));
      }
    } catch (error) {
      status = `Could not load: ${error.message}`;
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    void refresh();
    setInterval(() => void refresh(), 1000);
  });
})();
