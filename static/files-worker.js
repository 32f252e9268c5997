// The chat page's file worker: writes received transfers to the origin-private file system
// (OPFS) as the chunks arrive, so a large file never sits whole in memory and survives a
// reload, and computes SHA-256 digests off the main thread.
//
// Requests are {op, id, …}; each is answered, in order, with {op, id, …} or {op:'error', id,
// message}. Files are named by transfer id (a UUID the node made), never by the sender's name.
import { Sha256 } from './sha256.js';

const DIR = 'peerlink-transfers';
const READ_PIECE = 4 * 1024 * 1024;
let dir = null;
const handles = new Map(); // transfer id -> FileSystemSyncAccessHandle

async function directory() {
  dir ??= await (await navigator.storage.getDirectory()).getDirectoryHandle(DIR, { create: true });
  return dir;
}

async function handle(id) {
  if (!handles.has(id)) {
    const file = await (await directory()).getFileHandle(id, { create: true });
    handles.set(id, await file.createSyncAccessHandle());
  }
  return handles.get(id);
}

function close(id) {
  const h = handles.get(id);
  if (!h) return;
  h.flush();
  h.close();
  handles.delete(id);
}

/** Whether this browser can write received files to disk here (sync access handles). */
async function probe() {
  const name = `probe-${crypto.randomUUID()}`; // each tab its own: a second tab must not find it locked
  try {
    const h = await handle(name);
    h.write(new Uint8Array([1]), { at: 0 });
    close(name);
    await (await directory()).removeEntry(name);
    return true;
  } catch {
    return false;
  }
}

async function hash(read, size, id) {
  const sha = new Sha256();
  let last = 0;
  for (let at = 0; at < size;) {
    const piece = await read(at, Math.min(READ_PIECE, size - at));
    if (!piece.byteLength) throw new Error(`the file ends at ${at} bytes, expected ${size}`);
    sha.update(piece);
    at += piece.byteLength;
    if (at - last >= 16 * READ_PIECE || at === size) {
      last = at;
      postMessage({ op: 'hashing', id, done: at });
    }
  }
  return sha.hex();
}

const ops = {
  probe: async () => ({ disk: await probe() }),
  /** Open (creating) the file and cut it to `offset`: bytes after it are forgotten. */
  open: async ({ id, offset }) => {
    const h = await handle(id);
    const size = h.getSize();
    if (size < offset) throw new Error(`only ${size} bytes of this file are on disk, the transfer resumes at ${offset}`);
    h.truncate(offset);
    return { size: offset };
  },
  /** `data` is the whole binary frame; the file's bytes start at `skip`. */
  write: async ({ id, offset, data, skip = 0 }) => {
    const h = await handle(id);
    const n = h.write(new Uint8Array(data, skip), { at: offset });
    return { end: offset + n };
  },
  close: async ({ id }) => { close(id); return {}; },
  /** Digest of a received file as it is on disk, or of a File/Blob the page holds. */
  hash: async ({ id, blob, size }) => {
    if (blob) return { sha256: await hash(async (at, n) => blob.slice(at, at + n).arrayBuffer(), size, id) };
    const h = await handle(id);
    const sha256 = await hash(async (at, n) => {
      const buf = new Uint8Array(n);
      return buf.subarray(0, h.read(buf, { at }));
    }, size, id);
    close(id);
    return { sha256 };
  },
  remove: async ({ id }) => {
    close(id);
    try { await (await directory()).removeEntry(id); } catch { /* already gone */ }
    return {};
  },
  /** Remove every stored file but those of `keep` (transfers this browser still tracks). */
  sweep: async ({ keep }) => {
    const d = await directory();
    const names = [];
    for await (const name of d.keys()) names.push(name);
    const stale = names.filter((n) => !keep.includes(n) && !handles.has(n));
    for (const name of stale) await d.removeEntry(name).catch(() => {});
    return { removed: stale.length };
  },
};

// One request at a time, in arrival order: writes of one file must not overtake each other.
let queue = Promise.resolve();
onmessage = ({ data }) => {
  queue = queue.then(async () => {
    try {
      postMessage({ ...(await ops[data.op](data)), op: data.op, id: data.id, seq: data.seq });
    } catch (e) {
      postMessage({ op: 'error', id: data.id, seq: data.seq, message: String(e?.message || e) });
    }
  });
};
