// Usage and invoices: this month's usage per day (call minutes chart), totals per metric and
// provider, and the invoices of past months.
import { api } from '../api.js';
import { h, s, mount, errorBox, field } from '../ui.js';

const LABELS = { call_ms: 'call minutes', stt_ms: 'speech-to-text minutes', llm_input_tokens: 'LLM input tokens', llm_output_tokens: 'LLM output tokens', llm_cached_tokens: 'LLM cached tokens', tts_characters: 'TTS characters' };
const show = (metric, q) => metric.endsWith('_ms') ? (q / 60000).toFixed(1) : q.toLocaleString();
const money = micros => (micros / 1e6).toFixed(2);

// A bar chart (SVG) of `bars` ({label, value}); `what` names it for screen readers.
function chart(id, what, unit, bars) {
  const W = 600, H = 180, pad = 24;
  const max = Math.max(...bars.map(d => d.value), 0.1);
  const bw = (W - pad) / bars.length;
  const every = Math.ceil(bars.length / 7);
  return s('svg', { class: 'chart', id, viewBox: `0 0 ${W} ${H + 16}`, role: 'img', 'aria-labelledby': `${id}-title` },
    s('title', { id: `${id}-title` }, `${what}: ${bars.filter(d => d.value).map(d => `${d.label} ${d.value.toFixed(1)}`).join(', ') || 'none'}`),
    s('text', { x: 0, y: 10 }, `${max.toFixed(1)} ${unit}`),
    bars.map((d, i) => {
      const bh = d.value / max * (H - 20);
      return [s('rect', { x: pad + i * bw + 1, y: H - bh, width: Math.max(bw - 2, 1), height: bh }),
        i % every === 0 ? s('text', { x: pad + i * bw, y: H + 12 }, d.label) : null];
    }));
}

// The last `n` closed months, oldest first: YYYY-MM (UTC).
function closedMonths(now, n) {
  return Array.from({ length: n }, (_, i) => {
    const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - n + i, 1));
    return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
  });
}

export async function render() {
  const now = new Date();
  const from = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  const dayMs = 86400000;
  const n = Math.ceil((Date.now() - from) / dayMs);
  const [daily, month] = await Promise.all([api(`/v1/usage?group_by=day&from_ms=${from}`), api(`/v1/usage?from_ms=${from}`)]);
  const days = Array.from({ length: n }, (_, i) => {
    const ms = daily.lines.filter(l => l.metric === 'call_ms' && l.day_start_ms === from + i * dayMs).reduce((a, l) => a + l.quantity, 0);
    return { label: String(i + 1), value: ms / 60000 };
  });
  const months = closedMonths(now, 6);
  const invoices = await Promise.all(months.map(m => api(`/v1/invoices/${m}`).catch(() => null)));
  const totals = months.map((m, i) => ({ label: m, value: invoices[i] ? invoices[i].total_micros / 1e6 : 0 }));
  const period = h('input', { type: 'month', value: `${now.getUTCFullYear()}-${String(now.getUTCMonth()).padStart(2, '0')}`, max: `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, '0')}` });
  if (now.getUTCMonth() === 0) period.value = `${now.getUTCFullYear() - 1}-12`;
  const invoice = h('div', { id: 'invoice' });
  async function loadInvoice() {
    try {
      const inv = await api(`/v1/invoices/${period.value}`);
      invoice.replaceChildren(h('table', {}, h('caption', {}, `Invoice ${inv.id} for ${inv.period}`),
        h('thead', {}, h('tr', {}, ['Metric', 'Provider', 'Quantity', 'Amount'].map(t => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, inv.lines.map(l => h('tr', {}, h('td', {}, LABELS[l.metric] || l.metric), h('td', {}, l.provider), h('td', {}, show(l.metric, l.quantity)), h('td', {}, money(l.amount_micros))))),
        h('tfoot', {}, h('tr', {}, h('th', { scope: 'row', colspan: 3 }, 'Total'), h('td', {}, money(inv.total_micros))))));
    } catch (e) { invoice.replaceChildren(errorBox(e)); }
  }
  period.addEventListener('change', loadInvoice);
  mount(h('h1', {}, 'Usage'),
    h('section', { 'aria-labelledby': 'h-month' }, h('h2', { id: 'h-month' }, 'This month'), chart('minutes-chart', 'Call minutes per day', 'min', days),
      h('div', { class: 'table-wrap' }, h('table', { id: 'usage' }, h('thead', {}, h('tr', {}, ['Metric', 'Provider', 'Quantity'].map(t => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, month.lines.length ? month.lines.map(l => h('tr', {}, h('td', {}, LABELS[l.metric] || l.metric), h('td', {}, l.provider), h('td', {}, show(l.metric, l.quantity))))
          : h('tr', {}, h('td', { colspan: 3, class: 'hint' }, 'No usage this month yet.')))))),
    h('section', { 'aria-labelledby': 'h-invoices' }, h('h2', { id: 'h-invoices' }, 'Invoices'),
      chart('invoice-chart', 'Invoice totals of the last six months', '', totals), h('form', { class: 'filters', onsubmit: ev => { ev.preventDefault(); loadInvoice(); } }, field('Month', period), h('button', { type: 'submit', class: 'secondary' }, 'Show invoice')), invoice));
  loadInvoice();
}
