import { html, Page, Table, Card, Field, Badge, useLoad, Loading, useState, confirm, toast } from '../ui.js';
import * as api from '../api.js';
import * as f from '../format.js';

const TYPES = {
  max_daily_loss: 'Max daily loss', max_position_value: 'Max position value (₹)', max_exposure_pct: 'Max exposure (% of capital)',
  max_open_positions: 'Max open positions', max_per_sector: 'Max positions per sector', max_orders_per_day: 'Max orders per day',
  blocked_symbols: 'Blocked symbols', kill_switch: 'Kill switch (block all new entries)',
};

function describe(r) {
  if (r.rule_type === 'blocked_symbols') return (r.symbols || []).join(', ');
  if (r.rule_type === 'kill_switch') return r.auto ? 'engaged automatically by a daily-loss breach' : 'engaged';
  if (r.rule_type === 'max_daily_loss') return r.unit === 'pct' ? f.pct(r.value) : f.inr(r.value);
  if (r.rule_type === 'max_position_value') return f.inr(r.value);
  if (r.rule_type === 'max_exposure_pct') return f.pct(r.value);
  return f.number(r.value, 0);
}

const BLANK = { rule_type: 'max_daily_loss', portfolio_id: '', value: '', unit: 'inr', symbols: '', note: '' };

/** What makes two rules the same rule: type, limit, unit, scope (and the symbols of a blocked list). */
function sameRule(a, b) {
  return a.rule_type === b.rule_type && (a.portfolio_id ?? null) === (b.portfolio_id ?? null)
    && (a.value ?? null) === (b.value ?? null)
    && (a.rule_type !== 'max_daily_loss' || (a.unit || 'inr') === (b.unit || 'inr')) // (the only rule with a choice of unit)
    && [...new Set(a.symbols || [])].sort().join(',') === [...new Set(b.symbols || [])].sort().join(',');
}

