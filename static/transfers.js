// File transfers on the chat page (docs/protocol.md §16): offering a file to a person or a
// room, accepting or declining, the flow-controlled relay with progress, speed and time
// left, pause and resume across reconnects and reloads, and the SHA-256 check at the end.
//
// A received file is written to the browser's origin-private storage by files-worker.js as
// it arrives (never held whole in memory) and saved from there; where the browser cannot
// do that, the page says so and keeps the file in memory. Each transfer is a card in its
// conversation; the cards' words are the errors a person can act on.
import { h, load, store, bytes, timeLeft, Meter } from './util.js';
import { Sha256 } from './sha256.js';

const HEADER = 24; // 16-byte transfer id + 8-byte offset, then the data
const READ_AHEAD = 1024 * 1024; // bytes of the source file read at once (1 MiB reads run about twice as fast as 256 KiB ones)
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const KEEP_DONE_MS = 7 * 24 * 3600 * 1000; // finished received files stay saveable this long
const ACTIVE = new Set(['offering', 'waiting', 'incoming', 'streaming', 'paused']);

// ---- the file worker -----------------------------------------------------------
let worker = null, workerSeq = 0, disk = false;
const waiting = new Map(); // worker request seq -> { resolve, reject }
const hashProgress = new Map(); // transfer id -> (bytes hashed) => void

function startWorker() {
  try {
    worker = new Worker(new URL('./files-worker.js', import.meta.url), { type: 'module' });
  } catch {
    return Promise.resolve(false);
  }
  worker.onmessage = ({ data }) => {
    if (data.op === 'hashing') return hashProgress.get(data.id)?.(data.done);
    const w = waiting.get(data.seq);
    waiting.delete(data.seq);
    if (data.op === 'error') w?.reject(new Error(data.message));
    else w?.resolve(data);
  };
  // A browser without module workers fails to load it: go on without the worker.
  worker.onerror = (e) => {
    e.preventDefault();
    worker = null;
    for (const w of waiting.values()) w.reject(new Error('the file worker could not start'));
    waiting.clear();
  };
  return call('probe', {}).then((r) => r.disk, () => false);
}

function call(op, args, transfer = []) {
  if (!worker) return Promise.reject(new Error('this browser cannot run the file worker'));
  const seq = ++workerSeq;
  return new Promise((resolve, reject) => {
    waiting.set(seq, { resolve, reject });
    worker.postMessage({ ...args, op, seq }, transfer);
  });
}

/** Without the worker: hash on the page, a piece at a time, letting the page breathe. */
async function hashHere(blob, size, progress) {
  const sha = new Sha256();
  for (let at = 0; at < size;) {
    const piece = await blob.slice(at, at + 4 * 1024 * 1024).arrayBuffer();
    if (!piece.byteLength) throw new Error(`the file ends at ${at} bytes, expected ${size}`);
    sha.update(piece);
    at += piece.byteLength;
    progress(at);
    await new Promise((resolve) => setTimeout(resolve));
  }
  return sha.hex();
}

async function savedFile(id) {
  const root = await navigator.storage.getDirectory();
  const dir = await root.getDirectoryHandle('peerlink-transfers');
  return (await dir.getFileHandle(id)).getFile();
}

