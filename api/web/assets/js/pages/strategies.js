import { html, Page, Table, Badge, Field, useLoad, Loading, useState, useEffect, navigate, confirm, toast, Alert } from '../ui.js';
import * as api from '../api.js';
import * as f from '../format.js';

const INDICATORS = ['close', 'open', 'high', 'low', 'volume', 'sma', 'ema', 'rsi', 'atr', 'roc', 'highest', 'lowest',
  'bb_upper', 'bb_lower', 'avg_volume'];
const NO_PERIOD = new Set(['close', 'open', 'high', 'low', 'volume']);
const OPS = ['<', '<=', '>', '>=', 'crosses_above', 'crosses_below'];

// the same text but for spacing (a template's description is its base model's: said once, in the box)
const sameText = (a, b) => String(a || '').replace(/\s+/g, ' ').trim() === String(b || '').replace(/\s+/g, ' ').trim();

const TABS = [['mine', 'Mine'], ['templates', 'Templates'], ['public', 'Public']];

export function Strategies({ query }) {
  const tab = query.get('tab') || 'mine';
  const [q, setQ] = useState('');
  const state = useLoad(async () => {
    const params = { q, limit: 200 };
    if (tab === 'templates') params.is_template = true;
    if (tab === 'public') params.is_public = true;
    const rows = await api.get('/api/strategies', params);
    return tab === 'mine' ? rows.filter((s) => !s.is_template) : rows;
  }, [tab, q]);
  const fork = async (s) => {
    try {
      const made = await api.post(`/api/strategies/${s.id}/fork`, { name: `${s.name} (my copy)` });
      toast(`Forked “${s.name}” into “${made.name}”.`);
      navigate(`/strategies/${made.id}`);
    } catch (e) { toast(e.message, 'error'); }
  };
  return html`<${Page} title="Strategies" actions=${html`<a class="button primary" href="/strategies/new">New strategy</a>`}>
    <div class="tabs" role="tablist" aria-label="Which strategies">${TABS.map(([k, label]) => html`<a role="tab"
      class="button" aria-selected=${tab === k} href=${`/strategies?tab=${k}`}>${label}</a>`)}</div>
    <label class="filter">Search <input type="search" value=${q} onChange=${(e) => setQ(e.target.value)} aria-label="Search strategies by name" /></label>
    <${Loading} state=${state}>${(rows) => html`<${Table} caption=${TABS.find(([k]) => k === tab)[1] + ' strategies'}
      id="strategies" rows=${rows} stack empty=${tab === 'mine' ? html`You have no strategies yet. Fork one from <a href="/strategies?tab=templates">Templates</a>.` : 'None.'}
      columns=${[
        { key: 'name', label: 'Name', render: (s) => html`<a href=${`/strategies/${s.id}`}>${s.name}</a>
          ${s.is_template ? html` <${Badge} text="template" />` : null}${s.is_public ? html` <${Badge} text="public" />` : null}` },
        { key: 'base_model', label: 'Base model', render: (s) => f.baseModel(s.base_model), sort: (s) => f.baseModel(s.base_model) },
        { key: 'updated_at', label: 'Updated', render: (s) => f.dateTime(s.updated_at) },
        { key: 'actions', label: 'Actions', nosort: true, render: (s) => html`<div class="actions">
          <button type="button" onClick=${() => fork(s)} aria-label=${`Fork ${s.name}`}>Fork</button>
          <a class="button" href=${`/backtests?strategy_id=${s.id}`}>Backtest</a></div>` },
      ]} />`}<//>
  <//>`;
}

