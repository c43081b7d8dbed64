// The reconciliation of live portfolios against Kite (GET /api/portfolio/reconciliation, a live dashboard's
// `reconciliation`): each drift row in words -- quantities, the protective GTT's stop/target/quantity, a
// missing GTT, an unresolved fill.
import { html, Table } from './ui.js';
import * as f from './format.js';

const LABELS = {
  missing: 'Missing at Kite',
  extra: 'Only at Kite',
  quantity: 'Quantity differs',
  stop_drift: 'Stop differs',
  target_drift: 'Target differs',
  gtt_quantity: 'GTT quantity differs',
  gtt_missing: 'No protective GTT',
  fill_unresolved: 'Fill unresolved',
};

const rupees = (v) => (v === null || v === undefined ? 'none' : `₹${f.price(v)}`);

/** What a drift row means, in a sentence. */
export function describe(d) {
  switch (d.kind) {
    case 'missing': case 'quantity':
      return `The model holds ${d.model_quantity}; Kite holds ${d.broker_quantity}.`;
    case 'extra':
      return `Kite holds ${d.broker_quantity}; no live portfolio does.`;
    case 'stop_drift':
      return `Kite's GTT ${d.gtt_id} stops at ${rupees(d.broker_stop)}; the model's stop is ${rupees(d.model_stop)}.`;
    case 'target_drift':
      return `Kite's GTT ${d.gtt_id} targets ${rupees(d.broker_target)}; the model's target is ${rupees(d.model_target)}.`;
    case 'gtt_quantity':
      return `Kite's GTT ${d.gtt_id} sells ${d.broker_quantity}; the position holds ${d.model_quantity}.`;
    case 'gtt_missing':
      return `No active stop/target GTT at Kite (${d.gtt_id ? `GTT ${d.gtt_id} is ` : ''}${d.broker_status}): `
        + `the model's stop ${rupees(d.model_stop)}, target ${rupees(d.model_target)}.`;
    case 'fill_unresolved':
      return `Signal ${d.signal_id}: GTT ${d.gtt_id || '—'} triggered, but Kite order ${d.order_id || '—'} is found nowhere`
        + `${d.detail ? ` (${d.detail})` : ''}. Check Kite's tradebook and report the fill.`;
    default:
      return '';
  }
}

export function Reconciliation({ recon, id = 'drift' }) {
  const r = recon || {};
  const drift = r.drift || [];
  const at = r.gtts_synced_at || r.synced_at;
  return html`<div class="reconciliation">
    <p>${r.in_sync == null ? 'No broker snapshot yet.' : r.in_sync ? 'In sync.' : 'Drift found:'}
      ${at ? html` <span class="muted">(Kite as of ${f.dateTime(at)})</span>` : null}</p>
    ${drift.length ? html`<${Table} id=${id} rows=${drift} rowKey=${(x, i) => i}
      columns=${[{ key: 'kind', label: 'Issue', render: (d) => html`<span class=${d.kind === 'gtt_missing' || d.kind === 'fill_unresolved' ? 'down' : ''}>${LABELS[d.kind] || d.kind}</span>` },
        { key: 'symbol', label: 'Symbol' }, { key: 'detail', label: 'Details', render: describe }]} />` : null}</div>`;
}
