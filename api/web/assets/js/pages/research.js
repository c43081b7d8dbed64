// Research: start a sweep, a walk-forward, a Monte Carlo or a look-ahead check, follow its progress (and the
// results finished so far), read a sweep's heatmap, a walk-forward's windows and stitched out-of-sample
// equity, a Monte Carlo's percentiles and distributions, a look-ahead check's findings.
import { html, Page, Table, Card, Field, useLoad, Loading, useState, useEffect, useRef, navigate, confirm, toast, Badge } from '../ui.js';
import { Chart } from '../charts.js';
import * as api from '../api.js';
import * as f from '../format.js';

const ROUTE = { sweep: 'sweeps', walk_forward: 'walk-forward', monte_carlo: 'monte-carlo', lookahead: 'lookahead' };
const KIND_NAMES = { sweep: 'Sweep', walk_forward: 'Walk-forward', monte_carlo: 'Monte Carlo', lookahead: 'Look-ahead check' };
const GRID_KINDS = ['sweep', 'walk_forward'];
const OBJECTIVES = ['sharpe', 'sortino', 'cagr', 'calmar', 'profit_factor', 'total_return'];
const OBJECTIVE_NAMES = { sharpe: 'Sharpe', sortino: 'Sortino', cagr: 'CAGR', calmar: 'Calmar', profit_factor: 'profit factor',
  total_return: 'total return', expectancy: 'expectancy', win_rate: 'win rate' };
// the objective in words: one metric by its name, a weighted mix as its terms (`Sharpe × 1 + Calmar × 0.5`)
const objectiveName = (o) => (typeof o === 'string' ? OBJECTIVE_NAMES[o] || o
  : Object.entries(o || {}).map(([m, w]) => `${OBJECTIVE_NAMES[m] || m.replace('_', ' ')} × ${w}`).join(' + ') || 'objective');

function parseValues(text) {
  return text.split(',').map((v) => v.trim()).filter((v) => v !== '').map((v) => (Number.isNaN(Number(v)) ? v : Number(v)));
}

// the API's limit on backtests per job (TRADERTAPE_RESEARCH_MAX_COMBINATIONS, 5,000 by default: docs/API-NOTES.md)
const MAX_BACKTESTS = 5000;
const CONFIRM_ABOVE = 500; // more backtests than this run only after the trader says yes
const MAX_VALUES = 1000; // per parameter (the API's limit)
const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/** A Values box: {values} or {error} in words (numbers separated by commas; `textual` also takes words). */
function checkValues(text, textual) {
  const given = text.split(',').map((v) => v.trim()).filter((v) => v !== '');
  if (!given.length) return { error: 'Give at least one value: numbers separated by commas, like 5, 7, 10.' };
  const bad = textual ? -1 : given.findIndex((v) => !NUMBER.test(v));
  if (bad >= 0) {
    const shown = given[bad].length > 20 ? `${given[bad].slice(0, 20)}…` : given[bad];
    return { error: `Value ${bad + 1} (“${shown}”) is not a number: give numbers separated by commas, like 5, 7.5, 10.` };
  }
  const values = given.map((v) => (NUMBER.test(v) ? Number(v) : v));
  const twice = values.findIndex((v, i) => values.indexOf(v) !== i);
  if (twice >= 0) return { error: `${values[twice]} is given twice: give each value once.` };
  if (values.length > MAX_VALUES) return { error: `${f.number(values.length, 0)} values: at most ${f.number(MAX_VALUES, 0)} per parameter.` };
  return { values };
}

/**
 * The grid of a sweep or walk-forward form: {grid, errors: {field: message}, sizes, combinations, backtests}.
 * `tried` (Start was pressed) also reports the boxes left empty.
 */
function checkGrid(form, sweepable, tried) {
  const errors = {};
  const p1 = form.p1.trim(); const p2 = form.p2.trim();
  const textual = (name) => typeof (sweepable.find((q) => q.name === name) || {}).value === 'string';
  const named = (name) => (sweepable.find((q) => q.name === name) || {}).label || name;
  const grid = {};
  const sizes = [];
  if (!p1) { if (tried) errors.p1 = 'Choose a parameter to sweep.'; } else {
    const v = checkValues(form.v1, textual(p1));
    if (v.error) { if (tried || form.v1.trim()) errors.v1 = v.error; } else { grid[p1] = v.values; sizes.push(v.values.length); }
  }
  if (p2 && p2 === p1) {
    errors.p2 = `Parameter 1 is already ${named(p1)}: choose a different parameter, or put all its values in Values 1.`;
  } else if (p2) {
    const v = checkValues(form.v2, textual(p2));
    if (v.error) { if (tried || form.v2.trim()) errors.v2 = v.error; } else { grid[p2] = v.values; sizes.push(v.values.length); }
  } else if (form.v2.trim()) {
    errors.v2 = 'No Parameter 2 for these values: choose one, or clear them.';
  }
  const combinations = sizes.length ? sizes.reduce((a, b) => a * b, 1) : 0;
  // a walk-forward runs the grid in each window's in-sample days, then its choice out of sample
  const windows = Math.max(1, Math.floor(Number(form.windows)) || 1);
  const backtests = form.kind === 'walk_forward' ? windows * (combinations + 1) : combinations;
  return { grid, errors, sizes, combinations, backtests, windows };
}

