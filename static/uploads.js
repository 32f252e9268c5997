// The "Uploads…" dialog of the chat page: a tus 1.0.0 client for the node's /files/
// (docs/protocol.md §14.1), the list of the signed-in user's uploads made in this browser,
// and, for a finished upload, share links (§14.2) and posting it into the conversation.
//
// Invariants:
// - A file is never read into memory whole: each PATCH body is a Blob slice of PIECE bytes.
// - No request is made that is expected to fail, because Chromium logs every non-2xx answer
//   to the console: the page never probes, never HEADs an upload it knows is complete, and
//   forgets an unfinished upload whose Upload-Expires has passed without asking the node.
// - File names and the node's messages go into the page as text nodes, never as HTML.
import { h, load, store, bytes, timeLeft, Meter } from './util.js';

const TUS_VERSION = '1.0.0';
/** Bytes per PATCH: big enough that per-request overhead does not matter, small enough that
 *  a dropped connection costs little and a slice stays cheap. */
const PIECE = 4 * 1024 * 1024;
/** Seconds before each retry after a lost connection or a 5xx; then the row offers Retry. */
const RETRY_DELAYS = [1, 2, 4, 8, 15, 15];
/** A PATCH that reports no upload progress for this long counts as a lost connection. */
const STALL_MS = 60_000;
/** Uploads remembered per user in this browser; the oldest drop off the list. */
const KEEP = 50;
const LINK_TTLS = [['1 hour', 3600], ['1 day', 86_400], ['7 days', 7 * 86_400], ['30 days', 30 * 86_400]];
const DEFAULT_TTL = 86_400;

const storageKey = (userId) => `peerlink.uploads.${userId}`;
let nextUid = 0;
const uid = (what) => `uploads-${what}-${++nextUid}`;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Why a request failed. `kind` decides what the client does next: 'network' and 'server'
 * (5xx) are retried with backoff, 'conflict' (409) re-reads the offset and goes on, 'gone'
 * (404/410) forgets the upload, anything else stops with `message` for the person.
 */
class UploadError extends Error {
  constructor(kind, message) { super(message); this.kind = kind; }
}
const RETRYABLE = new Set(['network', 'server', 'conflict']);

// ---- talking to the node ----------------------------------------------------------

/** `Tus-Max-Size` from `OPTIONS /files/`, asked once per page (null while unknown). */
let maxSizeAsked = null;
function maxSize() {
  maxSizeAsked ??= fetch('/files/', { method: 'OPTIONS' })
    .then((res) => {
      const max = Number(res.headers.get('Tus-Max-Size'));
      return res.ok && max > 0 ? max : null;
    })
    .catch(() => { maxSizeAsked = null; return null; });
  return maxSizeAsked;
}

function tooLarge(name, size, limit, said) {
  const at = limit ?? Number(/at most (\d+)/.exec(said ?? '')?.[1]);
  return at > 0 ? `Too large: ${name} is ${bytes(size)}; the limit is ${bytes(at)}.`
    : `Too large: ${said || 'the node does not accept a file this big'}.`;
}

/** The error for a non-2xx answer to a request about `entry` (body: the node's JSON, or null). */
function failure(status, body, entry) {
  const said = typeof body?.message === 'string' ? body.message : '';
  if (status === 401) return new UploadError('auth', 'Your session has expired: sign in again, then upload the file again.');
  if (status === 404 || status === 410) return new UploadError('gone', 'This upload has expired on the node; upload it again.');
  if (status === 409) return new UploadError('conflict', said || 'the node holds a different part of the file');
  if (status === 413) return new UploadError('refused', tooLarge(entry.name, entry.size, null, said));
  if (status >= 500) return new UploadError('server', said || `the node answered ${status}`);
  return new UploadError('refused', said ? `The node refused the upload: ${said}` : `The node refused the upload (HTTP ${status}).`);
}

async function request(method, url, headers, entry) {
  let res;
  try {
    res = await fetch(url, { method, headers, cache: 'no-store' });
  } catch {
    throw new UploadError('network', 'the connection to the node was lost');
  }
  if (!res.ok) throw failure(res.status, await res.json().catch(() => null), entry);
  return res;
}

