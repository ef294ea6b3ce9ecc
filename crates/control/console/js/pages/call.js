// One call: what was said (with barge-in and tool markers), where each turn's time went,
// the dual-channel recording, the post-call analysis and the raw timeline. Live while it runs.
import { api } from '../api.js';
import { can } from '../auth.js';
import { watch } from '../live.js';
import { h, mount, time, duration, errorBox, announce } from '../ui.js';

const STAGES = [
  ['end_of_turn', 'end of turn'], ['stt', 'speech to text'], ['brain_first_token', 'LLM first token'],
  ['tts_first_audio', 'TTS first audio'], ['send', 'send'],
];

function transcriptItem(e) {
  const d = e.data || {};
  const at = h('span', { class: 'visually-hidden' }, ` at ${(e.at_ms / 1000).toFixed(1)} s`);
  switch (e.kind) {
    case 'transcript':
      return h('li', { class: 'caller' }, h('span', { class: 'who-said' }, 'Caller:'), d.text, at);
    case 'agent_said': {
      if (!d.text && !d.interrupted) return null;
      return h('li', { class: 'agent' }, h('span', { class: 'who-said' }, 'Agent:'), d.text || '…',
        d.interrupted ? h('span', { class: 'badge failed', title: d.why || '' }, ' interrupted') : null, at);
    }
    case 'barge_in':
      return h('li', { class: 'marker' }, `Barge-in after ${Math.round(d.played_ms || 0)} ms of agent audio; the caller heard “${d.heard || ''}”`,
        d.history_truncated ? h('span', { class: 'cut' }, ` ${String(d.full_text || '').slice((d.heard || '').length)}`) : null);
    case 'tool_called':
      return h('li', { class: 'marker' }, `Tool ${d.name} ${d.ok ? 'succeeded' : 'failed'}`, d.detail ? `: ${typeof d.detail === 'string' ? d.detail : JSON.stringify(d.detail)}` : '');
    case 'dtmf':
      return h('li', { class: 'marker' }, `Keypad: ${d.digit || d.key || JSON.stringify(d)}`);
    case 'call_ended':
      return h('li', { class: 'marker' }, `Call ended: ${String(d.end || '').replace(/_/g, ' ')}${d.reason ? ` (${d.reason})` : ''}`);
    default:
      return null;
  }
}

function waterfall(turns) {
  if (!turns.length) return h('p', { class: 'hint' }, 'No complete agent turn yet.');
  const max = Math.max(...turns.map(t => t.latency_ms.total), 1);
  const legend = h('ul', { class: 'legend' }, STAGES.map(([k, label]) => h('li', {}, h('span', { class: `seg ${k}`, style: { display: 'inline-block', position: 'static' } }), label)));
  const rows = turns.map(t => {
    let x = 0;
    const l = t.latency_ms;
    const segs = STAGES.map(([k]) => {
      const w = (l[k] || 0) / max * 100;
      const el = h('div', { class: `seg ${k}`, style: { left: `${x}%`, width: `${w}%` }, title: `${k}: ${Math.round(l[k])} ms` });
      x += w;
      return el;
    });
    const label = STAGES.map(([k, name]) => `${name} ${Math.round(l[k])} ms`).join(', ');
    return h('div', { class: 'row' }, h('span', {}, `Turn ${t.turn}`),
      h('div', { class: 'bar', role: 'img', 'aria-label': `Turn ${t.turn}: ${label}; engine ${Math.round(t.engine_overhead_ms)} ms` }, segs),
      h('span', {}, `${Math.round(l.total)} ms`));
  });
  return h('div', { class: 'waterfall', id: 'waterfall' }, legend, rows);
}

function analysisPanel(a) {
  if (!a || a.status === 'pending') return h('p', { class: 'hint' }, 'Pending: the analysis runs after the call ends.');
  if (a.status === 'failed') return h('p', { class: 'error' }, `Analysis failed: ${a.error || 'unknown error'}`);
  return h('div', { class: 'panel' },
    h('p', {}, h('strong', {}, 'Summary: '), a.summary || '—'),
    a.success != null ? h('p', {}, h('strong', {}, 'Outcome: '), a.success ? 'success' : 'not achieved', a.success_reason ? ` — ${a.success_reason}` : '') : null,
    a.extraction ? h('details', {}, h('summary', {}, 'Extracted data'), h('pre', {}, JSON.stringify(a.extraction, null, 2))) : null,
    a.analyzer ? h('p', { class: 'hint' }, `by ${a.analyzer}`) : null);
}

