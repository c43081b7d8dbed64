import { html, Page, Table, Card, Field, useLoad, Loading, useState, useEffect, navigate, confirm, toast, useRef } from '../ui.js';
import { Chart } from '../charts.js';
import * as api from '../api.js';
import * as f from '../format.js';

// the charge schedules (domain/charges.py SCHEDULES), in words
const CHARGES = { zerodha_delivery: "Zerodha's delivery charges", none: 'no charges' };

export const resultCache = new Map(); // run id -> full result just returned by POST /api/backtest/run

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function yearsBefore(day, n) {
  return `${Number(day.slice(0, 4)) - n}${day.slice(4)}`;
}

function RunForm({ strategies, universes, initialStrategy, coverage }) {
  const last = coverage.last || f.todayIST();
  const [form, setForm] = useState({
    strategy_id: initialStrategy || (strategies[0] && strategies[0].id) || '', universe: 'nifty_100',
    start_date: coverage.first && yearsBefore(last, 2) < coverage.first ? coverage.first : yearsBefore(last, 2), end_date: last, starting_capital: 1000000, position_size_pct: 10, max_positions: 10,
    max_per_sector: '', slippage_bps: 5, charges: 'zerodha_delivery',
  });
  const [errors, setErrors] = useState({});
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const upd = (k) => (e) => setForm({ ...form, [k]: e.target.value });
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true); setErrors({}); setError(null);
    const body = { ...form, strategy_id: Number(form.strategy_id), starting_capital: Number(form.starting_capital),
      position_size_pct: Number(form.position_size_pct), max_positions: Number(form.max_positions),
      slippage_bps: Number(form.slippage_bps), max_per_sector: form.max_per_sector === '' ? null : Number(form.max_per_sector) };
    try {
      const r = await api.post('/api/backtest/run', body);
      window.__ttResultArrived = performance.now();
      resultCache.set(r.id, r);
      navigate(`/backtests/${r.id}`);
    } catch (err) {
      const fe = err.fieldErrors ? err.fieldErrors() : {};
      setErrors(fe); setError(err.message);
    } finally { setBusy(false); }
  };
  const num = (k, label, extra = {}) => html`<${Field} label=${label} name=${k} error=${errors[k]}>${(i, d) => html`
    <input id=${i} aria-describedby=${d} type="number" step="any" value=${form[k]} onInput=${upd(k)} ...${extra} />`}<//>`;
  return html`<form onSubmit=${submit} aria-label="Run a backtest"><fieldset><legend>Run a backtest</legend>
    ${error ? html`<p class="error" role="alert">${error}</p>` : null}
    <div class="grid-form">
      <${Field} label="Strategy" name="strategy_id" error=${errors.strategy_id}>${(i, d) => html`<select id=${i} aria-describedby=${d}
        value=${form.strategy_id} onChange=${upd('strategy_id')}>${strategies.map((s) => html`<option value=${s.id}>${s.name}${s.is_template ? ' (template)' : ''}</option>`)}</select>`}<//>
      <${Field} label="Universe" name="universe" error=${errors.universe}>${(i, d) => html`<select id=${i} aria-describedby=${d}
        value=${form.universe} onChange=${upd('universe')}>${universes.map((u) => html`<option value=${u.name}>${u.index_name || u.name}</option>`)}</select>`}<//>
      <${Field} label="From" name="start_date" error=${errors.start_date}>${(i, d) => html`<input id=${i} aria-describedby=${d} type="date"
        min=${coverage.first} max=${coverage.last} value=${form.start_date} onInput=${upd('start_date')} />`}<//>
      <${Field} label="To" name="end_date" error=${errors.end_date} hint=${coverage.last ? `history: ${f.day(coverage.first)} – ${f.day(coverage.last)}` : 'no bars stored yet'}>${(i, d) => html`<input id=${i} aria-describedby=${d} type="date"
        min=${coverage.first} max=${coverage.last} value=${form.end_date} onInput=${upd('end_date')} />`}<//>
      ${num('starting_capital', 'Capital (₹)', { min: 1000 })}
      ${num('position_size_pct', 'Position size %')}
      ${num('max_positions', 'Max positions', { step: 1 })}
      ${num('max_per_sector', 'Max per sector (empty: no limit)', { step: 1 })}
      ${num('slippage_bps', 'Slippage (bps)')}
      <${Field} label="Charges" name="charges" error=${errors.charges}>${(i, d) => html`<select id=${i} aria-describedby=${d}
        value=${form.charges} onChange=${upd('charges')}><option value="zerodha_delivery">Zerodha delivery</option><option value="none">None</option></select>`}<//>
    </div>
    <button type="submit" class="primary" disabled=${busy}>${busy ? 'Running…' : 'Run backtest'}</button>
  </fieldset></form>`;
}