/** The size of the grid in words: "3 × 4 = 12 combinations", with the backtests a walk-forward runs. */
function gridSize(form, g) {
  if (!g.combinations) return '';
  const n = (x) => f.number(x, 0);
  const some = form.constraints.trim() ? 'at most ' : ''; // constraints leave some combinations out
  const combos = `${g.sizes.length > 1 ? `${g.sizes.map(n).join(' × ')} = ` : ''}${some}${n(g.combinations)} ${g.combinations === 1 ? 'combination' : 'combinations'}`;
  return form.kind === 'walk_forward'
    ? `${combos} in each of ${n(g.windows)} windows, and each window's choice out of sample: ${some}${n(g.backtests)} backtests`
    : combos;
}

function StartForm({ strategies }) {
  const [form, setForm] = useState({
    kind: 'sweep', strategy_id: (strategies.find((s) => s.base_model === 'v3_dip_buyer') || strategies[0] || {}).id || '',
    universe: 'nifty_50', start_date: '2020-01-01', end_date: f.todayIST(), starting_capital: 1000000,
    position_size_pct: 10, max_positions: 10, p1: 'stop_loss_pct', v1: '5, 7, 10', p2: 'entry_rules.all.1.right',
    v2: '30, 35, 40', objective: 'sharpe', min_trades: 0, constraints: '', top_n: 1, windows: 4, mode: 'rolling',
    simulations: 1000, seed: 0, ruin_drawdown_pct: 30, block_days: 1, cuts: 5, warmup_days: '30, 100', run_id: '',
  });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  // what a sweep of the chosen strategy can vary, in words (offered under Parameter 1 and 2)
  const [sweepable, setSweepable] = useState([]);
  useEffect(() => {
    if (!form.strategy_id) { setSweepable([]); return; }
    api.get('/api/research/parameters', { strategy_id: form.strategy_id }).then(setSweepable, () => setSweepable([]));
  }, [form.strategy_id]);
  const described = (name) => {
    const p = sweepable.find((q) => q.name === name.trim());
    return p ? `${p.label}${p.value === null || p.value === undefined ? '' : ` (now ${p.value})`}` : undefined;
  };
  const upd = (k) => (e) => setForm({ ...form, [k]: e.target.value });
  const [tried, setTried] = useState(false);
  const gridKind = GRID_KINDS.includes(form.kind);
  const g = gridKind ? checkGrid(form, sweepable, tried) : { errors: {} };
  const tooMany = gridKind && g.backtests > MAX_BACKTESTS;
  const submit = async (e) => {
    e.preventDefault();
    if (gridKind) {
      const now = checkGrid(form, sweepable, true);
      const first = ['p1', 'v1', 'p2', 'v2'].find((k) => now.errors[k]);
      if (first || now.backtests > MAX_BACKTESTS) {
        setTried(true);
        requestAnimationFrame(() => document.getElementById(first ? `f-${first}` : 'f-v1')?.focus());
        return;
      }
      if (now.backtests > CONFIRM_ABOVE) {
        const n = f.number(now.backtests, 0);
        const ok = await confirm({ title: `Run ${n} backtests?`,
          body: `This ${KIND_NAMES[form.kind].toLowerCase()} tries ${gridSize(form, now)}${form.kind === 'sweep' ? `, one backtest each` : ''}. `
            + 'That many can take hours on this server, and you can run one research job at a time. Fewer values finish sooner.',
          confirmLabel: `Run ${n} backtests` });
        if (!ok) return;
      }
    }
    setBusy(true); setError(null);
    const body = { strategy_id: Number(form.strategy_id), universe: form.universe, start_date: form.start_date,
      end_date: form.end_date, starting_capital: Number(form.starting_capital), position_size_pct: Number(form.position_size_pct),
      max_positions: Number(form.max_positions) };
    if (gridKind) {
      const { grid } = checkGrid(form, sweepable, true);
      // constraints between parameters, one per comma: `stop_loss_pct < target_pct, max_positions >= 5`
      const constraints = form.constraints.split(',').map((c) => c.trim()).filter(Boolean);
      Object.assign(body, { grid, objective: form.objective, min_trades: Number(form.min_trades) },
        constraints.length ? { constraints } : {});
      if (form.kind === 'sweep') body.top_n = Number(form.top_n);
    }
    if (form.kind === 'walk_forward') Object.assign(body, { windows: Number(form.windows), mode: form.mode });
    if (form.kind === 'monte_carlo') {
      const settings = { simulations: Number(form.simulations), seed: Number(form.seed),
        ruin_drawdown_pct: Number(form.ruin_drawdown_pct), block_days: Number(form.block_days) };
      // a recorded backtest run instead of the strategy, universe and dates above
      if (String(form.run_id).trim()) {
        for (const k of Object.keys(body)) delete body[k];
        body.run_id = Number(form.run_id);
      }
      Object.assign(body, settings);
    }
    if (form.kind === 'lookahead') {
      Object.assign(body, { cuts: Number(form.cuts), seed: Number(form.seed),
        warmup_days: parseValues(form.warmup_days).map(Number) });
    }
    try {
      const r = await api.post(`/api/research/${ROUTE[form.kind]}`, body);
      navigate(`/research/${ROUTE[form.kind]}/${r.id}`);
    } catch (err) { setError(err.message); } finally { setBusy(false); }
  };
  const input = (k, label, type = 'text', extra = {}, hint = undefined) => html`<${Field} label=${label} name=${k} hint=${hint} error=${g.errors[k]}>${(i, d) => html`
    <input id=${i} aria-describedby=${d} aria-invalid=${g.errors[k] ? 'true' : undefined} type=${type} step="any" value=${form[k]} onInput=${upd(k)} ...${extra} />`}<//>`;
  const param = (k, label) => input(k, label, 'text', { list: 'sweep-params', autocomplete: 'off' }, described(form[k]));
  return html`<form onSubmit=${submit} aria-label="Start a research job"><fieldset><legend>Start a research job</legend>
    ${error ? html`<p class="error" role="alert">${error}</p>` : null}
    <div class="grid-form">
      <${Field} label="Kind" name="kind">${(i) => html`<select id=${i} value=${form.kind} onChange=${upd('kind')}>
        ${Object.entries(KIND_NAMES).map(([k, name]) => html`<option value=${k}>${name}</option>`)}</select>`}<//>
      <${Field} label="Strategy" name="strategy_id">${(i) => html`<select id=${i} value=${form.strategy_id} onChange=${upd('strategy_id')}>
        ${strategies.map((s) => html`<option value=${s.id}>${s.name}${s.is_template ? ' (template)' : ''}</option>`)}</select>`}<//>
      <${Field} label="Universe" name="universe">${(i) => html`<select id=${i} value=${form.universe} onChange=${upd('universe')}>
        <option value="nifty_50">NIFTY 50</option><option value="nifty_100">NIFTY 100</option></select>`}<//>
      ${input('start_date', 'From', 'date')}${input('end_date', 'To', 'date')}
      ${input('starting_capital', 'Capital (₹)', 'number', { min: 1000 })}${input('position_size_pct', 'Position size %', 'number')}
      ${input('max_positions', 'Max positions', 'number')}
      ${GRID_KINDS.includes(form.kind) ? html`
      ${param('p1', 'Parameter 1')}${input('v1', 'Values 1 (comma-separated)')}
      ${param('p2', 'Parameter 2 (optional)')}${input('v2', 'Values 2')}
      <datalist id="sweep-params">${sweepable.map((p) => html`<option value=${p.name}>${p.label}</option>`)}</datalist>
      <${Field} label="Objective" name="objective">${(i) => html`<select id=${i} value=${form.objective} onChange=${upd('objective')}>
        ${OBJECTIVES.map((o) => html`<option value=${o}>${objectiveName(o)}</option>`)}</select>`}<//>
      ${input('min_trades', 'Minimum trades', 'number')}
      ${input('constraints', 'Constraints (optional)', 'text', { placeholder: 'stop_loss_pct < target_pct' },
        'comparisons between parameters, separated by commas')}
      ${form.kind === 'sweep' ? input('top_n', 'Best combinations to record as backtests', 'number', { min: 0, max: 10 }) : null}` : null}
      ${form.kind === 'monte_carlo' ? html`${input('run_id', 'Or a backtest run # (instead of the above)', 'number')}
        ${input('simulations', 'Simulations', 'number')}${input('seed', 'Seed', 'number')}
        ${input('ruin_drawdown_pct', 'Ruin at drawdown %', 'number')}${input('block_days', 'Bootstrap block (days)', 'number')}` : null}
      ${form.kind === 'lookahead' ? html`${input('cuts', 'Cut days', 'number')}${input('seed', 'Seed', 'number')}
        ${input('warmup_days', 'Warm-ups to try (trading days, comma-separated)')}` : null}
      ${form.kind === 'walk_forward' ? html`${input('windows', 'Windows', 'number')}
        <${Field} label="Windows are" name="mode">${(i) => html`<select id=${i} value=${form.mode} onChange=${upd('mode')}>
          <option value="rolling">rolling</option><option value="anchored">anchored</option></select>`}<//>` : null}
    </div>
    ${gridKind ? html`<p id="grid-size" class=${tooMany ? 'error' : 'muted'} aria-live="polite">${g.combinations
      ? `${gridSize(form, g)}${tooMany ? `: more than the ${f.number(MAX_BACKTESTS, 0)} backtests a job may run. Use fewer values.`
        : g.backtests > CONFIRM_ABOVE ? ': that takes a while; you will be asked to confirm.' : '.'}`
      : ''}${tooMany ? '' : html` <span class="muted">At most ${f.number(MAX_BACKTESTS, 0)} backtests per job.</span>`}</p>` : null}
    <button type="submit" disabled=${busy}>${busy ? 'Starting…' : 'Start'}</button></fieldset></form>`;
}

export function Research() {
  const state = useLoad(async () => ({
    jobs: await api.get('/api/research/jobs', { limit: 100 }),
    strategies: await api.get('/api/strategies', { limit: 500 }),
  }), []);
  return html`<${Page} title="Research">
    <${Loading} state=${state}>${(d) => html`
      <p class="muted">Many backtests at once: a sweep ranks every combination of the parameters you give; a
        walk-forward re-fits them window by window and tests each choice on the next, unseen window; a Monte
        Carlo reshuffles a backtest's trades and resamples its daily returns to show how bad it could have
        gone; a look-ahead check re-runs with the data cut at sampled days to catch a strategy that peeks.</p>
      <${StartForm} strategies=${d.strategies} />
      <${Table} caption="Your research jobs" id="research-jobs" rows=${d.jobs} columns=${[
        { key: 'id', label: 'Job', render: (j) => html`<a href=${`/research/${ROUTE[j.kind] || j.kind}/${j.id}`}>#${j.id}</a>` },
        { key: 'kind', label: 'Kind', render: (j) => KIND_NAMES[j.kind] || j.kind },
        { key: 'strategy', label: 'Strategy', render: (j) => { const p = j.params || {};
          const model = (p.strategy || {}).base_model;
          return [p.strategy_name || (model && f.baseModel(model)), (p.universe || p.symbols) && f.universe(p.universe, p.symbols)]
            .filter(Boolean).join(' · ') || '—'; } },
        { key: 'status', label: 'Status', render: (j) => html`<${Badge} text=${j.status} />` },
        { key: 'progress', label: 'Progress', num: true, render: (j) => f.pct(j.progress * 100, 0) },
        { key: 'total', label: 'Backtests', num: true },
        { key: 'created_at', label: 'Started', render: (j) => f.dateTime(j.created_at) },
      ]} empty="No research jobs yet." />`}<//>
  <//>`;
}

