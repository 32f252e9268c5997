// PeerLink built-in chat page: a deliberately small client for protocol v1
// (docs/protocol.md), talking to the node that serves it over /ws.
// All user-supplied text is put into the page with textContent, never as HTML.
import { $, h, load, store, pad, bytes } from './util.js';
import { initUploads } from './uploads.js';
import { initTransfers } from './transfers.js';

const ID_KEY = 'peerlink.identity';
const ROOMS_KEY = 'peerlink.rooms';
const ROOM_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const HISTORY_LIMIT = 50;

// ---- state ---------------------------------------------------------------
let identity = load(ID_KEY); // { token, user: { id, name } }
if (!(typeof identity?.token === 'string' && identity.user?.id)) identity = null;
let pendingName = null; // name for hello when there is no token
let ws = null, welcomed = false, attempt = 0, retryTimer = 0, countdown = 0;
// The cluster's live nodes ({id, url}), from /api/cluster/nodes; `node` is the one this
// page is connected to (or tries). A lost connection moves on to the next live node.
let nodes = [], node = null, nodeId = '';
let maxChars = 4000, nextId = 0, roomsLoaded = false, limits = {};
let current = null;          // key of the conversation on screen
const convs = new Map();     // '#room' or '@userId' -> conversation
const reqs = new Map();      // request id -> { kind, conv, msg }
const memberEls = new Map(); // user id -> <li>
const rid = () => `c-${++nextId}`;
const myId = () => identity?.user?.id;

function getConv(key, name, peer) {
  if (!convs.has(key)) {
    convs.set(key, {
      key, kind: key[0] === '#' ? 'room' : 'dm', name, peer,
      messages: [], seqs: new Set(), lastSeq: 0, serverLast: 0, backlogUntil: 0, unread: 0,
      members: new Map(), joined: false, synced: false, noOlder: false, loadingOlder: false,
    });
  }
  return convs.get(key);
}
const roomConv = (room) => getConv('#' + room, room);
const dmConv = (peer, name) => getConv('@' + peer, name || nameOf(peer), peer);
function nameOf(id) {
  for (const c of convs.values()) {
    if (c.members.has(id)) return c.members.get(id);
    if (c.peer === id) return c.name;
  }
  return String(id).slice(0, 8);
}
function saveRooms() {
  store(ROOMS_KEY, [...convs.values()].filter((c) => c.kind === 'room').map((c) => c.name));
}
function loadRooms() {
  if (roomsLoaded) return;
  roomsLoaded = true;
  const saved = load(ROOMS_KEY);
  for (const r of Array.isArray(saved) ? saved : ['lobby']) {
    if (typeof r === 'string' && ROOM_RE.test(r)) roomConv(r);
  }
  if (!convs.has(current)) current = convs.keys().next().value ?? null;
}

// Insert a message in seq order; returns false for a duplicate (room, seq).
function addMessage(c, msg) {
  const list = c.messages;
  if (msg.seq != null) {
    if (c.seqs.has(msg.seq)) return false;
    c.seqs.add(msg.seq);
  }
  let i = list.length;
  if (msg.seq == null || msg.seq > c.lastSeq) {
    while (i > 0 && list[i - 1].pending) i--; // newest: just above our unacknowledged ones
  } else {
    while (i > 0 && (list[i - 1].seq == null || list[i - 1].seq > msg.seq)) i--; // older (history)
  }
  list.splice(i, 0, msg);
  if (msg.seq > c.lastSeq) c.lastSeq = msg.seq;
  return true;
}
const toMsg = (x) => ({
  seq: x.seq, from: x.from || {}, text: String(x.text ?? ''), at: x.at, own: x.from?.id === myId(),
  file: x.file && typeof x.file === 'object' ? x.file : null,
});
const removeMsg = (c, msg) => { const i = c.messages.indexOf(msg); if (i >= 0) c.messages.splice(i, 1); };
const olderBefore = (c) => c.messages.find((x) => x.seq != null)?.seq ?? c.serverLast + 1;

