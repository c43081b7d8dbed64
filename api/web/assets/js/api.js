// The REST client: every request carries X-Requested-With (the CSRF convention), JSON in and out.

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === 'string' ? detail : describe(detail));
    this.status = status;
    this.detail = detail;
  }

  /** FastAPI 422 details as {field path: message}, e.g. {"entry_rules.all.0.left.ind": "..."}. */
  fieldErrors() {
    const out = {};
    if (!Array.isArray(this.detail)) return out;
    for (const e of this.detail) {
      const loc = (e.loc || []).filter((p, i) => !(i === 0 && (p === 'body' || p === 'query')));
      let path = loc.join('.');
      let msg = String(e.msg || '').replace(/^Value error, /, '');
      // model-level validators name the path in the message: "entry_rules.all[0].left.period: must be ..."
      const named = /^([A-Za-z_][\w.[\]]*): (.*)$/s.exec(msg);
      if (named) {
        path = [path, named[1].replace(/\[(\d+)\]/g, '.$1')].filter(Boolean).join('.');
        msg = named[2];
      }
      if (!(path in out)) out[path] = msg;
    }
    return out;
  }
}

function describe(detail) {
  if (Array.isArray(detail)) {
    return detail.map((e) => `${(e.loc || []).slice(1).join('.')}: ${e.msg}`).join('; ');
  }
  return detail ? String(detail) : 'Request failed';
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export async function request(method, path, body, { raw = false, quiet401 = false, headers = {} } = {}) {
  const init = { method, headers: { 'X-Requested-With': 'tradertape', Accept: 'application/json', ...headers },
    credentials: 'same-origin' };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 401 && !quiet401) onUnauthorized();
  if (!res.ok) {
    let detail = res.statusText;
    try {
      detail = (await res.json()).detail ?? detail;
    } catch (_) { /* not JSON */ }
    throw new ApiError(res.status, detail);
  }
  if (raw) return res;
  if (res.status === 204) return null;
  return res.json();
}

export const get = (path, params, opts) => request('GET', withQuery(path, params), undefined, opts);
export const post = (path, body, opts) => request('POST', path, body, opts);
export const put = (path, body, opts) => request('PUT', path, body, opts);
export const del = (path, opts) => request('DELETE', path, undefined, opts);

export function withQuery(path, params) {
  if (!params) return path;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}