function colour(value, lo, hi) {
  if (value === null || value === undefined) return '';
  const t = hi > lo ? (value - lo) / (hi - lo) : 0.5;
  const hue = Math.round(t * 120); // red (worst) .. green (best)
  return `background: hsl(${hue} 65% 80%); color: #1a1a1a`; // a light cell in either theme: dark text on it
}

// a swept parameter as the job labelled it (`stop loss %`, `entry: rsi(14) < x`); its name for older jobs
const labelOf = (job, name) => (job.params.labels || {})[name] || name;
// a parameter with its value: the rule with x replaced (`entry: rsi(14) < 40`), else `stop loss % = 5`
const withValue = (job, name, value) => {
  const label = labelOf(job, name);
  return /(^|[\s(-])x([\s)\]]|$)/.test(label) ? label.replace(/(^|[\s(-])x([\s)\]]|$)/, `$1${value}$2`) : `${label} = ${value}`;
};

// what a heatmap cell can show of its best combination: [metric ('' = the objective), label, lower is better]
const HEAT_VALUES = [['', 'Objective'], ['cagr', 'CAGR %'], ['sharpe', 'Sharpe'], ['max_drawdown', 'Max drawdown %', true],
  ['profit_factor', 'Profit factor'], ['win_rate', 'Win rate %'], ['total_trades', 'Trades']];