/** One PATCH through XMLHttpRequest, whose upload events drive the progress bar. */
function sendPiece(task, headers, body, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    let stalled = false, watchdog = 0;
    const watch = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => { stalled = true; xhr.abort(); }, STALL_MS);
    };
    const done = (fn, value) => { clearTimeout(watchdog); task.xhr = null; fn(value); };
    xhr.open('PATCH', task.entry.location);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (e) => { watch(); onProgress(e.loaded); };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) return done(resolve, xhr);
      let parsed = null;
      try { parsed = JSON.parse(xhr.responseText); } catch { /* not JSON: use the status */ }
      done(reject, failure(xhr.status, parsed, task.entry));
    };
    xhr.onerror = () => done(reject, new UploadError('network', 'the connection to the node was lost'));
    xhr.onabort = () => done(reject, stalled
      ? new UploadError('network', 'the node stopped taking the file')
      : new UploadError('cancelled', 'cancelled'));
    task.xhr = xhr;
    watch();
    xhr.send(body);
  });
}

/** Base64 of a string's UTF-8 bytes, as Upload-Metadata wants its values. */
function base64(text) {
  let binary = '';
  for (const b of new TextEncoder().encode(text)) binary += String.fromCharCode(b);
  return btoa(binary);
}

// ---- what this browser remembers -------------------------------------------------
// Per user, a list of entries {id, location, name, size, lastModified, type, offset,
// expires (ms, while unfinished), started (ms), complete, sha256}.

const validEntry = (e) => e && typeof e.id === 'string' && typeof e.location === 'string'
  && e.location.startsWith('/files/') && typeof e.name === 'string' && Number.isSafeInteger(e.size);

function storedEntries(userId) {
  const list = load(storageKey(userId));
  return Array.isArray(list) ? list.filter(validEntry) : [];
}

function remember(task) {
  if (!task.entry.id || task.cancelled) return;
  const others = storedEntries(task.userId).filter((e) => e.id !== task.entry.id);
  const list = [{ ...task.entry }, ...others].sort((a, b) => (b.started || 0) - (a.started || 0));
  store(storageKey(task.userId), list.slice(0, KEEP));
}

function forget(task) {
  if (!task.entry.id) return;
  const list = storedEntries(task.userId).filter((e) => e.id !== task.entry.id);
  store(storageKey(task.userId), list.length ? list : null);
}

const sameFile = (entry, file) => !entry.complete && entry.name === file.name
  && entry.size === file.size && entry.lastModified === file.lastModified;
const expired = (entry) => !entry.complete && entry.expires > 0 && entry.expires <= Date.now();

// ---- the dialog ------------------------------------------------------------------

/**
 * Builds the dialog in `root` and opens it from `opener`. `user()`/`token()` name who is
 * signed in (null when nobody), `conversation()` what is on screen, and `post(upload,
 * target)` posts a finished upload there (see chat.js).
 */
