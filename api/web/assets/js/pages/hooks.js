// Alert hooks of one portfolio (TradingView, Chartink): create, copy the URL and message (shown once), rotate, delete.
import { html, Table, useLoad, Loading, useState, confirm, toast } from '../ui.js';
import * as api from '../api.js';
import * as f from '../format.js';

async function copy(text, what) {
  try { await navigator.clipboard.writeText(text); toast(`${what} copied.`); } catch (_) { toast(`Select the ${what.toLowerCase()} and copy it.`, 'error'); }
}

/** What a create or rotate answered: the URL (and TradingView's message), shown this once. */
function Issued({ hook, onDone }) {
  return html`<div class="banner info" id="hook-issued" role="status">
    <p><strong>${hook.name}</strong>: copy these now, they are shown once. The URL is the credential: keep it secret.</p>
    <p><label for="hook-url">Webhook URL</label> <input id="hook-url" readonly size="60" value=${hook.url} onFocus=${(e) => e.target.select()} />
      <button type="button" onClick=${() => copy(hook.url, 'URL')}>Copy URL</button></p>
    ${hook.message ? html`<p><label for="hook-message">Alert message (buy)</label> <input id="hook-message" readonly size="60" value=${hook.message}
      onFocus=${(e) => e.target.select()} /> <button type="button" onClick=${() => copy(hook.message, 'Message')}>Copy message</button></p>
      <p class="muted small">To exit a held position: <code>${hook.sell_message}</code></p>` : null}
    <p class="muted small">${hook.instructions}</p>
    <button type="button" onClick=${onDone}>Done</button></div>`;
}

export function HookPanel({ portfolio }) {
  const [form, setForm] = useState({ source: 'tradingview', name: '' });
  const [issued, setIssued] = useState(null);
  const state = useLoad(async () => (await api.get('/api/hooks', { limit: 500 })).filter((h) => h.portfolio_id === portfolio.id), [portfolio.id]);
  const run = async (fn) => { try { const out = await fn(); state.reload(); return out; } catch (e) { toast(e.message, 'error'); return null; } };
  const create = async (e) => {
    e.preventDefault();
    const out = await run(() => api.post('/api/hooks', { portfolio_id: portfolio.id, source: form.source, name: form.name }));
    if (out) { setIssued(out); setForm({ ...form, name: '' }); }
  };
  const rotate = async (h) => {
    if (!await confirm({ title: `New URL for “${h.name}”?`, body: 'The current URL stops working at once; paste the new one into the alert.', confirmLabel: 'Rotate', danger: true })) return;
    const out = await run(() => api.post(`/api/hooks/${h.id}/rotate`));
    if (out) setIssued(out);
  };
  const remove = async (h) => {
    if (!await confirm({ title: `Delete “${h.name}”?`, body: 'Its URL stops working at once; alerts sent to it are refused.', confirmLabel: 'Delete', danger: true })) return;
    if (await run(() => api.del(`/api/hooks/${h.id}`)) !== null) toast('Hook deleted.');
  };
  return html`<section aria-labelledby="hooks-h" id="portfolio-hooks"><h2 id="hooks-h">Alert hooks</h2>
    <p class="muted small">TradingView or Chartink alerts sent to a hook become signals of this portfolio, checked by the same rules as the scan.</p>
    ${issued ? html`<${Issued} hook=${issued} onDone=${() => setIssued(null)} />` : null}
    <${Loading} state=${state}>${(hooks) => html`<${Table} caption="Alert hooks" id="hooks" rows=${hooks} empty="No hooks yet."
      columns=${[{ key: 'name', label: 'Name' }, { key: 'source', label: 'Source' }, { key: 'token_prefix', label: 'URL starts', render: (h) => html`<code>${h.token_prefix}…</code>` },
        { key: 'alerts', label: 'Alerts', num: true }, { key: 'signals', label: 'Signals', num: true },
        { key: 'last_alert_at', label: 'Last alert', render: (h) => (h.last_alert_at ? f.dateTime(h.last_alert_at) : '—') },
        { key: 'act', label: '', nosort: true, render: (h) => html`<button type="button" onClick=${() => rotate(h)}>Rotate URL</button>
          <button type="button" class="danger" onClick=${() => remove(h)}>Delete</button>` }]} />`}<//>
    ${portfolio.status !== 'retired' ? html`<form class="actions" aria-label="Create an alert hook" onSubmit=${create}>
      <label for="hook-source">Source</label><select id="hook-source" value=${form.source} onChange=${(e) => setForm({ ...form, source: e.target.value })}>
        <option value="tradingview">TradingView</option><option value="chartink">Chartink</option></select>
      <label for="hook-name">Name</label><input id="hook-name" required maxlength="120" value=${form.name} onInput=${(e) => setForm({ ...form, name: e.target.value })} />
      <button type="submit">Create hook</button></form>` : null}
  </section>`;
}
