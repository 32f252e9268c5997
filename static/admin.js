// PeerLink admin console: polls the admin API every 2 s and offers kick, cancel and drain.
// All data goes into the page with textContent; nothing is fetched from elsewhere.
import { $, bytes, duration } from './util.js';

const TOKEN_KEY = 'peerlink.admin-token';
const POLL_MS = 2000;
const WINDOW_MS = 15 * 60 * 1000;

let token = read();
let timer = 0;
let loop = 0; // bumps on every start/stop, so an old round never schedules another
const history = []; // {t, msgs, bytes}: per-second rates for the charts
let prevStats = null;
const prevRooms = new Map(); // name -> {t, seq}
const prevTransfers = new Map(); // id -> {t, acked}

function read() { try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; } }
function save(v) { try { v ? sessionStorage.setItem(TOKEN_KEY, v) : sessionStorage.removeItem(TOKEN_KEY); } catch { /* storage off */ } }

// ---- formatting ------------------------------------------------------------
const rate = (n, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '—');
function localTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso ?? '') : d.toLocaleString();
}

// ---- DOM helpers -------------------------------------------------------------
function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'data') Object.assign(e.dataset, v);
    else if (k.startsWith('aria-') || k === 'datetime') e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? '')));
  return e;
}
const td = (value, cls = '') => el('td', cls ? { class: cls } : {}, value);

// Replaces a table body, keeping keyboard focus on the same action button if it is still there.
function fill(tbody, rows, emptyText, cols) {
  const a = document.activeElement;
  const focus = tbody.contains(a) && a.dataset.key ? a.dataset.key : null;
  tbody.replaceChildren(...(rows.length ? rows : [el('tr', {}, el('td', { colSpan: cols, class: 'empty' }, emptyText))]));
  if (focus) [...tbody.querySelectorAll('button')].find((b) => b.dataset.key === focus)?.focus();
}
function say(id, text, ok = false) {
  const p = $(id);
  p.textContent = text || '';
  p.classList.toggle('ok', ok);
}

// ---- the API -------------------------------------------------------------------
class Unauthorized extends Error {}
async function api(method, path) {
  const res = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
    cache: 'no-store',
    signal: AbortSignal.timeout(10000),
  });
  if (res.status === 401) throw new Unauthorized('the admin token is wrong');
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!res.ok) throw new Error(body?.message || `the node answered ${res.status}`);
  return body;
}
function failure(e) {
  if (e?.name === 'TimeoutError') return 'the node did not answer in time';
  if (e instanceof TypeError) return 'the node cannot be reached';
  return e?.message || String(e);
}

// ---- sign-in -------------------------------------------------------------------
function showLogin(message) {
  stop();
  $('console').hidden = true;
  $('forget').hidden = true;
  $('login').hidden = false;
  $('status').textContent = 'not signed in';
  say('banner', '');
  $('token-error').textContent = message || '';
  $('token-input').value = '';
  $('token-input').focus();
}
function showConsole() {
  $('login').hidden = true;
  $('console').hidden = false;
  $('forget').hidden = false;
  start();
}
$('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const v = $('token-input').value.trim();
  if (!v) { $('token-error').textContent = 'Enter the admin token.'; return; }
  token = v;
  save(v);
  $('token-error').textContent = '';
  showConsole();
});
function wrongToken() {
  token = '';
  save('');
  showLogin('The admin token is wrong; enter it again.');
}
$('forget').addEventListener('click', () => {
  token = '';
  save('');
  showLogin('The token is forgotten.');
});

// ---- polling -------------------------------------------------------------------
function stop() { loop++; clearTimeout(timer); timer = 0; }
function start() { stop(); round(loop); }
async function round(id) {
  try {
    const [nodes, sessions, rooms, transfers, stats] = await Promise.all(
      ['nodes', 'sessions', 'rooms', 'transfers', 'stats'].map((p) => api('GET', `/api/admin/${p}`)));
    if (id !== loop) return;
    const t = performance.now();
    renderNodes(nodes?.nodes || []);
    renderSessions(sessions?.sessions || []);
    renderRooms(rooms?.rooms || [], t);
    renderTransfers(transfers?.transfers || [], t);
    renderStats(stats || {}, t);
    say('banner', '');
    $('status').textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    if (id !== loop) return;
    if (e instanceof Unauthorized) { wrongToken(); return; }
    say('banner', `Could not refresh: ${failure(e)}. Retrying…`);
    $('status').textContent = 'not updating';
  }
  if (id === loop && token) timer = setTimeout(() => round(id), POLL_MS);
}

