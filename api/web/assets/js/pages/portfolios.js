import { html, Page, Table, Card, Badge, Field, useLoad, Loading, useState, navigate, confirm, toast, useAfterPaint } from '../ui.js';
import { Chart } from '../charts.js';
import { OpenPositions } from './positions.js';
import { HookPanel } from './hooks.js';
import * as api from '../api.js';
import { load } from '../loads.js';
import * as f from '../format.js';
import { Reconciliation } from '../recon.js';

function DeployForm({ strategies, universes, preselect, onDeployed }) {
  const first = strategies.find((s) => String(s.id) === String(preselect)) || strategies[0];
  const [form, setForm] = useState({ strategy_id: first ? first.id : '', name: first ? `${first.name} paper` : '', mode: 'paper',
    capital: 1000000, universe: 'nifty_100', position_size_pct: 10, max_positions: 10, max_per_sector: '', auto_approve: false });
  const [errors, setErrors] = useState({});
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const upd = (k) => (e) => setForm({ ...form, [k]: e.target.type === 'checkbox' ? e.target.checked : e.target.value });
  const submit = async (e) => {
    e.preventDefault();
    if (form.mode === 'live' && !await confirm({ title: 'Deploy with real money?', body: 'A live portfolio sends approved orders to Kite through your agent.', confirmLabel: 'Deploy live', danger: true })) return;
    setBusy(true); setErrors({}); setError(null);
    try {
      const p = await api.post('/api/model/portfolios/deploy', { ...form, strategy_id: Number(form.strategy_id), capital: Number(form.capital),
        position_size_pct: Number(form.position_size_pct), max_positions: Number(form.max_positions),
        max_per_sector: form.max_per_sector === '' ? null : Number(form.max_per_sector) });
      toast(`Deployed “${p.name}”.`);
      onDeployed(p);
    } catch (err) { setErrors(err.fieldErrors ? err.fieldErrors() : {}); setError(err.message); } finally { setBusy(false); }
  };
  if (!strategies.length) return html`<p class="banner info">You need a strategy first: <a href="/strategies?tab=templates">fork a template</a>.</p>`;
  const num = (k, label, extra = {}) => html`<${Field} label=${label} name=${k} error=${errors[k]}>${(i, d) => html`<input id=${i} aria-describedby=${d}
    type="number" step="any" value=${form[k]} onInput=${upd(k)} ...${extra} />`}<//>`;
  return html`<form onSubmit=${submit} aria-label="Deploy a portfolio"><fieldset><legend>Deploy a strategy</legend>
    ${error ? html`<p class="error" role="alert">${error}</p>` : null}
    <div class="grid-form">
      <${Field} label="Strategy" name="strategy_id" error=${errors.strategy_id}>${(i, d) => html`<select id=${i} aria-describedby=${d} value=${form.strategy_id}
        onChange=${upd('strategy_id')}>${strategies.map((s) => html`<option value=${s.id}>${s.name}</option>`)}</select>`}<//>
      <${Field} label="Portfolio name" name="name" error=${errors.name}>${(i, d) => html`<input id=${i} aria-describedby=${d} required maxlength="120" value=${form.name} onInput=${upd('name')} />`}<//>
      <${Field} label="Mode" name="mode" error=${errors.mode}>${(i, d) => html`<select id=${i} aria-describedby=${d} value=${form.mode} onChange=${upd('mode')}>
        <option value="paper">Paper (simulated)</option><option value="live">Live (Kite, via your agent)</option></select>`}<//>
      ${num('capital', 'Capital (₹)', { min: 1000 })}
      <${Field} label="Universe" name="universe" error=${errors.universe}>${(i, d) => html`<select id=${i} aria-describedby=${d} value=${form.universe} onChange=${upd('universe')}>
        ${universes.map((u) => html`<option value=${u.name}>${u.index_name || u.name}</option>`)}</select>`}<//>
      ${num('position_size_pct', 'Position size %')}
      ${num('max_positions', 'Max positions')}
      ${num('max_per_sector', 'Max per sector (empty: no limit)')}
    </div>
    <label><input type="checkbox" checked=${form.auto_approve} onChange=${upd('auto_approve')} /> Approve signals automatically</label>
    <div><button type="submit" class="primary" disabled=${busy}>Deploy</button></div>
  </fieldset></form>`;
}

