// Talk to an agent from the browser: the microphone goes over a WebSocket into the same call
// engine as phone calls (the `web` transport: 8 kHz PCM16 in 20 ms frames, marks echoed when
// played, `clear` on barge-in), the agent's audio plays back, the transcript grows live.
import { api } from '../api.js';
import { watch } from '../live.js';
import { h, mount, errorBox, announce } from '../ui.js';

const b64 = buf => { let s = ''; const b = new Uint8Array(buf); for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]); return btoa(s); };
const unb64 = str => { const s = atob(str); const b = new Uint8Array(s.length); for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i); return new Int16Array(b.buffer); };

export async function render(agentId) {
  const transcript = h('ol', { class: 'transcript', id: 'talk-transcript', 'aria-live': 'polite' });
  const state = h('p', { id: 'talk-state', role: 'status' }, 'Not connected.');
  const out = h('div');
  const startBtn = h('button', { type: 'button', id: 'talk-start' }, 'Start talking');
  const stopBtn = h('button', { type: 'button', id: 'talk-stop', class: 'secondary', disabled: true }, 'Hang up');
  let call = null;

  function line(who, text, cls) {
    transcript.append(h('li', { class: cls }, h('span', { class: 'who-said' }, `${who}:`), text));
  }

  async function start() {
    startBtn.disabled = true;
    out.replaceChildren();
    try {
      const created = await api('/v1/calls/web', { method: 'POST', body: { agent_id: agentId } });
      const mic = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 } });
      const ctx = new AudioContext({ sampleRate: 8000 });
      await ctx.audioWorklet.addModule('/console/assets/js/pages/talk-worklet.js');
      const source = ctx.createMediaStreamSource(mic);
      const node = new AudioWorkletNode(ctx, 'callfunnel-capture');
      source.connect(node);
      const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${created.path}`);
      let playhead = 0;
      let playing = [];
      let marks = [];
      const stopWatch = watch({ callId: created.call_id, onEvent: e => {
        if (e.kind === 'transcript') line('You', e.data.text, 'caller');
        else if (e.kind === 'agent_said' && e.data.text) line('Agent', e.data.text + (e.data.interrupted ? ' (interrupted)' : ''), 'agent');
        else if (e.kind === 'call_ended') announce('The call ended');
      } });
      call = { ws, ctx, mic, stopWatch, id: created.call_id };
      ws.onopen = () => {
        ws.send(JSON.stringify({ event: 'start', call_id: created.call_id }));
        node.port.onmessage = m => { if (ws.readyState === 1) ws.send(JSON.stringify({ event: 'media', payload: b64(m.data) })); };
        state.textContent = `Connected (call ${created.call_id}). Speak now.`;
        stopBtn.disabled = false;
        announce('Connected. Speak now.');
      };
      ws.onmessage = m => {
        const msg = JSON.parse(m.data);
        if (msg.event === 'media') {
          const pcm = unb64(msg.payload);
          const buf = ctx.createBuffer(1, pcm.length, 8000);
          const ch = buf.getChannelData(0);
          for (let i = 0; i < pcm.length; i++) ch[i] = pcm[i] / 32768;
          const src = ctx.createBufferSource();
          src.buffer = buf;
          src.connect(ctx.destination);
          playhead = Math.max(playhead, ctx.currentTime + 0.05);
          src.start(playhead);
          playhead += buf.duration;
          playing.push(src);
          src.onended = () => { playing = playing.filter(x => x !== src); };
        } else if (msg.event === 'mark') {
          const name = msg.name;
          const t = setTimeout(() => { marks = marks.filter(x => x.t !== t); if (ws.readyState === 1) ws.send(JSON.stringify({ event: 'mark', name })); }, Math.max(0, (playhead - ctx.currentTime) * 1000));
          marks.push({ t, name });
        } else if (msg.event === 'clear') {
          for (const s of playing) { try { s.stop(); } catch (_) {} }
          playing = [];
          playhead = ctx.currentTime;
          for (const m of marks) { clearTimeout(m.t); ws.send(JSON.stringify({ event: 'mark', name: m.name })); }
          marks = [];
        }
      };
      ws.onclose = ev => {
        state.textContent = `Call ended${ev.reason ? `: ${ev.reason}` : ''}.`;
        finish(false);
      };
      ws.onerror = () => out.replaceChildren(errorBox({ message: 'The call connection failed.' }));
    } catch (e) {
      out.replaceChildren(errorBox(e));
      startBtn.disabled = false;
      finish(true);
    }
  }

  function finish(hangUp) {
    if (!call) return;
    const c = call;
    call = null;
    if (hangUp && c.ws.readyState === 1) { c.ws.send(JSON.stringify({ event: 'stop' })); c.ws.close(1000, 'hung up'); }
    c.mic.getTracks().forEach(t => t.stop());
    setTimeout(() => { c.ctx.close(); c.stopWatch(); }, 3000);
    stopBtn.disabled = true;
    startBtn.disabled = false;
  }

  startBtn.addEventListener('click', start);
  stopBtn.addEventListener('click', () => { finish(true); state.textContent = 'Hung up.'; });
  mount(h('p', {}, h('a', { href: `#/agents/${encodeURIComponent(agentId)}` }, `← Agent ${agentId}`)),
    h('h1', {}, `Talk to ${agentId}`),
    h('p', { class: 'hint' }, 'Your microphone is sent to this server only. Use headphones to avoid the agent hearing itself.'),
    h('p', {}, startBtn, ' ', stopBtn), state, out,
    h('h2', {}, 'Transcript'), transcript);
  return () => finish(true);
}