export function Backtests({ query }) {
  const [picked, setPicked] = useState(new Set());
  const state = useLoad(async () => {
    const [mine, templates, universes, runs, coverage] = await Promise.all([
      api.get('/api/strategies', { limit: 200 }), api.get('/api/strategies', { is_template: true }),
      api.get('/api/universes'), api.get('/api/backtest/runs', { limit: 200 }), api.get('/api/market/coverage')]);
    const own = mine.filter((s) => !s.is_template);
    return { strategies: [...own, ...templates], universes, runs, coverage };
  });
  const toggle = (id) => { const s = new Set(picked); if (s.has(id)) s.delete(id); else s.add(id); setPicked(s); };
  const remove = async (r) => {
    if (!await confirm({ title: `Delete backtest #${r.id}?`, body: 'The run and its trades are removed from your history.', confirmLabel: 'Delete', danger: true })) return;
    try { await api.del(`/api/backtest/runs/${r.id}`); toast('Deleted.'); state.reload(); } catch (e) { toast(e.message, 'error'); }
  };
  return html`<${Page} title="Backtests">
    <${Loading} state=${state}>${(d) => html`
      <${RunForm} coverage=${d.coverage} strategies=${d.strategies} universes=${d.universes} initialStrategy=${query.get('strategy_id')} />
      <div class="actions"><a class=${'button' + (picked.size >= 2 ? ' primary' : '')} aria-disabled=${picked.size < 2}
        href=${picked.size >= 2 ? `/backtests/compare?ids=${[...picked].join(',')}` : '/backtests'}>Compare selected (${picked.size})</a></div>
      <${Table} caption="History" id="runs" rows=${d.runs} filter empty="No backtests yet."
        columns=${[
          { key: 'pick', label: 'Pick', nosort: true, render: (r) => html`<input type="checkbox" aria-label=${`Select run ${r.id} to compare`} checked=${picked.has(r.id)} onChange=${() => toggle(r.id)} />` },
          { key: 'id', label: 'Run', render: (r) => html`<a href=${`/backtests/${r.id}`}>#${r.id}</a>` },
          { key: 'strategy', label: 'Strategy', sort: (r) => r.params.strategy_name, render: (r) => r.params.strategy_name },
          { key: 'period', label: 'Period', nosort: true, render: (r) => `${f.day(r.params.start_date)} – ${f.day(r.params.end_date)}` },
          { key: 'cagr', label: 'CAGR', num: true, sort: (r) => r.summary.cagr, render: (r) => html`<span class=${f.tone(r.summary.cagr)}>${f.pct(r.summary.cagr)}</span>` },
          { key: 'dd', label: 'Max DD', num: true, sort: (r) => r.summary.max_drawdown, render: (r) => f.pct(r.summary.max_drawdown) },
          { key: 'trades', label: 'Trades', num: true, sort: (r) => r.summary.total_trades, render: (r) => r.summary.total_trades },
          { key: 'created_at', label: 'Run at', render: (r) => f.dateTime(r.created_at) },
          { key: 'del', label: '', nosort: true, render: (r) => html`<button type="button" onClick=${() => remove(r)} aria-label=${`Delete run ${r.id}`}>Delete</button>` },
        ]} />`}<//>
  <//>`;
}

