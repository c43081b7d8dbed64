// Notifications: the bell (unread count, live), the list (read/unread, delivery status) and
// Settings → Notifications (each kind on/off per channel, quiet hours in IST).
import { html, Page, Loading, useLoad, useState, useEffect, toast, ScrollX } from '../ui.js';
import * as api from '../api.js';
import * as f from '../format.js';
import { onNotification } from '../ticks.js';

const STATUS = { sent: 'sent', pending: 'waiting', failed: 'failed', skipped: 'skipped' };

// Drawn, not a character: an emoji bell shows as an empty box where no emoji font is installed (headless
// Chromium, many Linux desktops).
const BELL = html`<svg class="bell-icon" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false"
  fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">
  <path d="M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9" /><path d="M10.3 21a1.94 1.94 0 0 0 3.4 0" /></svg>`;

/** The bell in the top bar: unread count, kept live by the WebSocket push. */
export function NotificationBell() {
  const [unread, setUnread] = useState(null);
  useEffect(() => {
    let gone = false;
    api.get('/api/notifications/unread-count', undefined, { quiet401: true })
      .then((r) => { if (!gone) setUnread(r.unread); }, () => {});
    const off = onNotification((msg) => {
      setUnread(msg.unread);
      toast(msg.notification.title, 'info');
    });
    const onRead = (e) => setUnread(e.detail);
    addEventListener('tt-unread', onRead);
    return () => { gone = true; off(); removeEventListener('tt-unread', onRead); };
  }, []);
  const label = unread ? `Notifications: ${unread} unread` : 'Notifications';
  return html`<a class="bell" href="/notifications" aria-label=${label} title=${label}>${BELL}${unread
    ? html`<span class="bell-count" data-unread=${unread}>${unread > 99 ? '99+' : unread}</span>` : null}</a>`;
}

function lines(n) {
  const items = n.items || [];
  if (n.kind === 'daily_digest') return (items[0]?.lines || []).map((l) => l.line);
  return items.map((i) => {
    const who = i.portfolio ? ` (${i.portfolio})` : '';
    switch (n.kind) {
      case 'signal_pending': return `BUY ${i.quantity} ${i.symbol} at ${f.inr(i.limit_price ?? i.reference_price)}${who}, expires ${f.dateTime(i.expires_at)}`;
      case 'signal_expiring': return `${i.symbol}${who} expires ${f.dateTime(i.expires_at)}`;
      case 'cart_placed': return i.refused ? `refused: ${i.symbol}${who} — ${i.reason}` : `placed: BUY ${i.quantity} ${i.symbol}${who}`;
      case 'fill_entry': return `bought ${i.quantity} ${i.symbol} at ${f.inr(i.price)}${who}`;
      case 'fill_exit': return `sold ${i.quantity ?? ''} ${i.symbol} at ${f.inr(i.price)} (${f.words(i.reason)}), P&L ${f.pnl(i.pnl)}${who}`;
      case 'kill_switch': return `day's loss ${f.inr(i.loss)} passed the limit ${f.inr(i.limit)}`;
      case 'import_finished': return `${i.import_kind} import: ${f.number(i.imported, 0)} imported, ${f.number(i.rejected, 0)} rejected`;
      default: return i.text || i.message || '';
    }
  });
}

function Delivery({ d }) {
  const when = d.status === 'pending' && d.next_attempt_at ? ` (next try ${f.dateTime(d.next_attempt_at)})` : '';
  // recorded sent, but the server never answered (the tooltip says whether it will be sent again)
  const doubt = d.status === 'sent' && String(d.error || '').startsWith('in doubt');
  return html`<span class=${'badge ' + (d.status === 'failed' ? 'bad' : d.status === 'sent' && !doubt ? 'good' : '')}
    title=${d.error || ''}>${d.channel}: ${STATUS[d.status] || d.status}${doubt ? ' (unconfirmed)' : ''}${d.attempts > 1 ? `, ${d.attempts} tries` : ''}${when}</span>`;
}

