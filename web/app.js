// The dashboard's only script (served from /app.js; the CSP forbids inline script). Each page has a
// data-page attribute; this file fetches the page's /api/ resource and renders it with DOM calls only
// (no innerHTML of data), so nothing from the machine can inject markup.
'use strict';

const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'];

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
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function show(...nodes) {
  const content = document.getElementById('content');
  content.replaceChildren(...nodes);
  // tests and scripts wait for this instead of polling the text
  content.dataset.state = 'ready';
}

function severity(value) {
  return el('span', { class: `sev sev-${value}` }, value || '');
}

/** A table whose headers sort it (click again to reverse) and an optional filter box above it. */
function sortableTable(columns, rows, options) {
  const table = el('table', { 'data-testid': options && options.testid });
  const head = el('tr');
  const body = el('tbody');
  let sortIndex = -1;
  let ascending = true;
  let filter = '';
  const render = () => {
    let shown = rows.filter(
      (row) =>
        !filter ||
        columns.some((c) =>
          String(c.value(row) ?? '')
            .toLowerCase()
            .includes(filter),
        ),
    );
    if (sortIndex >= 0) {
      const col = columns[sortIndex];
      shown = [...shown].sort((a, b) => {
        const x = col.sortValue ? col.sortValue(a) : col.value(a);
        const y = col.sortValue ? col.sortValue(b) : col.value(b);
        const order =
          typeof x === 'number' && typeof y === 'number'
            ? x - y
            : String(x ?? '').localeCompare(String(y ?? ''));
        return ascending ? order : -order;
      });
    }
    body.replaceChildren(
      ...shown.map((row) =>
        el(
          'tr',
          {},
          columns.map((c) => el('td', {}, c.render ? c.render(row) : (c.value(row) ?? ''))),
        ),
      ),
    );
    const count = document.getElementById('row-count');
    if (count) count.textContent = `${shown.length} of ${rows.length}`;
  };
  columns.forEach((column, index) => {
    const th = el('th', { scope: 'col' }, column.title);
    th.addEventListener('click', () => {
      ascending = sortIndex === index ? !ascending : true;
      sortIndex = index;
      for (const other of head.children) other.removeAttribute('aria-sort');
      th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
      render();
    });
    head.append(th);
  });
  table.append(el('thead', {}, head), body);
  render();
  if (!options || !options.filter) return table;
  const box = el('input', { type: 'search', placeholder: options.filter, 'aria-label': options.filter });
  box.addEventListener('input', () => {
    filter = box.value.trim().toLowerCase();
    render();
  });
  return el('div', {}, box, el('span', { id: 'row-count', class: 'muted' }), table);
}

function card(label, value, cls) {
  return el(
    'div',
    { class: 'card' },
    el('div', { class: `n ${cls || ''}` }, value),
    el('div', { class: 'muted' }, label),
  );
}

