// Shared components: layout pieces, tables, confirmations, field errors, data loading.
import { html, useState, useEffect, useCallback, useRef } from '../vendor/htm-preact-standalone.module.js';
import * as f from './format.js';

export { html, useState, useEffect, useCallback, useRef };

let navigateFn = (to) => { window.location.href = to; };
export function setNavigate(fn) { navigateFn = fn; }
export function navigate(to, replace = false) { navigateFn(to, replace); }

/**
 * Load data with `fn` whenever deps change; returns {data, error, loading, reload}. With `initial` (data the
 * page already holds) the first render shows it at once and the first load is skipped.
 */
export function useLoad(fn, deps = [], initial = undefined) {
  const [state, setState] = useState({ data: initial, error: null, loading: initial === undefined });
  const seq = useRef(0);
  const skip = useRef(initial !== undefined);
  const reload = useCallback(async () => {
    const mine = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    try {
      const data = await fn();
      if (mine === seq.current) setState({ data, error: null, loading: false });
    } catch (error) {
      if (mine === seq.current) setState({ data: undefined, error, loading: false });
    }
  }, deps);
  useEffect(() => { if (skip.current) skip.current = false; else reload(); }, [reload]);
  return { ...state, reload };
}

/** False on the first render, true once that render is painted: a page draws what is below its first screen
 * (and starts its secondary requests) a frame later, so what the user looks at first paints sooner. */
export function useAfterPaint() {
  const [painted, setPainted] = useState(false);
  useEffect(() => { setPainted(true); }, []); // (Preact runs effects after the frame is painted)
  return painted;
}

export function Page({ title, actions, children }) {
  useEffect(() => { document.title = `${title} · TraderTape`; }, [title]);
  return html`<section class="page">
    <header class="page-head"><h1 tabindex="-1" id="page-title">${title}</h1>
      ${actions ? html`<div class="actions">${actions}</div>` : null}</header>
    ${children}
  </section>`;
}

export function Loading({ state, children }) {
  if (state.error) return html`<p class="error" role="alert">${state.error.message}</p>`;
  if (state.data === undefined) return html`<p class="muted" aria-busy="true">Loading…</p>`;
  return children(state.data);
}

export function Card({ label, value, tone, sub, id }) {
  return html`<div class="card" data-metric=${id || label}>
    <div class="card-label">${label}</div>
    <div class=${'card-value ' + (tone || '')}>${value}</div>
    ${sub ? html`<div class="card-sub muted">${sub}</div>` : null}
  </div>`;
}

export function Money({ value, signed = false }) {
  return html`<span class=${'num ' + (signed ? f.tone(value) : '')}>${signed ? f.pnl(value) : f.inr(value)}</span>`;
}

export function Alert({ error, kind = 'error' }) {
  if (!error) return null;
  const text = typeof error === 'string' ? error : error.message;
  return html`<p class=${kind} role=${kind === 'error' ? 'alert' : 'status'}>${text}</p>`;
}