function Operand({ value, onChange, name, errors, label }) {
  const isNum = typeof value === 'number' || value === null || value === '' || value === undefined;
  const kind = isNum ? 'number' : value.ind;
  const setKind = (k) => onChange(k === 'number' ? 0 : { ind: k, ...(NO_PERIOD.has(k) ? {} : { period: value?.period || 14 }) });
  return html`<div class="operand actions">
    <${Field} label=${`${label}`} name=${`${name}.ind`} error=${errors[`${name}.ind`]}>${(id, d) => html`
      <select id=${id} aria-describedby=${d} value=${kind} onChange=${(e) => setKind(e.target.value)}>
        <option value="number">number</option>${INDICATORS.map((i) => html`<option value=${i}>${f.indicator(i)}</option>`)}</select>`}<//>
    ${isNum ? html`<${Field} label="Value" name=${name} error=${errors[name]}>${(id, d) => html`
      <input id=${id} aria-describedby=${d} type="number" step="any" value=${value ?? ''} required
        onInput=${(e) => onChange(e.target.value === '' ? '' : Number(e.target.value))} />`}<//>`
      : html`
      ${NO_PERIOD.has(kind) ? null : html`<${Field} label="Period" name=${`${name}.period`} error=${errors[`${name}.period`]}>${(id, d) => html`
        <input id=${id} aria-describedby=${d} type="number" step="1" value=${value.period ?? ''} size="4"
          onInput=${(e) => onChange({ ...value, period: e.target.value === '' ? null : Number(e.target.value) })} />`}<//>`}
      <${Field} label="Bars ago" name=${`${name}.offset`} error=${errors[`${name}.offset`]}>${(id, d) => html`
        <input id=${id} aria-describedby=${d} type="number" step="1" min="0" value=${value.offset ?? ''} size="3"
          onInput=${(e) => { const v = { ...value }; if (e.target.value === '') delete v.offset; else v.offset = Number(e.target.value); onChange(v); }} />`}<//>`}
  </div>`;
}

const MAX_DEPTH = 5; // the API's limit on nested rule groups (domain/rules.py)
const newRule = () => ({ left: { ind: 'close' }, op: '>', right: { ind: 'sma', period: 50 } });

/**
 * A rule group {all: [...]} or {any: [...]}: each item a rule (left op right) or a nested group, edited in place.
 * `name` is the group's path as the API names it in errors ("entry_rules", "entry_rules.all.2"), `label` the
 * rule numbering shown ("" at the top, "3." inside the third item), so every field has its own label and id.
 */
function RuleGroup({ rules, onChange, name, errors, label, depth, onRemove }) {
  const mode = rules && rules.any ? 'any' : 'all';
  const list = (rules && (rules.any || rules.all)) || [];
  const set = (i, item) => onChange({ [mode]: list.map((c, j) => (j === i ? item : c)) });
  const remove = (i) => onChange({ [mode]: list.filter((_, j) => j !== i) });
  const groupError = errors[`${name}.${mode}`] || errors[name];
  return html`<div class=${depth ? 'rule-group nested' : 'rule-group'} data-group=${name}>
    <${Field} label=${depth ? `Group ${label.slice(0, -1)} matches` : 'Match'} name=${`${name}.mode`}>${(id) => html`<select id=${id}
      value=${mode} onChange=${(e) => onChange({ [e.target.value]: list })}><option value="all">all of these</option>
      <option value="any">any of these</option></select>`}<//>
    ${groupError ? html`<p class="field-error" role="alert" data-error-for=${`${name}.${mode}`}>${groupError}</p>` : null}
    ${list.map((c, i) => {
      const p = `${name}.${mode}.${i}`;
      const n = `${label}${i + 1}`;
      if (c && (c.all || c.any)) {
        return html`<${RuleGroup} key=${i} rules=${c} name=${p} errors=${errors} label=${`${n}.`} depth=${depth + 1}
          onChange=${(g) => set(i, g)} onRemove=${() => remove(i)} />`;
      }
      return html`<div class="rule-row" key=${i} data-rule=${n}>
      <${Operand} label=${`Rule ${n} left`} value=${c.left} name=${`${p}.left`} errors=${errors} onChange=${(v) => set(i, { ...c, left: v })} />
      <${Field} label="Operator" name=${`${p}.op`} error=${errors[`${p}.op`]}>${(id, d) => html`<select id=${id} aria-describedby=${d}
        value=${c.op} onChange=${(e) => set(i, { ...c, op: e.target.value })}>${OPS.map((o) => html`<option value=${o}>${f.operator(o)}</option>`)}</select>`}<//>
      <${Operand} label=${`Rule ${n} right`} value=${c.right} name=${`${p}.right`} errors=${errors} onChange=${(v) => set(i, { ...c, right: v })} />
      <button type="button" aria-label=${`Remove rule ${n}`} onClick=${() => remove(i)}>Remove</button>
    </div>`;
    })}
    <div class="actions">
      <button type="button" aria-label=${depth ? `Add a rule to group ${label.slice(0, -1)}` : undefined}
        onClick=${() => onChange({ [mode]: [...list, newRule()] })}>Add rule</button>
      ${depth + 1 < MAX_DEPTH ? html`<button type="button" aria-label=${depth ? `Add a group to group ${label.slice(0, -1)}` : undefined}
        onClick=${() => onChange({ [mode]: [...list, { any: [newRule()] }] })}>Add group</button>` : null}
      ${onRemove ? html`<button type="button" onClick=${onRemove}>Remove group ${label.slice(0, -1)}</button>` : null}
    </div>
  </div>`;
}

function RuleSet({ rules, onChange, name, errors, legend, readOnly }) {
  return html`<fieldset disabled=${readOnly}><legend>${legend}</legend>
    <${RuleGroup} rules=${rules} onChange=${onChange} name=${name} errors=${errors} label="" depth=${0} />
  </fieldset>`;
}

const EXIT_FIELDS = [['stop_loss_pct', 'Stop loss %'], ['target_pct', 'Target %'], ['trailing_stop_pct', 'Trailing stop %'],
  ['max_hold_days', 'Max holding days']];

export function StrategyEdit({ params, me }) {
  const id = params[0] === 'new' ? null : Number(params[0]);
  const state = useLoad(async () => {
    const models = await api.get('/api/strategies/base-models');
    let s;
    if (id) s = await api.get(`/api/strategies/${id}`);
    else {
      const m = models[0];
      s = { name: '', description: '', base_model: m.name, ...JSON.parse(JSON.stringify(m.defaults)), is_active: true };
    }
    return { models, s };
  }, [id]);
  return html`<${Loading} state=${state}>${(d) => html`<${StrategyForm} key=${id || 'new'} models=${d.models} initial=${d.s} id=${id} me=${me} />`}<//>`;
}

