import { html, Page, Table, useLoad, Loading, useState, useEffect, navigate } from '../ui.js';
import { Chart } from '../charts.js';
import { useTicks, useTickStatus } from '../ticks.js';
import * as api from '../api.js';
import * as f from '../format.js';

// The watchlist is kept with the account (GET/PUT /api/watchlist), so the phone and the desktop show the same
// list. A list an older version kept in this browser (localStorage, per user) moves to the account once.
const oldKey = (me) => `tt-watchlist:${me.id}`;

async function loadWatchlist(me) {
  const kept = await api.get('/api/watchlist');
  let old = null;
  try { old = JSON.parse(localStorage.getItem(oldKey(me)) || 'null'); } catch (_) { /* unreadable: ignore */ }
  if (!kept.saved && Array.isArray(old) && old.length) {
    try {
      const moved = await api.put('/api/watchlist', { symbols: old.filter((x) => typeof x === 'string').slice(0, 50) });
      localStorage.removeItem(oldKey(me));
      return moved.symbols;
    } catch (_) { /* not symbols any more: keep the account's list */ }
  }
  localStorage.removeItem(oldKey(me));
  return kept.symbols;
}

function Watchlist({ me }) {
  const [symbols, setSymbols] = useState(null);
  const [error, setError] = useState('');
  const [add, setAdd] = useState('');
  useEffect(() => {
    let live = true;
    loadWatchlist(me).then((xs) => { if (live) setSymbols(xs); }).catch((e) => { if (live) { setSymbols([]); setError(e.message); } });
    return () => { live = false; };
  }, [me.id]);
  const ticks = useTicks(symbols || []);
  const status = useTickStatus();
  const [saving, setSaving] = useState(0);
  const save = async (xs) => { // shown at once; the account's answer (normalized) replaces it, a refusal undoes it
    const before = symbols;
    setSymbols(xs); setError(''); setSaving((n) => n + 1);
    try {
      setSymbols((await api.put('/api/watchlist', { symbols: xs })).symbols);
    } catch (e) {
      setSymbols(before);
      setError(Object.values(e.fieldErrors ? e.fieldErrors() : {})[0] || e.message);
    } finally {
      setSaving((n) => n - 1);
    }
  };
  const rows = (symbols || []).map((s) => ({ id: s, symbol: s, ...(ticks[s] || {}) }));
  return html`<section id="watch" aria-labelledby="wl-h" aria-busy=${symbols === null || saving > 0 ? 'true' : 'false'}><h2 id="wl-h">Watchlist <span class="muted small" id="feed-status">${status.socket === 'open'
    ? (status.connected ? 'live' : 'feed disconnected') : status.socket}${status.reason ? ` — ${status.reason}` : ''}</span></h2>
    <form class="actions" aria-label="Add to the watchlist" onSubmit=${(e) => { e.preventDefault(); const s = add.trim().toUpperCase(); if (s && symbols) save([...new Set([...symbols, s.includes(':') ? s : `NSE:${s}`])]); setAdd(''); }}>
      <label for="wl-add">Symbol</label><input id="wl-add" value=${add} onInput=${(e) => setAdd(e.target.value)} placeholder="NSE:TCS" autocomplete="off"
        aria-invalid=${error ? 'true' : 'false'} aria-describedby=${error ? 'wl-add-err' : undefined} />
      <button type="submit" disabled=${symbols === null}>Add</button>
      ${error ? html`<small id="wl-add-err" class="field-error" role="alert">${error}</small>` : null}</form>
    <${Table} caption="Live quotes" id="watchlist" rows=${rows} empty=${symbols === null ? 'Loading…' : 'Add a symbol.'}
      columns=${[{ key: 'symbol', label: 'Symbol', render: (r) => html`<a href=${`/market?symbol=${r.symbol.split(':')[1]}`}>${r.symbol}</a>` },
        { key: 'ltp', label: 'LTP', num: true, render: (r) => html`<span data-ltp>${f.price(r.ltp)}</span>` },
        { key: 'change', label: 'Change', num: true, render: (r) => html`<span class=${f.tone(r.change)}>${f.pct(r.change, 2, true)}</span>` },
        { key: 'timestamp', label: 'At (IST)', render: (r) => (r.timestamp ? f.timeIST(r.timestamp) : '—') },
        { key: 'rm', label: '', nosort: true, render: (r) => html`<button type="button" aria-label=${`Remove ${r.symbol}`} onClick=${() => save(symbols.filter((s) => s !== r.symbol))}>Remove</button>` }]} />
  </section>`;
}