// ---- connection ----------------------------------------------------------
// The countdown lives in an aria-hidden span so screen readers hear state changes, not every tick.
function setStatus(text, state, wait = '') {
  if ($('status-text').textContent !== text) $('status-text').textContent = text;
  $('status-wait').textContent = wait;
  $('status').dataset.state = state;
}
/** Send a frame; false when not connected (nothing was sent). */
function send(obj) {
  return sendRaw(JSON.stringify(obj));
}
function sendRaw(data) {
  if (!(welcomed && ws?.readyState === WebSocket.OPEN)) return false;
  ws.send(data);
  return true;
}
function connect() {
  clearTimeout(retryTimer);
  clearInterval(countdown);
  retryTimer = 0;
  welcomed = false;
  setStatus('connecting…', 'busy');
  const base = new URL(node?.url || location.origin);
  const sock = new WebSocket((base.protocol === 'https:' ? 'wss://' : 'ws://') + base.host + '/ws');
  ws = sock;
  sock.binaryType = 'arraybuffer';
  sock.onopen = () => {
    sock.send(JSON.stringify(identity ? { type: 'hello', token: identity.token } : { type: 'hello', name: pendingName }));
  };
  sock.onmessage = (ev) => {
    if (ws !== sock) return;
    if (typeof ev.data === 'string') onFrame(ev.data);
    else if (welcomed) transfers.onBinary(ev.data);
  };
  sock.onclose = () => { if (ws === sock) lost(); };
  sock.onerror = () => {}; // a close event always follows; handled there
}
function stop(text) {
  clearTimeout(retryTimer);
  clearInterval(countdown);
  retryTimer = 0;
  const s = ws;
  ws = null; welcomed = false;
  if (s?.readyState === WebSocket.CONNECTING) s.onopen = () => s.close(1000);
  else s?.close(1000);
  setStatus(text, 'down');
}
function lost() {
  ws = null; welcomed = false;
  $('status-node').textContent = '';
  for (const c of convs.values()) {
    Object.assign(c, { joined: false, loadingOlder: false });
    for (const m of c.messages) {
      if (m.pending) Object.assign(m, { pending: false, interrupted: true, failed: 'connection lost; it may not have been sent' });
    }
  }
  for (const r of reqs.values()) r.done?.reject(new Error('the connection was lost; post it again once reconnected'));
  reqs.clear();
  transfers.onLost();
  // Another live node next (this one may be gone); all of them in turn, then round again.
  if (nodes.length > 1) {
    const at = nodes.findIndex((n) => n.url === (node?.url || location.origin) || n.id === nodeId);
    node = nodes[(at + 1) % nodes.length];
  }
  // Exponential backoff: 0.5 s doubling up to 10 s, ±20 % jitter.
  const delay = Math.min(10000, Math.round(Math.min(10000, 500 * 2 ** attempt++) * (0.8 + Math.random() * 0.4)));
  const until = Date.now() + delay;
  const tick = () => setStatus('reconnecting', 'down', ` in ${Math.max(1, Math.ceil((until - Date.now()) / 1000))} s`);
  tick();
  countdown = setInterval(tick, 1000);
  retryTimer = setTimeout(connect, delay);
  render();
}
window.addEventListener('online', () => { if (retryTimer) connect(); }); // waiting to reconnect: do it now

// ---- incoming frames -----------------------------------------------------
function onFrame(data) {
  let m;
  try { m = JSON.parse(data); } catch { return; }
  if (!m || typeof m !== 'object') return;
  if (m.type === 'error') onError(m);
  else if (m.type === 'welcome') onWelcome(m);
  else if (!welcomed) return;
  else if (m.type === 'joined') onJoined(m);
  else if (m.type === 'message') onMessage(m);
  else if (m.type === 'presence') onPresence(m);
  else if (m.type === 'history') onHistory(m);
  else if (m.type === 'left') reqs.delete(m.re);
  else transfers.onFrame(m);
}

function onWelcome(m) {
  welcomed = true; attempt = 0; pendingName = null;
  identity = { token: m.token || identity?.token, user: m.user };
  store(ID_KEY, identity);
  if (m.limits?.max_text_chars > 0) maxChars = m.limits.max_text_chars;
  if (m.limits) limits = { chunk: m.limits.chunk_size, window: m.limits.window, max: m.limits.max_file_size };
  clearInterval(countdown);
  nodeId = m.node || '';
  setStatus('connected', 'up');
  $('status-node').textContent = nodeId ? ` · ${nodeId}` : '';
  learnNodes();
  showErr('notice');
  showApp();
  for (const c of convs.values()) {
    if (c.kind === 'room') sendJoin(c);
    else if (c.peer) catchUp(c);
  }
  transfers.onWelcome();
  render();
}

