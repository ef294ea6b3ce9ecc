// One agent: edit its prompt or rule-book (checked as you type, findings shown beside the
// editor), voice, language, providers and tools; publish a new version; browse versions.
import { api } from '../api.js';
import { can } from '../auth.js';
import { h, mount, time, errorBox, field, announce } from '../ui.js';

function lineOf(at) {
  const m = /^line (\d+)(?:, column (\d+))?/.exec(at || '');
  return m ? { line: Number(m[1]), column: Number(m[2] || 1) } : null;
}

function jump(textarea, pos) {
  const lines = textarea.value.split('\n');
  let offset = 0;
  for (let i = 0; i < pos.line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
  offset += Math.max(0, pos.column - 1);
  textarea.focus();
  textarea.setSelectionRange(offset, offset);
}

export async function render(agentId) {
  const agent = await api(`/v1/agents/${encodeURIComponent(agentId)}`);
  const versions = (await api(`/v1/agents/${encodeURIComponent(agentId)}/versions`)).data.sort((a, b) => b.version - a.version);
  const latest = versions[0];
  const editable = can('editor');

  const kind = h('select', { name: 'kind' }, h('option', { value: 'rulebook' }, 'Rule-book (TOML)'), h('option', { value: 'prompt' }, 'Prompt (LLM)'));
  const bodyText = h('textarea', { name: 'body', spellcheck: 'false', 'aria-describedby': 'lint-summary' });
  const voice = h('input', { name: 'voice', autocomplete: 'off' });
  const language = h('input', { name: 'language', autocomplete: 'off', placeholder: 'en-US, hi-IN, …' });
  const stt = h('input', { name: 'stt', autocomplete: 'off', placeholder: 'deepgram, local' });
  const tts = h('input', { name: 'tts', autocomplete: 'off', placeholder: 'cartesia, local' });
  const model = h('input', { name: 'model', autocomplete: 'off', placeholder: 'claude-haiku-4-5' });
  const tools = h('textarea', { name: 'tools', spellcheck: 'false', style: { minHeight: '6rem' } });
  const lintSummary = h('p', { id: 'lint-summary', class: 'hint', 'aria-live': 'polite' });
  const lintList = h('ul', { class: 'lint', id: 'lint' });
  const result = h('div', { id: 'publish-result', 'aria-live': 'polite' });
  const publish = h('button', { type: 'submit', id: 'publish', disabled: !editable }, 'Publish new version');
  for (const el of [kind, bodyText, voice, language, stt, tts, model, tools]) el.disabled = !editable;

  function load(v) {
    kind.value = v ? v.kind : 'rulebook';
    bodyText.value = v ? v.body : '';
    voice.value = v ? v.voice : '';
    language.value = v ? v.language : '';
    const p = (v && v.providers) || {};
    stt.value = (p.stt || []).join(', ');
    tts.value = (p.tts || []).join(', ');
    model.value = p.model || '';
    tools.value = JSON.stringify((v && v.tools) || [], null, 2);
  }

  function spec() {
    const chain = s => s.split(',').map(x => x.trim()).filter(Boolean);
    const providers = {};
    if (chain(stt.value).length) providers.stt = chain(stt.value);
    if (chain(tts.value).length) providers.tts = chain(tts.value);
    if (model.value.trim()) providers.model = model.value.trim();
    let toolList;
    try { toolList = JSON.parse(tools.value || '[]'); } catch (e) { throw Object.assign(new Error(`Tools: not JSON (${e.message})`), { code: 'invalid_tools_json' }); }
    if (!Array.isArray(toolList)) throw Object.assign(new Error('Tools: a JSON array of tools'), { code: 'invalid_tools_json' });
    return { kind: kind.value, body: bodyText.value, voice: voice.value.trim(), language: language.value.trim(), providers, tools: toolList };
  }

  let seq = 0, errors = 0;
  async function check() {
    const mine = ++seq;
    let report;
    try { report = await api(`/v1/agents/${encodeURIComponent(agentId)}/lint`, { method: 'POST', body: spec() }); } catch (e) { report = { lints: [{ severity: 'error', at: 'form', message: e.message }] }; }
    if (mine !== seq) return;
    errors = report.lints.filter(l => l.severity === 'error').length;
    const warnings = report.lints.length - errors;
    bodyText.setAttribute('aria-invalid', errors ? 'true' : 'false');
    lintSummary.textContent = report.lints.length ? `${errors} error(s), ${warnings} warning(s)` : 'No problems found.';
    lintList.replaceChildren(...report.lints.map(l => {
      const pos = lineOf(l.at);
      return h('li', { class: l.severity }, h('strong', {}, `${l.severity}: `), pos ? h('a', { href: '#', onclick: ev => { ev.preventDefault(); jump(bodyText, pos); } }, l.at) : l.at, ` — ${l.message}`);
    }));
    publish.disabled = !editable || errors > 0;
  }
  let timer = null;
  const soon = () => { clearTimeout(timer); timer = setTimeout(check, 400); };

  const form = h('form', { id: 'agent-form', onsubmit: async ev => {
    ev.preventDefault();
    result.replaceChildren();
    try {
      const current = (await api(`/v1/agents/${encodeURIComponent(agentId)}`)).latest_version;
      const v = await api(`/v1/agents/${encodeURIComponent(agentId)}/versions`, { method: 'POST', body: { ...spec(), expected_latest: current } });
      result.replaceChildren(h('p', { role: 'status' }, `Published version ${v.version}.`));
      announce(`Published version ${v.version}`);
      setTimeout(() => window.dispatchEvent(new HashChangeEvent('hashchange')), 800);
    } catch (e) { result.replaceChildren(errorBox(e)); }
  } },
  h('div', { class: 'grid' }, field('Kind', kind), field('Voice', voice), field('Language', language)),
  field('Prompt or rule-book', bodyText), lintSummary, lintList,
  h('div', { class: 'grid' }, field('Speech-to-text chain', stt), field('Text-to-speech chain', tts), field('LLM model', model)),
  field('Tools (JSON)', tools),
  h('p', {}, publish), result);
  for (const el of [kind, bodyText, tools, stt, tts, model, voice, language]) el.addEventListener('input', soon);

  const versionRows = versions.map(v => h('tr', {}, h('td', {}, `v${v.version}`), h('td', {}, v.kind), h('td', {}, time(v.created_at)),
    h('td', {}, h('button', { type: 'button', class: 'secondary', onclick: () => { load(v); check(); announce(`Version ${v.version} loaded into the editor`); bodyText.focus(); } }, `Edit from v${v.version}`))));

  load(latest);
  mount(h('p', {}, h('a', { href: '#/agents' }, '← All agents')),
    h('h1', {}, agent.name || agent.id),
    h('p', {}, latest ? `Latest: version ${latest.version}. ` : 'Not published yet. ', latest ? h('a', { href: `#/talk/${encodeURIComponent(agentId)}`, id: 'talk-link' }, 'Talk to this agent') : null),
    form,
    h('h2', {}, 'Versions'),
    versions.length ? h('div', { class: 'table-wrap' }, h('table', { id: 'versions' }, h('thead', {}, h('tr', {}, ['Version', 'Kind', 'Published'].map(t => h('th', { scope: 'col' }, t)), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))), h('tbody', {}, versionRows))) : h('p', { class: 'hint' }, 'None yet.'));
  check();
  return () => clearTimeout(timer);
}