function groupBy(trades, key) {
  const m = new Map();
  for (const t of trades) {
    const k = t[key] || '—';
    const g = m.get(k) || { key: k, trades: 0, wins: 0, pnl: 0, charges: 0 };
    g.trades += 1; g.pnl += t.pnl; g.charges += t.charges || 0; if (t.pnl > 0) g.wins += 1;
    m.set(k, g);
  }
  return [...m.values()].map((g) => ({ ...g, win_rate: (g.wins / g.trades) * 100 })).sort((a, b) => b.pnl - a.pnl);
}

function Heatmap({ monthly }) {
  const years = [...new Set(Object.keys(monthly).map((k) => k.slice(0, 4)))].sort();
  const max = Math.max(1, ...Object.values(monthly).map((v) => Math.abs(v)));
  const bg = (v) => (v === undefined ? '' : `background: ${v >= 0 ? `rgba(11,122,59,${0.12 + 0.6 * Math.abs(v) / max})` : `rgba(192,38,45,${0.12 + 0.6 * Math.abs(v) / max})`}`);
  const yearTotal = (y) => (MONTHS.reduce((acc, _, i) => { const v = monthly[`${y}-${String(i + 1).padStart(2, '0')}`]; return v === undefined ? acc : acc * (1 + v / 100); }, 1) - 1) * 100;
  return html`<div class="scroll-x"><table class="heatmap" id="heatmap"><caption>Monthly returns (%)</caption>
    <thead><tr><th scope="col">Year</th>${MONTHS.map((m) => html`<th scope="col" class="num">${m}</th>`)}<th scope="col" class="num">Year</th></tr></thead>
    <tbody>${years.map((y) => html`<tr><th scope="row">${y}</th>${MONTHS.map((_, i) => {
      const v = monthly[`${y}-${String(i + 1).padStart(2, '0')}`];
      return html`<td style=${bg(v)} title=${v === undefined ? '' : `${MONTHS[i]} ${y}: ${f.pct(v)}`}>${v === undefined ? '' : f.number(v, 1)}</td>`;
    })}<td><strong>${f.number(yearTotal(y), 1)}</strong></td></tr>`)}</tbody></table></div>`;
}

const METRICS = [
  ['total_return', 'Total return', (v) => f.pct(v, 2, true), true], ['cagr', 'CAGR', (v) => f.pct(v, 2, true), true],
  ['final_equity', 'Final equity', (v) => f.inr(v)], ['max_drawdown', 'Max drawdown', (v) => f.pct(v)],
  ['sharpe', 'Sharpe', (v) => f.number(v, 2)], ['sortino', 'Sortino', (v) => f.number(v, 2)], ['calmar', 'Calmar', (v) => f.number(v, 2)],
  ['volatility', 'Volatility', (v) => f.pct(v)], ['win_rate', 'Win rate', (v) => f.pct(v, 1)],
  ['profit_factor', 'Profit factor', (v) => f.number(v, 2)], ['expectancy', 'Expectancy', (v) => f.pnl(v), true],
  ['total_trades', 'Trades', (v) => f.number(v, 0)], ['avg_holding_days', 'Avg holding', (v) => `${f.number(v, 1)} d`],
  ['exposure_pct', 'Exposure', (v) => f.pct(v, 1)], ['total_charges', 'Charges', (v) => f.inr(v)],
  ['benchmark_return', 'Benchmark', (v) => f.pct(v, 2, true), true], ['alpha', 'Alpha', (v) => f.number(v, 2)], ['beta', 'Beta', (v) => f.number(v, 2)],
];