/** Reads the live nodes from the node this page is connected to. */
async function learnNodes() {
  try {
    const res = await fetch(new URL('/api/cluster/nodes', node?.url || location.origin));
    const list = (await res.json()).nodes;
    if (Array.isArray(list) && list.length) nodes = list.filter((n) => typeof n.url === 'string');
  } catch { /* keep the list we have */ }
}

function sendJoin(c) {
  const id = rid();
  reqs.set(id, { kind: 'join', conv: c });
  send(c.synced ? { type: 'join', id, room: c.name, since: c.lastSeq } : { type: 'join', id, room: c.name });
}

function onJoined(m) {
  const c = convs.get('#' + m.room);
  if (!c) return;
  for (const [id, r] of reqs) if (r.kind === 'join' && r.conv === c) reqs.delete(id);
  c.joined = true;
  c.members = new Map((m.members || []).map((u) => [u.id, u.name]));
  c.serverLast = m.last_seq || 0;
  if (!c.synced) c.backlogUntil = c.serverLast; // the replay of old messages is not "unread"
  if (m.truncated) {
    // We missed more than the node keeps: drop the stale part so "load older" can fill the gap.
    c.messages = c.messages.filter((x) => x.seq == null);
    c.seqs.clear();
    c.noOlder = false;
  }
  c.synced = true;
  saveRooms();
  render();
}

function onMessage(m) {
  const mine = m.from?.id === myId();
  let c;
  if (m.room) c = convs.get('#' + m.room);
  else if (m.to && m.from?.id) c = mine ? dmConv(m.to.id ?? m.to) : dmConv(m.from.id, m.from.name);
  if (!c) return;
  const r = m.re != null ? reqs.get(m.re) : null;
  if (r?.kind === 'say') {
    reqs.delete(m.re);
    removeMsg(r.conv, r.msg);
    r.done?.resolve();
  } else if (mine) {
    // Our copy arrived without its ack (e.g. replayed after a reconnect): drop the failed draft.
    const stale = c.messages.find((x) => x.interrupted && x.text === m.text);
    if (stale) removeMsg(c, stale);
  }
  if (addMessage(c, toMsg(m)) && c.key !== current && !mine && !(m.seq <= c.backlogUntil)) c.unread++;
  render(mine && c.key === current ? 'bottom' : undefined);
}

function onPresence(m) {
  if (!m.user?.id) return;
  const targets = m.room ? [convs.get('#' + m.room)] : [...convs.values()].filter((c) => c.kind === 'room');
  for (const c of targets) {
    if (!c) continue;
    const was = c.members.has(m.user.id), now = m.status === 'joined';
    if (now) c.members.set(m.user.id, m.user.name);
    else c.members.delete(m.user.id);
    if (was !== now && m.user.id !== myId()) {
      addMessage(c, { notice: `${m.user.name} ${now ? 'joined' : m.status === 'offline' ? 'went offline' : 'left'}` });
    }
  }
  render();
}

function onHistory(m) {
  const c = (m.room ? convs.get('#' + m.room) : convs.get('@' + m.with)) || reqs.get(m.re)?.conv;
  reqs.delete(m.re);
  if (!c) return;
  c.loadingOlder = false;
  const list = Array.isArray(m.messages) ? m.messages : [];
  for (const x of list) addMessage(c, toMsg(x));
  if (!list.length || olderBefore(c) <= 1) c.noOlder = true;
  if (c.key === current) render('keep');
}

function errText(m) {
  if (m.code === 'rate_limited') {
    const wait = m.retry_after_ms >= 1000 ? `${Math.ceil(m.retry_after_ms / 1000)} s` : 'a second';
    return `Sending too fast: wait ${wait}, then send it again.`;
  }
  return m.message || m.code || 'error';
}
const showErr = (id, text) => { $(id).textContent = text || ''; };

