import { html, Page, useLoad, Loading, useState, navigate } from '../ui.js';
import * as api from '../api.js';
import * as f from '../format.js';

export function Audit({ query }) {
  const pid = query.get('portfolio_id');
  const [at, setAt] = useState('');
  const [asOf, setAsOf] = useState(null);
  const [error, setError] = useState(null);
  const state = useLoad(async () => {
    const portfolios = await api.get('/api/model/portfolios', { limit: 200 });
    const retired = await api.get('/api/model/portfolios', { status: 'retired', limit: 200 });
    const all = [...portfolios, ...retired];
    const chosen = pid || (all[0] && all[0].id);
    const timeline = chosen ? await api.get('/api/audit/timeline', { portfolio_id: chosen }) : null;
    return { all, chosen, timeline };
  }, [pid]);
  const rebuild = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      // the datetime-local value is IST wall time
      setAsOf(await api.get(`/api/audit/portfolios/${state.data.chosen}/as-of`, { at: `${at}:00+05:30` }));
    } catch (err) { setError(err.message); setAsOf(null); }
  };
  return html`<${Page} title="Audit">
    <${Loading} state=${state}>${(d) => html`
      <label for="audit-portfolio">Portfolio </label><select id="audit-portfolio" value=${d.chosen}
        onChange=${(e) => navigate(`/audit?portfolio_id=${e.target.value}`)}>${d.all.map((p) => html`<option value=${p.id}>${p.name} (${p.status})</option>`)}</select>
      <form onSubmit=${rebuild} class="actions" aria-label="State as of a moment">
        <label for="asof">State as of (IST)</label><input id="asof" type="datetime-local" required value=${at} onInput=${(e) => setAt(e.target.value)} />
        <button type="submit">Rebuild</button></form>
      ${error ? html`<p class="error" role="alert">${error}</p>` : null}
      ${asOf ? html`<section aria-label="Rebuilt state"><h2>As of ${f.dateTime(`${at}:00+05:30`)}</h2><pre class="json" id="asof-state">${JSON.stringify(asOf, null, 2)}</pre></section>` : null}
      ${d.timeline ? html`<h2>Causal timeline</h2><ol class="timeline" id="timeline">${d.timeline.steps.map((s) => html`<li data-step=${s.step}>
        <time>${f.dateTime(s.at)}</time> <strong>${s.step}</strong> ${s.summary}
        <span class="muted small"> — by ${s.caused_by ? `${s.caused_by.kind}${s.caused_by.actor ? ` (${s.caused_by.actor})` : ''}` : '?'}</span></li>`)}</ol>`
        : html`<p class="muted">No portfolios yet.</p>`}`}<//>
  <//>`;
}