const pages = {
  async overview() {
    const o = await api('/api/overview');
    document.getElementById('host').textContent = `${o.host} · portwarden ${o.version}`;
    const findings = el(
      'div',
      { class: 'cards', 'data-testid': 'findings-by-severity' },
      SEVERITIES.map((s) => card(s, o.findings[s] || 0, `sev-${s}`)),
    );
    const exposure = el(
      'div',
      { class: 'cards', 'data-testid': 'exposure' },
      card('listeners', o.listeners),
      Object.entries(o.exposure).map(([reach, n]) => card(`reachable: ${reach}`, n)),
    );
    show(
      el('h2', {}, 'Exposure'),
      exposure,
      el('h2', {}, 'Findings by severity'),
      findings,
      el(
        'p',
        { class: 'muted' },
        `Profile ${o.profile}; firewall tables: ${o.firewall.length ? o.firewall.join(', ') : 'none'}; policy: ${o.policy ? o.policy.name : 'none'}; watch history: ${o.watching ? 'yes' : 'no'}. Generated ${o.generatedAt}.`,
      ),
    );
  },
  async listeners() {
    const { listeners } = await api('/api/listeners');
    const riskOrder = (r) => (r ? SEVERITIES.indexOf(r) : 9);
    show(
      sortableTable(
        [
          { title: 'Proto', value: (r) => r.protocol },
          { title: 'Address', value: (r) => r.localAddress },
          { title: 'Port', value: (r) => r.localPort },
          { title: 'Service', value: (r) => r.service },
          { title: 'Exposure', value: (r) => r.exposure },
          {
            title: 'Reachable',
            value: (r) =>
              r.reachable === 'yes' && r.reachableVia.length > 0
                ? `yes (${r.reachableVia.join(', ')})`
                : r.reachable,
          },
          {
            title: 'Risk',
            value: (r) => r.risk,
            sortValue: (r) => riskOrder(r.risk),
            render: (r) => severity(r.risk),
          },
          { title: 'Process', value: (r) => (r.process ? `${r.process} (${r.pid})` : '') },
          { title: 'User', value: (r) => r.user },
          { title: 'Unit / container', value: (r) => r.unit || r.container || '' },
        ],
        listeners,
        { filter: 'filter: port, process, service…', testid: 'listeners' },
      ),
    );
  },
  async findings() {
    const { findings } = await api('/api/findings');
    if (findings.length === 0) return show(el('p', {}, 'No findings.'));
    show(
      sortableTable(
        [
          {
            title: 'Severity',
            value: (f) => f.severity,
            sortValue: (f) => SEVERITIES.indexOf(f.severity),
            render: (f) => severity(f.severity),
          },
          { title: 'Rule', value: (f) => f.rule },
          {
            title: 'Where',
            value: (f) => (f.port !== null ? `${f.protocol}/${f.port} ${f.address || ''}` : ''),
          },
          { title: 'Finding', value: (f) => f.message },
          { title: 'Fix', value: (f) => f.fix, render: (f) => el('code', {}, f.fix) },
        ],
        findings,
        { filter: 'filter findings…', testid: 'findings' },
      ),
    );
  },
  async history() {
    const h = await api('/api/history');
    if (!h.available)
      return show(
        el(
          'p',
          {},
          'No watch database: start `portwarden serve --db <watch.db>` (or run `portwarden watch`).',
        ),
      );
    show(
      el('h2', {}, 'Listeners and knocks over time'),
      timeline(h.snapshots, h.knocks),
      el(
        'p',
        { class: 'legend muted' },
        'black line: listeners · orange line: exposed listeners · red bars: knocks',
      ),
      el('h2', {}, 'Events'),
      sortableTable(
        [
          { title: 'When', value: (e) => e.at, sortValue: (e) => e.at },
          { title: 'Event', value: (e) => e.kind },
          { title: 'What', value: (e) => e.message },
        ],
        h.events,
        { filter: 'filter events…', testid: 'events' },
      ),
    );
  },
  async policy() {
    const params = new URLSearchParams(location.search);
    const p = await api(`/api/policy?target=${encodeURIComponent(params.get('target') || 'nftables')}`);
    if (!p.available) return show(el('p', {}, 'No policy: start `portwarden serve --policy <policy.yaml>`.'));
    const select = el(
      'select',
      { 'aria-label': 'target' },
      p.targets.map((t) => {
        const option = el('option', { value: t }, t);
        if (t === p.target) option.selected = true;
        return option;
      }),
    );
    select.addEventListener('change', () => {
      location.search = `?target=${encodeURIComponent(select.value)}`;
    });
    const compiled = p.error
      ? el('p', { class: 'sev-high' }, p.error)
      : el(
          'div',
          {},
          p.compiled.map((f) =>
            el(
              'div',
              {},
              p.compiled.length > 1 ? el('h3', {}, `file ${f.suffix || '(main)'}`) : null,
              el('pre', { 'data-testid': 'compiled' }, f.content),
            ),
          ),
        );
    show(
      el(
        'div',
        { class: 'columns' },
        el(
          'div',
          {},
          el('h2', {}, `${p.name} (${p.file})`),
          el('pre', { 'data-testid': 'policy-text' }, p.text),
        ),
        el('div', {}, el('h2', {}, 'Compiled for ', select), compiled),
      ),
    );
  },
  async scans() {
    const s = await api('/api/scans');
    if (!s.available) return show(el('p', {}, 'No watch database: scans are stored there.'));
    if (s.scans.length === 0)
      return show(
        el(
          'p',
          {},
          'No stored scans. POST the JSON of `portwarden scan --json` to /api/scans (with the token).',
        ),
      );
    // the list holds counts only; one scan's result is fetched: the chosen one, else the newest
    const chosen = Number(new URLSearchParams(location.search).get('id')) || s.scans[0].id;
    const { scan, data } = await api(`/api/scans/${encodeURIComponent(chosen)}`);
    show(
      el('h2', {}, 'Stored scans'),
      sortableTable(
        [
          { title: 'When', value: (r) => r.at, sortValue: (r) => r.at },
          {
            title: 'Targets',
            value: (r) => r.targets,
            render: (r) => el('a', { href: `/scans?id=${r.id}` }, r.targets),
          },
          { title: 'Hosts', value: (r) => r.hosts, sortValue: (r) => r.hosts },
          { title: 'Open ports', value: (r) => r.open, sortValue: (r) => r.open },
          { title: 'Size', value: (r) => `${Math.ceil(r.bytes / 1024)} KiB`, sortValue: (r) => r.bytes },
        ],
        s.scans,
        { testid: 'scan-list' },
      ),
      el(
        'section',
        {},
        el('h2', {}, `${scan.at} · ${scan.targets}`),
        sortableTable(
          [
            { title: 'Host', value: (r) => r.host },
            { title: 'Port', value: (r) => `${r.port}/${r.protocol}`, sortValue: (r) => r.port },
            { title: 'State', value: (r) => r.state },
            { title: 'Service', value: (r) => r.service || '' },
          ],
          (data.hosts || []).flatMap((h) => (h.ports || []).map((p) => ({ host: h.address, ...p }))),
          { testid: 'scan' },
        ),
      ),
    );
  },
};