export async function render(callId) {
  // Watch first, then read: nothing written in between is missed (duplicates are dropped).
  const early = [];
  let sink = e => early.push(e);
  const stop = watch({ callId, onEvent: e => sink(e) });
  let detail;
  try { detail = await api(`/v1/calls/${encodeURIComponent(callId)}`); } catch (e) {
    stop();
    mount(h('h1', {}, `Call ${callId}`), errorBox(e), h('p', {}, h('a', { href: '#/calls' }, 'All calls')));
    return;
  }
  const events = detail.events;
  const started = events.find(e => e.kind === 'call_started');
  const meta = h('dl', { class: 'grid', id: 'call-meta' });
  const badge = h('span', { id: 'call-status', class: `badge ${detail.status === 'live' ? 'live' : 'ended'}` }, detail.status);
  const transcript = h('ol', { class: 'transcript', id: 'transcript', 'aria-live': 'polite' });
  const wf = h('section', { 'aria-labelledby': 'h-latency' });
  const recording = h('section', { 'aria-labelledby': 'h-recording', id: 'recording' });
  const analysis = h('section', { 'aria-labelledby': 'h-analysis', id: 'analysis' });
  const rawBody = h('tbody');
  const hangup = detail.status === 'live' && can('editor')
    ? h('button', { type: 'button', id: 'hangup', onclick: async () => { try { await api(`/v1/calls/${encodeURIComponent(callId)}/hangup`, { method: 'POST' }); announce('Hanging up'); } catch (e) { hangupBox.append(errorBox(e)); } } }, 'Hang up')
    : null;
  const hangupBox = h('div', {}, hangup);

  function drawMeta() {
    const ended = events.find(e => e.kind === 'call_ended');
    const d = started ? started.data : {};
    const last = events[events.length - 1];
    const items = [['Agent', d.agent_id], ['Caller', d.caller], ['Started', time(started && started.unix_ms)],
      ['Duration', ended ? duration(ended.at_ms) : `${duration(last ? last.at_ms : 0)} so far`],
      ['Ended', ended ? String(ended.data.end || '').replace(/_/g, ' ') : '—'], ['Providers', d.stt ? `${d.stt} · ${d.brain} · ${d.tts}` : '—']];
    meta.replaceChildren(...items.map(([k, v]) => h('div', {}, h('dt', { class: 'hint' }, k), h('dd', { style: { margin: 0 } }, v || '—'))));
  }
  function drawTurns() {
    wf.replaceChildren(h('h2', { id: 'h-latency' }, 'Latency per turn'), waterfall(events.filter(e => e.kind === 'turn_latency').map(e => e.data)));
  }
  function addEvent(e) {
    const li = transcriptItem(e);
    if (li) transcript.append(li);
    rawBody.append(h('tr', {}, h('td', {}, `${(e.at_ms / 1000).toFixed(2)} s`), h('td', {}, e.kind), h('td', {}, JSON.stringify(e.data))));
  }
  async function drawRecording() {
    recording.replaceChildren(h('h2', { id: 'h-recording' }, 'Recording'));
    try {
      const link = await api(`/v1/calls/${encodeURIComponent(callId)}/recording`);
      recording.append(h('audio', { controls: true, preload: 'metadata', src: link.url, id: 'player', 'aria-describedby': 'rec-hint' }),
        h('p', { class: 'hint', id: 'rec-hint' }, 'Stereo: the caller on the left, the agent on the right.'));
    } catch (e) {
      recording.append(h('p', { class: 'hint' }, e.status === 404 ? (detail.status === 'live' ? 'Available when the call ends.' : 'This call has no recording.') : e.message));
    }
  }
  async function drawAnalysis(a) {
    if (!a) { try { a = await api(`/v1/calls/${encodeURIComponent(callId)}/analysis`); } catch (e) { a = { status: 'failed', error: e.message }; } }
    analysis.replaceChildren(h('h2', { id: 'h-analysis' }, 'Analysis'), analysisPanel(a));
  }

  events.forEach(addEvent);
  drawMeta(); drawTurns(); drawAnalysis(detail.analysis);
  mount(
    h('p', {}, h('a', { href: '#/calls' }, '← All calls')),
    h('h1', {}, `Call ${callId} `, badge), meta, hangupBox,
    h('section', { 'aria-labelledby': 'h-transcript' }, h('h2', { id: 'h-transcript' }, 'Transcript'), transcript),
    wf, recording, analysis,
    h('details', { id: 'timeline' }, h('summary', {}, `Timeline (${events.length} events)`),
      h('div', { class: 'table-wrap' }, h('table', { class: 'events' }, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'At'), h('th', { scope: 'col' }, 'Event'), h('th', { scope: 'col' }, 'Data'))), rawBody))));
  drawRecording();

  const key = e => `${e.kind}|${e.at_ms}|${e.unix_ms}`;
  const seen = new Set(events.map(key));
  sink = e => {
    if (seen.has(key(e))) return;
    seen.add(key(e));
    events.push(e);
    addEvent(e);
    drawMeta();
    if (e.kind === 'turn_latency') drawTurns();
    if (e.kind === 'call_ended') {
      badge.textContent = 'ended'; badge.className = 'badge ended';
      if (hangup) hangup.remove();
      announce('The call ended');
      setTimeout(drawRecording, 1500);
    }
    if (e.kind === 'recording_saved') drawRecording();
    if (e.kind === 'call_analyzed' || e.kind === 'call_analysis_failed') drawAnalysis();
  };
  early.splice(0).forEach(sink);
  return stop;
}