function SweepHeatmap({ job }) {
  const names = Object.keys(job.params.grid || job.params.random || {}).filter((n) => n !== 'samples' && n !== 'seed');
  const [x, setX] = useState(names[0]);
  const [y, setY] = useState(names[1] || names[0]);
  const [metric, setMetric] = useState('');
  const [heat, setHeat] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    if (names.length < 2 || x === y) { setHeat(null); setError(null); return; }
    setError(null);
    api.get(`/api/research/sweeps/${job.id}/heatmap`, metric ? { x, y, metric } : { x, y })
      .then(setHeat, (e) => setError(e.message));
  }, [x, y, metric]);
  if (names.length < 2) return html`<p class="muted">A heatmap needs two swept parameters.</p>`;
  const [, shown, lowerBetter] = HEAT_VALUES.find(([m]) => m === metric);
  // green is better: a drawdown's scale runs the other way
  const score = (v) => (lowerBetter ? -v : v);
  const scores = heat ? heat.values.flat().filter((v) => v !== null).map(score) : [];
  const lo = Math.min(...scores); const hi = Math.max(...scores);
  const tint = (v) => (v === null ? '' : colour(score(v), lo, hi));
  const pick = (label, value, set, id) => html`<span class="pick"><label for=${id}>${label}</label><select id=${id} value=${value}
    onChange=${(e) => set(e.target.value)}>${names.map((n) => html`<option value=${n}>${labelOf(job, n)}</option>`)}</select></span>`;
  return html`<section aria-label="Heatmap"><h2>Heatmap: ${metric ? `${shown} of the` : ''} best ${objectiveName(job.params.objective)} per cell</h2>
    <div class="actions">${pick('Columns', x, setX, 'heat-x')} ${pick('Rows', y, setY, 'heat-y')}
      <span class="pick"><label for="heat-value">Show</label><select id="heat-value" value=${metric} onChange=${(e) => setMetric(e.target.value)}>
        ${HEAT_VALUES.map(([m, label]) => html`<option value=${m}>${label}</option>`)}</select></span></div>
    ${x === y ? html`<p class="error" role="alert" id="heat-same">Choose two different parameters for rows and columns.</p>` : null}
    ${error ? html`<p class="error" role="alert">${error}</p>` : null}
    ${heat && x !== y ? html`<div class="scroll-x"><table id="sweep-heatmap" class="heatmap"><thead>
      <tr><td></td><th scope="colgroup" colspan=${heat.x_values.length} id="heat-x-label">${labelOf(job, x)} →</th></tr>
      <tr><th scope="col" id="heat-y-label">${labelOf(job, y)} ↓</th>
      ${heat.x_values.map((v) => html`<th scope="col" class="num">${v}</th>`)}</tr></thead>
      <tbody>${heat.y_values.map((yv, i) => html`<tr><th scope="row" class="num">${yv}</th>${heat.values[i].map((v) => html`
        <td class="num" style=${tint(v)} data-value=${v === null ? '' : v}>${v === null ? '—' : f.number(v, metric === 'total_trades' ? 0 : 2)}</td>`)}</tr>`)}</tbody>
      </table></div>` : null}</section>`;
}