function onError(m) {
  const text = welcomed ? errText(m) : m.message || m.code || 'error'; // a refused hello says why itself
  if (!welcomed) { // our hello was refused
    if (identity && m.code !== 'unauthorized') { showErr('notice', text); ws?.close(); return; } // retry later
    const expired = !!identity;
    identity = pendingName = null;
    store(ID_KEY, null);
    stop('not connected');
    showLogin(expired ? 'Your session has expired. Choose a name to continue.' : text);
    return;
  }
  if (transfers.onError(m, text)) return render();
  const r = m.re != null ? reqs.get(m.re) : null;
  reqs.delete(m.re);
  if (r?.kind === 'say') {
    Object.assign(r.msg, { pending: false, failed: text });
    if (r.conv.key === current) showErr('send-error', text);
    r.done?.reject(new Error(text));
  } else if (r?.kind === 'join') {
    showErr('join-error', `Could not join ${r.conv.name}: ${text}`);
    if (!r.conv.synced) closeConv(r.conv, false);
  } else if (r?.kind === 'history') {
    r.conv.loadingOlder = false;
    if (r.conv.key === current) showErr('log-error', `Could not load older messages: ${text}`);
  } else {
    showErr('notice', text);
  }
  render();
}

// ---- actions -------------------------------------------------------------
function select(key) {
  current = key;
  if (key === incomingKey) $('incoming').hidden = true;
  const c = convs.get(key);
  if (c) c.unread = 0;
  for (const id of ['send-error', 'log-error', 'notice']) showErr(id);
  render('bottom');
}

function closeConv(c, tell = true) {
  if (tell && c.kind === 'room' && c.joined) send({ type: 'leave', id: rid(), room: c.name });
  convs.delete(c.key);
  if (c.kind === 'room') saveRooms();
  if (current === c.key) current = convs.keys().next().value ?? null;
  render('bottom');
}

function sendText() {
  const c = convs.get(current);
  const text = $('text').value;
  if (!c || !text.trim()) return;
  const n = [...text].length;
  if (n > maxChars) return showErr('send-error', `Too long: ${n} characters, the limit is ${maxChars}.`);
  if (!welcomed) return showErr('send-error', 'Not connected right now; your message is kept here, send it once reconnected.');
  say(c, text);
  $('text').value = '';
  updateCount();
}

function say(c, text) {
  const id = rid();
  const msg = { pending: true, own: true, from: identity.user, text, at: new Date().toISOString() };
  c.messages.push(msg);
  reqs.set(id, { kind: 'say', conv: c, msg });
  send(c.kind === 'room' ? { type: 'say', id, room: c.name, text } : { type: 'say', id, to: c.peer, text });
  showErr('send-error');
  render('bottom');
}

/** "Send again" on a message that failed: it goes to the end of the conversation, anew. */
function resend(msg) {
  if (!welcomed) return showErr('send-error', 'Not connected right now: send it again once reconnected.');
  for (const c of convs.values()) {
    if (!c.messages.includes(msg)) continue;
    removeMsg(c, msg);
    say(c, msg.text);
  }
}

/**
 * Post a finished upload into a conversation (`say` with `upload`). Resolves once the node
 * has stored the message; rejects with the reason a person can act on.
 */
function postUpload(upload, target, text = '') {
  return new Promise((resolve, reject) => {
    const c = target && convs.get(target.kind === 'room' ? '#' + target.name : '@' + target.peer);
    if (!c) return reject(new Error('Open a room or a conversation to post the file in.'));
    if (!welcomed) return reject(new Error('Not connected right now; post it again once reconnected.'));
    if (c.kind === 'room' && !c.joined) return reject(new Error(`Still joining #${c.name}; try again in a moment.`));
    const id = rid();
    const msg = { pending: true, own: true, from: identity.user, text: text || `sharing ${upload.name ?? 'a file'}…`, at: new Date().toISOString() };
    c.messages.push(msg);
    reqs.set(id, { kind: 'say', conv: c, msg, done: { resolve, reject } });
    const frame = { type: 'say', id, upload: upload.id, ...(text ? { text } : {}) };
    send(c.kind === 'room' ? { ...frame, room: c.name } : { ...frame, to: c.peer });
    render('bottom');
  });
}

function updateCount() {
  const n = [...$('text').value].length;
  $('count').textContent = n > maxChars * 0.8 ? `${n} / ${maxChars}` : '';
  $('count').className = n > maxChars ? 'over' : '';
}

