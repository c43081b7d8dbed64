import { html, Page, Table, Badge, useLoad, Loading, useState, confirm, toast } from '../ui.js';
import { useTicks } from '../ticks.js';
import * as api from '../api.js';
import * as f from '../format.js';

/** Mark and unrealised P&L of an open position at the live tick when there is one (charges paid count). */
export function live(p, ticks) {
  const t = ticks[`${p.exchange}:${p.symbol}`];
  if (!t || p.status !== 'open') return { mark: p.last_price, pnl: p.unrealized_pnl, at: null };
  return { mark: t.ltp, pnl: (t.ltp - p.avg_price) * p.quantity - (p.charges || 0), at: t.timestamp };
}

export async function closePosition(p, onDone) {
  const qty = await confirm({
    title: `Close ${p.symbol}?`,
    body: html`<p>${p.quantity} shares bought at ${f.price(p.avg_price)}. Paper: sold at the latest price now;
      live: an exit order is queued for your agent.</p>`,
    input: { label: `Shares to sell (1–${p.quantity})`, value: p.quantity, min: 1, max: p.quantity },
    confirmLabel: 'Close', danger: true,
  });
  if (!qty) return;
  try {
    const r = await api.post(`/api/model/positions/${p.id}/close`, qty < p.quantity ? { quantity: qty } : undefined);
    toast(r.outcome === 'reduced' ? `Sold ${qty} ${p.symbol}; ${p.quantity - qty} still open.`
      : r.outcome === 'exit_queued' ? `Exit of ${p.symbol} queued for the agent.` : `Closed ${p.symbol}.`);
    onDone && onDone();
  } catch (e) { toast(e.message, 'error'); }
}

export function OpenPositions({ positions, onChanged, caption = 'Open positions', id = 'open-positions', portfolioNames }) {
  const ticks = useTicks(positions.map((p) => `${p.exchange}:${p.symbol}`));
  const rows = positions.map((p) => ({ ...p, ...live(p, ticks) }));
  return html`<${Table} caption=${caption} id=${id} stack rows=${rows} filter=${rows.length > 8} empty="No open positions." csv="open-positions.csv"
    columns=${[
      { key: 'symbol', label: 'Symbol', render: (p) => html`<a href=${`/market?portfolio=${p.portfolio_id}&symbol=${p.symbol}`}>${p.symbol}</a>${p.exit_pending ? html` <${Badge} text="exit pending" kind="paused" />` : null}` },
      ...portfolioColumn(portfolioNames),
      { key: 'quantity', label: 'Qty', num: true },
      { key: 'avg_price', label: 'Avg', num: true, render: (p) => f.price(p.avg_price) },
      { key: 'mark', label: 'Mark', num: true, render: (p) => html`<span data-mark title=${p.at ? `tick ${f.timeIST(p.at)} IST` : 'last close'}>${f.price(p.mark)}</span>` },
      { key: 'pnl', label: 'Unrealised', num: true, render: (p) => html`<span class=${f.tone(p.pnl)}>${f.pnl(p.pnl)}</span>` },
      { key: 'stop_loss', label: 'Stop', num: true, render: (p) => f.price(p.stop_loss) },
      { key: 'target', label: 'Target', num: true, render: (p) => f.price(p.target) },
      { key: 'entry_date', label: 'Since', render: (p) => f.day(p.entry_date) },
      { key: 'close', label: '', nosort: true, render: (p) => html`<button type="button" disabled=${p.exit_pending}
        aria-label=${`Close ${p.symbol}`} onClick=${() => closePosition(p, onChanged)}>Close…</button>` },
    ]} />`;
}

/** The Portfolio column (linked), when the table lists several portfolios' positions. */
const portfolioColumn = (names) => (names ? [{ key: 'portfolio_id', label: 'Portfolio',
  render: (p) => html`<a href=${`/portfolios/${p.portfolio_id}`}>${names[p.portfolio_id] || `#${p.portfolio_id}`}</a>`,
  sort: (p) => names[p.portfolio_id] || '', csv: (p) => names[p.portfolio_id] || p.portfolio_id }] : []);

export function ClosedPositions({ positions, caption = 'Closed positions', id = 'closed-positions', portfolioNames }) {
  return html`<${Table} caption=${caption} id=${id} stack rows=${positions} filter empty="Nothing closed yet." csv="closed-positions.csv"
    columns=${[
      { key: 'symbol', label: 'Symbol' }, ...portfolioColumn(portfolioNames), { key: 'quantity', label: 'Qty', num: true },
      { key: 'avg_price', label: 'Entry', num: true, render: (p) => f.price(p.avg_price) },
      { key: 'entry_date', label: 'Entered', render: (p) => f.day(p.entry_date) },
      { key: 'exit_price', label: 'Exit', num: true, render: (p) => f.price(p.exit_price) },
      { key: 'exit_date', label: 'Exited', render: (p) => f.day(p.exit_date) },
      { key: 'exit_reason', label: 'Reason', render: (p) => f.words(p.exit_reason) },
      { key: 'realized_pnl', label: 'Realised', num: true, render: (p) => html`<span class=${f.tone(p.realized_pnl)}>${f.pnl(p.realized_pnl)}</span>` },
      { key: 'charges', label: 'Charges', num: true, render: (p) => f.inr(p.charges) },
    ]} />`;
}

export function Positions({ query }) {
  const tab = query.get('status') || 'open';
  const state = useLoad(async () => {
    const [rows, portfolios] = await Promise.all([
      api.get('/api/model/positions', { status: tab, limit: 500 }),
      api.get('/api/model/portfolios', { status: undefined })]);
    const names = Object.fromEntries(portfolios.map((p) => [p.id, p.name]));
    return { rows, names };
  }, [tab]);
  const closeAll = async (rows) => {
    if (!await confirm({ title: `Close all ${rows.length} open positions?`, body: 'Each is sold at the latest price (paper) or queued for your agent (live).', confirmLabel: 'Close all', danger: true })) return;
    let done = 0;
    for (const p of rows.filter((r) => !r.exit_pending)) {
      try { await api.post(`/api/model/positions/${p.id}/close`); done += 1; } catch (e) { toast(`${p.symbol}: ${e.message}`, 'error'); }
    }
    toast(`Closed ${done} position(s).`);
    state.reload();
  };
  return html`<${Page} title="Positions">
    <div class="tabs" role="tablist" aria-label="Which positions">
      <a role="tab" class="button" aria-selected=${tab === 'open'} href="/positions?status=open">Open</a>
      <a role="tab" class="button" aria-selected=${tab === 'closed'} href="/positions?status=closed">Closed</a>
    </div>
    <${Loading} state=${state}>${(d) => tab === 'open' ? html`
      ${d.rows.length ? html`<div class="actions"><button type="button" class="danger" onClick=${() => closeAll(d.rows)}>Close all…</button></div>` : null}
      <${OpenPositions} positions=${d.rows} onChanged=${state.reload} portfolioNames=${d.names} />`
      : html`<${ClosedPositions} positions=${d.rows} portfolioNames=${d.names} />`}<//>
  <//>`;
}