// ---- ids on the wire ---------------------------------------------------------
function idBytes(id) {
  const hex = id.replace(/-/g, '');
  return Uint8Array.from({ length: 16 }, (_, i) => parseInt(hex.substr(i * 2, 2), 16));
}
function idText(b) {
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Wire the transfers to the page. `app` gives: send(frame), sendBinary(bytes) (each false
 * when not connected), me() (the user), limits() (from welcome), conversation(key, name,
 * peer) (the conversation, made if needed), place(conv, item) (put a card in its list),
 * unplace(item), render(), rid() (a request id), nameOf(userId).
 */
export function initTransfers(app) {
  const transfers = new Map(); // transfer id -> transfer; before `offered`, keyed by request id
  const requests = new Map(); // request id -> transfer (offer and accept)
  let restoredFor = null;
  let restoring = null; // while a reload's transfers are read back, frames wait here, in order
  const early = [];
  const ready = startWorker().then((ok) => { disk = ok; });

  const storeKey = () => `peerlink.transfers.${app.me()?.id}`;
  const lim = () => ({ chunk: 262144, window: 4194304, max: Infinity, ...app.limits() });

  // ---- persistence: what a reload needs to find its transfers again ---------
  function persist() {
    if (!app.me()) return;
    const keep = [...transfers.values()].filter((t) => t.id && (ACTIVE.has(t.state) || (t.state === 'done' && t.role === 'recv' && t.disk)));
    store(storeKey(), keep.map((t) => ({
      id: t.id, role: t.role, name: t.name, size: t.size, mime: t.mime, peer: t.peer, room: t.room,
      lastModified: t.lastModified, state: t.state, disk: t.disk, sha256: t.sha256, verified: t.verified, at: t.at,
    })));
  }

  async function restore() {
    const me = app.me();
    if (!me || restoredFor === me.id) return;
    restoredFor = me.id;
    await ready;
    const saved = load(storeKey());
    for (const r of Array.isArray(saved) ? saved : []) {
      if (!UUID_RE.test(r?.id) || transfers.has(r.id)) continue;
      if (r.state === 'done' && !(r.disk && Date.now() - r.at < KEEP_DONE_MS)) continue;
      if (r.role === 'recv' && !r.disk && r.state !== 'incoming') continue; // the bytes were in memory: gone
      const t = make({ ...r, state: r.state === 'done' || r.state === 'incoming' ? r.state : 'paused' });
      t.note = r.state === 'done' || r.state === 'incoming' ? '' : 'The page was reloaded; the transfer goes on once both sides are connected.';
      if (t.state === 'done') showSaved(t);
      show(t);
    }
    if (disk) {
      const keep = [...transfers.values()].filter((t) => t.role === 'recv' && t.disk).map((t) => t.id);
      call('sweep', { keep }).catch(() => {});
    }
    persist();
  }

  function make(fields) {
    const t = {
      id: null, role: 'send', name: '', size: 0, mime: 'application/octet-stream', peer: null, room: null,
      state: 'offering', file: null, sent: 0, acked: 0, received: 0, written: 0, gen: 0,
      meter: new Meter(), at: Date.now(), note: '', error: '', sha256: '', verified: null, parts: null,
      ...fields,
    };
    if (t.id) {
      t.idBytes = idBytes(t.id);
      transfers.set(t.id, t);
    }
    return t;
  }

  // ---- the card -----------------------------------------------------------------
  const convKey = (t) => (t.room ? '#' + t.room : '@' + t.peer?.id);

  function show(t) {
    if (!t.item) {
      const c = app.conversation(convKey(t), t.room || t.peer?.name, t.room ? null : t.peer?.id);
      t.item = { card: true, el: h('li', { className: 'transfer' }) };
      app.place(c, t.item, t.role === 'recv' && t.state === 'incoming');
    }
    draw(t);
    app.render();
  }

  function button(label, onclick, quiet = true, title) {
    return h('button', { type: 'button', className: quiet ? 'quiet' : '', textContent: label, onclick, title: title || '' });
  }

  function statusText(t) {
    const other = t.room ? `#${t.room}` : t.peer?.name || 'them';
    const left = t.role === 'send' ? t.acked : t.written;
    const speed = t.meter.rate();
    const moving = `${bytes(left)} of ${bytes(t.size)}` + (speed > 0 ? ` · ${bytes(speed)}/s · ${timeLeft((t.size - left) / speed)} left` : '');
    switch (t.state) {
      case 'offering': return `Offering to ${other}…`;
      case 'waiting': return t.room ? `Waiting for someone in #${t.room} to accept` : `Waiting for ${other} to accept`;
      case 'incoming': return `${t.peer?.name} offers this file${t.room ? ` in #${t.room}` : ''}.`;
      case 'streaming': return t.file || t.role === 'recv' ? moving : `Pick ${t.name} again to resume from ${bytes(t.acked)}.`;
      case 'paused': return `Paused at ${bytes(left)} of ${bytes(t.size)}. ${t.note || `Waiting for ${t.role === 'send' ? other : t.peer?.name} to reconnect.`}`;
      case 'verifying': return `Checking the SHA-256… ${t.hashed ? Math.floor((100 * t.hashed) / Math.max(1, t.size)) + ' %' : ''}`;
      case 'done': return `Complete: ${bytes(t.size)} ${t.role === 'send' ? `sent to ${other}` : `from ${t.peer?.name}`}.`;
      case 'declined': return `${t.note || 'Declined'}.`;
      case 'missed': return `You did not take this file; ${t.note}. Ask ${t.peer?.name ?? 'the sender'} to send it again if you want it.`;
      case 'cancelled': return `Cancelled: ${t.note || 'stopped'}.`;
      case 'failed': return 'Failed.';
      default: return '';
    }
  }

  function draw(t) {
    const e = t.item.el;
    e.dataset.state = t.state;
    e.dataset.verified = String(t.verified);
    const direction = t.role === 'send' ? `to ${t.room ? '#' + t.room : t.peer?.name}` : `from ${t.peer?.name}`;
    const title = h('div', { className: 'meta' }, h('strong', {}, `File: ${t.name}`), h('span', {}, bytes(t.size)), h('span', {}, direction));
    const done = t.role === 'send' ? t.acked : t.written;
    const bar = h('progress', { max: Math.max(1, t.size), value: t.state === 'verifying' ? t.hashed || 0 : t.size ? done : t.state === 'done' ? 1 : 0 });
    bar.setAttribute('aria-label', `Transfer of ${t.name}`);
    const status = h('p', { className: 'tstatus', textContent: statusText(t) });
    const kids = [title];
    if (ACTIVE.has(t.state) && t.state !== 'incoming' || t.state === 'verifying' || t.state === 'done') kids.push(bar);
    kids.push(status);
    if (t.role === 'recv' && t.state === 'incoming' && !disk) {
      kids.push(h('p', { className: 'hint warn' }, 'This browser cannot write the file to disk while it arrives: it is kept in memory until you save it.'));
    }
    if (t.sha256) {
      const mark = t.verified === true ? h('span', { className: 'verified' }, '✓ verified')
        : t.verified === false ? h('span', { className: 'mismatch' }, '✗ checksum mismatch') : null;
      kids.push(h('p', { className: 'digest' }, h('code', { title: 'SHA-256' }, `SHA-256 ${t.sha256}`), ' ', mark));
    }
    if (t.verified === true) {
      kids.push(h('p', { className: 'hint' }, t.role === 'recv'
        ? 'The file this browser wrote has the same SHA-256 as the file the node relayed.'
        : 'Your file has the same SHA-256 as the bytes the node relayed.'));
    }
    if (t.error) kids.push(h('p', { className: 'error', role: 'alert', textContent: t.error }));
    kids.push(h('div', { className: 'row actions' }, ...actions(t)));
    t.item.el.replaceChildren(...kids);
  }

  function actions(t) {
    const out = [];
    if (t.state === 'incoming') {
      out.push(button(`Accept ${t.name}`, () => accept(t), false), button('Decline', () => decline(t), true, `Decline ${t.name}`));
    }
    if (t.role === 'send' && !t.file && (t.state === 'paused' || t.state === 'streaming')) {
      out.push(button(`Pick ${t.name} again…`, () => app.pickFile((f) => repick(t, f)), false));
    }
    if (['offering', 'waiting', 'streaming', 'paused'].includes(t.state)) out.push(button('Cancel', () => cancel(t), true, `Cancel the transfer of ${t.name}`));
    if (t.url) out.push(h('a', { className: 'button', href: t.url, download: t.name, textContent: `Save ${t.name}` }));
    if (!ACTIVE.has(t.state) && t.state !== 'verifying') out.push(button('Remove', () => remove(t), true, `Remove ${t.name} from this list`));
    return out;
  }

  function update(t, changes) {
    Object.assign(t, changes);
    if (t.item) draw(t);
    if ('state' in changes) persist();
  }

  // ---- sending -------------------------------------------------------------------
  /** Offer `file` to a conversation: `{kind:'room', name}` or `{kind:'dm', peer, name}`. */
  function offer(file, target) {
    const { max } = lim();
    const t = make({
      role: 'send', name: file.name || 'file', size: file.size, mime: file.type || 'application/octet-stream',
      file, lastModified: file.lastModified,
      room: target.kind === 'room' ? target.name : null,
      peer: target.kind === 'room' ? null : { id: target.peer, name: target.name },
    });
    show(t);
    if (file.size > max) {
      const exact = bytes(file.size) === bytes(max); // 1.0 MiB against 1.0 MiB says nothing
      const size = (n) => (exact ? `${n.toLocaleString('en')} bytes` : bytes(n));
      return update(t, { state: 'failed', error: `${t.name} is ${size(file.size)}: too large, the limit on this node is ${size(max)}. Compress or split it.` });
    }
    if (!t.name.trim() || [...t.name].length > 255) return update(t, { state: 'failed', error: 'The file name must be 1–255 characters.' });
    const id = 't-' + app.rid();
    requests.set(id, t);
    const frame = { type: 'offer', id, name: t.name, size: t.size, mime: t.mime, ...(t.room ? { room: t.room } : { to: t.peer.id }) };
    if (!app.send(frame)) {
      requests.delete(id);
      update(t, { state: 'failed', error: 'Not connected right now: offer the file again once reconnected.' });
    }
  }

  async function pump(t) {
    if (t.pumping) { t.again = true; return; }
    t.pumping = true;
    try {
      const { chunk, window } = lim();
      while (t.state === 'streaming' && t.file && t.sent < t.size) {
        const room = window - (t.sent - t.acked);
        if (room < Math.min(chunk, t.size - t.sent)) break; // the window is full: the next `progress` starts us again
        // Read up to READ_AHEAD at once (each read is a round trip to the browser's file
        // layer), then send it as chunks.
        const at = t.sent, gen = t.gen;
        const n = Math.min(READ_AHEAD, t.size - at, Math.floor(room / chunk) * chunk || room);
        const data = new Uint8Array(await t.file.slice(at, at + n).arrayBuffer());
        if (t.gen !== gen || t.sent !== at || t.state !== 'streaming') break;
        if (data.length !== n) { update(t, { error: `Could not read ${t.name}: it changed or was removed. Pick it again.`, file: null }); break; }
        for (let off = 0; off < n; off += chunk) {
          const part = data.subarray(off, Math.min(n, off + chunk));
          const frame = new Uint8Array(HEADER + part.length);
          frame.set(t.idBytes);
          new DataView(frame.buffer).setBigUint64(16, BigInt(at + off));
          frame.set(part, HEADER);
          if (!app.sendBinary(frame)) return;
          t.sent = at + off + part.length;
        }
      }
      if (t.state === 'streaming' && t.file && t.sent === t.size && !t.endSent) {
        t.endSent = app.send({ type: 'end', transfer: t.id });
      }
    } catch (e) {
      update(t, { error: `Could not read ${t.name}: ${e.message}. Pick it again to go on.`, file: null });
    } finally {
      t.pumping = false;
      if (t.again) { t.again = false; pump(t); }
    }
  }

  /** After a reload the sender picks the file again; it must be the same file. */
  function repick(t, f) {
    if (f.size !== t.size || f.name !== t.name || (t.lastModified && f.lastModified !== t.lastModified)) {
      return update(t, { error: `That is not the same file: pick ${t.name} (${bytes(t.size)})${t.lastModified ? `, last changed ${new Date(t.lastModified).toLocaleString()}` : ''}.` });
    }
    update(t, { file: f, error: '' });
    pump(t);
  }

  // ---- receiving ----------------------------------------------------------------
  async function accept(t) {
    await ready;
    update(t, { state: 'streaming', disk, received: 0, written: 0, error: '' });
    t.meter.reset();
    try {
      if (disk) await call('open', { id: t.id, offset: 0 });
      else t.parts = [];
    } catch (e) {
      return update(t, { state: 'incoming', error: `Could not store the file in this browser: ${e.message}` });
    }
    const id = 't-' + app.rid();
    requests.set(id, t);
    if (!app.send({ type: 'accept', id, transfer: t.id, offset: 0 })) {
      requests.delete(id);
      update(t, { state: 'incoming', error: 'Not connected right now: accept again once reconnected.' });
    }
  }

  function decline(t) {
    app.send({ type: 'decline', transfer: t.id });
    update(t, { state: 'declined', note: 'You declined' });
  }

  function cancel(t) {
    if (!t.id) return update(t, { state: 'cancelled', note: 'cancelled by you' });
    if (!app.send({ type: 'cancel', transfer: t.id })) update(t, { error: 'Not connected right now: cancel again once reconnected.' });
  }

  function remove(t) {
    if (t.url) URL.revokeObjectURL(t.url);
    if (t.role === 'recv' && t.disk) call('remove', { id: t.id }).catch(() => {});
    transfers.delete(t.id);
    app.unplace(t.item);
    persist();
    app.render();
  }

  function onBinary(buf) {
    if (buf.byteLength < HEADER) return;
    const t = transfers.get(idText(new Uint8Array(buf, 0, 16)));
    if (!t || t.role !== 'recv' || t.state !== 'streaming') return;
    const offset = Number(new DataView(buf).getBigUint64(16));
    if (offset !== t.received) return; // after a pause the node sends again from the agreed offset
    const n = buf.byteLength - HEADER, gen = t.gen;
    t.received += n;
    if (!t.disk) {
      t.parts.push(new Blob([new Uint8Array(buf, HEADER)]));
      return written(t, gen, offset + n);
    }
    call('write', { id: t.id, offset, data: buf, skip: HEADER }, [buf]).then(
      (r) => written(t, gen, r.end),
      (e) => {
        cancel(t);
        update(t, { error: `Could not write the file to this browser's storage (${e.message}); the transfer was cancelled. Free some space and ask for it again.` });
      },
    );
  }

  /** Bytes [0, end) are stored: tell the node, which relays `progress` to the sender. */
  function written(t, gen, end) {
    if (t.gen !== gen || t.state !== 'streaming') return; // paused meanwhile: the node will say where to go on
    t.written = end;
    t.meter.add(end);
    app.send({ type: 'ack', transfer: t.id, offset: end });
    tick(t);
  }

  // Redraw a moving card at most ~8 times a second.
  function tick(t) {
    if (t.tickTimer) return;
    t.tickTimer = setTimeout(() => { t.tickTimer = 0; if (t.item) draw(t); }, 120);
  }

  async function showSaved(t) {
    try {
      const file = t.disk ? await savedFile(t.id) : new Blob(t.parts, { type: t.mime });
      update(t, { url: URL.createObjectURL(file) });
    } catch (e) {
      update(t, { error: `The received file is no longer in this browser's storage (${e.message}).` });
    }
  }

  // ---- the end: digest check --------------------------------------------------------
  async function verify(t, sha256) {
    update(t, { state: 'verifying', sha256, hashed: 0, error: '' });
    const progress = (done) => { t.hashed = done; tick(t); };
    hashProgress.set(t.id, progress);
    try {
      const blob = t.role === 'send' ? t.file : t.disk ? null : new Blob(t.parts);
      const mine = !worker ? await hashHere(blob, t.size, progress)
        : (await call('hash', blob ? { id: t.id, blob, size: t.size } : { id: t.id, size: t.size })).sha256;
      const ok = mine === sha256;
      update(t, {
        state: 'done', verified: ok,
        error: ok ? '' : t.role === 'recv'
          ? `Checksum mismatch: the file in this browser has SHA-256 ${mine}. Do not trust this copy; ask for the file again.`
          : `Checksum mismatch: your file now has SHA-256 ${mine}; it changed while it was sent. Send it again.`,
      });
    } catch (e) {
      update(t, { state: 'done', verified: null, error: `Could not check the SHA-256 here (${e.message}); compare it with the sender's.` });
    } finally {
      hashProgress.delete(t.id);
    }
    if (t.role === 'recv') await showSaved(t);
  }

  // ---- frames from the node ------------------------------------------------------
  const handlers = {
    // The answer to our offer, or (without `re`) a new connection hearing that it still waits.
    offered(m, t) {
      if (!t || t.role !== 'send') return;
      if (!t.id) {
        t.id = m.transfer;
        t.idBytes = idBytes(t.id);
        transfers.set(t.id, t);
      }
      update(t, { state: 'waiting', note: '' });
    },
    offer(m) {
      if (!UUID_RE.test(m.transfer)) return;
      const known = transfers.get(m.transfer);
      if (known) return; // a new connection hears the offers still open: already on screen
      const t = make({
        id: m.transfer, role: 'recv', state: 'incoming', name: String(m.name ?? 'file'), size: Number(m.size) || 0,
        mime: m.mime || 'application/octet-stream', peer: m.from, room: m.room || null,
      });
      show(t);
      persist();
      app.announce(`${t.peer?.name ?? 'Someone'} offers ${t.name} (${bytes(t.size)})${t.room ? ` in #${t.room}` : ''}.`, convKey(t));
    },
    accepted(m, t) {
      if (!t || t.role !== 'send') return;
      if (t.state === 'waiting' || t.state === 'paused') {
        t.gen++;
        t.meter.reset();
        update(t, { state: 'streaming', sent: m.offset || 0, acked: m.offset || 0, endSent: false, note: '' });
        pump(t);
      }
    },
    declined(m, t) {
      if (t && t.room) update(t, { note: `${m.by?.name} declined` });
    },
    progress(m, t) {
      if (!t || t.role !== 'send' || !(m.offset >= t.acked)) return;
      t.acked = m.offset;
      t.meter.add(m.offset);
      tick(t);
      pump(t);
    },
    paused(m, t) {
      if (!t) return;
      t.gen++;
      const at = Number(m.offset) || 0;
      Object.assign(t, { sent: at, acked: at, received: at, written: Math.min(t.written, at), endSent: false });
      if (t.role === 'recv' && t.disk) call('open', { id: t.id, offset: at }).catch(() => {});
      else if (t.role === 'recv') t.parts = t.parts ? trim(t.parts, at) : null;
      update(t, { state: 'paused', note: '' });
    },
    async resume(m, t) {
      if (!t) return app.send({ type: 'cancel', transfer: m.transfer }); // this browser forgot it
      const at = Number(m.offset) || 0, gen = ++t.gen;
      t.meter.reset();
      if (t.role === 'recv') {
        try {
          if (!t.disk) throw new Error('the part received before was kept in memory and is gone');
          await call('open', { id: t.id, offset: at });
        } catch (e) {
          app.send({ type: 'cancel', transfer: t.id });
          return update(t, { error: `Cannot resume: ${e.message}. Ask for the file again.` });
        }
        if (t.gen !== gen) return;
        Object.assign(t, { received: at, written: at });
      }
      Object.assign(t, { sent: at, acked: at, endSent: false });
      update(t, { state: 'streaming', note: '', error: '' });
      pump(t);
    },
    complete(m, t) {
      if (!t) return;
      if (t.role === 'recv' && t.state === 'incoming') {
        // A room offer others took while this person had not answered.
        return update(t, { state: 'missed', note: `the others${t.room ? ` in #${t.room}` : ''} received it` });
      }
      t.gen++;
      t.acked = t.written = t.size;
      verify(t, String(m.sha256 || ''));
    },
    failed(m, t) {
      if (!t) return;
      t.gen++;
      const why = m.reason === 'checksum_mismatch'
        ? 'Checksum mismatch: the bytes relayed do not have the SHA-256 the sender declared. Send the file again.'
        : m.message || m.reason || 'the transfer failed';
      update(t, { state: 'failed', error: why });
      if (t.role === 'recv' && t.disk) call('remove', { id: t.id }).catch(() => {});
    },
    cancelled(m, t) {
      if (!t) return;
      t.gen++;
      const reason = m.reason === 'expired' ? 'nobody accepted it in time' : m.reason === 'declined' ? `${t.peer?.name ?? 'they'} declined` : m.reason;
      update(t, { state: m.reason === 'declined' ? 'declined' : 'cancelled', note: reason });
      if (t.role === 'recv' && t.disk) call('remove', { id: t.id }).catch(() => {});
    },
  };

  /** Keep the in-memory parts up to `at` bytes (memory mode after a pause). */
  function trim(parts, at) {
    const out = [];
    let n = 0;
    for (const p of parts) {
      if (n >= at) break;
      out.push(n + p.size <= at ? p : p.slice(0, at - n));
      n += p.size;
    }
    return out;
  }

  /** Handles a transfer frame; returns false for frames that are not about transfers. */
  function onFrame(m) {
    const handler = Object.hasOwn(handlers, m.type) ? handlers[m.type] : null;
    if (!handler) return false;
    if (restoring) {
      early.push(m);
      return true;
    }
    const t = m.type === 'offered' && m.re != null ? requests.get(m.re) : transfers.get(m.transfer);
    if (m.type === 'offered') requests.delete(m.re);
    handler(m, t);
    return true;
  }

  /** An `error` about a transfer (it names the transfer, or answers our offer or accept). */
  function onError(m, text) {
    const t = (m.re != null && requests.get(m.re)) || (m.transfer && transfers.get(m.transfer));
    if (!t) return false;
    requests.delete(m.re);
    if (t.state === 'offering') {
      const offline = m.code === 'unavailable' && t.peer && /offline/.test(text);
      update(t, { state: 'failed', error: offline ? `${t.peer.name} is offline: offer the file when they are online.` : `Could not offer the file: ${text}` });
    } else if (t.role === 'recv' && m.re != null) {
      // Gone (not_found) or started without us (conflict): nothing left to accept.
      const over = m.code === 'not_found' || m.code === 'conflict';
      update(t, { state: over ? 'cancelled' : 'incoming', note: 'the offer is no longer open', error: `Could not accept: ${text}` });
      if (over && t.disk) call('remove', { id: t.id }).catch(() => {});
    } else {
      update(t, { error: text });
    }
    return true;
  }

  /** The connection dropped: everything moving pauses until the node says where to go on. */
  function onLost() {
    for (const t of transfers.values()) {
      for (const [id, r] of requests) if (r === t) requests.delete(id);
      if (t.state === 'offering') update(t, { state: 'failed', error: 'The connection was lost before the offer was made: offer the file again.' });
      if (t.state === 'streaming') {
        t.gen++;
        update(t, { state: 'paused', note: 'The connection was lost; it goes on after reconnecting.' });
      }
    }
  }

  /** Signed out: forget the cards (what a reload needs stays stored for that user). */
  function reset() {
    for (const t of transfers.values()) if (t.url) URL.revokeObjectURL(t.url);
    transfers.clear();
    requests.clear();
    restoredFor = null;
  }

  function onWelcome() {
    if (restoring) return;
    restoring = restore().finally(() => {
      restoring = null;
      for (const m of early.splice(0)) onFrame(m);
    });
  }

  return { offer, onFrame, onBinary, onError, onLost, onWelcome, reset };
}
