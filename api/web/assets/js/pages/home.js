import { html, Page, Card, Money, Table, Badge, useLoad, Loading, useState, useEffect } from '../ui.js';
import { load } from '../loads.js';
import * as f from '../format.js';

function Countdown({ at }) {
  const [, tick] = useState(0);
  useEffect(() => { const t = setInterval(() => tick((n) => n + 1), 30000); return () => clearInterval(t); }, []);
  return html`<span title=${f.dateTime(at)}>${f.countdown(at)}</span>`;
}

export function Home({ me }) {
  const state = useLoad(async () => {
    const d = await load('home'); // loads.js: one round of requests, started by early.js on a first visit
    const names = Object.fromEntries(d.portfolios.map((p) => [p.id, p.name]));
    return { ...d, activity: d.activity.map((a) => ({ ...a, portfolio: names[a.portfolio_id] || `#${a.portfolio_id}` })) };
  });
  return html`<${Page} title="Home">
    <${Loading} state=${state}>${(d) => {
      const equity = d.portfolios.reduce((s, p) => s + p.equity, 0);
      const day = d.portfolios.reduce((s, p) => s + (p.day_pnl || 0), 0);
      const total = d.portfolios.reduce((s, p) => s + (p.total_pnl || 0), 0);
      const kill = d.risk.kill_switch && d.risk.kill_switch.engaged;
      const today = (d.risk.breaches || []).filter((b) => b.day === d.risk.day); // older ones are on Risk
      return html`
      ${kill ? html`<div class="banner danger" role="alert"><strong>Kill switch engaged:</strong> new entries are blocked.${' '}
        <a href="/risk">Review on Risk</a></div>` : null}
      ${today.length ? html`<div class="banner warn" role="status" id="home-breaches">Refused by your risk rules today:${' '}
        ${today.slice(0, 3).map((b) => `${f.timeIST(b.at)}${b.symbol ? ` ${b.symbol}` : ''} (${f.words(b.rule_type)})`).join('; ')}${today.length > 3 ? ` and ${today.length - 3} more` : ''}.
        <a href="/risk">Details on Risk</a></div>` : null}
      <div class="cards">
        <${Card} label="Equity (all portfolios)" value=${f.inr(equity)} id="equity" />
        <${Card} label="Day P&L" value=${f.pnl(day)} tone=${f.tone(day)} id="day-pnl" />
        <${Card} label="Total P&L" value=${f.pnl(total)} tone=${f.tone(total)} id="total-pnl" />
        <${Card} label="Pending approvals" value=${d.pending_total} id="pending" sub=${html`<a href="/approvals">Review</a>`} />
        <${Card} label="Broker (Kite)" value=${d.broker.connected ? 'Connected' : 'Not connected'}
          tone=${d.broker.connected ? 'up' : 'muted'} id="broker"
          sub=${d.broker.connected ? `until ${f.dateTime(d.broker.expires_at)}` : html`<a href="/broker">Connect</a>`} />
        <${Card} label="Agent" id="agent" value=${d.agent ? (d.agent.last_used_at ? 'Seen' : 'Key issued') : 'No key'}
          sub=${d.agent && d.agent.last_used_at ? `last call ${f.dateTime(d.agent.last_used_at)}` : html`<a href="/broker">Agent key</a>`} />
      </div>
      <${Table} caption="Portfolios" id="home-portfolios" stack rows=${d.portfolios} empty=${html`No portfolios yet. <a href="/strategies">Pick a strategy</a> and deploy it.`}
        columns=${[
          { key: 'name', label: 'Portfolio', render: (p) => html`<a href=${`/portfolios/${p.id}`}>${p.name}</a> <${Badge} text=${p.mode} />` },
          { key: 'status', label: 'Status', render: (p) => html`<${Badge} text=${p.status} />` },
          { key: 'equity', label: 'Equity', num: true, render: (p) => html`<${Money} value=${p.equity} />` },
          { key: 'day_pnl', label: 'Day P&L', num: true, render: (p) => html`<${Money} value=${p.day_pnl} signed />` },
          { key: 'total_pnl', label: 'Total P&L', num: true, render: (p) => html`<${Money} value=${p.total_pnl} signed />` },
          { key: 'open_positions', label: 'Open', num: true },
        ]} />
      <${Table} caption="Pending approvals" id="home-pending" stack rows=${d.pending} empty="No signals waiting for you."
        columns=${[
          { key: 'symbol', label: 'Symbol', render: (s) => html`<a href="/approvals">${s.symbol}</a>` },
          { key: 'conviction', label: 'Conviction', num: true, render: (s) => f.number(s.conviction, 0) },
          { key: 'limit_price', label: 'Limit', num: true, render: (s) => (s.limit_price == null
            ? html`<span class="muted" title=${`last close ${f.price(s.reference_price)}`}>next open</span>` : f.price(s.limit_price)) },
          { key: 'quantity', label: 'Qty', num: true },
          { key: 'expires_at', label: 'Expires in', render: (s) => html`<${Countdown} at=${s.expires_at} />` },
        ]} />
      <section aria-labelledby="act-h"><h2 id="act-h">Today</h2>
        ${d.activity.length ? html`<ol class="timeline">${d.activity.map((a) => html`<li><time>${f.timeIST(a.at)}</time>
          <span class="muted">${a.portfolio}</span> ${a.summary}</li>`)}</ol>` : html`<p class="muted">Nothing has happened today yet.</p>`}
      </section>`;
    }}<//>
  <//>`;
}