async function loadBenchmark(run) {
  const p = run.params;
  if (!p.benchmark || !run.equity_curve.length) return [];
  try {
    const bars = await api.get(`/api/market/bars/${encodeURIComponent(p.benchmark)}`, { from: run.equity_curve[0].date, to: run.equity_curve.at(-1).date });
    if (!bars.length) return [];
    const base = bars[0].close;
    return bars.map((b) => ({ time: b.date, value: (b.close / base) * p.starting_capital }));
  } catch (_) { return []; }
}

const TRADE_COLUMNS = [
  { key: 'symbol', label: 'Symbol' }, { key: 'sector', label: 'Sector' },
  { key: 'entry_date', label: 'Entry', render: (t) => f.day(t.entry_date) },
  { key: 'entry_price', label: 'Entry ₹', num: true, render: (t) => f.price(t.entry_price) },
  { key: 'exit_date', label: 'Exit', render: (t) => f.day(t.exit_date) },
  { key: 'exit_price', label: 'Exit ₹', num: true, render: (t) => f.price(t.exit_price) },
  { key: 'quantity', label: 'Qty', num: true },
  { key: 'pnl', label: 'P&L', num: true, render: (t) => html`<span class=${f.tone(t.pnl)}>${f.pnl(t.pnl)}</span>` },
  { key: 'pnl_pct', label: 'P&L %', num: true, render: (t) => f.pct(t.pnl_pct, 2, true) },
  { key: 'exit_reason', label: 'Exit reason', render: (t) => f.words(t.exit_reason) },
  { key: 'holding_days', label: 'Days', num: true },
];
// on a phone the trade's outcome comes first (the rest scrolls sideways); the long sector name goes last
const PHONE_ORDER = ['symbol', 'pnl', 'pnl_pct', 'exit_reason', 'entry_date', 'exit_date', 'holding_days', 'quantity',
  'entry_price', 'exit_price', 'sector'];
const PHONE = '(max-width: 760px)'; // app.css's phone layout

/** True while the window is phone-sized (follows rotation and resizing). */
function usePhone() {
  const [phone, setPhone] = useState(() => window.matchMedia(PHONE).matches);
  useEffect(() => {
    const mq = window.matchMedia(PHONE);
    const on = () => setPhone(mq.matches);
    mq.addEventListener('change', on);
    return () => mq.removeEventListener('change', on);
  }, []);
  return phone;
}

