import { html, Page, Table, Card, Field, useLoad, Loading, useState, confirm, toast } from '../ui.js';
import * as api from '../api.js';
import * as f from '../format.js';
import { Reconciliation } from '../recon.js';

const settle = (p) => p.then((data) => ({ data }), (error) => ({ error }));

function Proxy({ title, res, children }) {
  return html`<section aria-label=${title}><h2>${title}</h2>${res.error ? html`<p class="banner warn">${res.error.message}</p>` : children(res.data)}</section>`;
}

export function Broker({ me }) {
  const [creds, setCreds] = useState({ api_key: '', api_secret: '' });
  const [newKey, setNewKey] = useState(null);
  const [pw, setPw] = useState({ current: '', password: '', otp: '' });
  const state = useLoad(async () => {
    const [status, saved, key, holdings, positions, orders, margins, recon] = await Promise.all([
      api.get('/api/auth/status'), settle(api.get('/api/auth/kite-credentials')), settle(api.get('/api/auth/agent-key')),
      settle(api.get('/api/portfolio/holdings')), settle(api.get('/api/portfolio/positions')), settle(api.get('/api/portfolio/orders')),
      settle(api.get('/api/portfolio/margins')), settle(api.get('/api/portfolio/reconciliation'))]);
    return { status, saved, key, holdings, positions, orders, margins, recon };
  });
  const run = async (fn, msg) => { try { const r = await fn(); if (msg) toast(msg); state.reload(); return r; } catch (e) { toast(e.message, 'error'); return undefined; } };
  const login = async () => { try { const r = await api.get('/api/auth/kite/login-url'); window.location.href = r.login_url || r.url; } catch (e) { toast(e.message, 'error'); } };
  return html`<${Page} title="Broker and account">
    <${Loading} state=${state}>${(d) => html`
      <div class="cards">
        <${Card} id="kite" label="Kite session" value=${d.status.connected ? 'Connected' : 'Not connected'} tone=${d.status.connected ? 'up' : ''}
          sub=${d.status.connected ? `${d.status.user_id || ''} until ${f.dateTime(d.status.expires_at)}` : 'Log in to Kite; your agent completes it'} />
        <${Card} id="agent" label="Agent key" value=${d.key.data ? `${d.key.data.prefix}…` : 'None'} sub=${d.key.data && d.key.data.last_used_at ? `last used ${f.dateTime(d.key.data.last_used_at)}` : ''} />
      </div>
      ${!d.status.connected ? html`<section class="banner info" id="kite-not-connected" aria-labelledby="kite-steps-h">
        <h2 id="kite-steps-h">Kite is not connected</h2>
        <p>Your holdings, positions, orders and margins at Zerodha appear here once Kite is connected. Paper portfolios,
          backtests and imports work without it.</p>
        <ol class="steps">
          <li data-done=${!d.saved.error}>${!d.saved.error ? '✓ ' : ''}Save your Kite Connect app's api_key and api_secret (below).</li>
          <li data-done=${!!d.key.data}>${d.key.data ? '✓ ' : ''}Generate an agent key and start the agent on your computer with it.</li>
          <li data-done="false">Log in to Kite: the agent completes the login with the token Kite hands back.</li>
        </ol></section>` : null}
      <div class="actions"><button type="button" class="primary" onClick=${login} disabled=${!!d.saved.error}
        aria-describedby=${d.saved.error ? 'login-needs' : undefined}>Log in to Kite</button>
        ${d.saved.error ? html`<small id="login-needs" class="muted">Save your Kite app credentials first.</small>` : null}</div>
      ${d.status.connected ? html`
      <${Proxy} title="Holdings" res=${d.holdings}>${(rows) => html`<${Table} id="kite-holdings" rows=${rows} rowKey=${(r) => r.tradingsymbol}
        columns=${[{ key: 'tradingsymbol', label: 'Symbol' }, { key: 'quantity', label: 'Qty', num: true },
          { key: 'average_price', label: 'Avg', num: true, render: (r) => f.price(r.average_price) }, { key: 'last_price', label: 'LTP', num: true, render: (r) => f.price(r.last_price) },
          { key: 'pnl', label: 'P&L', num: true, render: (r) => html`<span class=${f.tone(r.pnl)}>${f.pnl(r.pnl)}</span>` }]} />`}<//>
      <${Proxy} title="Positions" res=${d.positions}>${(p) => html`<${Table} id="kite-positions" rows=${p.net || []} rowKey=${(r) => r.tradingsymbol}
        columns=${[{ key: 'tradingsymbol', label: 'Symbol' }, { key: 'product', label: 'Product' }, { key: 'quantity', label: 'Qty', num: true },
          { key: 'pnl', label: 'P&L', num: true, render: (r) => html`<span class=${f.tone(r.pnl)}>${f.pnl(r.pnl)}</span>` }]} />`}<//>
      <${Proxy} title="Orders today" res=${d.orders}>${(rows) => html`<${Table} id="kite-orders" rows=${rows} rowKey=${(r) => r.order_id}
        columns=${[{ key: 'order_timestamp', label: 'At (IST)' }, { key: 'tradingsymbol', label: 'Symbol' }, { key: 'transaction_type', label: 'Side' },
          { key: 'quantity', label: 'Qty', num: true }, { key: 'price', label: 'Price', num: true, render: (r) => f.price(r.average_price || r.price) }, { key: 'status', label: 'Status' }]} />`}<//>
      <${Proxy} title="Margins" res=${d.margins}>${(m) => html`<div class="cards"><${Card} label="Equity available" value=${f.inr(m.equity && m.equity.net)} />
        <${Card} label="Used" value=${f.inr(m.equity && m.equity.utilised && m.equity.utilised.debits)} /></div>`}<//>` : null}
      <${Proxy} title="Reconciliation (live portfolios vs Kite)" res=${d.recon}>${(r) => html`<${Reconciliation} recon=${r} />`}<//>
      <form aria-label="Kite app credentials" onSubmit=${(e) => { e.preventDefault(); run(() => api.post('/api/auth/kite-credentials', creds), 'Kite credentials saved (encrypted).').then((r) => { if (r) setCreds({ api_key: '', api_secret: '' }); }); }}>
        <fieldset><legend>Kite Connect app</legend>
          ${d.saved.data ? html`<p class="muted" id="kite-saved">Saved ${f.dateTime(d.saved.data.saved_at)}: api_key <code>${d.saved.data.api_key}</code>, secret <code>${d.saved.data.api_secret}</code>. Saving again replaces them.</p>` : null}
          <div class="grid-form">
            <${Field} label="api_key" name="api_key">${(i) => html`<input id=${i} autocomplete="off" required value=${creds.api_key} onInput=${(e) => setCreds({ ...creds, api_key: e.target.value })} />`}<//>
            <${Field} label="api_secret" name="api_secret">${(i) => html`<input id=${i} type="password" autocomplete="off" required value=${creds.api_secret} onInput=${(e) => setCreds({ ...creds, api_secret: e.target.value })} />`}<//>
          </div><button type="submit">Save credentials</button></fieldset></form>
      <fieldset><legend>Agent key</legend>
        ${newKey ? html`<p class="banner warn" role="status">Copy it now, it is shown only once: <code id="new-agent-key">${newKey}</code></p>` : null}
        <div class="actions"><button type="button" onClick=${async () => { if (d.key.data && !await confirm({ title: 'Replace the agent key?', body: 'The running agent stops working until you give it the new key.', confirmLabel: 'Generate', danger: true })) return; const r = await run(() => api.post('/api/auth/agent-key'), 'New agent key generated.'); if (r) setNewKey(r.key); }}>${d.key.data ? 'Regenerate' : 'Generate'} key</button>
          ${d.key.data ? html`<button type="button" class="danger" onClick=${async () => { if (await confirm({ title: 'Revoke the agent key?', body: 'Your agent is disconnected at once.', confirmLabel: 'Revoke', danger: true })) { setNewKey(null); run(() => api.del('/api/auth/agent-key'), 'Agent key revoked.'); } }}>Revoke</button>` : null}</div>
      </fieldset>
      <form aria-label="Password" onSubmit=${(e) => { e.preventDefault(); run(() => api.post('/api/auth/password', me.has_password ? { current_password: pw.current, password: pw.password, otp: pw.otp } : { password: pw.password, otp: pw.otp }), 'Password saved; your other sessions were signed out.'); setPw({ current: '', password: '', otp: '' }); }}>
        <fieldset><legend>Account password</legend><input type="email" name="username" autocomplete="username" value=${me.email} hidden readOnly />
          <p class="muted">A password needs a code sent to ${me.email}: <button type="button" onClick=${() => run(() => api.post('/api/auth/password/code'), 'Code sent: check your email.')}>Email me a code</button></p>
          <${Field} label="Code from the email" name="otp">${(i) => html`<input id=${i} inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" required value=${pw.otp} onInput=${(e) => setPw({ ...pw, otp: e.target.value })} />`}<//>
          ${me.has_password ? html`<${Field} label="Current password" name="current_password">${(i) => html`<input id=${i} type="password" autocomplete="current-password" required value=${pw.current} onInput=${(e) => setPw({ ...pw, current: e.target.value })} />`}<//>` : null}
          <${Field} label="New password" name="password">${(i) => html`<input id=${i} type="password" autocomplete="new-password" minlength="10" required value=${pw.password} onInput=${(e) => setPw({ ...pw, password: e.target.value })} />`}<//>
          <button type="submit">Save password</button></fieldset></form>`}<//>
  <//>`;
}
