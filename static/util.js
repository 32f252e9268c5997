// Small helpers shared by the chat page, its file modules and the admin console.
// User-supplied text always goes into the page as text nodes, never as HTML.

export const $ = (id) => document.getElementById(id);

/** `h('li', { className: 'x' }, 'text', child)`: an element; strings become text nodes. */
export function h(tag, props, ...kids) {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...kids.filter((k) => k != null && k !== false));
  return e;
}

/** JSON from localStorage, or null when absent, unreadable or storage is disabled. */
export function load(key) {
  try { return JSON.parse(localStorage.getItem(key)); } catch { return null; }
}

/** Store JSON (null removes). Storage may be disabled: the page then works for this visit only. */
export function store(key, value) {
  try {
    if (value == null) localStorage.removeItem(key);
    else localStorage.setItem(key, JSON.stringify(value));
  } catch { /* storage off or full */ }
}

export const pad = (n) => String(n).padStart(2, '0');

/** 1536 -> "1.5 KiB". */
export function bytes(n) {
  if (!Number.isFinite(n)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(n < 10 ? 1 : 0) : Math.round(n)} ${units[i]}`;
}

/** Seconds as "0:02:05" (hours:minutes:seconds). */
export function duration(s) {
  s = Math.max(0, Math.floor(Number(s) || 0));
  return `${Math.floor(s / 3600)}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
}

/** Seconds as a short "time left": "5 s", "3 min", "1 h 20 min". */
export function timeLeft(s) {
  if (!Number.isFinite(s) || s < 0) return '—';
  if (s < 60) return `${Math.max(1, Math.round(s))} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

/**
 * A transfer-rate meter: feed it (time ms, bytes done) samples; it reports bytes/s over
 * the last few seconds, so the figure follows the link without jumping on every chunk.
 */
export class Meter {
  constructor(spanMs = 3000) { this.spanMs = spanMs; this.samples = []; }
  reset() { this.samples = []; }
  add(done, t = performance.now()) {
    this.samples.push([t, done]);
    while (this.samples.length > 2 && t - this.samples[1][0] > this.spanMs) this.samples.shift();
  }
  /** Bytes per second, or NaN until two samples exist. */
  rate() {
    const s = this.samples;
    if (s.length < 2) return NaN;
    const [t0, d0] = s[0], [t1, d1] = s[s.length - 1];
    return t1 > t0 ? ((d1 - d0) * 1000) / (t1 - t0) : NaN;
  }
}