export function Notifications({ query }) {
  const filter = query.get('unread');
  const [round, setRound] = useState(0);
  const state = useLoad(async () => {
    const res = await api.get('/api/notifications', { limit: 100, ...(filter ? { unread: filter } : {}) }, { raw: true });
    return { rows: await res.json(), unread: Number(res.headers.get('X-Unread-Count') || 0) };
  }, [filter, round]);
  useEffect(() => onNotification(() => setRound((r) => r + 1)), []);
  // a delivery under way (sending, or pending its next try within a minute) is read again until it settles:
  // the push tells of new notifications, not of a delivery's progress
  useEffect(() => {
    const now = Date.now();
    const waits = (state.data?.rows || []).flatMap((n) => n.deliveries || []).map((d) => (d.status === 'sending' ? 1500
      : d.status === 'pending' && d.next_attempt_at ? Date.parse(d.next_attempt_at) - now + 1000 : null))
      .filter((ms) => ms !== null && ms < 60000);
    if (!waits.length) return undefined;
    const t = setTimeout(() => setRound((r) => r + 1), Math.max(1000, Math.min(...waits)));
    return () => clearTimeout(t);
  }, [state.data]);
  const read = async (n) => {
    await api.post(`/api/notifications/${n.id}/read`);
    const next = Math.max(0, (state.data?.unread || 1) - 1);
    dispatchEvent(new CustomEvent('tt-unread', { detail: next }));
    setRound(round + 1);
  };
  const tabs = [['', 'All'], ['true', 'Unread'], ['false', 'Read']];
  return html`<${Page} title="Notifications" actions=${html`<a href="/settings/notifications">Settings</a>`}>
    <nav class="tabs" aria-label="Filter">${tabs.map(([v, label]) => html`<a href=${v ? `/notifications?unread=${v}` : '/notifications'}
      aria-current=${(filter || '') === v ? 'page' : undefined}>${label}</a>`)}</nav>
    <${Loading} state=${state}>${({ rows }) => (rows.length === 0
      ? html`<p class="muted">No notifications${filter === 'true' ? ' unread' : ''}.</p>`
      : html`<ul class="notifications" id="notification-list">${rows.map((n) => html`
        <li key=${n.id} class=${n.read ? 'read' : 'unread'} data-id=${n.id} data-kind=${n.kind}>
          <div class="n-head"><a href=${n.link}><strong>${n.title}</strong></a>
            <span class="muted small">${f.dateTime(n.created_at)}</span>
            ${n.read ? null : html`<button type="button" class="small" onClick=${() => read(n)}>Mark read</button>`}</div>
          <ul class="n-items">${lines(n).map((l) => html`<li>${l}</li>`)}</ul>
          <div class="n-deliveries">${n.deliveries.map((d) => html`<${Delivery} d=${d} />`)}</div>
        </li>`)}</ul>`)}<//>
  <//>`;
}

export function NotificationSettings() {
  const state = useLoad(async () => {
    const [prefs, telegram] = await Promise.all([api.get('/api/notifications/preferences'),
      api.get('/api/notifications/telegram').catch(() => null)]);
    return { ...prefs, telegram };
  }, []);
  const [doc, setDoc] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  useEffect(() => { if (state.data) setDoc({ kinds: state.data.kinds, quiet_hours: state.data.quiet_hours }); }, [state.data]);
  const toggle = (kind, channel) => setDoc({ ...doc, kinds: { ...doc.kinds, [kind]: { ...doc.kinds[kind], [channel]: !doc.kinds[kind][channel] } } });
  const quiet = (key, value) => setDoc({ ...doc, quiet_hours: { ...(doc.quiet_hours || { start: '22:00', end: '07:00' }), [key]: value } });
  const save = async (e) => {
    e.preventDefault();
    setBusy(true); setError(null);
    try { await api.put('/api/notifications/preferences', doc); toast('Notification settings saved.'); } catch (err) { setError(err.message); } finally { setBusy(false); }
  };
  // Telegram boxes are disabled (with the reason) when this server has no bot: a ticked box would send nothing
  const off = (p, c) => c === 'telegram' && p.telegram && !p.telegram.configured;
  return html`<${Page} title="Notification settings">
    <${Loading} state=${state}>${(p) => (!doc ? null : html`<form onSubmit=${save} id="notification-settings">
      ${p.channels.includes('telegram') && p.telegram && !p.telegram.configured ? html`<p class="muted" id="telegram-off">Telegram
        is not set up on this server (no bot token), so its boxes are off. Email and the app still work.</p>`
        : p.telegram && !p.telegram.linked && p.channels.includes('telegram') ? html`<p class="muted" id="telegram-off">Telegram
        messages need a linked chat: <a href="/settings">link Telegram in Settings</a>.</p>` : null}
      <${ScrollX}><table class="prefs"><caption>What you are told, and where</caption>
        <thead><tr><th scope="col">Notification</th>${p.channels.map((c) => html`<th scope="col">${c === 'in_app' ? 'In the app' : c === 'email' ? 'Email' : 'Telegram'}</th>`)}</tr></thead>
        <tbody>${Object.keys(p.labels).map((k) => html`<tr><th scope="row">${p.labels[k]}</th>${p.channels.map((c) => html`
          <td class=${off(p, c) ? 'off' : ''}><input type="checkbox" name=${`${k}.${c}`} aria-label=${`${p.labels[k]}: ${c}`}
            checked=${doc.kinds[k][c] && !off(p, c)} disabled=${off(p, c)} title=${off(p, c) ? 'Telegram is not set up on this server' : undefined}
            aria-describedby=${off(p, c) ? 'telegram-off' : undefined} onChange=${() => toggle(k, c)} /></td>`)}</tr>`)}</tbody></table><//>
      <fieldset><legend>Quiet hours (IST)</legend>
        <label><input type="checkbox" name="quiet" checked=${!!doc.quiet_hours}
          onChange=${(e) => setDoc({ ...doc, quiet_hours: e.target.checked ? { start: '22:00', end: '07:00' } : null })} />
          Hold email and Telegram messages during quiet hours (the app's list shows them at once)</label>
        ${doc.quiet_hours ? html`<label>From <input type="time" name="quiet-start" value=${doc.quiet_hours.start} onInput=${(e) => quiet('start', e.target.value)} /></label>
          <label>to <input type="time" name="quiet-end" value=${doc.quiet_hours.end} onInput=${(e) => quiet('end', e.target.value)} /></label>` : null}
      </fieldset>
      ${error ? html`<p class="error" role="alert">${error}</p>` : null}
      <button type="submit" class="primary" disabled=${busy}>${busy ? 'Saving…' : 'Save'}</button>
    </form>`)}<//>
  <//>`;
}
