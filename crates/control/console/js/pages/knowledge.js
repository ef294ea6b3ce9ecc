// Knowledge bases: create one, upload documents (PDF, Markdown, HTML, text) and watch them
// being indexed; try a search.
import { api, all } from '../api.js';
import { can } from '../auth.js';
import { h, mount, time, errorBox, field, announce } from '../ui.js';

const TYPES = { pdf: 'application/pdf', md: 'text/markdown', markdown: 'text/markdown', html: 'text/html', htm: 'text/html', txt: 'text/plain' };

export async function render() {
  const kbs = await all('/v1/knowledge-bases');
  const timers = [];
  const sections = kbs.map(kb => {
    const docs = h('tbody');
    const status = h('p', { class: 'hint', 'aria-live': 'polite' });
    async function refresh() {
      const list = await all(`/v1/knowledge-bases/${encodeURIComponent(kb.id)}/documents`);
      docs.replaceChildren(...list.map(d => h('tr', { 'data-doc': d.id }, h('td', {}, d.title), h('td', { class: 'hide-narrow' }, d.id),
        h('td', {}, d.status === 'ready' ? `ready · ${d.chunks} chunks` : d.status === 'failed' ? h('span', { class: 'error' }, 'failed') : h('span', {}, h('progress', { 'aria-label': `indexing ${d.title}` }), ` ${d.status}`)),
        h('td', { class: 'hide-narrow' }, time(d.updated_at)))));
      const busy = list.filter(d => d.status !== 'ready' && d.status !== 'failed').length;
      status.textContent = `${list.length} documents${busy ? `, ${busy} indexing` : ''}`;
      if (busy) timers.push(setTimeout(refresh, 1000));
    }
    const file = h('input', { type: 'file', accept: '.pdf,.md,.markdown,.html,.htm,.txt' });
    const out = h('div', { 'aria-live': 'polite' });
    const upload = can('editor') ? h('form', { class: 'filters', onsubmit: async ev => {
      ev.preventDefault();
      const f = file.files[0];
      if (!f) { out.replaceChildren(errorBox({ message: 'Choose a file first.' })); return; }
      const ext = f.name.split('.').pop().toLowerCase();
      const id = f.name.replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9_-]+/g, '-').slice(0, 100) || 'document';
      try {
        await api(`/v1/knowledge-bases/${encodeURIComponent(kb.id)}/documents?id=${encodeURIComponent(id)}&title=${encodeURIComponent(f.name)}`,
          { method: 'POST', body: f, headers: { 'Content-Type': TYPES[ext] || f.type || 'text/plain' } });
        out.replaceChildren(h('p', { role: 'status' }, `Uploaded ${f.name}; indexing…`));
        announce(`Uploaded ${f.name}`);
        refresh();
      } catch (e) { out.replaceChildren(errorBox(e)); }
    } }, field('Document', file), h('button', { type: 'submit' }, 'Upload')) : null;
    const q = h('input', { type: 'search', autocomplete: 'off' });
    const hits = h('ol');
    const search = h('form', { class: 'filters', role: 'search', onsubmit: async ev => {
      ev.preventDefault();
      try {
        const r = await api(`/v1/knowledge-bases/${encodeURIComponent(kb.id)}/search?q=${encodeURIComponent(q.value)}&k=3`);
        hits.replaceChildren(...(r.data || r).map(x => h('li', {}, h('strong', {}, x.score.toFixed(2)), ' ', x.text.slice(0, 300))));
      } catch (e) { hits.replaceChildren(h('li', {}, errorBox(e))); }
    } }, field('Search this knowledge base', q), h('button', { type: 'submit', class: 'secondary' }, 'Search'));
    refresh().catch(e => status.replaceChildren(errorBox(e)));
    return h('section', { class: 'panel', 'aria-labelledby': `kb-${kb.id}` },
      h('h2', { id: `kb-${kb.id}` }, kb.name, ' ', h('span', { class: 'hint' }, `${kb.id} · ${kb.embed_model}`)),
      status, h('div', { class: 'table-wrap' }, h('table', {}, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Title'), h('th', { scope: 'col', class: 'hide-narrow' }, 'Id'), h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col', class: 'hide-narrow' }, 'Updated'))), docs)),
      upload, out, search, hits);
  });
  const id = h('input', { required: true, pattern: '[A-Za-z0-9_\\-]{1,128}', autocomplete: 'off' });
  const name = h('input', { required: true, autocomplete: 'off' });
  const out = h('div');
  const create = can('editor') ? h('form', { class: 'filters', onsubmit: async ev => {
    ev.preventDefault();
    try { await api('/v1/knowledge-bases', { method: 'POST', body: { id: id.value.trim(), name: name.value.trim() } }); window.dispatchEvent(new HashChangeEvent('hashchange')); } catch (e) { out.replaceChildren(errorBox(e)); }
  } }, field('Knowledge base id', id), field('Name', name), h('button', { type: 'submit' }, 'Create')) : null;
  mount(h('h1', {}, 'Knowledge'), kbs.length ? null : h('p', { class: 'hint' }, 'No knowledge bases yet.'), ...sections,
    create ? h('h2', {}, 'New knowledge base') : null, create, out);
  return () => timers.forEach(clearTimeout);
}
