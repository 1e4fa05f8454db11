/* SPDX-License-Identifier: GPL-2.0-or-later */
// The netflash dashboard: everything the server sends is data, so it is
// only ever put into the page as text (textContent), never as HTML.
'use strict';

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) {
    const td = document.createElement('td');
    if (c instanceof Node) td.appendChild(c); else td.textContent = c === undefined || c === null ? '' : String(c);
    tr.appendChild(td);
  }
  return tr;
}

function bar(done, total) {
  const wrap = el('span', undefined, 'progress');
  const b = el('div', undefined, 'bar');
  const f = el('div');
  const pct = total > 0 ? Math.min(100, Math.floor(done * 100 / total)) : 0;
  f.style.width = pct + '%';
  b.appendChild(f);
  b.title = total > 0 ? pct + '%' : '';
  wrap.appendChild(b);
  wrap.appendChild(el('span', total > 0 ? ' ' + pct + '%' : '', 'pct'));
  return wrap;
}

function eta(s) {
  if (s < 0) return '-';
  s = Math.round(s);
  return Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
}

function macLink(mac) {
  const a = el('a', mac);
  a.href = '#w=' + encodeURIComponent(mac);
  return a;
}

let releasedSeen = -1;
// Actions (docs/api.md "Actions"): shown to an admin session only; the
// MACs ticked in the fleet table, kept across its redraws.
const selected = new Set();
let canAct = false;
let lastWorkers = [];

// Multicast sessions (/api/sessions): members, how far their jobs are, and
// who left and why. Progress is the members' own, from the worker list.
function renderSessions(sessions) {
  const box = document.getElementById('sessions');
  box.hidden = sessions.length === 0;
  const tb = document.querySelector('#mc tbody');
  tb.replaceChildren();
  const byMac = new Map(lastWorkers.map(w => [w.mac, w]));
  for (const s of sessions.slice().reverse()) {
    const n = k => s.members.filter(m => m.state === k).length;
    let done = 0, total = 0, rate = 0, rated = 0;
    for (const m of s.members) {
      const w = byMac.get(m.mac);
      if (m.state !== 'running' || !w || w.job !== m.job) continue;
      if (w.total) { done += w.done; total += w.total; }
      // One stream feeds them all: the session's rate is its slowest member's.
      if (w.stage && w.mbps > 0) { rate = rated++ ? Math.min(rate, w.mbps) : w.mbps; }
    }
    const left = s.members.filter(m => m.state === 'failed').map(m => m.mac + ': ' + m.reason).join('; ');
    tb.appendChild(row([s.id, s.image, s.state + (s.end ? ' (' + s.end + ')' : ''), s.portbase,
      s.members.length + ' (' + n('done') + ' done, ' + n('failed') + ' failed, ' + n('running') + ' running)',
      total ? bar(done, total) : '-', rated ? rate.toFixed(1) + ' MB/s' : '-', left || '-']));
  }
}

function renderFleet(workers) {
  lastWorkers = workers;
  const counts = {};
  let mbps = 0;
  // A job just ended well: its bar joins the plot now, not at the next poll.
  const released = workers.filter(w => w.enrollment === 'released').length;
  if (releasedSeen >= 0 && released !== releasedSeen)
    getJSON('/api/jobs?limit=200').then(renderSpeeds).catch(() => {});
  releasedSeen = released;
  for (const w of workers) {
    counts[w.state] = (counts[w.state] || 0) + 1;
    if (w.stage) mbps += w.mbps;
  }
  const c = document.getElementById('counts');
  c.replaceChildren();
  c.appendChild(el('span', workers.length + ' workers'));
  for (const k of Object.keys(counts).sort()) c.appendChild(el('span', k + ': ' + counts[k]));
  c.appendChild(el('span', 'writing at ' + mbps.toFixed(1) + ' MB/s in all'));
  fillFilters(workers);
  const shown = view(workers);
  document.getElementById('shown').textContent = shown.length + ' of ' + workers.length + ' shown';
  renderGrid(shown);
  const tb = document.querySelector('#workers tbody');
  tb.replaceChildren();
  for (const w of shown) {
    const st = el('span', w.state, 'state-' + w.enrollment);
    const box = el('input');
    box.type = 'checkbox';
    box.checked = selected.has(w.mac);
    box.setAttribute('aria-label', 'select ' + w.mac);
    box.addEventListener('change', () => { if (box.checked) selected.add(w.mac); else selected.delete(w.mac); showSelection(); });
    tb.appendChild(row([box, macLink(w.mac), w.hostname || '-', w.model || '-', w.image, st, w.stage ? bar(w.done, w.total) : '',
      w.stage ? w.mbps.toFixed(1) : '-', eta(w.eta_s), w.attempts, w.last_error || '-']));
  }
}

