// The hosts page (fleet mode): the host list, one host's detail (?name=), and the fleet questions.
// DOM calls only, never innerHTML of data: host names and messages come from agents.
'use strict';

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (key === 'class') node.className = value;
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path) {
  const response = await fetch(path, { credentials: 'same-origin' });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `${path}: HTTP ${response.status}`);
  return body;
}

function table(testid, columns, rows) {
  return el(
    'table',
    { 'data-testid': testid },
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        columns.map(([title]) => el('th', {}, title)),
      ),
    ),
    el(
      'tbody',
      {},
      rows.map((row) =>
        el(
          'tr',
          {},
          columns.map(([, value]) => el('td', {}, value(row) ?? '')),
        ),
      ),
    ),
  );
}

function shownTime(value) {
  return value ? new Date(value).toLocaleString() : 'never';
}

function hostLink(name) {
  return el('a', { href: `/hosts?name=${encodeURIComponent(name)}` }, name);
}

function ready(target, ...nodes) {
  target.replaceChildren(...nodes);
  target.dataset.state = 'ready';
}

const LISTENER_COLUMNS = [
  ['Host', (r) => hostLink(r.host)],
  ['Group', (r) => r.group],
  ['Protocol', (r) => r.protocol],
  ['Address', (r) => r.localAddress],
  ['Port', (r) => r.localPort],
  ['Bound to', (r) => r.exposure],
  ['Reachable', (r) => r.reachable],
  ['Service', (r) => r.service],
  ['Process', (r) => r.process],
];

async function renderHosts(content) {
  const { hosts } = await api('/api/fleet/hosts');
  if (hosts.length === 0) {
    ready(content, el('p', {}, 'No hosts yet: register one with `portwarden fleet add-host NAME --db …`.'));
    return;
  }
  ready(
    content,
    table(
      'hosts',
      [
        ['Host', (h) => hostLink(h.name)],
        ['Group', (h) => h.group],
        ['Last seen', (h) => shownTime(h.lastSeen)],
        ['Listeners', (h) => h.listeners],
        ['Exposed', (h) => h.exposed],
        ['Drift', (h) => h.drift],
        ['Open findings', (h) => h.openFindings],
      ],
      hosts,
    ),
  );
}

async function renderHost(content, name) {
  const since = new Date(Date.now() - 30 * 86400000).toISOString();
  const [detail, changes] = await Promise.all([
    api(`/api/fleet/hosts/${encodeURIComponent(name)}`),
    api(`/api/fleet/changes?since=${encodeURIComponent(since)}&host=${encodeURIComponent(name)}`),
  ]);
  const h = detail.host;
  ready(
    content,
    el('h2', { 'data-testid': 'host-name' }, h.name),
    el(
      'p',
      {},
      `group ${h.group || '(none)'} · last seen ${shownTime(h.lastSeen)} · ${h.listeners} listeners, ${h.exposed} exposed · drift ${h.drift} · ${h.openFindings} open findings`,
    ),
    el('h3', {}, 'Listeners'),
    table('host-listeners', LISTENER_COLUMNS.slice(2), detail.listeners),
    el('h3', {}, 'Findings'),
    table(
      'host-findings',
      [
        ['Severity', (f) => f.severity],
        ['Rule', (f) => f.rule],
        ['Finding', (f) => f.message],
      ],
      detail.findings,
    ),
    el('h3', {}, 'Changes in the last 30 days'),
    table(
      'host-changes',
      [
        ['When', (e) => shownTime(e.at)],
        ['Kind', (e) => e.kind],
        ['What', (e) => e.message],
      ],
      changes.events,
    ),
    el('p', { class: 'muted' }, `${detail.history.length} hourly history points in the last 30 days`),
  );
}

const QUESTIONS = {
  'q-exposing': (form) =>
    `/api/fleet/exposing?protocol=${encodeURIComponent(form.protocol.value)}&port=${encodeURIComponent(form.port.value)}`,
  'q-running': (form) =>
    `/api/fleet/running?name=${encodeURIComponent(form.name.value)}` +
    (form.address.value ? `&address=${encodeURIComponent(form.address.value)}` : ''),
  'q-changes': (form) =>
    `/api/fleet/changes?since=${encodeURIComponent(form.since.value)}` +
    (form.group.value ? `&group=${encodeURIComponent(form.group.value)}` : ''),
};

async function answer(id, form) {
  const target = document.getElementById('answer');
  target.dataset.state = 'loading';
  try {
    const body = await api(QUESTIONS[id](form));
    if (body.events) {
      ready(
        target,
        el('p', {}, `${body.events.length} changes`),
        table(
          'answer-table',
          [
            ['When', (e) => shownTime(e.at)],
            ['Host', (e) => hostLink(e.host)],
            ['Kind', (e) => e.kind],
            ['What', (e) => e.message],
          ],
          body.events,
        ),
      );
    } else {
      const hosts = new Set(body.listeners.map((l) => l.host));
      ready(
        target,
        el('p', {}, `${hosts.size} hosts, ${body.listeners.length} listeners`),
        table('answer-table', LISTENER_COLUMNS, body.listeners),
      );
    }
  } catch (error) {
    ready(target, el('p', { class: 'sev-high', role: 'alert' }, error.message));
  }
}

document.addEventListener('DOMContentLoaded', () => {
  const content = document.getElementById('content');
  const name = new URLSearchParams(location.search).get('name');
  (name ? renderHost(content, name) : renderHosts(content)).catch((error) =>
    ready(content, el('p', { class: 'sev-high', role: 'alert' }, `Could not load: ${error.message}`)),
  );
  for (const id of Object.keys(QUESTIONS)) {
    const form = document.getElementById(id);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      void answer(id, form);
    });
  }
});