/** Simple moving average of `closes` over `n` bars: one value per bar from the n-th on. */
export function sma(closes, n) {
  const out = [];
  let sum = 0;
  closes.forEach((c, i) => {
    sum += c;
    if (i >= n) sum -= closes[i - n];
    if (i >= n - 1) out.push([i, sum / n]);
  });
  return out;
}

/** Exponential moving average (k = 2 / (n + 1)), seeded with the SMA of the first n bars. */
export function ema(closes, n) {
  const out = [];
  if (closes.length < n) return out;
  const k = 2 / (n + 1);
  let v = closes.slice(0, n).reduce((a, b) => a + b, 0) / n;
  out.push([n - 1, v]);
  for (let i = n; i < closes.length; i += 1) {
    v = closes[i] * k + v * (1 - k);
    out.push([i, v]);
  }
  return out;
}

const OVERLAYS = [['sma', 'SMA', sma, '#e07b00'], ['ema', 'EMA', ema, '#8e44ad']];
const OVERLAY_KEY = 'tt-overlays';

function readOverlays() {
  try {
    const o = JSON.parse(localStorage.getItem(OVERLAY_KEY) || 'null');
    if (o && typeof o === 'object') return { sma: { on: !!o.sma?.on, n: Number(o.sma?.n) || 20 }, ema: { on: !!o.ema?.on, n: Number(o.ema?.n) || 50 } };
  } catch (_) { /* start again */ }
  return { sma: { on: false, n: 20 }, ema: { on: false, n: 50 } };
}

/** The overlay lines of `bars` for the chart, and a legend entry each (its last value). */
function overlaySeries(bars, overlays) {
  const closes = bars.map((b) => b.close);
  const lines = [];
  for (const [k, label, fn, color] of OVERLAYS) {
    const o = overlays[k];
    if (!o.on || !(o.n >= 2 && o.n <= 500)) continue;
    const pts = fn(closes, o.n).map(([i, v]) => ({ time: bars[i].date, value: v }));
    lines.push({ key: k, name: `${label} ${o.n}`, color, last: pts.length ? pts[pts.length - 1].value : null,
      series: { kind: 'line', data: pts, options: { color, lineWidth: 2, priceLineVisible: false, lastValueVisible: false } } });
  }
  return lines;
}

function OverlayControls({ overlays, onChange }) {
  const set = (k, patch) => onChange({ ...overlays, [k]: { ...overlays[k], ...patch } });
  return html`<fieldset class="overlays"><legend>Indicators</legend><div class="actions">
    ${OVERLAYS.map(([k, label]) => html`<span class="overlay">
      <label><input type="checkbox" checked=${overlays[k].on} onChange=${(e) => set(k, { on: e.target.checked })} /> ${label}</label>
      <label for=${`ov-${k}`} class="visually-hidden">${label} period (bars)</label>
      <input id=${`ov-${k}`} type="number" min="2" max="500" step="1" inputmode="numeric" value=${overlays[k].n}
        onChange=${(e) => set(k, { n: Math.round(Number(e.target.value)) || overlays[k].n })} /></span>`)}
  </div></fieldset>`;
}