// ---- rack grid, filters, sort (kept across the live redraws) ----------------
// A worker's group: its hostname up to the last '-' ("rack1-07": "rack1").
function groupOf(w) {
  if (!w.hostname) return '(no hostname)';
  const i = w.hostname.lastIndexOf('-');
  return i > 0 ? w.hostname.slice(0, i) : w.hostname;
}

function pctOf(w) { return w.stage && w.total ? w.done / w.total : w.enrollment === 'released' ? 1 : 0; }

// The workers the filters let through, in the chosen order.
function view(workers) {
  const v = id => document.getElementById(id).value;
  const text = v('f-text').trim().toLowerCase();
  const list = workers.filter(w => (!v('f-state') || w.state === v('f-state')) && (!v('f-image') || w.image === v('f-image')) &&
    (!v('f-group') || groupOf(w) === v('f-group')) &&
    (!text || [w.mac, w.mac.replace(/-/g, ':'), w.hostname, w.image, w.last_error].some(x => x && x.toLowerCase().includes(text))));
  const key = v('f-sort');
  const cmp = key === 'progress' ? (a, b) => pctOf(b) - pctOf(a)
    : (a, b) => byName(String(a[key] || ''), String(b[key] || '')) || a.mac.localeCompare(b.mac);
  return list.sort(cmp);
}

// Keeps each filter's choices to what the fleet has (and the chosen one).
function fillFilters(workers) {
  for (const [id, fn, all] of [['f-state', w => w.state, 'every state'], ['f-image', w => w.image, 'every image'],
    ['f-group', groupOf, 'every group']]) {
    const sel = document.getElementById(id);
    const cur = sel.value;
    const vals = [...new Set(workers.map(fn))].sort(byName);
    if (cur && !vals.includes(cur)) vals.push(cur);
    const want = [''].concat(vals).join('\n');
    if (sel.dataset.vals === want) continue;
    sel.dataset.vals = want;
    sel.replaceChildren(el('option', all));
    sel.firstChild.value = '';
    for (const x of vals) sel.appendChild(el('option', x));
    sel.value = cur;
  }
}

// One tile a worker, coloured by state, grouped by rack (hostname prefix).
function renderGrid(shown) {
  const g = document.getElementById('grid');
  g.replaceChildren();
  const groups = new Map();
  for (const w of shown) {
    const k = groupOf(w);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(w);
  }
  for (const k of [...groups.keys()].sort(byName)) {
    const sec = el('div', undefined, 'rack');
    const h = el('h3', k + ' (' + groups.get(k).length + ')');
    if (canAct) {
      const b = el('button', 'select');
      b.title = 'select every worker of ' + k;
      b.addEventListener('click', () => { for (const w of groups.get(k)) selected.add(w.mac); renderFleet(lastWorkers); showSelection(); });
      h.appendChild(b);
    }
    sec.appendChild(h);
    const tiles = el('div', undefined, 'tiles');
    for (const w of groups.get(k)) {
      const t = el('a', undefined, 'tile tile-' + (w.stage ? 'busy' : w.state) + (selected.has(w.mac) ? ' selected' : ''));
      t.href = '#w=' + encodeURIComponent(w.mac);
      t.title = w.mac + ' ' + (w.hostname || '') + ': ' + w.state + (w.last_error ? ' (' + w.last_error + ')' : '');
      t.dataset.mac = w.mac;
      t.appendChild(el('span', w.hostname || w.mac.slice(-8), 'name'));
      t.appendChild(el('span', w.state, 'st'));
      if (w.stage) t.appendChild(bar(w.done, w.total));
      tiles.appendChild(t);
    }
    sec.appendChild(tiles);
    g.appendChild(sec);
  }
}

function setView(v) {
  document.getElementById('grid').hidden = v !== 'grid';
  document.getElementById('workers').hidden = v !== 'table';
  document.getElementById('view-grid').setAttribute('aria-pressed', String(v === 'grid'));
  document.getElementById('view-table').setAttribute('aria-pressed', String(v === 'table'));
}

function setupFilters() {
  document.getElementById('view-grid').addEventListener('click', () => setView('grid'));
  document.getElementById('view-table').addEventListener('click', () => setView('table'));
  for (const id of ['f-state', 'f-image', 'f-group', 'f-sort'])
    document.getElementById(id).addEventListener('change', () => renderFleet(lastWorkers));
  document.getElementById('f-text').addEventListener('input', () => renderFleet(lastWorkers));
  setView('grid');
}