function PartialSweep({ job }) {
  return html`<${SweepTable} job=${job} id="sweep-partial"
    caption=${`Finished so far: ${job.results_total} of ${job.total} combinations, best first`} />`;
}

function SweepResults({ job }) {
  return html`
    ${job.best_run_id ? html`<p>Best combination as a backtest run: <a id="best-run" href=${`/backtests/${job.best_run_id}`}>#${job.best_run_id}</a></p>` : null}
    <${SweepHeatmap} job=${job} />
    <${SweepTable} job=${job} id="sweep-results" caption="Every combination, best first" />`;
}

function SweepTable({ job, id, caption }) {
  const names = job.results.length ? Object.keys(job.results[0].params) : [];
  return html`
    <${Table} caption=${caption} id=${id} rows=${job.results} limit=${50} rowKey=${(r) => r.index}
      columns=${[
        // the top combinations were recorded as ordinary backtest runs (run_ids, best first): their rank opens one
        { key: 'rank', label: 'Rank', num: true, render: (r) => (job.status === 'done' && r.eligible && r.rank <= (job.run_ids || []).length
          ? html`<a class="run-link" href=${`/backtests/${job.run_ids[r.rank - 1]}`} title="Open its backtest run">${r.rank}</a>` : r.rank) },
        ...names.map((n) => ({ key: `p:${n}`, label: labelOf(job, n), num: true, render: (r) => String(r.params[n]), sort: (r) => r.params[n] })),
        { key: 'objective', label: 'Objective', num: true, render: (r) => (r.eligible ? f.number(r.objective, 3) : 'not eligible') },
        { key: 'cagr', label: 'CAGR', num: true, render: (r) => f.pct(r.metrics.cagr), sort: (r) => r.metrics.cagr },
        { key: 'max_drawdown', label: 'Max DD', num: true, render: (r) => f.pct(r.metrics.max_drawdown), sort: (r) => r.metrics.max_drawdown },
        { key: 'total_trades', label: 'Trades', num: true, render: (r) => r.metrics.total_trades, sort: (r) => r.metrics.total_trades },
      ]} />`;
}

function WalkForwardResults({ job }) {
  const s = job.summary || {}; const oos = s.out_of_sample || {};
  const equity = (job.oos_equity || []).map((p) => ({ time: p.date, value: p.equity }));
  return html`
    <div class="cards" id="wf-summary">
      <${Card} id="wfe" label="Walk-forward efficiency" value=${s.walk_forward_efficiency === null ? '—' : f.number(s.walk_forward_efficiency, 2)}
        sub=${s.walk_forward_efficiency === null ? 'undefined: the in-sample CAGR was not positive' : 'out-of-sample CAGR ÷ in-sample CAGR'} />
      <${Card} id="oos-cagr" label="Out-of-sample CAGR" value=${f.pct(oos.cagr)} tone=${f.tone(oos.cagr)} />
      <${Card} id="oos-dd" label="Out-of-sample max drawdown" value=${f.pct(oos.max_drawdown)} />
      <${Card} id="oos-final" label="Final equity" value=${f.inr(oos.final_equity)} />
    </div>
    ${job.best_run_id ? html`<p>The latest window's choice over the whole span, as a backtest run:${' '}
      <a id="best-run" href=${`/backtests/${job.best_run_id}`}>#${job.best_run_id}</a></p>` : null}
    ${equity.length ? html`<${Chart} id="wf-equity" label="Stitched out-of-sample equity" height=${280} series=${[{ kind: 'line', data: equity }]} />` : null}
    <${WalkForwardWindows} job=${job} caption="Windows: parameters chosen in sample, tested out of sample" />`;
}

function WalkForwardWindows({ job, caption }) {
  return html`
    <${Table} caption=${caption} id=${job.partial ? 'wf-partial' : 'wf-windows'} rows=${job.windows || job.results || []} rowKey=${(w) => w.window} stack
      columns=${[
        { key: 'window', label: 'Window', num: true, render: (w) => w.window + 1 },
        { key: 'is', label: 'In sample', render: (w) => `${f.day(w.in_sample.start)} – ${f.day(w.in_sample.end)}` },
        { key: 'oos', label: 'Out of sample', render: (w) => `${f.day(w.out_of_sample.start)} – ${f.day(w.out_of_sample.end)}` },
        { key: 'params', label: 'Chosen', render: (w) => (w.params ? Object.entries(w.params).map(([k, v]) => withValue(job, k, v)).join(', ') : 'none eligible (cash)') },
        { key: 'is_cagr', label: 'IS CAGR', num: true, render: (w) => f.pct((w.in_sample_metrics || {}).cagr) },
        { key: 'oos_cagr', label: 'OOS CAGR', num: true, render: (w) => f.pct((w.out_of_sample_metrics || {}).cagr) },
        { key: 'efficiency', label: 'Efficiency', num: true, render: (w) => (w.efficiency === null ? '—' : f.number(w.efficiency, 2)) },
      ]} />`;
}

const MC_METHODS = { trades: 'Reshuffled trade order', returns: 'Bootstrapped daily returns' };
const MC_METRICS = [
  ['final_equity', 'Final equity', (v) => f.inr(v)],
  ['cagr', 'CAGR', (v) => f.pct(v)],
  ['max_drawdown', 'Max drawdown', (v) => f.pct(v)],
];

function Histogram({ id, label, stats, show, ends = show }) {
  const hist = stats.histogram;
  const top = Math.max(1, ...hist.counts);
  const lo = hist.edges[0]; const hi = hist.edges[hist.edges.length - 1];
  // every path at one value (reshuffled trades all end at the same equity): say so instead of one lone bar
  const pct = Object.values(stats.percentiles);
  const same = pct.length > 0 && pct.every((v) => v === pct[0]) && hist.counts.filter((c) => c > 0).length === 1;
  return html`<figure class="histogram" id=${id} aria-label=${label}><figcaption>${label}</figcaption>
    ${same ? html`<p class="muted same">${show(pct[0])} in every path</p>` : html`
    <div class="bars">${hist.counts.map((c, i) => html`
      <div class="bar" data-count=${c} title=${`${show(hist.edges[i])} – ${show(hist.edges[i + 1])}: ${c} paths`}
        style=${`height:${Math.round((c / top) * 100)}%;min-height:${c ? 1 : 0}px`}></div>`)}</div>
    <div class="muted ends"><span>${ends(lo)}</span><span>${ends(hi)}</span></div>`}</figure>`;
}

function MonteCarloResults({ job }) {
  return html`
    ${job.best_run_id ? html`<p>The backtest it resampled: <a id="best-run" href=${`/backtests/${job.best_run_id}`}>#${job.best_run_id}</a></p>` : null}
    ${job.results.map((r) => {
      const keys = Object.keys(r.final_equity.percentiles);
      return html`<section aria-label=${MC_METHODS[r.method] || r.method} id=${`mc-${r.method}`}>
        <h2>${MC_METHODS[r.method] || r.method}: ${f.number(r.simulations, 0)} paths (seed ${r.seed})</h2>
        <div class="cards">
          <${Card} id=${`mc-${r.method}-ruin`} label=${`Probability of a ${f.number(r.ruin_drawdown_pct, 0)} % drawdown`}
            value=${f.pct(r.probability_of_ruin * 100, 1)} />
          <${Card} label="Resampled" value=${`${f.number(r.samples, 0)} ${r.method === 'trades' ? 'trades' : 'days'}`} />
        </div>
        <div class="scroll-x"><table id=${`mc-${r.method}-percentiles`} class="data">
          <caption>${r.method === 'trades'
            ? "Percentiles over the paths, and the backtest's closed trades in their own order (from exit to exit: open positions and the days between exits left out, so these can differ from the run's own figures)"
            : "Percentiles over the paths, and the backtest's own figure"}</caption>
          <thead><tr><th scope="col">Metric</th><th scope="col" class="num">${r.method === 'trades' ? 'Trades in order' : 'Backtest'}</th>
            ${keys.map((k) => html`<th scope="col" class="num">${k}th</th>`)}<th scope="col" class="num">Mean</th></tr></thead>
          <tbody>${MC_METRICS.map(([m, label, show]) => html`<tr data-metric=${m}><th scope="row">${label}</th>
            <td class="num">${show(r.original[m])}</td>
            ${keys.map((k) => html`<td class="num" data-value=${r[m].percentiles[k]}>${show(r[m].percentiles[k])}</td>`)}
            <td class="num">${show(r[m].mean)}</td></tr>`)}</tbody></table></div>
        <div class="histograms">${MC_METRICS.map(([m, label, show]) => html`<${Histogram} id=${`mc-${r.method}-hist-${m}`}
          label=${`${label}: distribution`} stats=${r[m]} show=${show}
          ends=${m === 'final_equity' ? (v) => f.inr(v, 0) : show} />`)}</div>
      </section>`;
    })}`;
}

const WHAT = { indicator: 'Indicator value', entry_signal: 'Entry signal', exit_signal: 'Exit signal', conviction: 'Conviction',
  entry: 'Entry', exit: 'Exit', equity: 'Equity' };

function LookaheadResults({ job }) {
  const s = job.summary || {};
  const diffs = Object.entries(s.differences || {}).filter(([, n]) => n);
  const show = (v) => (v === null || v === undefined ? '—' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  return html`
    <div class="cards" id="lookahead-summary">
      <${Card} id="lookahead-verdict" label="Verdict" value=${s.clean ? 'Clean: nothing changed' : 'Look-ahead found'}
        tone=${s.clean ? 'up' : 'down'} />
      <${Card} label="Cut days" value=${(s.cuts || []).map((c) => f.day(c)).join(', ') || '—'} />
      <${Card} label="Differences" value=${diffs.length ? diffs.map(([k, n]) => `${WHAT[k] || k}: ${n}`).join(', ') : 'none'} />
    </div>
    <${Table} caption="Findings: what changed before a cut when the later days were removed" id="lookahead-findings"
      rows=${job.results} rowKey=${(r, i) => i} empty="No findings: every value on or before each cut matched."
      columns=${[
        { key: 'cut', label: 'Cut', render: (r) => f.day(r.cut) },
        { key: 'what', label: 'What', render: (r) => WHAT[r.what] || r.what },
        { key: 'name', label: 'Name', render: (r) => r.name || '—' },
        { key: 'symbol', label: 'Symbol', render: (r) => r.symbol || '—' },
        { key: 'date', label: 'Day', render: (r) => f.day(r.date) },
        { key: 'full', label: 'With all the data', render: (r) => show(r.full) },
        { key: 'cut_value', label: 'Without the later days', render: (r) => show(r.cut_value) },
      ]} />
    <${Table} caption="Recursion: indicators again with only a short warm-up" id="lookahead-recursion"
      rows=${job.recursion || []} rowKey=${(r, i) => i} empty="No warm-ups tried."
      columns=${[
        { key: 'warmup_days', label: 'Warm-up (days)', num: true },
        { key: 'name', label: 'Indicator' },
        { key: 'max_diff_pct', label: 'Largest difference', num: true, render: (r) => (r.max_diff_pct === null ? 'missing in one run' : `${f.number(r.max_diff_pct, 2)} %`) },
        { key: 'missing_values', label: 'Missing values', num: true, render: (r) => f.number(r.missing_values, 0) },
        { key: 'entry_signals_changed', label: 'Entry signals changed', num: true, render: (r) => f.number(r.entry_signals_changed, 0) },
      ]} />`;
}

/** Asks before cancelling a running job, with buttons that cannot be mistaken for each other. */
function CancelDialog({ onKeep, onCancel }) {
  const ref = useRef(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => { if (d && d.open) d.close(); };
  }, []);
  return html`<dialog ref=${ref} class="confirm" id="cancel-job" aria-labelledby="cancel-job-title"
    onCancel=${(e) => { e.preventDefault(); onKeep(); }}>
    <h2 id="cancel-job-title">Cancel this job?</h2>
    <div>Its work stops now and it cannot be resumed; the backtest runs it recorded stay.</div>
    <div class="actions">
      <button type="button" onClick=${onKeep}>Keep running</button>
      <button type="button" class="danger" onClick=${onCancel}>Cancel job</button>
    </div>
  </dialog>`;
}

export function ResearchJob({ params }) {
  const [route, id] = params;
  const [tick, setTick] = useState(0);
  const state = useLoad(() => api.get(`/api/research/${route}/${id}`), [route, id, tick]);
  const job = state.data;
  useEffect(() => {
    if (!job || !['queued', 'running'].includes(job.status)) return undefined;
    const t = setTimeout(() => setTick(tick + 1), 1000);
    return () => clearTimeout(t);
  }, [job, tick]);
  const active = job && ['queued', 'running'].includes(job.status);
  const [asking, setAsking] = useState(false); // the cancel dialog is open
  const cancel = async () => {
    setAsking(false);
    if (!active) { toast('The job had already finished.'); return; } // (it ended while the dialog was open)
    try { await api.del(`/api/research/${route}/${id}`); toast('Cancelled'); } catch (e) { toast(e.message, 'error'); }
    setTick(tick + 1);
  };
  const remove = async () => {
    if (active) { setAsking(true); return; }
    if (!(await confirm({ title: 'Delete this job?', body: 'Its results are removed; the backtest runs it recorded stay.',
      confirmLabel: 'Delete', danger: true }))) return;
    try { await api.del(`/api/research/${route}/${id}`); toast('Deleted'); navigate('/research'); } catch (e) { toast(e.message, 'error'); }
  };
  return html`<${Page} title=${`Research job #${id}`} actions=${job ? html`<button type="button" class="danger" onClick=${remove}>
      ${active ? 'Cancel job' : 'Delete'}</button>` : null}>
    ${asking ? html`<${CancelDialog} onKeep=${() => setAsking(false)} onCancel=${cancel} />` : null}
    <${Loading} state=${state}>${(j) => html`
      <p id="job-line"><${Badge} text=${j.status} /> ${[KIND_NAMES[j.kind] || j.kind,
        j.params.strategy_name || ((j.params.strategy || {}).base_model && f.baseModel(j.params.strategy.base_model)),
        f.universe(j.params.universe, j.params.symbols), html`<span class="nowrap">${f.day(j.params.start_date)} – ${f.day(j.params.end_date)}</span>`,
        // (which worker runs it is for support: a tooltip, not the line)
        html`<span id="job-backtests" title=${j.executor ? `run by ${j.executor}` : undefined}>${f.number(j.total, 0)} ${j.total === 1 ? 'backtest' : 'backtests'}</span>`,
      ].filter(Boolean).map((part, i) => [i ? ' · ' : '', part])}</p>
      ${['queued', 'running'].includes(j.status) ? html`<progress id="research-progress" max="1" value=${j.progress}
        aria-label="Progress">${f.pct(j.progress * 100, 0)}</progress> <span>${f.pct(j.progress * 100, 0)}</span>` : null}
      ${j.status === 'failed' ? html`<p class="error" role="alert">${j.error}</p>` : null}
      ${j.partial && j.results.length && j.kind === 'sweep' ? html`<${PartialSweep} job=${j} />` : null}
      ${j.partial && j.results.length && j.kind === 'walk_forward' ? html`<${WalkForwardWindows} job=${j}
        caption="Windows finished so far (out of sample still running)" />` : null}
      ${j.status === 'done' && j.kind === 'sweep' ? html`<${SweepResults} job=${j} />` : null}
      ${j.status === 'done' && j.kind === 'walk_forward' ? html`<${WalkForwardResults} job=${j} />` : null}
      ${j.status === 'done' && j.kind === 'monte_carlo' ? html`<${MonteCarloResults} job=${j} />` : null}
      ${j.status === 'done' && j.kind === 'lookahead' ? html`<${LookaheadResults} job=${j} />` : null}`}<//>
  <//>`;
}