export function Portfolios({ query }) {
  const status = query.get('status') || '';
  const state = useLoad(async () => {
    const [portfolios, strategies, universes] = await Promise.all([
      api.get('/api/model/portfolios', { status }), api.get('/api/strategies', { limit: 200 }), api.get('/api/universes')]);
    return { portfolios, strategies: strategies.filter((s) => !s.is_template), universes };
  }, [status]);
  return html`<${Page} title="Portfolios">
    <div class="tabs" role="tablist" aria-label="Which portfolios">
      ${[['', 'Active and paused'], ['retired', 'Retired']].map(([k, label]) => html`<a role="tab" class="button"
        aria-selected=${status === k} href=${k ? `/portfolios?status=${k}` : '/portfolios'}>${label}</a>`)}</div>
    <${Loading} state=${state}>${(d) => html`
      <${Table} caption="Portfolios" id="portfolios" stack rows=${d.portfolios} empty="No portfolios here yet."
        columns=${[
          { key: 'name', label: 'Name', render: (p) => html`<a href=${`/portfolios/${p.id}`}>${p.name}</a> <${Badge} text=${p.mode} />` },
          { key: 'status', label: 'Status', render: (p) => html`<${Badge} text=${p.status} />` },
          { key: 'equity', label: 'Equity', num: true, render: (p) => f.inr(p.equity) },
          { key: 'cash', label: 'Cash', num: true, render: (p) => f.inr(p.cash) },
          { key: 'day_pnl', label: 'Day P&L', num: true, render: (p) => html`<span class=${f.tone(p.day_pnl)}>${f.pnl(p.day_pnl)}</span>` },
          { key: 'total_pnl', label: 'Total P&L', num: true, render: (p) => html`<span class=${f.tone(p.total_pnl)}>${f.pnl(p.total_pnl)}</span>` },
          { key: 'return_pct', label: 'Return', num: true, render: (p) => f.pct(p.return_pct, 2, true) },
        ]} />
      <${DeployForm} strategies=${d.strategies} universes=${d.universes} preselect=${query.get('deploy')}
        onDeployed=${(p) => navigate(`/portfolios/${p.id}`)} />`}<//>
  <//>`;
}

function RiskPanel({ risk }) {
  if (!risk) return null;
  return html`<section aria-labelledby="risk-h" id="portfolio-risk"><h2 id="risk-h">Risk today</h2>
    ${risk.kill_switch && risk.kill_switch.engaged ? html`<div class="banner danger" role="alert">Kill switch engaged: new entries are blocked.</div>` : null}
    <div class="cards">
      <${Card} label="Day P&L" value=${f.pnl(risk.day_pnl)} tone=${f.tone(risk.day_pnl)} />
      <${Card} label="Exposure" value=${f.inr(risk.gross_exposure)} sub=${f.pct(risk.exposure_pct)} />
      <${Card} label="Open positions" value=${risk.open_positions} />
      <${Card} label="Orders today" value=${risk.orders_today} />
    </div>
    ${(risk.breaches || []).map((b) => html`<p class="banner warn">${b.message || b.rule_type}</p>`)}</section>`;
}

/** What a scan did, in words: the day whose close was scanned (after the days it caught up), and what it found. */
export function scanned(r) {
  const days = r.days || [];
  const last = days.length ? f.day(days[days.length - 1]) : null;
  const on = last ? ` on the close of ${last}` : '';
  const caught = days.length > 1 ? ` (after catching up ${days.length - 1} missed trading day${days.length > 2 ? 's' : ''})` : '';
  const n = r.signals.length;
  if (!n) return `Scanned${on}${caught}: no stock met the strategy's entry rules, so there is no new signal.`;
  return `Scanned${on}${caught}: ${n} new signal${n === 1 ? '' : 's'}.`;
}

/** The equity curve, once there are two days to draw; before that, a sentence instead of an empty box. */
function EquityCurve({ curve }) {
  if (curve.length < 2) {
    return html`<figure class="chart" id="portfolio-equity"><div class="chart-empty" style="height:120px">
      <p>The equity curve starts after the first trading day.</p></div><figcaption class="muted">Equity curve</figcaption></figure>`;
  }
  return html`<${Chart} id="portfolio-equity" label="Equity curve" height=${220} series=${[{ kind: 'line', data: curve.map((e) => ({ time: e.date, value: e.equity })) }]} />`;
}

/** The dashboard's sections under the positions (signals, reconciliation, risk, hooks, activity): drawn, and
 * the hooks read, once the cards and positions are painted. */
function BelowTheFold({ children }) {
  return useAfterPaint() ? children() : html`<p class="muted" aria-busy="true">Loading…</p>`;
}

