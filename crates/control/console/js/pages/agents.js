// Agents: the tenant's voice agents; create one.
import { api, all } from '../api.js';
import { can } from '../auth.js';
import { h, mount, time, errorBox, field } from '../ui.js';

export async function render() {
  const agents = await all('/v1/agents');
  const body = h('tbody', {}, agents.map(a => h('tr', {},
    h('td', {}, h('a', { href: `#/agents/${encodeURIComponent(a.id)}` }, a.name || a.id)),
    h('td', {}, a.id),
    h('td', {}, a.latest_version ? `v${a.latest_version}` : 'not published'),
    h('td', { class: 'hide-narrow' }, time(a.created_at)),
    h('td', {}, a.latest_version ? h('a', { href: `#/talk/${encodeURIComponent(a.id)}` }, 'Talk') : ''))));
  const out = h('div', { id: 'create-result' });
  const id = h('input', { name: 'id', required: true, pattern: '[A-Za-z0-9_\\-]{1,128}', autocomplete: 'off' });
  const name = h('input', { name: 'name', required: true, autocomplete: 'off' });
  const create = can('editor') ? h('form', { class: 'filters', id: 'create-agent', onsubmit: async ev => {
    ev.preventDefault();
    try {
      await api('/v1/agents', { method: 'POST', body: { id: id.value.trim(), name: name.value.trim() } });
      location.hash = `#/agents/${encodeURIComponent(id.value.trim())}`;
    } catch (e) { out.replaceChildren(errorBox(e)); }
  } }, field('Agent id', id), field('Name', name), h('button', { type: 'submit' }, 'Create agent')) : null;
  mount(h('h1', {}, 'Agents'),
    h('div', { class: 'table-wrap' }, h('table', { id: 'agents' }, h('caption', { class: 'visually-hidden' }, 'Agents'),
      h('thead', {}, h('tr', {}, ['Name', 'Id', 'Version'].map(t => h('th', { scope: 'col' }, t)), h('th', { scope: 'col', class: 'hide-narrow' }, 'Created'), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
      body)),
    agents.length ? null : h('p', { class: 'hint' }, 'No agents yet.'),
    create ? h('h2', {}, 'New agent') : null, create, out);
}
