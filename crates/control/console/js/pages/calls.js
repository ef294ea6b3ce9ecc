// Calls: the tenant's calls, newest first; new calls and state changes arrive live.
import { api } from '../api.js';
import { watch } from '../live.js';
import { h, mount, time, announce, errorBox, field } from '../ui.js';

const endLabel = e => !e ? '' : e === 'caller_hung_up' ? 'caller hung up' : e === 'agent_ended' ? 'agent ended' : e.replace(/_/g, ' ');

export async function render() {
  const rows = new Map(); // call_id → item
  const status = h('select', { id: 'filter-status' }, h('option', { value: '' }, 'All'), h('option', { value: 'live' }, 'Live'), h('option', { value: 'ended' }, 'Ended'));
  const agent = h('select', { id: 'filter-agent' }, h('option', { value: '' }, 'All agents'));
  const search = h('input', { id: 'filter-search', type: 'search', placeholder: 'call id or caller', autocomplete: 'off' });
  const tbody = h('tbody', { id: 'calls-body' });
  const count = h('p', { class: 'hint', id: 'calls-count', 'aria-live': 'polite' });
  const state = h('span', { class: 'hint', id: 'live-state' }, 'connecting…');

  const visible = c => (!status.value || (status.value === 'live') === !c.ended)
    && (!agent.value || c.agent_id === agent.value)
    && (!search.value || `${c.call_id} ${c.caller || ''}`.toLowerCase().includes(search.value.trim().toLowerCase()));

  function row(c) {
    return h('tr', { 'data-call': c.call_id },
      h('td', {}, h('a', { href: `#/calls/${encodeURIComponent(c.call_id)}` }, c.call_id)),
      h('td', {}, h('span', { class: `badge ${c.ended ? 'ended' : 'live'}` }, c.ended ? 'ended' : 'live'), ' ', h('span', { class: 'hint' }, endLabel(c.end))),
      h('td', {}, c.agent_id || '—'),
      h('td', { class: 'hide-narrow' }, c.caller || '—'),
      h('td', {}, time(c.started_unix_ms)),
      h('td', { class: 'hide-narrow' }, String(c.events || 0)));
  }

  function draw() {
    const list = [...rows.values()].sort((a, b) => b.started_unix_ms - a.started_unix_ms || a.call_id.localeCompare(b.call_id));
    const shown = list.filter(visible);
    tbody.replaceChildren(...shown.map(row));
    count.textContent = `${shown.length} of ${list.length} calls, ${list.filter(c => !c.ended).length} live`;
    const agents = [...new Set(list.map(c => c.agent_id).filter(Boolean))].sort();
    const keep = agent.value;
    agent.replaceChildren(h('option', { value: '' }, 'All agents'), ...agents.map(a => h('option', { value: a }, a)));
    agent.value = keep;
  }

  async function load() {
    const page = await api('/v1/calls?limit=200');
    const live = await api('/v1/calls/live');
    for (const c of page.data) rows.set(c.call_id, { ...rows.get(c.call_id), ...c });
    for (const l of live.data) {
      const c = rows.get(l.call_id) || { call_id: l.call_id, started_unix_ms: l.started_unix_ms, events: 0 };
      rows.set(l.call_id, { ...c, agent_id: c.agent_id || l.agent_id, ended: false });
    }
    draw();
  }

  let pending = null;
  const redraw = () => { if (!pending) pending = setTimeout(() => { pending = null; draw(); }, 150); };

  function onEvent(e) {
    let c = rows.get(e.call_id);
    if (!c) {
      c = { call_id: e.call_id, started_unix_ms: e.unix_ms, events: 0, ended: false };
      rows.set(e.call_id, c);
    }
    c.events = (c.events || 0) + 1;
    if (e.kind === 'call_started') {
      c.agent_id = e.data.agent_id; c.caller = e.data.caller; c.started_unix_ms = e.unix_ms; c.ended = false;
      announce(`New call ${e.call_id}${c.agent_id ? ` to ${c.agent_id}` : ''}`);
    } else if (e.kind === 'call_ended') {
      c.ended = true; c.end = e.data.end;
      announce(`Call ${e.call_id} ended`);
    }
    redraw();
  }

  for (const el of [status, agent]) el.addEventListener('change', draw);
  search.addEventListener('input', draw);

  mount(
    h('h1', {}, 'Calls'),
    h('form', { class: 'filters', role: 'search', onsubmit: ev => ev.preventDefault() },
      field('Status', status), field('Agent', agent), field('Search', search), state),
    count,
    h('div', { class: 'table-wrap' }, h('table', { id: 'calls' },
      h('caption', { class: 'visually-hidden' }, 'Calls, newest first'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Call'), h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col' }, 'Agent'),
        h('th', { scope: 'col', class: 'hide-narrow' }, 'Caller'), h('th', { scope: 'col' }, 'Started'), h('th', { scope: 'col', class: 'hide-narrow' }, 'Events'))),
      tbody)));
  try { await load(); } catch (e) { document.getElementById('main').append(errorBox(e)); }
  return watch({ onEvent, onLagged: () => load().catch(() => {}), onState: st => { state.textContent = st === 'open' ? '● live' : 'reconnecting…'; } });
}
