import { html, Page, Table, Badge, useLoad, Loading, useState, useEffect, confirm, toast } from '../ui.js';
import * as api from '../api.js';
import * as f from '../format.js';

function Expiry({ at }) {
  const [, tick] = useState(0);
  useEffect(() => { const t = setInterval(() => tick((n) => n + 1), 30000); return () => clearInterval(t); }, []);
  return html`<span title=${f.dateTime(at)}>${f.countdown(at)}</span>`;
}

const exposure = (s) => (s.limit_price ?? s.reference_price) * s.quantity;

export function Approvals() {
  const [result, setResult] = useState(null);
  const [busy, setBusy] = useState(false);
  const state = useLoad(async () => {
    const [pending, cart, portfolios, risk] = await Promise.all([
      api.get('/api/model/signals', { status: 'pending_approval', limit: 500 }),
      api.get('/api/model/signals', { status: 'in_cart', limit: 500 }),
      api.get('/api/model/portfolios'),
      api.get('/api/risk/state').catch(() => null)]); // (the banner only: the lists show without it)
    return { pending, cart, risk, names: Object.fromEntries(portfolios.map((p) => [p.id, p.name])) };
  });
  const act = async (s, what) => {
    if (what !== 'approve' && !await confirm({ title: `${what === 'reject' ? 'Reject' : 'Expire'} ${s.symbol}?`,
      body: `The signal to buy ${s.quantity} ${s.symbol} is ${what === 'reject' ? 'rejected' : 'expired'}; it cannot be approved afterwards.`,
      confirmLabel: what === 'reject' ? 'Reject' : 'Expire', danger: true })) return;
    try {
      await api.post(`/api/model/signals/${s.id}/${what}`);
      toast(what === 'approve' ? `${s.symbol} added to the cart.` : `${s.symbol} ${what}ed.`);
    } catch (e) {
      toast(`${s.symbol}: ${e.message}`, 'error');
      setResult({ refused: [{ signal_id: s.id, symbol: s.symbol, reason: e.message }], placed: [] });
    }
    state.reload();
  };
  const place = async (cart) => {
    const total = cart.reduce((a, s) => a + exposure(s), 0);
    if (!await confirm({ title: `Place ${cart.length} order(s)?`, body: html`<p>Total exposure ${f.inr(total)}. Paper portfolios
      fill on the simulated market; live ones are queued for your agent to place at Kite.</p>`, confirmLabel: 'Place orders' })) return;
    setBusy(true);
    try {
      const r = await api.post('/api/model/cart/place');
      setResult(r);
      toast(`${r.placed.length} placed, ${r.refused.length} refused.`);
    } catch (e) { toast(e.message, 'error'); } finally { setBusy(false); state.reload(); }
  };
  const common = (names) => [
    { key: 'symbol', label: 'Symbol', render: (s) => html`<strong>${s.symbol}</strong> <span class="muted small">${s.sector || ''}</span>` },
    { key: 'portfolio_id', label: 'Portfolio', render: (s) => html`<a href=${`/portfolios/${s.portfolio_id}`}>${names[s.portfolio_id] || `#${s.portfolio_id}`}</a>` },
    { key: 'conviction', label: 'Conviction', num: true, render: (s) => f.number(s.conviction, 0) },
    { key: 'limit_price', label: 'Limit', num: true, render: (s) => (s.limit_price == null ? html`<span class="muted">next open</span>` : f.price(s.limit_price)) },
    { key: 'stop_loss', label: 'Stop', num: true, render: (s) => f.price(s.stop_loss) },
    { key: 'target', label: 'Target', num: true, render: (s) => f.price(s.target) },
    { key: 'quantity', label: 'Qty', num: true },
    { key: 'value', label: 'Value', num: true, sort: exposure, render: (s) => f.inr(exposure(s)) },
  ];
  return html`<${Page} title="Approvals">
    ${result ? html`<section class="banner info" aria-labelledby="result-h" id="place-result"><h2 id="result-h">Last action</h2>
      ${result.placed.length ? html`<p>Placed: ${result.placed.map((s) => `${s.symbol} (${s.status})`).join(', ')}</p>` : null}
      ${result.refused.length ? html`<ul class="refused">${result.refused.map((r) => html`<li><strong>${r.symbol}</strong> refused: ${r.reason}</li>`)}</ul>` : null}
      <button type="button" onClick=${() => setResult(null)}>Dismiss</button></section>` : null}
    <${Loading} state=${state}>${(d) => {
      const total = d.cart.reduce((a, s) => a + exposure(s), 0);
      const kill = d.risk && d.risk.kill_switch && d.risk.kill_switch.engaged;
      return html`
      ${kill ? html`<div class="banner danger" role="alert" id="approvals-kill"><strong>Kill switch engaged:</strong> new entries
        are blocked, so approving a signal is refused until you release it.${' '}<a href="/risk">Review on Risk</a></div>` : null}
      <${Table} caption="Waiting for approval" id="pending" stack rows=${d.pending} empty="No signals are waiting for you."
        columns=${[...common(d.names),
          { key: 'reason', label: 'Rules that fired', nosort: true, render: (s) => html`<span class="small">${s.reason}</span>` },
          { key: 'expires_at', label: 'Expires in', render: (s) => html`<${Expiry} at=${s.expires_at} />` },
          { key: 'act', label: 'Decide', nosort: true, render: (s) => html`<div class="actions">
            <button type="button" class="primary" onClick=${() => act(s, 'approve')} aria-label=${`Approve ${s.symbol}`}>Approve</button>
            <button type="button" onClick=${() => act(s, 'reject')} aria-label=${`Reject ${s.symbol}`}>Reject</button>
            <button type="button" onClick=${() => act(s, 'expire')} aria-label=${`Expire ${s.symbol}`}>Expire</button></div>` },
        ]} />
      <section aria-labelledby="cart-h"><h2 id="cart-h">Cart <${Badge} text=${`${d.cart.length}`} /></h2>
        <p>Total exposure <strong id="cart-total" class="num">${f.inr(total)}</strong></p>
        <${Table} caption="In the cart" id="cart" stack rows=${d.cart} empty="The cart is empty: approve signals to add them."
          columns=${[...common(d.names), { key: 'act', label: '', nosort: true, render: (s) => html`<button type="button"
            onClick=${() => act(s, 'reject')} aria-label=${`Remove ${s.symbol} from the cart`}>Remove</button>` }]} />
        <button type="button" class="primary" disabled=${busy || !d.cart.length} onClick=${() => place(d.cart)}>Place ${d.cart.length} order(s)</button>
      </section>`;
    }}<//>
  <//>`;
}