function RuleForm({ portfolios, rules = [], initial, onSaved, onCancel }) {
  const [r, setR] = useState(initial || BLANK);
  const [errors, setErrors] = useState({});
  const [error, setError] = useState(null);
  const upd = (k) => (e) => setR({ ...r, [k]: e.target.value });
  const save = async (e) => {
    e.preventDefault();
    const body = { rule_type: r.rule_type, portfolio_id: r.portfolio_id ? Number(r.portfolio_id) : null,
      value: r.rule_type === 'kill_switch' || r.rule_type === 'blocked_symbols' ? null : Number(r.value),
      unit: r.rule_type === 'max_daily_loss' ? r.unit : null,
      symbols: r.rule_type === 'blocked_symbols' ? String(r.symbols).split(/[\s,]+/).filter(Boolean).map((s) => s.toUpperCase()) : [],
      note: r.note || '' };
    setErrors({}); setError(null);
    if (rules.some((x) => x.id !== (initial && initial.id) && sameRule(x, body))) {
      setError('You already have this rule: the same limit on the same scope. Edit that one, or change the limit or what it applies to.');
      return;
    }
    try {
      if (initial && initial.id) await api.put(`/api/risk/rules/${initial.id}`, body); else await api.post('/api/risk/rules', body);
      toast('Rule saved.'); setR(BLANK); onSaved(); // (an empty form: the next rule does not inherit this one's note)
    } catch (err) { setErrors(err.fieldErrors ? err.fieldErrors() : {}); setError(err.message); }
  };
  const needsValue = r.rule_type !== 'kill_switch' && r.rule_type !== 'blocked_symbols';
  return html`<form onSubmit=${save} aria-label="Risk rule"><fieldset><legend>${initial && initial.id ? 'Edit rule' : 'Add a rule'}</legend>
    ${error ? html`<p class="error" role="alert">${error}</p>` : null}
    <div class="grid-form">
      <${Field} label="Rule" name="rule_type" error=${errors.rule_type}>${(i, d) => html`<select id=${i} aria-describedby=${d} value=${r.rule_type} onChange=${upd('rule_type')}>
        ${Object.entries(TYPES).map(([k, label]) => html`<option value=${k}>${label}</option>`)}</select>`}<//>
      <${Field} label="Applies to" name="portfolio_id" error=${errors.portfolio_id}>${(i, d) => html`<select id=${i} aria-describedby=${d} value=${r.portfolio_id ?? ''} onChange=${upd('portfolio_id')}>
        <option value="">Whole account</option>${portfolios.map((p) => html`<option value=${p.id}>${p.name}</option>`)}</select>`}<//>
      ${needsValue ? html`<${Field} label="Limit" name="value" error=${errors.value}>${(i, d) => html`<input id=${i} aria-describedby=${d} type="number" step="any" required value=${r.value ?? ''} onInput=${upd('value')} />`}<//>` : null}
      ${r.rule_type === 'max_daily_loss' ? html`<${Field} label="Unit" name="unit" error=${errors.unit}>${(i, d) => html`<select id=${i} aria-describedby=${d} value=${r.unit || 'inr'} onChange=${upd('unit')}>
        <option value="inr">₹</option><option value="pct">% of capital</option></select>`}<//>` : null}
      ${r.rule_type === 'blocked_symbols' ? html`<${Field} label="Symbols (comma separated)" name="symbols" error=${errors.symbols}>${(i, d) => html`<input id=${i} aria-describedby=${d} value=${r.symbols} onInput=${upd('symbols')} />`}<//>` : null}
      <${Field} label="Note" name="note" error=${errors.note}>${(i, d) => html`<input id=${i} aria-describedby=${d} maxlength="200" value=${r.note} onInput=${upd('note')} />`}<//>
    </div>
    <div class="actions"><button type="submit" class="primary">Save rule</button>${onCancel ? html`<button type="button" onClick=${onCancel}>Cancel</button>` : null}</div>
  </fieldset></form>`;
}

export function Risk() {
  const [editing, setEditing] = useState(null);
  const state = useLoad(async () => {
    const [rules, st, portfolios] = await Promise.all([api.get('/api/risk/rules'), api.get('/api/risk/state'), api.get('/api/model/portfolios')]);
    return { rules, st, portfolios };
  });
  const remove = async (r) => {
    const ks = r.rule_type === 'kill_switch';
    if (!await confirm({ title: ks ? 'Release the kill switch?' : `Delete the ${TYPES[r.rule_type]} rule?`,
      body: ks ? 'New entries are allowed again.' : 'The limit stops applying.', confirmLabel: ks ? 'Release' : 'Delete', danger: !ks })) return;
    try { await api.del(`/api/risk/rules/${r.id}`); toast(ks ? 'Kill switch released.' : 'Rule deleted.'); state.reload(); } catch (e) { toast(e.message, 'error'); }
  };
  return html`<${Page} title="Risk">
    <${Loading} state=${state}>${(d) => {
      const s = d.st; const names = Object.fromEntries(d.portfolios.map((p) => [p.id, p.name]));
      const kill = s.kill_switch && s.kill_switch.engaged;
      return html`
      ${kill ? html`<div class="banner danger" role="alert" id="kill-banner"><strong>Kill switch engaged.</strong> New entries are blocked.
        ${(s.kill_switch.rules || []).map((r) => html`<div class="kill-rule">${r.note || (r.auto ? 'engaged automatically' : 'engaged by you')}${' '}
          <button type="button" onClick=${() => remove(r)}>${r.auto ? 'Release the automatic kill switch' : 'Release the kill switch'}</button></div>`)}</div>` : null}
      ${(s.breaches || []).length ? html`<section aria-labelledby="breach-h" id="breaches"><h2 id="breach-h">Recent breaches</h2><ul class="plain">
        ${s.breaches.map((b) => html`<li class="banner warn"><time>${b.at ? f.dateTime(b.at) : f.day(b.day)}</time> ${b.message || b.rule_type}</li>`)}</ul></section>` : null}
      <div class="cards" id="risk-cards">
        ${(s.loss_limits || []).length ? s.loss_limits.map((l) => html`<div class="card" data-metric=${`loss-limit-${l.rule_id}`}>
          <div class="card-label">Today's loss vs limit (${l.portfolio_id ? names[l.portfolio_id] || `#${l.portfolio_id}` : 'account'})</div>
          <div class=${'card-value ' + (l.loss > 0 ? 'down' : '')}><span data-loss>${f.inr(l.loss)}</span> <span class="muted small">of</span> <span data-limit>${f.inr(l.limit)}</span></div>
          <meter min="0" max="100" low="60" high="90" optimum="0" value=${Math.min(l.used_pct ?? 0, 100)}
            aria-label=${`Share of the daily loss limit used: ${f.pct(l.used_pct, 0)}`}></meter>
          <div class="card-sub muted">${f.pct(l.used_pct, 0)} used${l.used_pct >= 100 ? ' — limit reached' : ''}</div></div>`)
          : html`<${Card} id="loss-limit-none" label="Today's loss vs limit" value=${f.inr(Math.max(-(s.day_pnl || 0), 0))} sub="No daily-loss limit set: add one below" />`}
        <${Card} id="day-pnl" label="Day P&L" value=${f.pnl(s.day_pnl)} tone=${f.tone(s.day_pnl)} sub=${`realised ${f.pnl(s.realized_pnl_today)}`} />
        <${Card} id="exposure" label="Gross exposure" value=${f.inr(s.gross_exposure)} sub=${`${f.pct(s.exposure_pct)} of ${f.inr(s.capital, 0)}`} />
        <${Card} id="open-positions" label="Open positions" value=${s.open_positions} />
        <${Card} id="orders-today" label="Orders today" value=${s.orders_today} />
      </div>
      <${Table} caption="Sectors" id="sectors" rows=${Object.entries(s.sectors || {}).map(([k, v]) => ({ sector: k, ...v }))} rowKey=${(r) => r.sector}
        empty="No exposure." columns=${[{ key: 'sector', label: 'Sector' }, { key: 'positions', label: 'Positions', num: true },
          { key: 'value', label: 'Value', num: true, render: (r) => f.inr(r.value) }]} />
      <${Table} caption="Rules in force" id="rules" stack rows=${d.rules} empty="No risk rules: every approval is only limited by cash."
        columns=${[{ key: 'rule_type', label: 'Rule', render: (r) => html`${TYPES[r.rule_type] || r.rule_type}${r.auto ? html` <${Badge} text="auto" kind="paused" />` : null}` },
          { key: 'value', label: 'Limit', render: describe },
          { key: 'portfolio_id', label: 'Scope', render: (r) => (r.portfolio_id ? names[r.portfolio_id] || `#${r.portfolio_id}` : 'account') },
          { key: 'note', label: 'Note' },
          { key: 'act', label: '', nosort: true, render: (r) => html`<div class="actions">
            ${r.rule_type !== 'kill_switch' ? html`<button type="button" onClick=${() => setEditing({ ...r, symbols: (r.symbols || []).join(', '), portfolio_id: r.portfolio_id ?? '' })}>Edit</button>` : null}
            <button type="button" onClick=${() => remove(r)}>${r.rule_type === 'kill_switch' ? 'Release' : 'Delete'}</button></div>` }]} />
      <${RuleForm} key=${editing ? editing.id : 'new'} portfolios=${d.portfolios} rules=${d.rules} initial=${editing}
        onSaved=${() => { setEditing(null); state.reload(); }} onCancel=${editing ? () => setEditing(null) : null} />`;
    }}<//>
  <//>`;
}