/** One CSV field: quoted when needed; text a spreadsheet would run as a formula (=, +, -, @) is prefixed with '. */
export function csvField(v) {
  if (v === null || v === undefined) return '';
  let s = String(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** CSV text (a header line, then a line per row) of `columns` [{label, value: (row) => raw value}]. */
export function toCsv(columns, rows) {
  const lines = [columns.map((c) => csvField(c.label)), ...rows.map((r) => columns.map((c) => csvField(c.value(r))))];
  return lines.map((l) => l.join(',')).join('\r\n') + '\r\n';
}

/** Saves `text` as a file named `name` (a download; nothing leaves the browser). */
export function download(name, text, type = 'text/csv;charset=utf-8') {
  const url = URL.createObjectURL(new Blob(['\ufeff', text], { type })); // (the BOM: Excel reads UTF-8, e.g. ₹)
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/**
 * A box that scrolls sideways (a wide table): while its content is wider than it and not scrolled to the end,
 * a hint says there is more to the right, and the right edge fades (a phone shows no scroll bar).
 */
export function ScrollX({ children, id }) {
  const ref = useRef(null);
  const [more, setMore] = useState(false);
  useEffect(() => {
    const box = ref.current;
    if (!box) return undefined;
    const check = () => setMore(box.scrollWidth - box.clientWidth - box.scrollLeft > 2);
    check();
    box.addEventListener('scroll', check, { passive: true });
    const ro = window.ResizeObserver ? new ResizeObserver(check) : null;
    if (ro) { ro.observe(box); if (box.firstElementChild) ro.observe(box.firstElementChild); }
    return () => { box.removeEventListener('scroll', check); if (ro) ro.disconnect(); };
  }, []);
  return html`${more ? html`<p class="scroll-hint" aria-hidden="true">Scroll sideways for more →</p>` : null}
    <div ref=${ref} id=${id} class=${more ? 'scroll-x more' : 'scroll-x'}>${children}</div>`;
}

/**
 * Sortable, filterable table. columns: [{key, label, render?, sort?: (row)=>value, num?: bool, csv?: (row)=>value
 * or false}]. With `csv` (a file name) an "Export CSV" button saves the rows as filtered and sorted (all of them,
 * not only those shown): raw values (numbers without grouping, dates as ISO), not the formatted text.
 */
export function Table({ columns, rows, filter = false, caption, rowKey = (r, i) => r.id ?? i, empty = 'Nothing yet.',
  id, limit, stack = false, csv }) {
  const [sortKey, setSortKey] = useState(null);
  const [asc, setAsc] = useState(true);
  const [q, setQ] = useState('');
  const [all, setAll] = useState(false);
  let shown = rows;
  if (q) {
    // codes match as words too: "stop loss" finds stop_loss
    const plain = (v) => String(v ?? '').toLowerCase().replaceAll('_', ' ');
    const needle = plain(q);
    shown = shown.filter((r) => columns.some((c) => plain(r[c.key]).includes(needle)));
  }
  if (sortKey) {
    const col = columns.find((c) => c.key === sortKey);
    const val = col.sort || ((r) => r[col.key]);
    shown = [...shown].sort((a, b) => {
      const x = val(a); const y = val(b);
      const cmp = (x === null || x === undefined) ? 1 : (y === null || y === undefined) ? -1
        : typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
      return asc ? cmp : -cmp;
    });
  }
  const matching = shown; // (before the cut to `limit`: the export has every matching row)
  const exportCsv = () => {
    const cols = columns.filter((c) => c.csv !== false && c.label).map((c) => ({ label: c.label,
      value: typeof c.csv === 'function' ? c.csv : (r) => r[c.key] }));
    download(csv, toCsv(cols, matching));
  };
  const total = shown.length;
  const cut = !all && limit && shown.length > limit;
  if (cut) shown = shown.slice(0, limit);
  const sortBy = (key) => {
    if (sortKey === key) setAsc(!asc); else { setSortKey(key); setAsc(true); }
  };
  // stack: on a phone each row becomes a card of "label: value" lines (no sideways scrolling to reach buttons)
  return html`<div class=${stack ? 'table-wrap phone-cards' : 'table-wrap'} id=${id}>
    ${filter || csv ? html`<div class="table-tools">${filter ? html`<label class="filter">Filter <input type="search" value=${q}
      onInput=${(e) => setQ(e.target.value)} aria-label=${`Filter ${caption || 'rows'}`} /></label>` : null}
      ${csv ? html`<button type="button" class="csv" disabled=${!total} onClick=${exportCsv}
        aria-label=${`Export ${caption || 'rows'} as CSV`}>Export CSV</button>` : null}</div>` : null}
    <${ScrollX}><table>
      ${caption ? html`<caption>${caption}${filter || limit ? html` <span class="muted">(${total})</span>` : null}</caption>` : null}
      <thead><tr>${columns.map((c) => html`<th scope="col" class=${c.num ? 'num' : ''}
        aria-sort=${sortKey === c.key ? (asc ? 'ascending' : 'descending') : 'none'}>
        ${c.nosort ? c.label : html`<button type="button" class="th-sort" onClick=${() => sortBy(c.key)}>${c.label}${
          sortKey === c.key ? (asc ? ' ▲' : ' ▼') : ''}</button>`}</th>`)}</tr></thead>
      <tbody>${shown.length === 0 ? html`<tr><td colspan=${columns.length} class="muted">${empty}</td></tr>`
        : shown.map((r, i) => html`<tr key=${rowKey(r, i)} data-row=${rowKey(r, i)}>${columns.map((c) => html`<td
          class=${c.num ? 'num' : ''} data-col=${c.key} data-label=${stack ? c.label : undefined}>${c.render ? c.render(r) : (r[c.key] ?? '—')}</td>`)}</tr>`)}
      </tbody></table><//>
    ${cut ? html`<button type="button" class="show-all" onClick=${() => setAll(true)}>Show all ${total}</button>` : null}</div>`;
}

/** A confirmation dialog (native <dialog>): confirm({title, body, confirmLabel}) -> Promise<boolean>. */
let dialogHost = null;
export function DialogHost() {
  const [req, setReq] = useState(null);
  const [value, setValue] = useState('');
  const ref = useRef(null);
  dialogHost = (r) => { setValue(r.input ? String(r.input.value ?? '') : ''); setReq(r); };
  useEffect(() => {
    if (req && ref.current && !ref.current.open) ref.current.showModal();
  }, [req]);
  if (!req) return null;
  const done = (ok) => {
    ref.current?.close(); setReq(null);
    req.resolve(ok && req.input ? Number(value) : ok);
  };
  const inp = req.input;
  const bad = inp && (!(Number(value) >= (inp.min ?? 1)) || (inp.max !== undefined && Number(value) > inp.max)
    || !Number.isInteger(Number(value)));
  return html`<dialog ref=${ref} class="confirm" aria-labelledby="confirm-title" onCancel=${() => done(false)}>
    <h2 id="confirm-title">${req.title}</h2>
    <div>${req.body}</div>
    ${inp ? html`<div class="field"><label for="confirm-input">${inp.label}</label>
      <input id="confirm-input" type="number" inputmode="numeric" step="1" min=${inp.min ?? 1} max=${inp.max} value=${value}
        onInput=${(e) => setValue(e.target.value)} /></div>` : null}
    <div class="actions">
      <button type="button" onClick=${() => done(false)}>Cancel</button>
      <button type="button" class=${req.danger ? 'danger' : 'primary'} disabled=${bad} onClick=${() => done(true)}>${req.confirmLabel || 'Confirm'}</button>
    </div>
  </dialog>`;
}
export function confirm(opts) {
  return new Promise((resolve) => dialogHost({ ...opts, resolve }));
}

/** Toast messages. */
let toastFn = () => {};
export function ToastHost() {
  const [items, setItems] = useState([]);
  toastFn = (text, kind = 'info') => {
    const id = Math.random();
    setItems((xs) => [...xs, { id, text, kind }]);
    setTimeout(() => setItems((xs) => xs.filter((x) => x.id !== id)), 6000);
  };
  return html`<div class="toasts" role="status" aria-live="polite">${items.map((t) => html`<div
    class=${'toast ' + t.kind} key=${t.id}>${t.text}</div>`)}</div>`;
}
export function toast(text, kind) { toastFn(text, kind); }

/** A labelled form field with the API's error for that field shown under it. */
export function Field({ label, name, error, hint, children }) {
  const id = `f-${name}`;
  return html`<div class=${'field' + (error ? ' invalid' : '')}>
    <label for=${id}>${label}</label>
    ${children(id, error ? `${id}-err` : hint ? `${id}-hint` : undefined)}
    ${hint && !error ? html`<small id=${`${id}-hint`} class="muted">${hint}</small>` : null}
    ${error ? html`<small id=${`${id}-err`} class="field-error" role="alert" data-error-for=${name}>${error}</small>` : null}
  </div>`;
}

export function Badge({ text, kind }) {
  return html`<span class=${'badge ' + (kind || text || '')}>${text}</span>`;
}

/** Run an async action with busy state and error toast; returns its result or undefined. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const run = async (fn) => {
    setBusy(true); setError(null);
    try {
      return await fn();
    } catch (e) {
      setError(e);
      toast(e.message, 'error');
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run, setError };
}