export function PortfolioDashboard({ params }) {
  const id = Number(params[0]);
  const state = useLoad(() => load('dashboard', id), [id]); // loads.js (started by early.js on a first visit)
  const act = async (p, what) => {
    const texts = {
      pause: ['Pause', 'No new entries; open positions keep their exits.'],
      resume: ['Resume', 'New signals are generated again after each close.'],
      retire: ['Retire', 'The portfolio stops for good (only possible with no open positions).'],
      reset: ['Reset', `Back to ${f.inr(p.capital)} cash: positions and signals cleared; the history stays in the audit trail.`],
    };
    if (!await confirm({ title: `${texts[what][0]} “${p.name}”?`, body: texts[what][1], confirmLabel: texts[what][0], danger: what === 'retire' || what === 'reset' })) return;
    try { await api.post(`/api/model/portfolios/${p.id}/${what}`); toast(`${texts[what][0]}: done.`); state.reload(); } catch (e) { toast(e.message, 'error'); }
  };
  const scan = async () => {
    try { const r = await api.post('/api/model/scan', { portfolio_id: id }); toast(scanned(r)); state.reload(); } catch (e) { toast(e.message, 'error'); }
  };
  return html`<${Loading} state=${state}>${(d) => {
    const p = d.portfolio;
    return html`<${Page} title=${p.name} actions=${html`
        <${Badge} text=${p.mode} /> <${Badge} text=${p.status} />
        ${p.status === 'active' ? html`<button type="button" onClick=${scan}>Scan now</button><button type="button" onClick=${() => act(p, 'pause')}>Pause</button>` : null}
        ${p.status === 'paused' ? html`<button type="button" onClick=${() => act(p, 'resume')}>Resume</button>` : null}
        ${p.status !== 'retired' ? html`<button type="button" class="danger" onClick=${() => act(p, 'retire')}>Retire</button>` : null}
        ${p.mode === 'paper' && p.status !== 'retired' ? html`<button type="button" class="danger" onClick=${() => act(p, 'reset')}>Reset</button>` : null}
        <a class="button" href=${`/market?portfolio=${p.id}`}>Trades on chart</a>
        <a class="button" href=${`/audit?portfolio_id=${p.id}`}>Audit</a>`}>
      <div class="cards" id="portfolio-cards">
        <${Card} id="equity" label="Equity" value=${f.inr(d.equity)} />
        <${Card} id="cash" label="Cash" value=${f.inr(d.cash)} />
        <${Card} id="invested" label="Invested" value=${f.inr(d.invested)} />
        <${Card} id="day_pnl" label="Day P&L" value=${f.pnl(d.day_pnl)} tone=${f.tone(d.day_pnl)} />
        <${Card} id="total_pnl" label="Total P&L" value=${f.pnl(d.total_pnl)} tone=${f.tone(d.total_pnl)} sub=${f.pct(d.return_pct, 2, true)} />
        <${Card} id="signals" label="Signals" value=${`${d.signals.pending_approval} waiting`} sub=${html`${d.signals.in_cart} in cart · <a href="/approvals">Approvals</a>`} />
      </div>
      <${EquityCurve} curve=${d.equity_curve} />
      <${OpenPositions} positions=${d.positions} onChanged=${state.reload} />
      <${BelowTheFold}>${() => html`
      <${Table} caption="Signals" id="portfolio-signals" rows=${d.signalList} empty="No signals yet." limit=${20}
        columns=${[{ key: 'symbol', label: 'Symbol' }, { key: 'kind', label: 'Kind' }, { key: 'status', label: 'Status', render: (s) => html`<${Badge} text=${s.status} />` },
          { key: 'conviction', label: 'Conviction', num: true, render: (s) => f.number(s.conviction, 0) },
          { key: 'quantity', label: 'Qty', num: true }, { key: 'created_at', label: 'At', render: (s) => f.dateTime(s.created_at) },
          { key: 'failure_reason', label: 'Note', render: (s) => (s.fill_unresolved ? html`<span class="down">Fill unresolved: GTT ${s.fill_unresolved.gtt_id || '—'}, Kite order ${s.fill_unresolved.order_id || '—'} found nowhere</span>` : s.failure_reason || '') }]} />
      ${d.reconciliation ? html`<section aria-labelledby="recon-h"><h2 id="recon-h">Reconciliation with Kite</h2>
        <${Reconciliation} recon=${d.reconciliation} id="portfolio-drift" /></section>` : null}
      <${RiskPanel} risk=${d.risk} />
      <${HookPanel} portfolio=${p} />
      <section aria-labelledby="pa-h"><h2 id="pa-h">Activity</h2>
        <ol class="timeline" id="activity">${(d.activity || []).slice(0, 40).map((a) => html`<li><time>${f.dateTime(a.at)}</time> ${a.summary}</li>`)}</ol></section>`}<//>
    <//>`;
  }}<//>`;
}
