// Times come from PLC as unix seconds (int64, hence JSON strings); 0 means "never"
// or "none" depending on the field.

export const kDay = 86400;
// A slice closer than this to its expiry is shown with a warning.
export const kExpiryWarningS = 7 * kDay;

export function seconds(value) {
  const n = Number(value || 0);
  return Number.isFinite(n) ? n : 0;
}

export function nowSeconds() {
  return Math.floor(Date.now() / 1000);
}

// "2026-12-04 13:45 UTC": one unambiguous format everywhere (with the seconds
// where they matter: the event log).
export function formatTime(value, never = '—', { withSeconds = false } = {}) {
  const s = seconds(value);
  if (!s) return never;
  const d = new Date(s * 1000);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}${withSeconds ? `:${pad(d.getUTCSeconds())}` : ''} UTC`;
}

// "3 days 4 hours", "5 minutes", for a span of seconds (absolute value).
export function formatSpan(spanSeconds) {
  let s = Math.abs(Math.round(spanSeconds));
  const units = [['day', kDay], ['hour', 3600], ['minute', 60]];
  const parts = [];
  for (const [name, size] of units) {
    const n = Math.floor(s / size);
    if (n > 0) {
      parts.push(`${n} ${name}${n === 1 ? '' : 's'}`);
      s -= n * size;
    }
    if (parts.length === 2) break;
  }
  return parts.length ? parts.join(' ') : `${s} second${s === 1 ? '' : 's'}`;
}

// "in 3 days 4 hours" or "5 minutes ago", relative to `now` (unix seconds).
export function formatRelative(value, now = nowSeconds()) {
  const s = seconds(value);
  if (!s) return 'never';
  const d = s - now;
  return d >= 0 ? `in ${formatSpan(d)}` : `${formatSpan(d)} ago`;
}

// <input type="datetime-local"> works in the browser's local time, to the minute.
export function toLocalInput(value) {
  const s = seconds(value);
  if (!s) return '';
  const d = new Date(s * 1000);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
export function fromLocalInput(text) {
  if (!text) return 0;
  const ms = new Date(text).getTime();
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : 0;
}

export function formatBytes(value) {
  let n = Number(value || 0);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

// Splits "a@x, b@y\nc@z" into ["a@x", "b@y", "c@z"].
export function splitList(text) {
  return text.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean);
}