function showSelection() {
  for (const m of [...selected]) if (!lastWorkers.some(w => w.mac === m)) selected.delete(m);
  document.getElementById('sel-count').textContent = selected.size + ' selected';
}

// One action on one worker: the answer of POST /api/workers/MAC/VERB
// (netflashd runs the same netflash command as on the terminal).
async function act(mac, verb, body) {
  const { ok, status, json: j } = await send('POST', '/api/workers/' + encodeURIComponent(mac) + '/' + verb, body || {});
  return { ok, text: mac + ': ' + (ok ? (j.output || 'done').trim().split('\n').pop() : (j.error || j.output || status)) };
}

function say(lines) {
  const out = document.getElementById('act-result');
  out.replaceChildren();
  for (const l of lines) out.appendChild(el('div', l.text, l.ok ? 'ok' : 'error'));
}

// verb on every MAC of macs, after the admin confirms; reimage asks for the image.
async function actOn(macs, verb) {
  if (!macs.length) { say([{ ok: false, text: 'select workers first' }]); return; }
  let body = {};
  if (verb === 'reimage') {
    const image = prompt('Reimage ' + macs.length + ' worker(s) with which image?');
    if (!image) return;
    body = { image };
  }
  if (!confirm(verb + ' ' + macs.length + ' worker(s): ' + macs.join(', ') + '?')) return;
  const lines = [];
  for (const m of macs) lines.push(await act(m, verb, body));
  say(lines);
  refreshFleet();
}

function setupActions() {
  document.getElementById('actions').hidden = false;
  document.getElementById('w-actions').hidden = false;
  for (const b of document.querySelectorAll('#actions button[data-act]'))
    b.addEventListener('click', () => actOn([...selected], b.dataset.act));
  for (const b of document.querySelectorAll('#w-actions button[data-wact]'))
    b.addEventListener('click', () => {
      const m = /^#w=(.+)$/.exec(location.hash);
      if (m) actOn([decodeURIComponent(m[1])], b.dataset.wact).then(route);
    });
  document.getElementById('sel-all').addEventListener('change', ev => {
    for (const w of lastWorkers) if (ev.target.checked) selected.add(w.mac); else selected.delete(w.mac);
    renderFleet(lastWorkers);
    showSelection();
  });
  const form = document.getElementById('enroll-form');
  document.getElementById('enroll-open').addEventListener('click', () => { form.hidden = !form.hidden; });
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    const v = id => document.getElementById(id).value.trim();
    const body = { image: v('e-image') };
    if (v('e-host')) body.hostname = v('e-host');
    if (v('e-model')) body.model = v('e-model');
    if (document.getElementById('e-mc').checked) body.multicast = true;
    if (!confirm('enroll ' + v('e-mac') + ' with ' + body.image + '?')) return;
    say([await act(v('e-mac'), 'enroll', body)]);
    refreshFleet();
  });
  document.getElementById('mf-start').addEventListener('click', async () => {
    const image = prompt('Mass-flash: enroll every Pi that netboots with which image?');
    if (!image || !confirm('start a mass-flash with ' + image + '?')) return;
    const r = await send('POST', '/api/mass-flash', { image });
    say([{ ok: r.ok, text: 'mass-flash: ' + (r.ok ? 'started' : (r.json.error || r.status)) }]);
  });
  document.getElementById('mf-stop').addEventListener('click', async () => {
    if (!confirm('stop the mass-flash?')) return;
    const r = await send('DELETE', '/api/mass-flash');
    say([{ ok: r.ok, text: 'mass-flash: ' + (r.ok ? 'stopping' : (r.json.error || r.status)) }]);
  });
}

