// The first round of requests of the pages that must be quick (Home, a portfolio's dashboard) and the session
// check, defined once. early.js starts them while the rest of the app is still loading (it is a small async
// module of its own); the page's first load takes the request already in flight, and every later load
// (reload, coming back to the page) asks the server again.
import * as api from './api.js';
import { todayIST } from './format.js';

const FRESH_MS = 10000; // a request started longer ago than this is not reused
const primed = new Map(); // key -> {at, promise}

export const loaders = {
  me: () => api.get('/api/auth/me', undefined, { quiet401: true }),
  home: async () => {
    // one round, all at once: the portfolio rows carry their open-position counts, and /api/model/activity
    // merges every portfolio's timeline since IST midnight
    const since = `${todayIST()}T00:00:00+05:30`;
    const [portfolios, pending, risk, broker, agent, activity] = await Promise.all([
      api.get('/api/model/portfolios'),
      api.get('/api/model/signals', { status: 'pending_approval', limit: 20 }),
      api.get('/api/risk/state'),
      api.get('/api/auth/status'),
      api.get('/api/auth/agent-key', undefined, { quiet401: true }).catch(() => null),
      api.get('/api/model/activity', { since, limit: 20 }),
    ]);
    return { portfolios, pending, risk, broker, agent, activity };
  },
  dashboard: async (id) => {
    const [dash, signals] = await Promise.all([api.get('/api/model/dashboard', { portfolio_id: id }),
      api.get('/api/model/signals', { portfolio_id: id, limit: 50 })]);
    return { ...dash, signalList: signals };
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
