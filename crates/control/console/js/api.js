// The REST API with the signed-in user's token; errors keep the API's `{message, code}`.
import { token, signIn } from './auth.js';

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
  }
}

export async function api(path, { method = 'GET', body, headers = {}, raw = false, signal } = {}) {
  const init = { method, headers: { Authorization: `Bearer ${token()}`, ...headers }, signal };
  if (body !== undefined) {
    if (body instanceof FormData || body instanceof Blob) init.body = body;
    else { init.body = JSON.stringify(body); init.headers['Content-Type'] = 'application/json'; }
  }
  const r = await fetch(path, init);
  if (r.status === 401) { await signIn(); throw new ApiError(401, { message: 'signed out', code: 'unauthorized' }); }
  if (raw) { if (!r.ok) throw new ApiError(r.status, await r.json().catch(() => null)); return r; }
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

// Every page of a listing (`{data, next_cursor}`), up to `max` items.
export async function all(path, max = 1000) {
  const out = [];
  let cursor = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page = await api(cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path);
    out.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor && out.length < max);
  return out;
}