// ---- rendering -----------------------------------------------------------
// Replace a container's children only when they changed, so focus is kept.
function sync(parent, nodes) {
  const kids = parent.children;
  if (kids.length !== nodes.length || nodes.some((n, i) => kids[i] !== n)) parent.replaceChildren(...nodes);
}

function msgEl(m) {
  if (m.card) return m.el; // a file transfer: transfers.js draws it
  if (m.notice) return m.el || (m.el = h('li', { className: 'notice', textContent: m.notice }));
  if (!m.el) {
    const d = new Date(m.at);
    const time = h('time', { dateTime: m.at || '' });
    if (!isNaN(d)) Object.assign(time, { textContent: `${pad(d.getHours())}:${pad(d.getMinutes())}`, title: d.toLocaleString() });
    m.state = h('span', { className: 'state' });
    if (m.own && !m.file && m.text) {
      m.retry = h('button', { type: 'button', className: 'quiet retry', textContent: 'Send again', onclick: () => resend(m) });
    }
    m.el = h('li', {}, h('div', { className: 'meta' }, h('strong', { textContent: m.from.name ?? '?' }), time, m.state, m.retry),
      m.text ? h('p', { textContent: m.text }) : null, m.file ? fileEl(m.file) : null);
  }
  m.el.className = 'msg' + (m.own ? ' own' : '') + (m.pending ? ' pending' : '') + (m.failed ? ' failed' : '');
  m.state.textContent = m.pending ? 'sending…' : m.failed ? `failed: ${m.failed}` : '';
  if (m.retry) m.retry.hidden = !m.failed;
  return m.el;
}

/** A file posted with a message: a download link (the node's share link), size and digest. */
function fileEl(f) {
  const name = String(f.name ?? 'file');
  const link = h('a', { href: typeof f.url === 'string' && f.url.startsWith('/s/') ? f.url : '#', download: name, textContent: name });
  const digest = /^[0-9a-f]{64}$/.test(f.sha256) ? f.sha256 : '';
  return h('div', { className: 'file' },
    h('span', { className: 'file-name' }, 'File: ', link, ` (${bytes(Number(f.size))})`),
    digest ? h('code', { className: 'digest', title: `SHA-256 ${digest}`, textContent: `SHA-256 ${digest}` }) : null);
}

function renderRooms() {
  sync($('room-list'), [...convs.values()].map((c) => {
    if (!c.li) {
      const label = c.kind === 'room' ? `Leave room ${c.name}` : `Close conversation with ${c.name}`;
      const close = h('button', { type: 'button', className: 'close', textContent: '×', title: label, onclick: () => closeConv(c) });
      close.setAttribute('aria-label', label);
      c.btn = h('button', { type: 'button', className: 'open', onclick: () => select(c.key) });
      c.btn.dataset.conv = c.key;
      c.li = h('li', {}, c.btn, close);
    }
    c.btn.replaceChildren((c.kind === 'room' ? '#' : '@') + c.name);
    if (c.unread) c.btn.append(h('span', { className: 'badge' }, String(c.unread), h('span', { className: 'sr' }, ' unread')));
    c.btn.setAttribute('aria-current', String(c.key === current));
    c.li.classList.toggle('waiting', c.kind === 'room' && !c.joined);
    return c.li;
  }));
}

function renderMembers(c) {
  const list = !c ? [] : c.kind === 'dm' ? [[c.peer, c.name]] : [...c.members].sort((a, b) => String(a[1]).localeCompare(String(b[1])));
  $('members-title').textContent = c?.kind === 'dm' ? 'Direct conversation' : `Members (${list.length})`;
  sync($('member-list'), list.map(([id, name]) => {
    if (!memberEls.has(id)) {
      memberEls.set(id, id === myId()
        ? h('li', { className: 'self', textContent: `${name} (you)` })
        : h('li', {}, h('button', {
          type: 'button', className: 'quiet', textContent: name, title: `Send a direct message or drop a file to ${name}`,
          onclick: () => select(dmConv(id, name).key),
        })));
      if (id !== myId()) Object.assign(memberEls.get(id).dataset, { user: id, name });
    }
    return memberEls.get(id);
  }));
}