export function BacktestResult({ params }) {
  const id = Number(params[0]);
  const phone = usePhone();
  // a run just answered by the form renders in the first pass (no load round); a visit fetches it
  const state = useLoad(() => api.get(`/api/backtest/runs/${id}`), [id], resultCache.get(id));
  useEffect(() => { resultCache.delete(id); }, [id]);
  const [bench, setBench] = useState([]);
  useEffect(() => { if (state.data) loadBenchmark(state.data).then(setBench); }, [state.data]);
  useEffect(() => {
    if (state.data && window.__ttResultArrived) {
      // the frame after the commit has been painted (bench/webapp.py reads it)
      requestAnimationFrame(() => setTimeout(() => { window.__ttResultRendered = performance.now(); }, 0));
    }
  }, [state.data]);
  const remove = async () => {
    if (!await confirm({ title: `Delete backtest #${id}?`, body: 'The run is removed from your history.', confirmLabel: 'Delete', danger: true })) return;
    try { await api.del(`/api/backtest/runs/${id}`); navigate('/backtests'); } catch (e) { toast(e.message, 'error'); }
  };
  return html`<${Loading} state=${state}>${(run) => {
    const s = run.summary; const p = run.params; const d = run.diagnostics || {};
    const equity = run.equity_curve.map((e) => ({ time: e.date, value: e.equity }));
    const dd = run.equity_curve.map((e) => ({ time: e.date, value: -(e.drawdown_pct || 0) }));
    return html`<${Page} title=${`Backtest #${run.id}: ${p.strategy_name || 'inline strategy'}`} actions=${html`
        <a class="button" href=${`/backtests?strategy_id=${p.strategy_id || ''}`}>Run again</a>
        <a class="button" href=${`/market?backtest=${run.id}`}>Trades on chart</a>
        <button type="button" class="danger" onClick=${remove}>Delete</button>`}>
      <p class="muted" id="run-line">${f.universe(p.universe, p.symbols)} · ${f.day(p.start_date)} – ${f.day(p.end_date)} · capital ${f.inr(p.starting_capital, 0)} ·${' '}
        size ${f.pct(p.position_size_pct, 0)} · max ${p.max_positions} positions · slippage ${p.slippage_bps} bps · ${CHARGES[p.charges] || `charges ${p.charges}`}</p>
      <div class="cards" id="metrics">${METRICS.filter(([k]) => k in s).map(([k, label, fmt, signed]) => html`<${Card} id=${k} label=${label} value=${fmt(s[k])} tone=${signed ? f.tone(s[k]) : ''} />`)}</div>
      <${Chart} id="equity-chart" label=${`Equity (blue) vs ${p.benchmark || 'benchmark'} (grey), rebased to the starting capital`} height=${300}
        series=${[{ kind: 'line', data: equity }, ...(bench.length ? [{ kind: 'line', data: bench, options: { color: '#8a94a6', lineWidth: 1 } }] : [])]} />
      <${Chart} id="drawdown-chart" label="Drawdown (%)" height=${160} series=${[{ kind: 'area', data: dd }]} />
      <${Heatmap} monthly=${run.monthly_returns || {}} />
      <${Table} caption="Trades" id="trades" rows=${run.trades} filter rowKey=${(t, i) => i} limit=${50} csv=${`backtest-${id}-trades.csv`}
        columns=${phone ? PHONE_ORDER.map((k) => TRADE_COLUMNS.find((c) => c.key === k)) : TRADE_COLUMNS} />
      <div class="two-col">
        <${Table} caption="By symbol" id="by-symbol" rows=${groupBy(run.trades, 'symbol')} rowKey=${(g) => g.key} limit=${25}
          columns=${[{ key: 'key', label: 'Symbol' }, { key: 'trades', label: 'Trades', num: true },
            { key: 'win_rate', label: 'Win %', num: true, render: (g) => f.number(g.win_rate, 0) },
            { key: 'pnl', label: 'P&L', num: true, render: (g) => html`<span class=${f.tone(g.pnl)}>${f.pnl(g.pnl)}</span>` }]} />
        <${Table} caption="By exit reason" id="by-exit" rows=${groupBy(run.trades, 'exit_reason')} rowKey=${(g) => g.key}
          columns=${[{ key: 'key', label: 'Exit reason', render: (g) => f.words(g.key) }, { key: 'trades', label: 'Trades', num: true },
            { key: 'win_rate', label: 'Win %', num: true, render: (g) => f.number(g.win_rate, 0) },
            { key: 'pnl', label: 'P&L', num: true, render: (g) => html`<span class=${f.tone(g.pnl)}>${f.pnl(g.pnl)}</span>` }]} />
      </div>
      ${run.open_positions && run.open_positions.length ? html`<${Table} caption="Still open at the end" id="open-at-end" rows=${run.open_positions} rowKey=${(t, i) => i}
        columns=${[{ key: 'symbol', label: 'Symbol' }, { key: 'entry_date', label: 'Entry', render: (t) => f.day(t.entry_date) },
          { key: 'entry_price', label: 'Entry ₹', num: true, render: (t) => f.price(t.entry_price) }, { key: 'quantity', label: 'Qty', num: true },
          { key: 'last_price', label: 'Last ₹', num: true, render: (t) => f.price(t.last_price) },
          { key: 'unrealized_pnl', label: 'Unrealised', num: true, render: (t) => html`<span class=${f.tone(t.unrealized_pnl)}>${f.pnl(t.unrealized_pnl)}</span>` }]} />` : null}
      <section aria-labelledby="diag-h" id="diagnostics"><h2 id="diag-h">Diagnostics</h2>
        <p>${f.number(d.signals_generated, 0)} signals generated; ${f.number(d.orders_placed, 0)} orders placed; ${f.number(d.entries_filled, 0)} entries filled, ${f.number(d.entries_expired, 0)} expired unfilled.</p>
        <p><strong>Skipped entries:</strong> ${f.number(d.skipped_max_positions, 0)} because ${p.max_positions} positions were already open (max positions);${' '}
          ${f.number(d.skipped_max_per_sector, 0)} by the per-sector limit; ${f.number(d.skipped_cash, 0)} for lack of cash;${' '}
          ${f.number(d.skipped_zero_quantity, 0)} because the position size bought zero shares.</p>
        ${(d.warnings || []).map((w) => html`<p class="banner warn">${w}</p>`)}
        ${run.refused_entries && run.refused_entries.length ? html`<${Table} caption="Entries placed but never filled" id="refused-entries"
          rows=${run.refused_entries} rowKey=${(r, i) => i} limit=${20} filter
          columns=${[{ key: 'symbol', label: 'Symbol' }, { key: 'signal_date', label: 'Signal', render: (r) => f.day(r.signal_date) },
            { key: 'date', label: 'Refused on', render: (r) => f.day(r.date) }, { key: 'quantity', label: 'Qty', num: true },
            { key: 'reason', label: 'Why', render: (r) => r.reason || r.reason_code }]} />` : null}
        <p class="muted">${f.number(d.trading_days, 0)} trading days (${f.number(d.warmup_days, 0)} warm-up), ${f.number(d.bars_processed, 0)} bars in ${f.number(d.elapsed_ms, 0)} ms.</p>
      </section>
    <//>`;
  }}<//>`;
}

