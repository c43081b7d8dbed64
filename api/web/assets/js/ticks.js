// One shared tick WebSocket for the whole app; components subscribe to symbols and get every tick.
import { useEffect, useState } from '../vendor/htm-preact-standalone.module.js';

const listeners = new Set(); // (data) => void, data: {"NSE:X": tick}
const statusListeners = new Set();
const notificationListeners = new Set(); // (msg) => void, msg: {"type": "notification", notification, unread}
const wanted = new Map(); // symbol -> refcount
let ws = null;
let retry = 0;
let status = { connected: false, socket: 'closed', reason: '' };
export const last = new Map(); // symbol -> last tick

function setStatus(s) {
  status = { ...status, ...s };
  statusListeners.forEach((fn) => fn(status));
}

function send(msg) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
}

function connect() {
  if (ws || (wanted.size === 0 && notificationListeners.size === 0)) return;
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/ws/ticks`;
  ws = new WebSocket(url);
  setStatus({ socket: 'connecting' });
  ws.onopen = () => {
    retry = 0;
    setStatus({ socket: 'open', reason: '' });
    send({ action: 'subscribe', symbols: [...wanted.keys()], mode: 'quote' });
  };
  ws.onmessage = (ev) => {
    let msg;
    try { msg = JSON.parse(ev.data); } catch (_) { return; }
    if (msg.type === 'ticks') {
      for (const [sym, t] of Object.entries(msg.data)) last.set(sym, t);
      listeners.forEach((fn) => fn(msg.data));
    } else if (msg.type === 'notification') {
      notificationListeners.forEach((fn) => fn(msg));
    } else if (msg.type === 'status') {
      setStatus({ connected: !!msg.connected });
    }
  };
  ws.onclose = (ev) => {
    ws = null;
    setStatus({ socket: 'closed', reason: ev.reason || '' });
    if (ev.code === 1008) return; // not signed in: do not hammer
    if (wanted.size || notificationListeners.size) setTimeout(connect, Math.min(10000, 500 * 2 ** retry++));
  };
}

/** Live notifications (the server pushes them on this socket); keeps the socket open. Returns an unsubscribe. */
export function onNotification(fn) {
  notificationListeners.add(fn);
  if (!ws) connect();
  return () => { notificationListeners.delete(fn); };
}

export function subscribe(symbols, onTicks) {
  const fresh = [];
  for (const s of symbols) {
    const n = wanted.get(s) || 0;
    wanted.set(s, n + 1);
    if (n === 0) fresh.push(s);
  }
  listeners.add(onTicks);
  if (!ws) connect(); else if (fresh.length) send({ action: 'subscribe', symbols: fresh, mode: 'quote' });
  return () => {
    listeners.delete(onTicks);
    const gone = [];
    for (const s of symbols) {
      const n = (wanted.get(s) || 1) - 1;
      if (n <= 0) { wanted.delete(s); gone.push(s); } else wanted.set(s, n);
    }
    if (gone.length) send({ action: 'unsubscribe', symbols: gone });
  };
}

/** Live ticks for `symbols` ("NSE:X"): returns a map symbol -> tick, re-rendering on each batch. */
export function useTicks(symbols) {
  const key = [...symbols].sort().join(',');
  const [ticks, setTicks] = useState(() => {
    const m = {};
    for (const s of symbols) if (last.has(s)) m[s] = last.get(s);
    return m;
  });
  useEffect(() => {
    if (!key) return undefined;
    const mine = new Set(symbols);
    return subscribe(symbols, (data) => {
      let hit = null;
      for (const [s, t] of Object.entries(data)) {
        if (mine.has(s)) { hit = hit || {}; hit[s] = t; }
      }
      if (hit) {
        setTicks((prev) => ({ ...prev, ...hit }));
        window.__ttTickSeen?.(hit);
      }
    });
  }, [key]);
  return ticks;
}

export function useTickStatus() {
  const [s, setS] = useState(status);
  useEffect(() => { statusListeners.add(setS); return () => statusListeners.delete(setS); }, []);
  return s;
}
