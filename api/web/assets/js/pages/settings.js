// Settings: link or unlink Telegram (the bot answers commands and carries Approve/Reject buttons).
import { html, Page, useLoad, Loading, confirm, toast } from '../ui.js';
import * as api from '../api.js';
import * as f from '../format.js';

export function TelegramPanel() {
  const state = useLoad(() => api.get('/api/notifications/telegram'));
  const link = async () => {
    try {
      const r = await api.post('/api/notifications/telegram/link');
      window.open(r.url, '_blank', 'noopener');
      toast(`Press Start in the Telegram chat with @${r.bot} (the code works once, for 15 minutes).`);
      state.reload();
    } catch (e) { toast(e.message, 'error'); }
  };
  const unlink = async () => {
    if (!await confirm({ title: 'Unlink Telegram?', body: 'The chat stops receiving messages and can no longer act for you.', confirmLabel: 'Unlink', danger: true })) return;
    try { await api.del('/api/notifications/telegram'); toast('Telegram unlinked.'); state.reload(); } catch (e) { toast(e.message, 'error'); }
  };
  return html`<section aria-labelledby="tg-h" id="telegram"><h2 id="tg-h">Telegram</h2>
    <${Loading} state=${state}>${(t) => (!t.configured
      ? html`<p class="muted">Telegram is not set up on this server (TRADERTAPE_TELEGRAM_BOT_TOKEN).</p>`
      : t.linked
        ? html`<p id="telegram-state">Linked to ${t.username ? `@${t.username}` : 'a chat'} since ${f.dateTime(t.linked_at)}.</p>
          <button type="button" class="danger" onClick=${unlink}>Unlink Telegram</button>`
        : html`<p id="telegram-state">Not linked. Link a chat to get signals with Approve / Reject buttons, and /status, /pending, /positions, /pause, /resume, /kill.</p>
          <button type="button" class="primary" onClick=${link}>Link Telegram</button>`)}<//>
  </section>`;
}

export function Settings() {
  return html`<${Page} title="Settings">
    <p><a href="/settings/notifications">Notification preferences</a>: what you are told, on which channel, and quiet hours.</p>
    <${TelegramPanel} /><//>`;
}