export function BacktestCompare({ query }) {
  const ids = (query.get('ids') || '').split(',').map(Number).filter(Boolean);
  const state = useLoad(() => Promise.all(ids.map((i) => api.get(`/api/backtest/runs/${i}`))), [ids.join(',')]);
  const colors = ['#1f5fd1', '#e07b00', '#0b7a3b', '#9c27b0', '#c0262d', '#00838f'];
  return html`<${Page} title="Compare backtests">
    <${Loading} state=${state}>${(runs) => html`
      <${Chart} id="compare-chart" label=${'Equity rebased to 100: ' + runs.map((r, i) => `#${r.id} (${['blue', 'orange', 'green', 'purple', 'red', 'teal'][i % 6]})`).join(', ')} height=${300}
        series=${runs.map((r, i) => ({ kind: 'line', options: { color: colors[i % colors.length], lineWidth: 2 },
          data: r.equity_curve.map((e) => ({ time: e.date, value: (e.equity / r.params.starting_capital) * 100 })) }))} />
      <div class="scroll-x"><table id="compare"><caption>Side by side</caption>
        <thead><tr><th scope="col">Metric</th>${runs.map((r) => html`<th scope="col" class="num"><a href=${`/backtests/${r.id}`}>#${r.id}</a> ${r.params.strategy_name}</th>`)}</tr></thead>
        <tbody>
          <tr><th scope="row">Period</th>${runs.map((r) => html`<td class="num">${f.day(r.params.start_date)} – ${f.day(r.params.end_date)}</td>`)}</tr>
          <tr><th scope="row">Universe</th>${runs.map((r) => html`<td class="num">${f.universe(r.params.universe, r.params.symbols)}</td>`)}</tr>
          ${METRICS.map(([k, label, fmt]) => html`<tr><th scope="row">${label}</th>${runs.map((r) => html`<td class="num">${fmt(r.summary[k])}</td>`)}</tr>`)}
        </tbody></table></div>`}<//>
  <//>`;
}