export function initUploads({ root, opener, user, token, conversation, post }) {
  /** Every upload shown or running in this page, of any user (each row keeps its state). */
  const tasks = [];

  const fileInput = h('input', { id: 'uploads-file', type: 'file', name: 'file' });
  fileInput.setAttribute('aria-describedby', 'uploads-pick-hint uploads-pick-error');
  const pickHint = h('p', { id: 'uploads-pick-hint', className: 'hint' },
    'An upload that stops resumes where it stopped: pick the same file again.');
  const pickError = h('p', { id: 'uploads-pick-error', className: 'error', role: 'alert' });
  const pickForm = h('form', { className: 'uploads-pick', noValidate: true },
    h('label', { htmlFor: 'uploads-file' }, 'File to upload'),
    h('div', { className: 'row' }, fileInput, h('button', { type: 'submit' }, 'Upload')),
    pickHint, pickError);
  const signedOut = h('p', { className: 'hint' }, 'Sign in to upload files and share them.');
  const empty = h('p', { className: 'hint' }, 'No uploads from this browser yet.');
  const list = h('ul', { className: 'uploads-list' });
  list.setAttribute('aria-labelledby', 'uploads-list-title');
  const close = h('button', { type: 'button', className: 'quiet', onclick: () => root.close() }, 'Close');
  root.replaceChildren(
    h('div', { className: 'uploads-head' }, h('h2', { id: 'uploads-title' }, 'Uploads'), close),
    h('div', { className: 'uploads-body' },
      signedOut, pickForm,
      h('h3', { id: 'uploads-list-title' }, 'Your uploads in this browser'),
      empty, list));

  opener.addEventListener('click', () => {
    refresh();
    if (!root.open) root.showModal();
    (pickForm.hidden ? close : fileInput).focus();
  });
  fileInput.addEventListener('change', () => { pickError.textContent = ''; });
  pickForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const file = fileInput.files?.[0];
    if (!file) return void (pickError.textContent = 'Choose a file first.');
    pickError.textContent = '';
    fileInput.value = '';
    start(file);
  });

  /** Shows the signed-in user's uploads, re-read from storage (another user may have signed in). */
  function refresh() {
    const me = user();
    const signedIn = !!(me?.id && token());
    pickForm.hidden = !signedIn;
    signedOut.hidden = signedIn;
    if (signedIn) {
      maxSize().then((max) => {
        if (max) pickHint.textContent = `Up to ${bytes(max)}. An upload that stops resumes where it stopped: pick the same file again.`;
      });
      for (const entry of storedEntries(me.id)) {
        if (!tasks.some((t) => t.userId === me.id && t.entry.id === entry.id)) tasks.push(restore(me, entry));
      }
    }
    const mine = signedIn ? tasks.filter((t) => t.userId === me.id) : [];
    mine.sort((a, b) => (b.entry.started || 0) - (a.entry.started || 0));
    list.replaceChildren(...mine.map((t) => t.el));
    for (const t of mine) render(t);
    empty.hidden = !signedIn || mine.length > 0;
  }

  // ---- one upload ------------------------------------------------------------------

  function newTask(me, entry, state) {
    const task = { userId: me.id, entry, state, file: null, error: '', note: '', running: false, meter: new Meter() };
    task.el = rowEl(task);
    return task;
  }

  /** A row for an upload remembered from an earlier visit. */
  function restore(me, entry) {
    if (entry.complete) return newTask(me, entry, 'complete');
    const task = newTask(me, entry, expired(entry) ? 'failed' : 'interrupted');
    if (task.state === 'failed') {
      task.error = 'This upload expired before it was finished; upload it again.';
      forget(task);
    }
    return task;
  }

  function start(file) {
    const me = user();
    if (!me?.id || !token()) return void (pickError.textContent = 'Sign in to upload files.');
    const known = tasks.find((t) => t.userId === me.id && sameFile(t.entry, file) && (t.state !== 'failed' || t.canRetry));
    if (known?.running) return void (pickError.textContent = `${file.name} is already being uploaded.`);
    if (known && expired(known.entry)) {
      forget(known);
      drop(known);
    } else if (known) {
      known.file = file;
      known.needsHead = true; // the node may hold more or less than we last heard
      return void drive(known);
    }
    const entry = {
      id: '', location: '', name: file.name, size: file.size, lastModified: file.lastModified,
      type: file.type, offset: 0, expires: 0, started: Date.now(), complete: false, sha256: '',
    };
    const task = newTask(me, entry, 'starting');
    task.file = file;
    tasks.push(task);
    refresh();
    drive(task);
  }

  function drop(task) {
    const i = tasks.indexOf(task);
    if (i >= 0) tasks.splice(i, 1);
    task.el.remove();
    empty.hidden = list.children.length > 0 || pickForm.hidden;
  }

  /** Runs the upload to the end, retrying what can be retried; never throws. */
  async function drive(task) {
    if (task.running) return;
    Object.assign(task, { running: true, cancelled: false, error: '', note: '', state: 'uploading' });
    task.meter.reset();
    render(task);
    let tries = 0;
    let offsetAtError = -1;
    for (;;) {
      try {
        await uploadAll(task);
        Object.assign(task, { running: false, state: 'complete' });
        render(task);
        return;
      } catch (e) {
        if (task.cancelled) return void (task.running = false);
        if (task.entry.offset > offsetAtError) tries = 0; // it moved on since the last error
        offsetAtError = task.entry.offset;
        if (RETRYABLE.has(e.kind) && tries < RETRY_DELAYS.length) {
          task.needsHead = !!task.entry.location;
          if (e.kind !== 'conflict') await backoff(task, RETRY_DELAYS[tries], tries + 1, e);
          tries++;
          if (task.cancelled) return void (task.running = false);
          continue;
        }
        stop(task, e, tries);
        return;
      }
    }
  }

  async function uploadAll(task) {
    if (!task.entry.location) await create(task);
    else if (task.needsHead) await readOffset(task);
    while (task.entry.offset < task.entry.size) await patch(task);
    await describe(task);
  }

  /** The Bearer header, as long as the person who started the upload is still signed in. */
  function bearer(task) {
    const t = token();
    if (!t || user()?.id !== task.userId) throw new UploadError('signed-out', 'Stopped: you signed out.');
    return { Authorization: `Bearer ${t}` };
  }
  /** Headers for the next request of a running upload; none once it was cancelled. */
  function auth(task) {
    if (task.cancelled) throw new UploadError('cancelled', 'cancelled');
    return bearer(task);
  }
  const tus = (task) => ({ 'Tus-Resumable': TUS_VERSION, ...auth(task) });

  async function create(task) {
    const { entry } = task;
    const limit = await maxSize();
    if (limit && entry.size > limit) throw new UploadError('refused', tooLarge(entry.name, entry.size, limit));
    const metadata = [`filename ${base64(entry.name)}`];
    if (entry.type) metadata.push(`filetype ${base64(entry.type)}`);
    const res = await request('POST', '/files/', {
      ...tus(task), 'Upload-Length': String(entry.size), 'Upload-Metadata': metadata.join(','),
    }, entry);
    const location = new URL(res.headers.get('Location') || '', window.location.href).pathname;
    Object.assign(entry, {
      location, id: location.split('/').pop(),
      offset: Number(res.headers.get('Upload-Offset')) || 0,
      expires: Date.parse(res.headers.get('Upload-Expires') || '') || 0,
    });
    remember(task);
  }

  /** HEAD: how many bytes the node really holds, before going on after an interruption. */
  async function readOffset(task) {
    const { entry } = task;
    const res = await request('HEAD', entry.location, tus(task), entry);
    const offset = Number(res.headers.get('Upload-Offset'));
    if (!Number.isSafeInteger(offset) || Number(res.headers.get('Upload-Length')) !== entry.size) {
      throw new UploadError('gone', 'The node holds a different file under this upload; upload it again.');
    }
    entry.offset = task.done = offset;
    entry.expires = Date.parse(res.headers.get('Upload-Expires') || '') || entry.expires;
    task.needsHead = false;
    remember(task);
  }

  async function patch(task) {
    const { entry } = task;
    const from = entry.offset, to = Math.min(from + PIECE, entry.size);
    const headers = { ...tus(task), 'Upload-Offset': String(from), 'Content-Type': 'application/offset+octet-stream' };
    const xhr = await sendPiece(task, headers, task.file.slice(from, to), (sent) => progress(task, from + sent));
    const offset = Number(xhr.getResponseHeader('Upload-Offset'));
    if (!(offset > from && offset <= entry.size)) throw new UploadError('conflict', 'the node did not take the piece');
    entry.offset = offset;
    remember(task);
    progress(task, offset);
  }

  /** The finished upload as the node describes it, with the SHA-256 it computed. */
  async function describe(task) {
    const { entry } = task;
    const res = await request('GET', `/api/uploads/${encodeURIComponent(entry.id)}`, auth(task), entry);
    const info = await res.json().catch(() => null);
    if (!info?.complete || !/^[0-9a-f]{64}$/.test(info.sha256 ?? '')) {
      throw new UploadError('conflict', 'the node has not got the whole file yet');
    }
    Object.assign(entry, { complete: true, sha256: info.sha256, name: String(info.name ?? entry.name), offset: entry.size, expires: 0 });
    remember(task);
  }

  /** Waits `seconds` before a retry, counting down in the row. */
  async function backoff(task, seconds, attempt, e) {
    task.state = 'retrying';
    const why = e.kind === 'server' ? `The node had a problem (${e.message})` : 'The connection was lost';
    for (let left = seconds; left > 0 && !task.cancelled; left--) {
      task.note = `${why}; trying again in ${left} s (try ${attempt} of ${RETRY_DELAYS.length}).`;
      render(task);
      await sleep(1000);
    }
    task.note = '';
    task.state = 'uploading';
    task.meter.reset();
    render(task);
  }

  function stop(task, e, tries) {
    task.running = false;
    task.state = 'failed';
    task.canRetry = false;
    if (e.kind === 'gone' || e.kind === 'auth') {
      forget(task);
      task.error = e.message;
    } else if (e.kind === 'network' || e.kind === 'server') {
      task.canRetry = true;
      task.error = e.kind === 'network'
        ? `The connection to the node was lost (${tries + 1} tries). Check your network, then press Retry: it continues where it stopped.`
        : `The node could not take the upload: ${e.message}. Press Retry to continue where it stopped.`;
    } else {
      task.canRetry = e.kind === 'signed-out' || e.kind === 'conflict';
      task.error = e.message;
      if (e.kind === 'refused') forget(task);
    }
    render(task);
  }

  /**
   * Cancel (running), Discard (stopped) or Remove from list (finished or failed): the row
   * goes, and an unfinished upload that the node still holds is deleted there too. A
   * finished one stays on the node, so links and messages keep working.
   */
  async function discard(task) {
    const { entry } = task;
    const onNode = entry.location && !entry.complete && !expired(entry) && !(task.state === 'failed' && !task.canRetry);
    task.cancelled = true;
    task.xhr?.abort();
    forget(task);
    drop(task);
    if (!onNode) return;
    // The node refuses to delete while it still writes the aborted PATCH: give it a moment.
    await sleep(500);
    try {
      await request('DELETE', entry.location, { 'Tus-Resumable': TUS_VERSION, ...bearer(task) }, entry);
    } catch { /* it expires on its own within hours */ }
  }

  function progress(task, done) {
    task.meter.add(done);
    task.done = done;
    if (task.state === 'uploading') render(task);
  }

  // ---- rows ------------------------------------------------------------------------

  function rowEl(task) {
    const { entry } = task;
    const r = task.ui = {};
    r.name = h('strong', { className: 'upload-name' });
    r.size = h('span', { className: 'upload-size' });
    r.bar = h('progress', { max: 1, value: 0 });
    r.progress = h('p', { className: 'upload-progress' });
    r.state = h('p', { className: 'upload-state', role: 'status' });
    r.error = h('p', { className: 'error', role: 'alert' });
    r.retry = h('button', { type: 'button', onclick: () => retry(task) }, 'Retry');
    r.cancel = h('button', { type: 'button', className: 'quiet', onclick: () => discard(task) }, 'Cancel');
    r.remove = h('button', { type: 'button', className: 'quiet', onclick: () => discard(task) }, 'Remove from list');
    r.digest = h('code', { className: 'upload-digest' });
    r.done = h('div', { className: 'upload-done', hidden: true },
      h('span', { className: 'upload-digest-label' }, 'SHA-256'), r.digest);
    r.actions = h('div', { className: 'row upload-actions' }, r.retry, r.cancel, r.remove);
    r.share = null; // built once the upload is complete
    const li = h('li', { className: 'upload' },
      h('div', { className: 'upload-title' }, r.name, r.size),
      r.bar, r.progress, r.state, r.error, r.done, r.actions);
    li.dataset.upload = entry.id;
    return li;
  }

  function retry(task) {
    if (!task.file) return void (task.ui.error.textContent = 'Pick the same file again to resume.');
    drive(task);
  }

  function progressText(task, done) {
    const { size } = task.entry;
    const rate = task.meter.rate();
    const parts = [`${bytes(done)} of ${bytes(size)}`];
    if (rate > 0) parts.push(`${bytes(rate)}/s`, `${timeLeft((size - done) / rate)} left`);
    return parts.join(' · ');
  }

  /** Brings a row up to date with its task. */
  function render(task) {
    const { entry, ui: r, state } = task;
    task.el.dataset.upload = entry.id;
    task.el.dataset.state = state;
    r.name.textContent = entry.name;
    r.size.textContent = bytes(entry.size);
    const done = state === 'uploading' ? Math.max(task.done ?? 0, entry.offset) : entry.offset;
    const active = state === 'uploading' || state === 'retrying' || state === 'starting';
    r.bar.hidden = state === 'complete' || (state === 'failed' && !task.canRetry);
    r.bar.max = Math.max(1, entry.size);
    r.bar.value = Math.min(done, entry.size);
    r.bar.setAttribute('aria-label', `Upload of ${entry.name}`);
    const stalled = state === 'failed' && task.canRetry;
    r.progress.textContent = active ? progressText(task, done) : stalled ? `${bytes(done)} of ${bytes(entry.size)} sent` : '';
    r.progress.hidden = !r.progress.textContent;
    r.state.textContent = stateText(task);
    r.error.textContent = state === 'failed' ? task.error : '';
    r.retry.hidden = !(state === 'failed' && task.canRetry && task.file);
    r.retry.setAttribute('aria-label', `Retry upload of ${entry.name}`);
    r.cancel.hidden = state === 'complete' || (state === 'failed' && !task.canRetry);
    r.cancel.textContent = active ? 'Cancel' : 'Discard';
    r.cancel.setAttribute('aria-label', `${r.cancel.textContent} upload of ${entry.name}`);
    r.remove.hidden = !r.cancel.hidden;
    r.remove.setAttribute('aria-label', `Remove ${entry.name} from the list`);
    r.remove.title = state === 'complete' ? 'The file stays on the node: links and messages keep working.' : '';
    r.done.hidden = state !== 'complete';
    r.digest.textContent = entry.sha256 || '';
    if (state === 'complete') {
      r.share ??= shareEl(task);
      if (!r.share.isConnected) task.el.insertBefore(r.share, r.actions);
      updatePost(task);
    }
  }

  function stateText(task) {
    const { entry, state } = task;
    if (state === 'starting') return 'Starting…';
    if (state === 'uploading') return 'Uploading…';
    if (state === 'retrying') return task.note;
    if (state === 'complete') return 'Uploaded.';
    if (state === 'interrupted') {
      return `Interrupted at ${bytes(entry.offset)} of ${bytes(entry.size)} — pick the same file again to resume.`;
    }
    if (task.canRetry && !task.file) return 'Pick the same file again to resume.';
    return '';
  }

  // ---- share links and posting -------------------------------------------------------

  /** What a finished upload offers: a share link, and posting it where the person is. */
  function shareEl(task) {
    return h('div', { className: 'upload-share-box' },
      h('h4', {}, `Share ${task.entry.name}`), shareForm(task), postEl(task));
  }

  function shareForm(task) {
    const ids = { ttl: uid('ttl'), max: uid('max'), maxHint: uid('max-hint'), link: uid('link') };
    const ttl = h('select', { id: ids.ttl },
      ...LINK_TTLS.map(([label, secs]) => h('option', { value: String(secs) }, label)));
    ttl.value = String(DEFAULT_TTL);
    const max = h('input', { id: ids.max, type: 'number', min: '1', step: '1', inputMode: 'numeric', placeholder: 'no limit' });
    max.setAttribute('aria-describedby', ids.maxHint);
    const create = h('button', { type: 'submit' }, 'Create link');
    const error = h('p', { className: 'error', role: 'alert' });
    const link = h('input', { id: ids.link, type: 'text', readOnly: true, spellcheck: false });
    link.addEventListener('focus', () => link.select());
    const copied = h('p', { className: 'hint', role: 'status' });
    const expiry = h('p', { className: 'hint' });
    const copy = h('button', { type: 'button', className: 'quiet' }, 'Copy link');
    const result = h('div', { className: 'upload-link', hidden: true },
      h('label', { htmlFor: ids.link }, 'Share link'),
      h('div', { className: 'row' }, link, copy), expiry, copied);
    const form = h('form', { className: 'upload-share', noValidate: true },
      h('div', { className: 'upload-share-fields' },
        h('div', {}, h('label', { htmlFor: ids.ttl }, 'Link expires after'), ttl),
        h('div', {}, h('label', { htmlFor: ids.max }, 'Download limit'), max),
        create),
      h('p', { id: ids.maxHint, className: 'hint' }, 'Leave the download limit empty for no limit.'),
      error, result);

    max.addEventListener('input', () => { max.removeAttribute('aria-invalid'); error.textContent = ''; });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const limit = max.value.trim();
      const n = Number(limit);
      if (max.validity.badInput || (limit && !(Number.isSafeInteger(n) && n >= 1))) {
        max.setAttribute('aria-invalid', 'true');
        error.textContent = 'The download limit is a whole number, 1 or more; leave it empty for no limit.';
        return max.focus();
      }
      error.textContent = copied.textContent = '';
      create.disabled = true;
      try {
        const share = await createShare(task, Number(ttl.value), limit ? n : null);
        link.value = new URL(share.url, window.location.origin).href;
        const until = new Date(share.expires_at);
        const uses = share.max_downloads == null ? 'no download limit'
          : `${share.max_downloads} download${share.max_downloads === 1 ? '' : 's'} allowed`;
        expiry.textContent = `Expires ${isNaN(until) ? share.expires_at : until.toLocaleString()}, ${uses}.`;
        result.hidden = false;
        link.focus();
      } catch (err) {
        error.textContent = err.message;
      } finally {
        create.disabled = false;
      }
    });
    copy.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(link.value);
        copied.textContent = 'Copied.';
      } catch {
        link.focus();
        link.select();
        copied.textContent = 'Press Ctrl+C (⌘C on a Mac) to copy the selected link.';
      }
    });
    return form;
  }

  function postEl(task) {
    const { entry } = task;
    const postBtn = h('button', { type: 'button', className: 'quiet' });
    const postHint = h('p', { className: 'hint' });
    const postStatus = h('p', { className: 'hint', role: 'status' });
    const postError = h('p', { className: 'error', role: 'alert' });
    postBtn.addEventListener('click', async () => {
      const target = conversation();
      if (!target) return;
      postBtn.disabled = true;
      postStatus.textContent = postError.textContent = '';
      try {
        await post({ id: entry.id, name: entry.name }, target);
        postStatus.textContent = `Posted to ${placeName(target)}.`;
      } catch (err) {
        postError.textContent = err?.message || 'It could not be posted; try again.';
      } finally {
        updatePost(task);
      }
    });
    task.ui.post = { button: postBtn, hint: postHint };
    return h('div', { className: 'upload-post' }, postBtn, postHint, postStatus, postError);
  }

  function updatePost(task) {
    const p = task.ui.post;
    if (!p) return;
    const target = conversation();
    p.button.textContent = target ? `Post to ${placeName(target)}` : 'Post to a conversation';
    p.button.disabled = !target;
    p.hint.textContent = target ? '' : 'Open a room or a direct conversation first to post the file there.';
    p.hint.hidden = !!target;
  }

  async function createShare(task, ttlSecs, maxDownloads) {
    const t = token();
    if (!t || user()?.id !== task.userId) throw new Error('Sign in again to make a link.');
    const body = { upload: task.entry.id, ttl_secs: ttlSecs, ...(maxDownloads ? { max_downloads: maxDownloads } : {}) };
    let res;
    try {
      res = await fetch('/api/shares', {
        method: 'POST',
        headers: { Authorization: `Bearer ${t}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
    } catch {
      throw new Error('The node could not be reached; check your connection and try again.');
    }
    const json = await res.json().catch(() => null);
    if (res.status === 201 && typeof json?.url === 'string') return json;
    if (res.status === 401) throw new Error('Your session has expired: sign in again.');
    if (res.status === 404) throw new Error('This upload is no longer on the node; upload it again.');
    throw new Error(json?.message ? `No link was made: ${json.message}` : `No link was made (HTTP ${res.status}); try again.`);
  }
}

const placeName = (target) => (target.kind === 'room' ? `#${target.name}` : String(target.name));