function renderSpeeds(jobs) {
  const svg = document.getElementById('speeds');
  const ns = 'http://www.w3.org/2000/svg';
  svg.replaceChildren();
  const done = jobs.filter(j => j.state === 'done' && j.mbps > 0).slice(0, 60).reverse();
  const max = Math.max(1, ...done.map(j => j.mbps));
  // The axes: MB/s on the left (0, half, the top), jobs oldest to newest.
  const left = 44;
  const text = (x, y, s, anchor, cls) => {
    const t = document.createElementNS(ns, 'text');
    t.setAttribute('x', String(x));
    t.setAttribute('y', String(y));
    t.setAttribute('text-anchor', anchor);
    if (cls) t.setAttribute('class', cls);
    t.textContent = s;
    svg.appendChild(t);
  };
  const line = (x1, y1, x2, y2) => {
    const l = document.createElementNS(ns, 'line');
    for (const [k, v] of [['x1', x1], ['y1', y1], ['x2', x2], ['y2', y2]]) l.setAttribute(k, String(v));
    l.setAttribute('class', 'axis');
    svg.appendChild(l);
  };
  line(left, 150, 720, 150);
  line(left, 20, left, 150);
  for (const f of [0, 0.5, 1]) text(left - 4, 150 - f * 130 + 4, (max * f).toFixed(0), 'end', 'tick');
  text(4, 12, 'MB/s', 'start', 'axis-label');
  text(720, 12, done.length + ' verified job' + (done.length === 1 ? '' : 's') + ', oldest left', 'end', 'axis-label');
  const w = Math.min((720 - left) / Math.max(done.length, 1), 60);
  done.forEach((j, i) => {
    const h = Math.round(j.mbps / max * 130);
    const r = document.createElementNS(ns, 'rect');
    r.setAttribute('x', String(left + i * w + 1));
    r.setAttribute('y', String(150 - h));
    r.setAttribute('width', String(Math.max(w - 2, 1)));
    r.setAttribute('height', String(h));
    const t = document.createElementNS(ns, 'title');
    t.textContent = j.mac + ' job ' + j.job + ': ' + j.mbps.toFixed(1) + ' MB/s';
    r.appendChild(t);
    svg.appendChild(r);
    if (w >= 28) {
      const v = document.createElementNS(ns, 'text');
      v.setAttribute('x', String(left + i * w + w / 2));
      v.setAttribute('y', String(150 - h - 3));
      v.setAttribute('text-anchor', 'middle');
      v.textContent = j.mbps.toFixed(0);
      svg.appendChild(v);
    }
  });
}

// A request with a JSON body (none for DELETE): {ok, status, json}.
async function send(method, url, body) {
  const r = await fetch(url, body === undefined ? { method } :
    { method, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  return { ok: r.ok, status: r.status, json: await r.json().catch(() => ({})) };
}

// Names in a person's order: rack2 before rack10.
const byName = (a, b) => a.localeCompare(b, undefined, { numeric: true });

function refreshFleet() { getJSON('/api/workers').then(renderFleet).catch(() => {}); }

// render(url's JSON) now, then every ms milliseconds.
function keepFresh(url, render, ms) {
  const load = () => getJSON(url).then(render).catch(() => {});
  load();
  setInterval(load, ms);
}

async function getJSON(url) {
  const r = await fetch(url, { cache: 'no-store' });
  if (!r.ok) throw new Error(url + ': ' + r.status);
  return r.json();
}

async function showWorker(mac) {
  const d = await getJSON('/api/workers/' + encodeURIComponent(mac));
  const w = d.worker;
  document.getElementById('w-title').textContent = w.mac + (w.hostname ? ' (' + w.hostname + ')' : '');
  const facts = document.getElementById('w-facts');
  facts.replaceChildren();
  for (const [k, v] of [['image', w.image], ['state', w.state], ['attempts', w.attempts], ['last error', w.last_error || '-']]) {
    facts.appendChild(el('dt', k));
    facts.appendChild(el('dd', v));
  }
  const tb = document.querySelector('#w-jobs tbody');
  tb.replaceChildren();
  for (const j of d.jobs)
    tb.appendChild(row([j.job, new Date(j.started_at * 1000).toLocaleString(), j.image, j.state, j.seconds.toFixed(1), j.mbps.toFixed(1), j.reason || '-']));
  for (const [id, list] of [['w-card', d.card], ['w-provision', d.provision], ['w-hooks', d.hooks || []]]) {
    const ul = document.getElementById(id);
    ul.replaceChildren();
    for (const e of list) ul.appendChild(el('li', e.line));
  }
  document.getElementById('w-log').textContent = d.log.map(e => e.line).join('\n');
}

// The stored copy's zstd level and the background copy (docs/api.md).
function copyState(i) {
  const lv = i.zstd_level === null ? '-' : String(i.zstd_level), f = i.finish;
  if (!f) return lv;
  if (f.state === 'running') return `${lv}, level ${f.level} at ${f.total ? Math.floor(f.done * 100 / f.total) : 0}%`;
  if (f.state === 'retiring') return `${lv}, retiring the fast copy`;
  if (f.state === 'failed') return `${lv}, level ${f.level} failed: ${f.error}`;
  return `${lv}, level ${f.level} ${f.state}`;
}

async function showImages() {
  const tb = document.querySelector('#catalog tbody');
  const images = await getJSON('/api/images');
  tb.replaceChildren();
  for (const i of images) {
    const users = i.users || [];
    let rm = '';
    if (canAct) {
      rm = el('button', 'Remove');
      rm.disabled = users.length > 0;
      rm.title = users.length ? 'in use by ' + users.length + ' enrolled worker(s)' : 'remove ' + i.name + ' from the catalog';
      rm.addEventListener('click', async () => {
        if (!confirm('remove image ' + i.name + ' from the catalog?')) return;
        const r = await send('DELETE', '/api/images/' + encodeURIComponent(i.name));
        document.getElementById('ia-status').textContent = r.ok ? 'removed ' + i.name : (r.json.output || r.json.error || r.status);
        showImages().catch(() => {});
      });
    }
    tb.appendChild(row([i.name, i.format, i.stored_bytes, i.image_bytes, i.origin || '-', Math.round(i.zero_share * 100) + '%',
      i.sha256.slice(0, 16), copyState(i), users.length ? users.length + ': ' + users.slice(0, 3).join(', ') + (users.length > 3 ? ', …' : '') : '-', rm]));
  }
}

// Adding an image from a path on the master: netflashd runs netflash image
// add in the background; its progress is the last line of its log.
function setupImageAdd() {
  const form = document.getElementById('image-add');
  const status = document.getElementById('ia-status');
  form.hidden = false;
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    const body = { path: document.getElementById('ia-path').value.trim() };
    const name = document.getElementById('ia-name').value.trim();
    if (name) body.name = name;
    const r = await send('POST', '/api/images', body);
    if (!r.ok) { status.textContent = r.json.error || String(r.status); return; }
    const poll = setInterval(async () => {
      const st = await getJSON('/api/image-add').catch(() => null);
      if (!st) return;
      status.textContent = st.last_line;
      if (!st.running) {
        clearInterval(poll);
        status.textContent = (st.last_exit === 0 ? 'added: ' : 'image add failed: ') + st.last_line;
        showImages().catch(() => {});
      }
    }, 1000);
  });
}