/** An SVG timeline: listener and exposed counts from snapshots as lines, knocks per bucket as bars. */
function timeline(snapshots, knocks) {
  const ns = 'http://www.w3.org/2000/svg';
  const width = 900;
  const height = 220;
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('class', 'chart');
  svg.setAttribute('role', 'img');
  svg.setAttribute('data-testid', 'timeline');
  // times come as ISO 8601 strings: milliseconds for the arithmetic
  const ms = (t) => Date.parse(t);
  const times = [...snapshots.map((s) => ms(s.at)), ...knocks.map((k) => ms(k.at))];
  if (times.length === 0) {
    const text = document.createElementNS(ns, 'text');
    text.setAttribute('x', '20');
    text.setAttribute('y', '30');
    text.textContent = 'no data yet';
    svg.append(text);
    return svg;
  }
  const t0 = Math.min(...times);
  const t1 = Math.max(...times, t0 + 1);
  const x = (t) => 40 + ((t - t0) / (t1 - t0)) * (width - 60);
  const buckets = 60;
  const counts = new Array(buckets).fill(0);
  for (const k of knocks)
    counts[Math.min(buckets - 1, Math.floor(((ms(k.at) - t0) / (t1 - t0)) * buckets))]++;
  const maxY = Math.max(1, ...snapshots.map((s) => s.count), ...counts);
  const y = (v) => height - 25 - (v / maxY) * (height - 45);
  counts.forEach((n, i) => {
    if (n === 0) return;
    const bar = document.createElementNS(ns, 'rect');
    const left = 40 + (i / buckets) * (width - 60);
    bar.setAttribute('x', String(left));
    bar.setAttribute('width', String(Math.max(2, (width - 60) / buckets - 2)));
    bar.setAttribute('y', String(y(n)));
    bar.setAttribute('height', String(height - 25 - y(n)));
    bar.setAttribute('fill', '#c0262d');
    bar.setAttribute('opacity', '0.45');
    bar.setAttribute('data-series', 'knocks');
    svg.append(bar);
  });
  for (const [key, color] of [
    ['count', '#1d1f21'],
    ['exposed', '#b26b00'],
  ]) {
    const line = document.createElementNS(ns, 'polyline');
    line.setAttribute(
      'points',
      snapshots.map((s) => `${x(ms(s.at)).toFixed(1)},${y(s[key]).toFixed(1)}`).join(' '),
    );
    line.setAttribute('fill', 'none');
    line.setAttribute('stroke', color);
    line.setAttribute('stroke-width', '2');
    line.setAttribute('data-series', key === 'count' ? 'listeners' : 'exposed');
    svg.append(line);
  }
  for (const [value, label] of [
    [0, '0'],
    [maxY, String(maxY)],
  ]) {
    const text = document.createElementNS(ns, 'text');
    text.setAttribute('x', '4');
    text.setAttribute('y', String(y(value) + 4));
    text.setAttribute('font-size', '11');
    text.textContent = label;
    svg.append(text);
  }
  return svg;
}

document.addEventListener('DOMContentLoaded', () => {
  const page = document.body.dataset.page;
  for (const link of document.querySelectorAll('[data-nav]'))
    if (link.dataset.nav === page) link.classList.add('active');
  const render = pages[page];
  if (!render) return;
  render().catch((error) =>
    show(el('p', { class: 'sev-high', role: 'alert' }, `Could not load: ${error.message}`)),
  );
});