function StrategyForm({ models, initial, id, me }) {
  const [s, setS] = useState(initial);
  const [errors, setErrors] = useState({});
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const mine = !id || initial.owner_id === me.id;
  const model = models.find((m) => m.name === s.base_model) || models[0];
  const modelTitle = model.title || f.baseModel(model.name);
  const upd = (patch) => setS((x) => ({ ...x, ...patch }));
  const changeModel = (name) => {
    const m = models.find((x) => x.name === name);
    upd({ base_model: name, params: { ...m.defaults.params }, ...(id ? {} : { entry_rules: m.defaults.entry_rules, exit_rules: m.defaults.exit_rules }) });
  };
  const body = () => ({ name: s.name, description: s.description || '', base_model: s.base_model, entry_rules: s.entry_rules,
    exit_rules: s.exit_rules, params: s.params, is_active: s.is_active !== false });
  const save = async (e) => {
    e.preventDefault();
    setBusy(true); setErrors({}); setError(null);
    try {
      const saved = id ? await api.put(`/api/strategies/${id}`, body()) : await api.post('/api/strategies', body());
      toast(`Saved “${saved.name}”.`);
      if (!id) navigate(`/strategies/${saved.id}`, true); else setS(saved);
    } catch (err) {
      const fe = err.fieldErrors ? err.fieldErrors() : {};
      setErrors(fe);
      setError(Object.keys(fe).length ? 'Please fix the highlighted fields.' : err.message);
      requestAnimationFrame(() => document.querySelector('.field.invalid input, .field.invalid select, [data-error-for]')?.focus?.());
    } finally { setBusy(false); }
  };
  const act = async (what) => {
    try {
      if (what === 'fork') {
        const made = await api.post(`/api/strategies/${id}/fork`, { name: `${s.name} (my copy)` });
        toast(`Forked into “${made.name}”.`); navigate(`/strategies/${made.id}`);
      } else if (what === 'share') {
        // the state wanted, not a toggle: a retried or doubled click cannot undo itself
        const r = await api.post(`/api/strategies/${id}/share`, { is_public: !s.is_public }); setS(r);
        toast(r.is_public ? 'Shared: everyone can now read and fork it.' : 'No longer public.');
      } else if (what === 'delete') {
        if (!await confirm({ title: `Delete “${s.name}”?`, body: 'Its backtests stay in your history.', confirmLabel: 'Delete', danger: true })) return;
        await api.del(`/api/strategies/${id}`); toast('Deleted.'); navigate('/strategies');
      }
    } catch (err) {
      setError(err.message);  // a 409 says how: retire the portfolios that use it, then delete
    }
  };
  const fieldErr = (n) => errors[n];
  const unmatched = Object.entries(errors);
  return html`<${Page} title=${id ? s.name : 'New strategy'} actions=${id ? html`
      <button type="button" onClick=${() => act('fork')}>Fork</button>
      ${mine ? html`<button type="button" onClick=${() => act('share')}>${s.is_public ? 'Unshare' : 'Share'}</button>
        <button type="button" class="danger" onClick=${() => act('delete')}>Delete</button>` : null}
      <a class="button" href=${`/backtests?strategy_id=${id}`}>Backtest</a>
      ${mine ? html`<a class="button" href=${`/portfolios?deploy=${id}`}>Deploy</a>` : null}` : null}>
    ${error ? html`<div class="banner danger" role="alert" id="form-error"><p>${error}</p>
      ${unmatched.length ? html`<ul>${unmatched.map(([k, v]) => html`<li><code>${k || 'body'}</code>: ${v}</li>`)}</ul>` : null}</div>` : null}
    ${!mine ? html`<p class="banner info">This is ${s.is_template ? 'a template' : 'someone else’s public strategy'}: fork it to change it.</p>` : null}
    <form onSubmit=${save} aria-label="Strategy">
      <fieldset disabled=${!mine}><legend>Strategy</legend><div class="grid-form">
        <${Field} label="Name" name="name" error=${fieldErr('name')}>${(i, d) => html`<input id=${i} aria-describedby=${d} required maxlength="200" value=${s.name} onInput=${(e) => upd({ name: e.target.value })} />`}<//>
        <${Field} label="Base model" name="base_model" error=${fieldErr('base_model')} >${(i, d) => html`<select id=${i} aria-describedby=${d} value=${s.base_model} onChange=${(e) => changeModel(e.target.value)}>
          ${models.map((m) => html`<option value=${m.name}>${m.title || f.baseModel(m.name)}</option>`)}</select>`}<//>
      </div>
      <${Field} label="Description" name="description" error=${fieldErr('description')}>${(i, d) => html`<textarea id=${i} aria-describedby=${d} onInput=${(e) => upd({ description: e.target.value })}>${s.description}</textarea>`}<//>
      <p class="muted small" id="model-about">${sameText(model.description, s.description) ? '' : `${modelTitle}: ${model.description} `}Conviction: ${model.conviction}</p></fieldset>
      <fieldset disabled=${!mine}><legend>Parameters of ${modelTitle}</legend><div class="grid-form">
        ${Object.entries(model.params).map(([k, spec]) => html`<${Field} label=${k.replaceAll('_', ' ')} name=${`params.${k}`} error=${fieldErr(`params.${k}`)} hint=${spec.enum ? f.words(spec.description) : spec.description}>${(i, d) => spec.enum
          ? html`<select id=${i} aria-describedby=${d} value=${s.params[k] ?? spec.default} onChange=${(e) => upd({ params: { ...s.params, [k]: e.target.value } })}>${spec.enum.map((o) => html`<option value=${o}>${f.choice(o)}</option>`)}</select>`
          : html`<input id=${i} aria-describedby=${d} type="number" step=${spec.type === 'integer' ? 1 : 'any'} value=${s.params[k] ?? spec.default}
            onInput=${(e) => upd({ params: { ...s.params, [k]: e.target.value === '' ? null : Number(e.target.value) } })} />`}<//>`)}
      </div></fieldset>
      <${RuleSet} legend="Entry rules" name="entry_rules" rules=${s.entry_rules} errors=${errors} readOnly=${!mine} onChange=${(r) => upd({ entry_rules: r })} />
      <fieldset disabled=${!mine}><legend>Exit rules (empty = off)</legend><div class="grid-form">
        ${EXIT_FIELDS.map(([k, label]) => html`<${Field} label=${label} name=${`exit_rules.${k}`} error=${fieldErr(`exit_rules.${k}`)}>${(i, d) => html`
          <input id=${i} aria-describedby=${d} type="number" step="any" value=${s.exit_rules[k] ?? ''}
            onInput=${(e) => upd({ exit_rules: { ...s.exit_rules, [k]: e.target.value === '' ? null : Number(e.target.value) } })} />`}<//>`)}
      </div>
      <label><input type="checkbox" checked=${!!s.exit_rules.exit_when}
        onChange=${(e) => upd({ exit_rules: { ...s.exit_rules, exit_when: e.target.checked ? { all: [{ left: { ind: 'close' }, op: '<', right: { ind: 'sma', period: 50 } }] } : null } })} />
        Also exit at the next open when a rule set is true at a close</label></fieldset>
      ${s.exit_rules.exit_when ? html`<${RuleSet} legend="Exit when" name="exit_rules.exit_when" rules=${s.exit_rules.exit_when} errors=${errors} readOnly=${!mine}
        onChange=${(r) => upd({ exit_rules: { ...s.exit_rules, exit_when: r } })} />` : null}
      ${mine ? html`<button type="submit" class="primary" disabled=${busy}>${id ? 'Save' : 'Create strategy'}</button>` : null}
    </form>
  <//>`;
}