export function Market({ query, me }) {
  const backtest = query.get('backtest');
  const portfolio = query.get('portfolio');
  const [sym, setSym] = useState(query.get('symbol') || '');
  const [overlays, setOverlays] = useState(readOverlays);
  const changeOverlays = (o) => { setOverlays(o); localStorage.setItem(OVERLAY_KEY, JSON.stringify(o)); };
  const state = useLoad(async () => {
    const source = backtest ? await api.get(`/api/backtest/runs/${backtest}`) : null;
    const positions = portfolio ? await api.get('/api/model/positions', { portfolio_id: portfolio, limit: 500 }) : null;
    const trades = source ? source.trades : positions ? positions.map((p) => ({ symbol: p.symbol, entry_date: p.entry_date, entry_price: p.avg_price,
      exit_date: p.exit_date, exit_price: p.exit_price })) : [];
    const symbol = query.get('symbol') || (trades[0] && trades[0].symbol) || 'RELIANCE';
    const to = source ? source.params.end_date : undefined;
    const cov = await api.get('/api/market/coverage');
    const end = to || cov.last;
    const from = source ? source.params.start_date : end && `${Number(end.slice(0, 4)) - 1}${end.slice(4)}`;
    const bars = await api.get(`/api/market/bars/${encodeURIComponent(symbol)}`, { from, to: end });
    const mine = trades.filter((t) => t.symbol === symbol);
    const markers = mine.flatMap((t) => [
      { time: t.entry_date, position: 'belowBar', color: '#1f5fd1', shape: 'arrowUp', text: `B ${f.price(t.entry_price)}` },
      ...(t.exit_date ? [{ time: t.exit_date, position: 'aboveBar', color: '#e07b00', shape: 'arrowDown', text: `S ${f.price(t.exit_price)}` }] : []),
    ]).filter((m) => m.time).sort((a, b) => a.time.localeCompare(b.time));
    const symbols = [...new Set(trades.map((t) => t.symbol))].sort();
    return { symbol, bars, markers, symbols, mine };
  }, [backtest, portfolio, query.get('symbol')]);
  const go = (s) => {
    const q = new URLSearchParams(); if (backtest) q.set('backtest', backtest); if (portfolio) q.set('portfolio', portfolio); q.set('symbol', s);
    navigate(`/market?${q}`);
  };
  return html`<${Page} title="Market">
    <form class="actions" aria-label="Show a symbol" onSubmit=${(e) => { e.preventDefault(); if (sym.trim()) go(sym.trim().toUpperCase()); }}>
      <label for="mk-sym">Symbol</label><input id="mk-sym" value=${sym} onInput=${(e) => setSym(e.target.value)} autocomplete="off" placeholder="RELIANCE" />
      <button type="submit">Show</button></form>
    <${OverlayControls} overlays=${overlays} onChange=${changeOverlays} />
    <${Loading} state=${state}>${(d) => { const lines = overlaySeries(d.bars, overlays); return html`
      ${d.symbols.length ? html`<p class="small">${backtest ? `Backtest #${backtest}` : `Portfolio #${portfolio}`} traded:${' '}
        ${d.symbols.map((s) => html` <a href="#" onClick=${(e) => { e.preventDefault(); go(s); }} aria-current=${s === d.symbol ? 'true' : undefined}>${s}</a>`)}</p>` : null}
      <div id="candles-wrap" data-bars=${d.bars.length} data-markers=${d.markers.length}>
      <${Chart} id="candles" label=${`${d.symbol} daily candles${d.markers.length ? ' with entries (B) and exits (S)' : ''}`} height=${360}
        series=${[{ kind: 'candles', data: d.bars.map((b) => ({ time: b.date, open: b.open, high: b.high, low: b.low, close: b.close })), markers: d.markers },
          ...lines.map((l) => l.series)]} />
      ${lines.length ? html`<ul class="legend" id="overlay-legend">${lines.map((l) => html`<li data-overlay=${l.key}>
        <span class="swatch" style=${`background:${l.color}`}></span>${l.name}: <span class="num">${f.price(l.last)}</span></li>`)}</ul>` : null}</div>
      ${backtest || portfolio ? html`<${Table} caption=${`${d.symbol}: entries and exits`} id="chart-trades" rows=${d.mine} rowKey=${(t, i) => i}
        empty=${`No ${backtest ? 'trades' : 'positions'} in ${d.symbol}.`} columns=${[
          { key: 'entry_date', label: 'Bought', render: (t) => f.day(t.entry_date) },
          { key: 'entry_price', label: 'At', num: true, render: (t) => f.price(t.entry_price) },
          { key: 'exit_date', label: 'Sold', render: (t) => (t.exit_date ? f.day(t.exit_date) : 'open') },
          { key: 'exit_price', label: 'At', num: true, render: (t) => (t.exit_date ? f.price(t.exit_price) : '—') }]} />` : null}`; }}<//>
    ${me ? html`<${Watchlist} me=${me} key=${me.id} />` : null}
  <//>`;
}
