// The first requests of the pages that must be quick (Home, a portfolio's dashboard) and the session
// check, defined once. early.js starts them while the rest of the app is still loading (it is a small async
// module of its own); the page's first load takes the request already in flight, and every later load
// (reload, coming back to the page) asks the server again.
import * as api from './api.js';

const FRESH_MS = 10000; // a request started longer ago than this is not reused
const primed = new Map(); // key -> {at, promise}

export const loaders = {
  me: () => api.get('/api/auth/me', undefined, { quiet401: true }),
  // Home and the dashboard each in one request (GET /api/overview/..., docs/API-NOTES.md): one round trip and
  // one pass of the server's per-request work instead of six (or two)
  home: () => api.get('/api/overview/home', { pending_limit: 20, activity_limit: 20 }),
  dashboard: async (id) => {
    const d = await api.get(`/api/overview/portfolios/${id}`, { signals_limit: 50 });
    return { ...d.dashboard, signalList: d.signals };
  },
};

/** Which loads a path starts at once: [[name, ...args]]. */
export function loadsFor(path) {
  const out = [['me']];
  if (path === '/') out.push(['home']);
  const pf = /^\/portfolios\/(\d+)$/.exec(path);
  if (pf) out.push(['dashboard', Number(pf[1])]);
  return out;
}

const keyOf = (name, args) => `${name}:${args.join(',')}`;

/** Starts the loads of `path` now (their answers wait for the page that asks). */
export function prime(path) {
  for (const [name, ...args] of loadsFor(path)) {
    const promise = loaders[name](...args);
    promise.catch(() => {}); // a failure is reported to the page that takes it
    primed.set(keyOf(name, args), { at: performance.now(), promise });
  }
}

/** The answer of `name(...args)`: the primed request when one is fresh (once), else a new request. */
export function load(name, ...args) {
  const key = keyOf(name, args);
  const hit = primed.get(key);
  primed.delete(key);
  if (hit && performance.now() - hit.at < FRESH_MS) return hit.promise;
  return loaders[name](...args);
}

/** Drops every primed request (at sign-in and sign-out: what was started for the visitor before is stale). */
export function forgetPrimed() {
  primed.clear();
}
