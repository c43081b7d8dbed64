import { html, Page, Table, Card, Field, useLoad, Loading, useState, confirm, toast } from '../ui.js';
import * as api from '../api.js';
import * as f from '../format.js';

export function Family({ query, me }) {
  const [name, setName] = useState('');
  const [invite, setInvite] = useState({});
  const linkGroup = query.get('group_id');
  const linkToken = query.get('token');
  const state = useLoad(async () => {
    const [groups, invitations] = await Promise.all([api.get('/api/family/groups'), api.get('/api/family/invitations')]);
    const consolidated = await Promise.all(groups.map((g) => api.get('/api/family/consolidated', { group_id: g.id }).catch(() => null)));
    return { groups, invitations, consolidated };
  });
  const run = async (fn, msg) => { try { await fn(); toast(msg); state.reload(); } catch (e) { toast(e.message, 'error'); } };
  const accept = (groupId, token) => run(() => api.post(`/api/family/groups/${groupId}/accept`, token ? { token } : undefined), 'You joined the group.');
  return html`<${Page} title="Family">
    ${linkGroup ? html`<div class="banner info" id="invite-link"><p>You were invited to a family group.</p>
      <button type="button" class="primary" onClick=${() => accept(linkGroup, linkToken)}>Accept the invitation</button></div>` : null}
    <${Loading} state=${state}>${(d) => html`
      ${d.invitations.length ? html`<${Table} caption="Invitations to you" id="invitations" rows=${d.invitations} rowKey=${(i) => i.id}
        columns=${[{ key: 'group_name', label: 'Group', render: (i) => i.group_name || `#${i.group_id}` }, { key: 'created_at', label: 'Invited', render: (i) => f.dateTime(i.created_at) },
          { key: 'expires_at', label: 'Expires', render: (i) => f.dateTime(i.expires_at) },
          { key: 'act', label: '', nosort: true, render: (i) => html`<button type="button" class="primary" onClick=${() => accept(i.group_id)}>Accept</button>` }]} />` : null}
      ${d.groups.map((g, gi) => { const c = d.consolidated[gi]; const owner = g.role === 'owner'; return html`<section class="group" aria-labelledby=${`g-${g.id}`} data-group=${g.id}>
        <h2 id=${`g-${g.id}`}>${g.name} <span class="muted small">(${g.role})</span></h2>
        ${c ? html`<div class="cards">
          <${Card} label="Family invested" value=${f.inr(c.total.invested)} /><${Card} label="Current value" value=${f.inr(c.total.current_value)} />
          <${Card} label="Realised P&L" value=${f.pnl(c.total.realized_pnl)} tone=${f.tone(c.total.realized_pnl)} />
          <${Card} label="Unrealised P&L" value=${f.pnl(c.total.unrealized_pnl)} tone=${f.tone(c.total.unrealized_pnl)} />
          <${Card} label="XIRR" value=${c.total.xirr == null ? '—' : f.pct(c.total.xirr, 2, true)} /></div>
        <${Table} caption="Members" id=${`members-${g.id}`} rows=${c.members} rowKey=${(m) => m.account_id}
          columns=${[{ key: 'email', label: 'Member' }, { key: 'role', label: 'Role' },
            { key: 'invested', label: 'Invested', num: true, render: (m) => f.inr(m.invested) },
            { key: 'current_value', label: 'Value', num: true, render: (m) => f.inr(m.current_value) },
            { key: 'realized_pnl', label: 'Realised', num: true, render: (m) => f.pnl(m.realized_pnl) },
            { key: 'act', label: '', nosort: true, render: (m) => (owner && m.account_id !== me.id ? html`<button type="button"
              onClick=${async () => { if (await confirm({ title: `Remove ${m.email}?`, body: 'They stop seeing the family totals.', confirmLabel: 'Remove', danger: true })) run(() => api.del(`/api/family/groups/${g.id}/members/${m.account_id}`), 'Removed.'); }}>Remove</button>` : '') }]} />
        <${Table} caption="Top holdings across the family" id=${`top-${g.id}`} rows=${c.top_holdings} rowKey=${(h) => h.isin || h.symbol}
          columns=${[{ key: 'symbol', label: 'Holding' }, { key: 'members', label: 'Members', num: true },
            { key: 'invested', label: 'Invested', num: true, render: (h) => f.inr(h.invested) }, { key: 'current_value', label: 'Value', num: true, render: (h) => f.inr(h.current_value) }]} />` : null}
        ${(g.pending_invitations || []).length ? html`<p class="muted">Invited: ${g.pending_invitations.map((i) => i.email).join(', ')}</p>` : null}
        ${owner ? html`<form class="actions" aria-label=${`Invite to ${g.name}`} onSubmit=${(e) => { e.preventDefault(); run(() => api.post(`/api/family/groups/${g.id}/invite`, { email: invite[g.id] || '' }), 'Invitation sent.'); }}>
          <label for=${`inv-${g.id}`}>Invite by email</label><input id=${`inv-${g.id}`} type="email" autocomplete="off" required value=${invite[g.id] || ''}
            onInput=${(e) => setInvite({ ...invite, [g.id]: e.target.value })} /><button type="submit">Invite</button></form>`
          : html`<button type="button" onClick=${async () => { if (await confirm({ title: `Leave ${g.name}?`, body: 'You stop sharing your totals with them.', confirmLabel: 'Leave', danger: true })) run(() => api.post(`/api/family/groups/${g.id}/leave`), 'You left the group.'); }}>Leave the group</button>`}
      </section>`; })}
      ${d.groups.length ? null : html`<p id="family-intro">A family group puts your household's investments side by side: each
        member keeps their own account and imports, and everyone in the group sees the family's combined invested amount,
        value, P&L and XIRR, each member's totals and the top holdings. Create a group, then invite members by email.</p>`}
      <form class="actions" aria-label="Create a family group" onSubmit=${(e) => { e.preventDefault(); run(() => api.post('/api/family/groups', { name }), 'Group created.'); setName(''); }}>
        <label for="new-group">New group name</label><input id="new-group" required maxlength="100" value=${name} onInput=${(e) => setName(e.target.value)} />
        <button type="submit">Create group</button></form>`}<//>
  <//>`;
}
