import { html, Page, Table, Card, Field, useLoad, Loading, useState, toast } from '../ui.js';
import { Chart } from '../charts.js';
import * as api from '../api.js';
import * as f from '../format.js';

// why an XIRR has no rate (the API's `xirr_reason`), in words
const XIRR_WHY = {
  no_flows: 'no cash flows yet: import a tradebook or a CAS',
  one_sign: 'needs money both in and out (a buy and a sale or a holding)',
  no_root: 'no rate fits these cash flows',
};

function Report({ report }) {
  if (!report) return null;
  return html`<section class="banner info" id="import-report" aria-labelledby="rep-h"><h2 id="rep-h">Import report</h2>
    <p>${`${(report.files || []).join(', ')}: ${report.rows_read ?? '—'} rows read, `}<strong>${report.imported}</strong>${
      ` imported, ${report.duplicates ?? 0} duplicates skipped, ${report.rejected_count ?? (report.rejected || []).length} rejected.`}</p>
    ${(report.rejected || []).length ? html`<${Table} caption="Rejected rows" id="rejected" rows=${report.rejected} rowKey=${(r, i) => i}
      columns=${[{ key: 'file', label: 'File' }, { key: 'row', label: 'Row', num: true }, { key: 'reason', label: 'Reason' }]} />` : null}
  </section>`;
}

/** A month "2024-09" -> "Sep 2024" (format.js's day names the month). */
const monthName = (m) => (/^\d{4}-\d{2}$/.test(String(m)) ? f.day(`${m}-01`).slice(3) : m ?? '—');