function route() {
  const h = location.hash;
  const m = /^#w=(.+)$/.exec(h);
  document.getElementById('fleet').hidden = !!m || h === '#images';
  document.getElementById('worker').hidden = !m;
  document.getElementById('images').hidden = h !== '#images';
  if (m) showWorker(decodeURIComponent(m[1])).catch(e => { document.getElementById('w-title').textContent = e.message; });
  if (h === '#images') showImages().catch(() => {});
}

function live() {
  const es = new EventSource('/api/stream');
  const s = document.getElementById('live');
  es.addEventListener('workers', ev => {
    renderFleet(JSON.parse(ev.data));
    s.textContent = 'live ' + new Date().toLocaleTimeString();
  });
  let poll = null;
  es.onerror = () => {
    s.textContent = 'reconnecting…';
    // A refused stream (netflashd keeps a few) is not retried: poll.
    if (es.readyState === EventSource.CLOSED && !poll) {
      s.textContent = 'polling';
      poll = setInterval(refreshFleet, 2000);
    }
  };
}

function start() {
  setupFilters();
  window.addEventListener('hashchange', route);
  route();
  // The first picture comes from /api/workers at once; the live stream
  // (server-sent events, one list a second) follows a moment later.
  refreshFleet();
  setTimeout(live, 3000);
  keepFresh('/api/jobs?limit=200', renderSpeeds, 10000);
  keepFresh('/api/sessions', renderSessions, 2000);
}

// A browser on the LAN logs in once with a token (docs/api.md "Logging
// in"): netflashd answers with an HttpOnly session cookie, which every
// later request carries; the token itself is never stored by the page.
function showLogin() {
  document.getElementById('login').hidden = false;
  for (const id of ['fleet', 'worker', 'images']) document.getElementById(id).hidden = true;
  document.getElementById('live').textContent = 'logged out';
  document.getElementById('login-form').addEventListener('submit', async ev => {
    ev.preventDefault();
    const r = await send('POST', '/api/session', { token: document.getElementById('login-token').value });
    if (r.ok) { location.reload(); return; }
    document.getElementById('login-error').textContent = r.json.error || ('login refused: ' + r.status);
  });
}

getJSON('/api/session').then(s => {
  if (!s.read) { showLogin(); return; }
  canAct = s.act;
  if (canAct) { setupActions(); setupImageAdd(); }
  if (s.role !== 'none') {
    document.getElementById('who').textContent = 'logged in: ' + s.role;
    const out = document.getElementById('logout');
    out.hidden = false;
    out.addEventListener('click', async ev => {
      ev.preventDefault();
      await send('DELETE', '/api/session');
      location.reload();
    });
  }
  start();
}).catch(start);