function renderMessages(c, mode) {
  const log = $('log');
  const fromBottom = log.scrollHeight - log.scrollTop;
  const atBottom = fromBottom - log.clientHeight < 48;
  sync($('messages'), c ? c.messages.map(msgEl) : []);
  if (mode === 'keep') log.scrollTop = log.scrollHeight - fromBottom;
  else if (mode === 'bottom' || atBottom) log.scrollTop = log.scrollHeight;
}

function render(mode) {
  const c = convs.get(current) || null;
  renderRooms();
  renderMembers(c);
  $('conv-title').textContent = !c ? 'No conversation: join a room' : c.kind === 'room' ? `#${c.name}` : `Direct messages with ${c.name}`;
  const older = $('older');
  older.hidden = !((c?.kind === 'room' ? c.synced : c?.kind === 'dm') && !c.noOlder && olderBefore(c) > 1);
  older.disabled = !!c?.loadingOlder;
  older.textContent = c?.loadingOlder ? 'Loading…' : 'Load older messages';
  $('text').disabled = $('send').disabled = !c;
  $('text').placeholder = c ? `Message ${c.kind === 'room' ? '#' : '@'}${c.name}` : '';
  renderMessages(c, mode);
  const unread = [...convs.values()].reduce((n, x) => n + x.unread, 0);
  document.title = unread ? `(${unread}) PeerLink` : 'PeerLink';
}

function showApp() {
  loadRooms();
  $('login').hidden = true;
  $('app').hidden = $('me').hidden = false;
  $('me-name').textContent = identity?.user?.name ?? '';
  render('bottom');
}

function showLogin(message) {
  $('app').hidden = $('me').hidden = true;
  $('login').hidden = false;
  showErr('name-error', message);
  $('name-input').focus();
}

// ---- wiring --------------------------------------------------------------
$('name-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = $('name-input').value.trim();
  if (!name) return showErr('name-error', 'Please enter a name.');
  showErr('name-error');
  showErr('notice');
  pendingName = name; attempt = 0;
  stop('connecting…');
  connect();
});

$('signout').addEventListener('click', () => {
  stop('signed out');
  identity = null;
  store(ID_KEY, null);
  // The room list stays saved: the next identity rejoins those rooms.
  for (const m of [convs, reqs, memberEls]) m.clear();
  transfers.reset();
  roomsLoaded = false; current = null;
  showErr('notice');
  showLogin('');
});

$('join-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = $('join-input');
  const room = input.value.trim().replace(/^#/, '');
  const ok = ROOM_RE.test(room);
  input.setAttribute('aria-invalid', String(!ok));
  if (!ok) return showErr('join-error', 'Room names are 1–64 characters: letters, digits, “_”, “.” or “-”.');
  showErr('join-error');
  input.value = '';
  if (!convs.has('#' + room)) {
    const c = roomConv(room);
    saveRooms();
    if (welcomed) sendJoin(c);
  }
  select('#' + room);
});
$('join-input').addEventListener('input', () => { $('join-input').removeAttribute('aria-invalid'); showErr('join-error'); });

$('older').addEventListener('click', () => {
  const c = convs.get(current);
  if (!c || c.loadingOlder) return;
  if (!welcomed) return showErr('log-error', 'Not connected right now.');
  const id = rid();
  c.loadingOlder = true;
  reqs.set(id, { kind: 'history', conv: c });
  showErr('log-error');
  const where = c.kind === 'room' ? { room: c.name } : { with: c.peer };
  send({ type: 'history', id, ...where, before: olderBefore(c), limit: HISTORY_LIMIT });
  render();
});

/** A direct conversation's newest messages (the ones missed while away among them). */
function catchUp(c) {
  const id = rid();
  reqs.set(id, { kind: 'history', conv: c });
  send({ type: 'history', id, with: c.peer, limit: HISTORY_LIMIT });
}

// A person scrolling to the top loads older messages, as the button does. Only scrolling
// the person does counts: the page's own scrolling (new messages, a rejoin) must not.
let scrolledByHand = 0;
for (const kind of ['wheel', 'touchmove', 'pointerdown', 'keydown']) {
  $('log').addEventListener(kind, () => { scrolledByHand = Date.now(); }, { passive: true });
}
$('log').addEventListener('scroll', () => {
  const byHand = Date.now() - scrolledByHand < 1000;
  if (byHand && $('log').scrollTop < 40 && !$('older').hidden && !$('older').disabled) $('older').click();
}, { passive: true });