function Uploader({ kind, label, multiple, accept, onDone, password, button }) {
  const [files, setFiles] = useState([]);
  const [over, setOver] = useState(false);
  const [pw, setPw] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [round, setRound] = useState(0); // a fresh file input after each import
  const id = `up-${kind}`;
  const pick = (list) => setFiles(multiple ? [...list] : [...list].slice(0, 1));
  const send = async (e) => {
    e.preventDefault();
    if (!files.length) return;
    const fd = new FormData();
    for (const file of files) fd.append(kind === 'tradebook' ? 'files[]' : 'file', file, file.name);
    if (password && pw) fd.append('password', pw);
    setBusy(true); setError(null);
    try { const r = await api.post(`/api/uploads/${kind}`, fd); onDone(r); setFiles([]); setRound(round + 1); } catch (err) { setError(err.message); } finally { setBusy(false); }
  };
  return html`<form onSubmit=${send} aria-label=${label} class="upload"><fieldset><legend>${label}</legend>
    <div class=${'dropzone' + (over ? ' over' : '')} onDragOver=${(e) => { e.preventDefault(); setOver(true); }}
      onDragLeave=${() => setOver(false)} onDrop=${(e) => { e.preventDefault(); setOver(false); pick(e.dataTransfer.files); }}>
      <p>Drop ${multiple ? 'files' : 'a file'} here, or</p>
      <label for=${id}>Choose ${multiple ? 'files' : 'a file'} (${accept})</label>
      <input key=${round} id=${id} type="file" accept=${accept} multiple=${multiple} onChange=${(e) => pick(e.target.files)} />
      ${files.length ? html`<p class="small">${files.map((x) => x.name).join(', ')}</p>` : null}
    </div>
    ${password ? html`<${Field} label="PDF password (if any)" name=${`${kind}-password`}>${(i) => html`<input id=${i} type="password"
      autocomplete="off" value=${pw} onInput=${(e) => setPw(e.target.value)} />`}<//>` : null}
    ${error ? html`<p class="error" role="alert">${error}</p>` : null}
    <button type="submit" class="primary" disabled=${busy || !files.length}>${busy ? 'Importing…' : (button || `Import ${label.toLowerCase()}`)}</button>
  </fieldset></form>`;
}

const GROUPS = [['month', 'Month'], ['symbol', 'Symbol'], ['year', 'Year'], ['strategy', 'Strategy']];

export function Imports() {
  const [report, setReport] = useState(null);
  const [group, setGroup] = useState('month');
  const state = useLoad(async () => {
    const [summary, pnl, holdings, trades, batches] = await Promise.all([
      api.get('/api/analytics/summary'), api.get('/api/analytics/pnl', { group_by: group }),
      api.get('/api/analytics/holdings'), api.get('/api/analytics/trades', { limit: 500 }), api.get('/api/uploads/batches')]);
    return { summary, pnl, holdings, trades, batches };
  }, [group, report]);
  const done = (r) => { setReport(r); toast(`Imported ${r.imported} row(s).`); };
  return html`<${Page} title="Imports and analytics">
    <${Report} report=${report} />
    <div class="two-col">
      <${Uploader} kind="tradebook" label="Tradebooks" multiple accept=".xlsx,.csv" onDone=${done} />
      <div><${Uploader} kind="ledger" label="Ledger" accept=".xlsx,.csv" onDone=${done} />
        <${Uploader} kind="cas" label="CAS statement" button="Import CAS statement" accept=".pdf" password onDone=${done} /></div>
    </div>
    <${Loading} state=${state}>${(d) => {
      const s = d.summary;
      const key = group;
      return html`
      <div class="cards" id="analytics-cards">
        <${Card} id="invested" label="Invested" value=${f.inr(s.invested)} />
        <${Card} id="current_value" label="Current value" value=${f.inr(s.current_value)} />
        <${Card} id="realized_pnl" label="Realised P&L" value=${f.pnl(s.realized_pnl)} tone=${f.tone(s.realized_pnl)} sub=${`net of charges ${f.pnl(s.net_realized_pnl)}`} />
        <${Card} id="unrealized_pnl" label="Unrealised P&L" value=${f.pnl(s.unrealized_pnl)} tone=${f.tone(s.unrealized_pnl)} />
        <${Card} id="charges" label="Charges" value=${f.inr(s.charges)} />
        <${Card} id="xirr" label="XIRR" value=${s.xirr == null ? '—' : f.pct(s.xirr, 2, true)} sub=${s.xirr_reason ? (XIRR_WHY[s.xirr_reason] || s.xirr_reason) : (s.xirr_as_of ? `as of ${f.day(s.xirr_as_of)}` : '')} />
        <${Card} id="win_rate" label="Win rate" value=${s.win_rate == null ? '—' : f.pct(s.win_rate, 1)} sub=${`${s.closed_trades} closed of ${s.trades} trades`} />
        <${Card} id="avg_holding_days" label="Avg holding" value=${s.avg_holding_days == null ? '—' : `${f.number(s.avg_holding_days, 0)} d`} />
      </div>
      <div class="tabs" role="tablist" aria-label="P&L grouped by">${GROUPS.map(([k, label]) => html`<button type="button" role="tab"
        aria-selected=${group === k} onClick=${() => setGroup(k)}>By ${label.toLowerCase()}</button>`)}</div>
      ${d.pnl.length && (group === 'month' || group === 'year') ? html`<${Chart} id="pnl-chart" label=${`Net realised P&L by ${group}`} height=${200}
        series=${[{ kind: 'histogram', data: d.pnl.map((r) => ({ time: group === 'month' ? `${r.month}-01` : `${r.year}-01-01`, value: r.net_pnl,
          color: r.net_pnl >= 0 ? '#0b7a3b' : '#c0262d' })) }]} />` : null}
      <${Table} caption=${`Realised P&L by ${group}`} id="pnl" rows=${d.pnl} rowKey=${(r) => r[key]} empty="No closed trades yet: import a tradebook."
        columns=${[{ key, label: GROUPS.find(([k]) => k === key)[1], render: (r) => (key === 'month' ? monthName(r.month) : r[key] ?? '—'), csv: (r) => r[key] }, { key: 'trades', label: 'Trades', num: true },
          { key: 'realized_pnl', label: 'Realised', num: true, render: (r) => html`<span class=${f.tone(r.realized_pnl)}>${f.pnl(r.realized_pnl)}</span>` },
          { key: 'charges', label: 'Charges', num: true, render: (r) => f.inr(r.charges) },
          { key: 'net_pnl', label: 'Net', num: true, render: (r) => html`<span class=${f.tone(r.net_pnl)}>${f.pnl(r.net_pnl)}</span>` },
          { key: 'win_rate', label: 'Win rate', num: true, render: (r) => f.pct(r.win_rate, 0) }]} />
      <${Table} caption="Holdings" id="holdings" rows=${d.holdings} rowKey=${(h) => `${h.asset_class}:${h.symbol || h.isin}`} empty="No open holdings."
        columns=${[{ key: 'symbol', label: 'Holding', render: (h) => h.symbol || h.scheme || h.isin },
          { key: 'quantity', label: 'Qty', num: true, render: (h) => f.number(h.quantity, h.asset_class === 'equity' ? 0 : 3) },
          { key: 'avg_cost', label: 'Avg cost', num: true, render: (h) => f.price(h.avg_cost) },
          { key: 'last_price', label: 'Mark', num: true, render: (h) => f.price(h.last_price) },
          { key: 'mark_source', label: 'Mark source', render: (h) => (h.mark_source ? `${h.mark_source.replaceAll('_', ' ')}, ${f.day(h.mark_date)}`
            : html`<span class="badge failed" data-no-mark title="No real market price is stored for this holding: its value is unknown">no real mark</span>`) },
          { key: 'current_value', label: 'Value', num: true, render: (h) => f.inr(h.current_value) },
          { key: 'unrealized_pnl', label: 'Unrealised', num: true, render: (h) => html`<span class=${f.tone(h.unrealized_pnl)}>${f.pnl(h.unrealized_pnl)}</span>` }]} />
      <${Table} caption="Trade journal" id="journal" rows=${d.trades} filter limit=${50} csv="trade-journal.csv" rowKey=${(t, i) => `${t.source}:${t.trade_id}:${i}`}
        columns=${[{ key: 'trade_date', label: 'Date', render: (t) => f.day(t.trade_date) }, { key: 'symbol', label: 'Symbol' },
          { key: 'side', label: 'Side' }, { key: 'quantity', label: 'Qty', num: true, render: (t) => f.number(t.quantity, Number.isInteger(t.quantity) ? 0 : 3) }, { key: 'price', label: 'Price', num: true, render: (t) => f.price(t.price) },
          { key: 'source', label: 'Source', render: (t) => t.source + (t.strategy ? ` (${t.strategy})` : '') },
          { key: 'net_pnl', label: 'Net P&L', num: true, render: (t) => (t.net_pnl == null ? '' : html`<span class=${f.tone(t.net_pnl)}>${f.pnl(t.net_pnl)}</span>`) }]} />
      <${Table} caption="Import history" id="batches" rows=${d.batches} rowKey=${(b) => b.batch_id} limit=${20}
        columns=${[{ key: 'created_at', label: 'At', render: (b) => f.dateTime(b.created_at) }, { key: 'kind', label: 'Kind' },
          { key: 'files', label: 'Files', render: (b) => (b.files || []).join(', ') }, { key: 'imported', label: 'Imported', num: true },
          { key: 'duplicates', label: 'Duplicates', num: true }, { key: 'rejected_count', label: 'Rejected', num: true }]} />`;
    }}<//>
  <//>`;
}
