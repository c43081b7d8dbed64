import { html, Page, Table, Card, Badge, useLoad, Loading, useState, navigate } from '../ui.js';
import * as api from '../api.js';
import * as f from '../format.js';

const BY = { user: 'you', agent_key: 'your agent', scheduler: 'the scheduler', system: 'the system' };

/** Who or what caused a step, in words: "you (scan on request)", "the scheduler". */
function cause(c) {
  if (!c) return 'unknown';
  return `${BY[c.kind] || c.kind}${c.via ? ` (${c.via})` : ''}`;
}

/** "2026-08-03T15:30" (a datetime-local value, IST wall time) -> an ISO timestamp with the IST offset. */
function istMoment(local) {
  const withSeconds = local.length === 16 ? `${local}:00` : local;
  return `${withSeconds}+05:30`;
}

/** Now as a datetime-local value in IST. */
function nowIST() {
  const p = Object.fromEntries(new Intl.DateTimeFormat('en-GB', { timeZone: 'Asia/Kolkata', year: 'numeric', month: '2-digit',
    day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(new Date()).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

function Timeline({ steps }) {
  const [chain, setChain] = useState('');
  const signals = [...new Map(steps.filter((s) => s.signal_id != null)
    .map((s) => [s.signal_id, s.values && s.values.symbol ? `#${s.signal_id} ${s.values.symbol}` : `#${s.signal_id}`])).entries()];
  const byPosition = Object.fromEntries(steps.map((s) => [s.position, s]));
  const shown = chain === '' ? steps : steps.filter((s) => String(s.signal_id) === chain
    || steps.some((x) => String(x.signal_id) === chain && x.proposed_by === s.position));
  return html`<section aria-labelledby="timeline-h"><h2 id="timeline-h">Causal timeline</h2>
    ${signals.length ? html`<div class="field inline"><label for="audit-chain">Follow one signal</label>
      <select id="audit-chain" value=${chain} onChange=${(e) => setChain(e.target.value)}>
        <option value="">Every step</option>${signals.map(([id, label]) => html`<option value=${id}>Signal ${label}</option>`)}</select></div>` : null}
    <ol class="timeline" id="timeline">${shown.map((s) => {
      const prev = s.follows != null ? byPosition[s.follows] : null;
      return html`<li id=${`step-${s.position}`} data-step=${s.step}>
        <time datetime=${s.at}>${f.dateTimeSeconds(s.at)}</time> <strong>${s.step}</strong> ${s.summary}
        <span class="muted small"> — by <span data-cause>${cause(s.caused_by)}</span>${prev ? html`; after the${' '}
          <a href=${`#step-${prev.position}`}>${prev.step}</a> of ${f.timeIST(prev.at)} IST` : ''}</span></li>`;
    })}</ol></section>`;
}

function AsOf({ state, at }) {
  const byStatus = {};
  for (const s of state.signals) byStatus[s.status] = (byStatus[s.status] || 0) + 1;
  return html`<section aria-labelledby="asof-h" id="asof-state"><h2 id="asof-h">As of ${f.dateTimeSeconds(istMoment(at))}</h2>
    <p class="muted small">${state.events_applied} events replayed; the last at ${f.dateTime(state.last_event_at)}.</p>
    <div class="cards">
      <${Card} id="asof-status" label="Status" value=${html`<${Badge} text=${state.status} />`} />
      <${Card} id="asof-cash" label="Cash" value=${f.inr(state.cash)} />
      <${Card} id="asof-equity" label="Equity" value=${f.inr(state.equity)} sub=${state.last_day ? `marked ${f.day(state.last_day)}` : 'no close yet'} />
      <${Card} id="asof-open" label="Open positions" value=${state.positions.length} />
      <${Card} id="asof-signals" label="Signals" value=${state.signals.length}
        sub=${Object.entries(byStatus).map(([k, n]) => `${n} ${k.replace(/_/g, ' ')}`).join(', ')} />
      <${Card} id="asof-kill" label="Kill switch" value=${state.risk.kill_switch ? 'Engaged' : 'Off'} tone=${state.risk.kill_switch ? 'down' : ''} />
    </div>
    <${Table} caption="Open positions then" id="asof-positions" rows=${state.positions} empty="No open positions at that moment."
      columns=${[{ key: 'symbol', label: 'Symbol' }, { key: 'quantity', label: 'Qty', num: true },
        { key: 'avg_price', label: 'Avg', num: true, render: (p) => f.price(p.avg_price) },
        { key: 'last_price', label: 'Mark', num: true, render: (p) => f.price(p.last_price) },
        { key: 'unrealized_pnl', label: 'Unrealised', num: true, render: (p) => html`<span class=${f.tone(p.unrealized_pnl)}>${f.pnl(p.unrealized_pnl)}</span>` },
        { key: 'entry_date', label: 'Since', render: (p) => f.day(p.entry_date) }]} />
    ${state.closed_positions.length ? html`<${Table} caption="Closed by then" id="asof-closed" rows=${state.closed_positions}
      columns=${[{ key: 'symbol', label: 'Symbol' }, { key: 'quantity', label: 'Qty', num: true },
        { key: 'exit_date', label: 'Exited', render: (p) => f.day(p.exit_date) }, { key: 'exit_reason', label: 'Reason', render: (p) => f.words(p.exit_reason) },
        { key: 'realized_pnl', label: 'Realised', num: true, render: (p) => html`<span class=${f.tone(p.realized_pnl)}>${f.pnl(p.realized_pnl)}</span>` }]} />` : null}
    <details><summary>Everything rebuilt (JSON)</summary><pre class="json">${JSON.stringify(state, null, 2)}</pre></details>
  </section>`;
}

export function Audit({ query }) {
  const pid = query.get('portfolio_id');
  const [at, setAt] = useState(nowIST);
  const [asOf, setAsOf] = useState(null);
  const [error, setError] = useState(null);
  const state = useLoad(async () => {
    const [portfolios, retired] = await Promise.all([api.get('/api/model/portfolios', { limit: 200 }),
      api.get('/api/model/portfolios', { status: 'retired', limit: 200 })]);
    const all = [...portfolios, ...retired];
    const chosen = pid || (all[0] && all[0].id);
    const timeline = chosen ? await api.get('/api/audit/timeline', { portfolio_id: chosen }) : null;
    return { all, chosen, timeline };
  }, [pid]);
  const rebuild = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      setAsOf({ at, state: await api.get(`/api/audit/portfolios/${state.data.chosen}/as-of`, { at: istMoment(at) }) });
    } catch (err) { setError(err.message); setAsOf(null); }
  };
  return html`<${Page} title="Audit">
    <${Loading} state=${state}>${(d) => (!d.all.length ? html`<p class="muted">No portfolios yet: their history appears here once you deploy one.</p>` : html`
      <div class="field inline"><label for="audit-portfolio">Portfolio</label><select id="audit-portfolio" value=${d.chosen}
        onChange=${(e) => navigate(`/audit?portfolio_id=${e.target.value}`)}>${d.all.map((p) => html`<option value=${p.id}>${p.name} (${p.status})</option>`)}</select></div>
      <form onSubmit=${rebuild} class="actions" aria-label="State as of a moment">
        <label for="asof">State as of (IST)</label><input id="asof" type="datetime-local" step="1" required value=${at} onInput=${(e) => setAt(e.target.value)} />
        <button type="submit">Rebuild</button></form>
      ${error ? html`<p class="error" role="alert">${error}</p>` : null}
      ${asOf ? html`<${AsOf} state=${asOf.state} at=${asOf.at} />` : null}
      ${d.timeline ? html`<${Timeline} steps=${d.timeline.steps} key=${d.chosen} />` : null}`)}<//>
  <//>`;
}
