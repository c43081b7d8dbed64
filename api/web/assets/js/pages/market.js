import { html, Page, Table, useLoad, Loading, useState, navigate } from '../ui.js';
import { Chart } from '../charts.js';
import { useTicks, useTickStatus } from '../ticks.js';
import * as api from '../api.js';
import * as f from '../format.js';

const WATCH_KEY = 'tt-watchlist';

function Watchlist() {
  const [symbols, setSymbols] = useState(() => JSON.parse(localStorage.getItem(WATCH_KEY) || '["NSE:RELIANCE","NSE:INFY","NSE:HDFCBANK"]'));
  const [add, setAdd] = useState('');
  const ticks = useTicks(symbols);
  const status = useTickStatus();
  const save = (xs) => { setSymbols(xs); localStorage.setItem(WATCH_KEY, JSON.stringify(xs)); };
  const rows = symbols.map((s) => ({ id: s, symbol: s, ...(ticks[s] || {}) }));
  return html`<section aria-labelledby="wl-h"><h2 id="wl-h">Watchlist <span class="muted small" id="feed-status">${status.socket === 'open'
    ? (status.connected ? 'live' : 'feed disconnected') : status.socket}${status.reason ? ` — ${status.reason}` : ''}</span></h2>
    <form class="actions" aria-label="Add to the watchlist" onSubmit=${(e) => { e.preventDefault(); const s = add.trim().toUpperCase(); if (s) save([...new Set([...symbols, s.includes(':') ? s : `NSE:${s}`])]); setAdd(''); }}>
      <label for="wl-add">Symbol</label><input id="wl-add" value=${add} onInput=${(e) => setAdd(e.target.value)} placeholder="NSE:TCS" autocomplete="off" />
      <button type="submit">Add</button></form>
    <${Table} caption="Live quotes" id="watchlist" rows=${rows} empty="Add a symbol."
      columns=${[{ key: 'symbol', label: 'Symbol', render: (r) => html`<a href=${`/market?symbol=${r.symbol.split(':')[1]}`}>${r.symbol}</a>` },
        { key: 'ltp', label: 'LTP', num: true, render: (r) => html`<span data-ltp>${f.price(r.ltp)}</span>` },
        { key: 'change', label: 'Change', num: true, render: (r) => html`<span class=${f.tone(r.change)}>${f.pct(r.change, 2, true)}</span>` },
        { key: 'timestamp', label: 'At (IST)', render: (r) => (r.timestamp ? f.timeIST(r.timestamp) : '—') },
        { key: 'rm', label: '', nosort: true, render: (r) => html`<button type="button" aria-label=${`Remove ${r.symbol}`} onClick=${() => save(symbols.filter((s) => s !== r.symbol))}>Remove</button>` }]} />
  </section>`;
}

export function Market({ query }) {
  const backtest = query.get('backtest');
  const portfolio = query.get('portfolio');
  const [sym, setSym] = useState(query.get('symbol') || '');
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
    <${Loading} state=${state}>${(d) => html`
      ${d.symbols.length ? html`<p class="small">${backtest ? `Backtest #${backtest}` : `Portfolio #${portfolio}`} traded:${' '}
        ${d.symbols.map((s) => html` <a href="#" onClick=${(e) => { e.preventDefault(); go(s); }} aria-current=${s === d.symbol ? 'true' : undefined}>${s}</a>`)}</p>` : null}
      <div id="candles-wrap" data-bars=${d.bars.length} data-markers=${d.markers.length}>
      <${Chart} id="candles" label=${`${d.symbol} daily candles${d.markers.length ? ' with entries (B) and exits (S)' : ''}`} height=${360}
        series=${[{ kind: 'candles', data: d.bars.map((b) => ({ time: b.date, open: b.open, high: b.high, low: b.low, close: b.close })), markers: d.markers }]} /></div>
      ${backtest || portfolio ? html`<${Table} caption=${`${d.symbol}: entries and exits`} id="chart-trades" rows=${d.mine} rowKey=${(t, i) => i}
        empty=${`No ${backtest ? 'trades' : 'positions'} in ${d.symbol}.`} columns=${[
          { key: 'entry_date', label: 'Bought', render: (t) => f.day(t.entry_date) },
          { key: 'entry_price', label: 'At', num: true, render: (t) => f.price(t.entry_price) },
          { key: 'exit_date', label: 'Sold', render: (t) => (t.exit_date ? f.day(t.exit_date) : 'open') },
          { key: 'exit_price', label: 'At', num: true, render: (t) => (t.exit_date ? f.price(t.exit_price) : '—') }]} />` : null}`}<//>
    <${Watchlist} />
  <//>`;
}
