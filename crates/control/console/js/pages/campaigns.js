// Campaigns: progress of each outbound campaign (refreshed every few seconds) with start,
// pause, resume and cancel.
import { api, all } from '../api.js';
import { can } from '../auth.js';
import { h, mount, time, errorBox, announce } from '../ui.js';

const ACTIONS = { draft: ['start', 'cancel'], running: ['pause', 'cancel'], paused: ['resume', 'cancel'] };

export async function render() {
  const body = h('tbody', { id: 'campaigns-body' });
  const out = h('div', { 'aria-live': 'polite' });
  let timer = null;
  async function refresh() {
    const list = await all('/v1/campaigns');
    const full = await Promise.all(list.map(c => api(`/v1/campaigns/${encodeURIComponent(c.id)}`)));
    body.replaceChildren(...full.map(c => {
      const p = c.progress || { total: 0, done: 0, failed: 0, pending: 0, dialing: 0 };
      const finished = p.done + p.failed;
      return h('tr', { 'data-campaign': c.id },
        h('td', {}, c.name, h('div', { class: 'hint' }, c.id)),
        h('td', {}, c.agent_id),
        h('td', {}, c.status),
        h('td', {}, h('progress', { max: p.total || 1, value: finished, 'aria-label': `${c.name}: ${finished} of ${p.total} contacts finished` }),
          h('div', { class: 'hint' }, `${p.done} done, ${p.failed} failed, ${p.dialing} dialling, ${p.pending} waiting`)),
        h('td', { class: 'hide-narrow' }, time(c.created_at)),
        h('td', {}, can('editor') ? (ACTIONS[c.status] || []).map(a => h('button', { type: 'button', class: 'secondary', onclick: async () => {
          try { await api(`/v1/campaigns/${encodeURIComponent(c.id)}/${a}`, { method: 'POST' }); announce(`Campaign ${c.name}: ${a}`); refresh(); } catch (e) { out.replaceChildren(errorBox(e)); }
        } }, a[0].toUpperCase() + a.slice(1))) : ''));
    }));
    if (!full.length) body.replaceChildren(h('tr', {}, h('td', { colspan: 6, class: 'hint' }, 'No campaigns yet (create them with POST /v1/campaigns).')));
    clearTimeout(timer);
    timer = setTimeout(() => refresh().catch(() => {}), 3000);
  }
  mount(h('h1', {}, 'Campaigns'), out,
    h('div', { class: 'table-wrap' }, h('table', { id: 'campaigns' }, h('thead', {}, h('tr', {},
      ['Campaign', 'Agent', 'Status', 'Progress'].map(t => h('th', { scope: 'col' }, t)), h('th', { scope: 'col', class: 'hide-narrow' }, 'Created'), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))), body)));
  await refresh();
  return () => clearTimeout(timer);
}
