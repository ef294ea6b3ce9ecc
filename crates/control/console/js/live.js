// Live call events: `GET /v1/calls/events` (Server-Sent Events) read with fetch, so the token
// goes in a header. Reconnects after a drop; `onLagged` is told when events were skipped.
import { token } from './auth.js';

export function watch({ callId, onEvent, onLagged, onState }) {
  const ctl = new AbortController();
  let stopped = false;
  (async () => {
    let backoff = 500;
    while (!stopped) {
      try {
        const q = callId ? `?call_id=${encodeURIComponent(callId)}` : '';
        const r = await fetch(`/v1/calls/events${q}`, { headers: { Authorization: `Bearer ${token()}`, Accept: 'text/event-stream' }, signal: ctl.signal });
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        onState && onState('open');
        backoff = 500;
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let name = 'message', data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) name = line.slice(6).trim();
              else if (line.startsWith('data:')) data += line.slice(5).trimStart();
            }
            if (name === 'call' && data) onEvent(JSON.parse(data));
            else if (name === 'lagged' && onLagged) onLagged();
          }
        }
      } catch (e) {
        if (stopped) return;
      }
      onState && onState('reconnecting');
      if (onLagged) onLagged();
      await new Promise(res => setTimeout(res, backoff));
      backoff = Math.min(backoff * 2, 10000);
    }
  })();
  return () => { stopped = true; ctl.abort(); };
}