$('composer').addEventListener('submit', (e) => { e.preventDefault(); sendText(); });
$('text').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); sendText(); }
});
$('text').addEventListener('input', updateCount);

// ---- files: live transfers ---------------------------------------------------
const transfers = initTransfers({
  send,
  sendBinary: sendRaw,
  me: () => identity?.user ?? null,
  limits: () => limits,
  rid,
  conversation: (key, name, peer) => getConv(key, name, peer),
  place(c, item, unread) {
    addMessage(c, item);
    if (unread && c.key !== current) c.unread++;
  },
  unplace(item) {
    for (const c of convs.values()) removeMsg(c, item);
  },
  render: () => render(),
  pickFile,
  announce,
});

/** A line under the header for news from another conversation, with a button to go there. */
let incomingKey = null;
function announce(text, key) {
  if (key === current) return;
  incomingKey = key;
  $('incoming-text').textContent = text + ' ';
  $('incoming').hidden = false;
}
$('incoming-open').addEventListener('click', () => {
  if (incomingKey && convs.has(incomingKey)) select(incomingKey);
  $('incoming').hidden = true;
});

let picked = null; // where the file chosen in the file dialog goes
function pickFile(then) {
  picked = then;
  $('file-input').value = '';
  $('file-input').click();
}
$('file-input').addEventListener('change', () => {
  const file = $('file-input').files?.[0];
  if (file && picked) picked(file);
  picked = null;
});

/** Offer a file to a conversation (the one on screen, or a room or person it was dropped on). */
function sendFile(file, c = convs.get(current)) {
  if (!c) return showErr('send-error', 'Join a room or open a conversation first, then send the file there.');
  if (!welcomed) return showErr('send-error', 'Not connected right now: send the file once reconnected.');
  if (c.kind === 'room' && !c.joined) return showErr('send-error', `Still joining #${c.name}; try again in a moment.`);
  showErr('send-error');
  if (c.key !== current) select(c.key);
  transfers.offer(file, c.kind === 'room' ? { kind: 'room', name: c.name } : { kind: 'dm', peer: c.peer, name: c.name });
  render('bottom');
}
$('file-pick').addEventListener('click', () => pickFile((f) => sendFile(f)));

// Drop a file on the conversation, on a room in the list or on a person in the member list.
function dropTarget(e) {
  const member = e.target.closest?.('[data-user]');
  if (member) return dmConv(member.dataset.user, member.dataset.name);
  const room = e.target.closest?.('[data-conv]');
  if (room) return convs.get(room.dataset.conv);
  return e.target.closest?.('.chat') ? convs.get(current) : null;
}
document.addEventListener('dragover', (e) => {
  if (!e.dataTransfer?.types?.includes('Files')) return;
  e.preventDefault();
  const ok = !!dropTarget(e);
  e.dataTransfer.dropEffect = ok ? 'copy' : 'none';
  document.querySelectorAll('.drop-here').forEach((x) => x.classList.remove('drop-here'));
  if (ok) (e.target.closest('[data-user], [data-conv]') || e.target.closest('.chat'))?.classList.add('drop-here');
});
document.addEventListener('dragleave', (e) => { if (!e.relatedTarget) document.querySelectorAll('.drop-here').forEach((x) => x.classList.remove('drop-here')); });
document.addEventListener('drop', (e) => {
  if (!e.dataTransfer?.files?.length) return;
  e.preventDefault();
  document.querySelectorAll('.drop-here').forEach((x) => x.classList.remove('drop-here'));
  const c = dropTarget(e);
  if (!c) return;
  for (const file of e.dataTransfer.files) sendFile(file, c);
});

initUploads({
  root: $('uploads'),
  opener: $('uploads-open'),
  user: () => identity?.user ?? null,
  token: () => identity?.token ?? null,
  conversation: () => {
    const c = convs.get(current);
    return c ? { kind: c.kind, name: c.name, peer: c.peer } : null;
  },
  post: postUpload,
});

// ---- start ---------------------------------------------------------------
if (identity) { showApp(); connect(); } else { setStatus('not connected', 'down'); showLogin(''); }