// An action button: disables itself while the request runs, reports next to its table.
function action(label, key, msgId, run) {
  const b = el('button', { type: 'button', class: 'small', 'aria-label': label, data: { key } }, label.split(' ')[0]);
  b.addEventListener('click', async () => {
    b.disabled = true;
    try {
      const done = await run();
      if (done) say(msgId, done, true);
      start();
    } catch (e) {
      if (e instanceof Unauthorized) { wrongToken(); return; }
      say(msgId, `${label} failed: ${failure(e)}`);
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

// ---- tables --------------------------------------------------------------------
function renderNodes(nodes) {
  fill($('nodes'), nodes.map((n) => el('tr', {},
    el('th', { scope: 'row', class: 'nowrap' }, n.id), td(n.address, 'nowrap'), td(n.role), td(duration(n.uptime_secs), 'num'),
    td(n.connections, 'num'), td(Number.isFinite(n.load) ? n.load.toFixed(2) : '—', 'num'),
    td(n.draining ? 'yes' : 'no', n.draining ? 'warn' : ''),
    el('td', {}, n.draining ? '' : action(`Drain ${n.id}`, `drain:${n.id}`, 'nodes-msg', async () => {
      if (!window.confirm(`Drain ${n.id}? It refuses new connections and closes every connected client.`)) return null;
      await api('POST', `/api/admin/nodes/${encodeURIComponent(n.id)}/drain`);
      return `${n.id} is draining.`;
    })))), 'No nodes.', 8);
}

function renderSessions(sessions) {
  const count = new Map();
  for (const s of sessions) count.set(s.user?.name, (count.get(s.user?.name) || 0) + 1);
  fill($('sessions'), sessions.map((s) => {
    const name = s.user?.name ?? '?';
    const label = count.get(s.user?.name) > 1 ? `Kick ${name} (session ${String(s.id).slice(0, 8)})` : `Kick ${name}`;
    return el('tr', { data: { session: s.id } },
      el('th', { scope: 'row', class: 'nowrap' }, name), td(s.node, 'nowrap opt'),
      el('td', {}, el('time', { datetime: s.since }, localTime(s.since))),
      td((s.rooms || []).join(', ') || '—'),
      el('td', {}, action(label, `kick:${s.id}`, 'sessions-msg', async () => {
        await api('POST', `/api/admin/sessions/${encodeURIComponent(s.id)}/kick`);
        return `${name} was disconnected.`;
      })));
  }), 'No sessions.', 5);
}

function renderRooms(rooms, t) {
  const seen = new Set();
  fill($('rooms'), rooms.map((r) => {
    const prev = prevRooms.get(r.name);
    const perMin = prev && t > prev.t ? ((r.last_seq - prev.seq) / (t - prev.t)) * 60000 : NaN;
    prevRooms.set(r.name, { t, seq: r.last_seq });
    seen.add(r.name);
    return el('tr', {}, el('th', { scope: 'row' }, r.name), td(r.sessions, 'num'), td(r.last_seq, 'num'), td(rate(Math.max(0, perMin)), 'num'));
  }), 'No rooms.', 4);
  for (const k of prevRooms.keys()) if (!seen.has(k)) prevRooms.delete(k);
}

function renderTransfers(transfers, t) {
  const seen = new Set();
  fill($('transfers'), transfers.map((x) => {
    const prev = prevTransfers.get(x.id);
    const speed = prev && t > prev.t ? Math.max(0, ((x.acked - prev.acked) / (t - prev.t)) * 1000) : NaN;
    prevTransfers.set(x.id, { t, acked: x.acked });
    seen.add(x.id);
    const to = (x.to || []).map((u) => u.name).join(', ') + (x.room ? ` (room ${x.room})` : '');
    const pct = x.size > 0 ? Math.floor((x.acked / x.size) * 100) : 100;
    const bar = el('progress', { max: x.size || 1, value: x.size ? x.acked : 1, 'aria-label': `${x.name}: ${pct} %` });
    return el('tr', {},
      td(x.from?.name), td(to || '—'), el('th', { scope: 'row' }, x.name), td(bytes(x.size), 'num'),
      el('td', { class: 'progress' }, bar, el('span', {}, `${bytes(x.acked)} / ${bytes(x.size)}`)),
      td(Number.isFinite(speed) ? `${bytes(speed)}/s` : '—', 'num'), td(x.state),
      el('td', {}, action(`Cancel ${x.name}`, `cancel:${x.id}`, 'transfers-msg', async () => {
        await api('POST', `/api/admin/transfers/${encodeURIComponent(x.id)}/cancel`);
        return `${x.name} was cancelled.`;
      })));
  }), 'No transfers in progress.', 8);
  for (const k of prevTransfers.keys()) if (!seen.has(k)) prevTransfers.delete(k);
}

// ---- charts --------------------------------------------------------------------
function renderStats(s, t) {
  if (prevStats && t > prevStats.t) {
    const dt = (t - prevStats.t) / 1000;
    history.push({
      t,
      msgs: Math.max(0, (s.messages_stored - prevStats.messages_stored) / dt),
      bytes: Math.max(0, (s.transfer_bytes - prevStats.transfer_bytes) / dt),
    });
  }
  prevStats = { t, messages_stored: s.messages_stored, transfer_bytes: s.transfer_bytes };
  while (history.length && history[0].t < t - WINDOW_MS) history.shift();
  const last = history[history.length - 1];
  const peak = (k) => history.reduce((m, p) => Math.max(m, p[k]), 0);
  $('msg-now').textContent = last ? `now ${rate(last.msgs)}/s, peak ${rate(peak('msgs'))}/s; ${s.messages_stored} stored` : 'measuring…';
  $('bytes-now').textContent = last ? `now ${bytes(last.bytes)}/s, peak ${bytes(peak('bytes'))}/s; ${bytes(s.transfer_bytes)} in all` : 'measuring…';
  draw($('msg-chart'), 'msgs', t, (v) => rate(v));
  draw($('bytes-chart'), 'bytes', t, (v) => bytes(v));
}

// The chart's top: the smallest 1, 2 or 5 times a power of ten at or above v.
function nice(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((c) => c >= v);
}

function draw(canvas, key, now, fmt) {
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim() || '#888';
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(100, canvas.clientWidth), h = Math.max(60, canvas.clientHeight);
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const g = canvas.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const top = 14, bottom = h - 16, max = nice(Math.max(1, ...history.map((p) => p[key])));
  g.font = '11px system-ui, sans-serif';
  g.fillStyle = color('--muted');
  g.strokeStyle = color('--line');
  g.lineWidth = 1;
  g.beginPath(); g.moveTo(0, bottom + 0.5); g.lineTo(w, bottom + 0.5); g.moveTo(0, top + 0.5); g.lineTo(w, top + 0.5); g.stroke();
  g.textBaseline = 'bottom';
  g.fillText(fmt(max), 2, top - 1);
  g.textBaseline = 'top';
  g.fillText('−15 min', 2, bottom + 2);
  g.textAlign = 'right';
  g.fillText('now', w - 2, bottom + 2);
  g.textAlign = 'left';
  if (history.length < 2) return;
  const x = (t) => w - ((now - t) / WINDOW_MS) * w;
  const y = (v) => bottom - (v / max) * (bottom - top);
  g.beginPath();
  history.forEach((p, i) => (i ? g.lineTo(x(p.t), y(p[key])) : g.moveTo(x(p.t), y(p[key]))));
  g.strokeStyle = color('--accent');
  g.lineWidth = 2;
  g.stroke();
  g.lineTo(x(history[history.length - 1].t), bottom);
  g.lineTo(x(history[0].t), bottom);
  g.closePath();
  g.globalAlpha = 0.15;
  g.fillStyle = color('--accent');
  g.fill();
  g.globalAlpha = 1;
}

if (token) showConsole(); else showLogin('');
