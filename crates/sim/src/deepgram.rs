//! Deepgram `/v1/listen` live transcription: `Authorization: Token KEY`, audio as binary
//! frames, `KeepAlive`/`Finalize`/`CloseStream` text messages; `Results` (interim and final,
//! `from_finalize` on a Finalize answer), `SpeechStarted`, `UtteranceEnd`, `Metadata`; close
//! 1011 `NET-0001` after 10 s without audio or KeepAlive. Speech is found by energy. The k-th
//! utterance of a stream (or of a `tag`, across reconnects) says `script[k % len]`; an utterance
//! ends at a `Finalize` or after `utterance_end_ms` (default 1000) of silence, and its words are
//! spread over the speech segments (pauses of ≥ 300 ms) inside it, as final results.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::audio::{Encoding, SegEvent, Segmenter, speech_ms};
use crate::{Ctx, Fault};

/// Segment counters per `tag` (a reconnecting client continues its script).
static TAGS: LazyLock<Mutex<HashMap<String, Progress>>> = LazyLock::new(Default::default);

/// Where a stream is in its script: utterance `k`, words of it already final, speech heard.
#[derive(Clone, Copy, Default)]
struct Progress {
    k: usize,
    words_sent: usize,
    speech_ms: u64,
}

pub fn routes() -> Router<Ctx> {
    Router::new().route("/v1/listen", get(listen))
}

fn refuse(status: StatusCode, code: &str, msg: &str) -> Response {
    let rid = uuid::Uuid::new_v4().to_string();
    let body = json!({"err_code": code, "err_msg": msg, "request_id": rid});
    (status, [("dg-error", msg.to_string()), ("dg-request-id", rid), ("content-type", "application/json".into())], body.to_string()).into_response()
}

async fn listen(State(ctx): State<Ctx>, Query(q): Query<HashMap<String, String>>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    ctx.faults.request();
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let key = auth.strip_prefix("Token ").or_else(|| auth.strip_prefix("token ")).or_else(|| auth.strip_prefix("Bearer "));
    if key != Some(ctx.config.api_key.as_str()) {
        return refuse(StatusCode::UNAUTHORIZED, "INVALID_AUTH", "Invalid credentials.");
    }
    let fault = ctx.faults.take();
    if let Some(Fault::RejectHandshake { status }) = fault {
        return refuse(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), "REJECTED", "Injected handshake failure.");
    }
    if matches!(fault, Some(Fault::RateLimited { .. })) {
        return refuse(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", "Too many concurrent requests.");
    }
    let encoding = match q.get("encoding").map(String::as_str) {
        None | Some("linear16") => Encoding::S16le,
        Some("mulaw") => Encoding::Mulaw,
        Some("alaw") => Encoding::Alaw,
        Some(e) => return refuse(StatusCode::BAD_REQUEST, "UNSUPPORTED_ENCODING", &format!("Unsupported encoding `{e}` for raw audio.")),
    };
    let rate: u32 = match q.get("sample_rate").map(|r| r.parse()) {
        None => 16000,
        Some(Ok(r)) if (8000..=48000).contains(&r) => r,
        _ => return refuse(StatusCode::BAD_REQUEST, "INVALID_QUERY_PARAMETER", "Invalid sample_rate."),
    };
    if q.get("channels").is_some_and(|c| c != "1") {
        return refuse(StatusCode::BAD_REQUEST, "INVALID_QUERY_PARAMETER", "Only mono audio is simulated.");
    }
    let flag = |k: &str| q.get(k).is_some_and(|v| v == "true");
    let endpointing = q.get("endpointing").and_then(|v| v.parse::<u32>().ok()).unwrap_or(10);
    let opts = Opts {
        encoding,
        rate,
        interim: flag("interim_results"),
        vad_events: flag("vad_events"),
        utterance_end_ms: q.get("utterance_end_ms").and_then(|v| v.parse().ok()),
        // a 10 ms pause would split words: segment on at least 300 ms of quiet
        hangover_ms: endpointing.max(300),
        tag: q.get("tag").cloned(),
        request_id: uuid::Uuid::new_v4().to_string(),
    };
    ctx.faults.connection();
    ws.on_upgrade(move |socket| async move { Stream::new(ctx, opts, fault).run(socket).await })
}

struct Opts {
    encoding: Encoding,
    rate: u32,
    interim: bool,
    vad_events: bool,
    utterance_end_ms: Option<u32>,
    hangover_ms: u32,
    tag: Option<String>,
    request_id: String,
}

struct Stream {
    ctx: Ctx,
    o: Opts,
    fault: Option<Fault>,
    seg: Segmenter,
    local: Progress,
    /// End (ms) of the last speech segment, if its utterance is still open.
    open_since: Option<u64>,
    results_sent: u32,
    last_interim_ms: u64,
    audio_ms: f64,
}

enum Next {
    Go,
    Close(u16, &'static str),
    Drop,
}

impl Stream {
    fn new(ctx: Ctx, o: Opts, fault: Option<Fault>) -> Self {
        let seg = Segmenter::new(o.rate, o.hangover_ms);
        Stream { ctx, o, fault, seg, local: Progress::default(), open_since: None, results_sent: 0, last_interim_ms: 0, audio_ms: 0.0 }
    }

    fn line(&self, k: usize) -> String {
        let s = &self.ctx.config.script;
        if s.is_empty() { "hello".into() } else { s[k % s.len()].clone() }
    }

    fn progress(&self) -> Progress {
        match &self.o.tag {
            Some(t) => TAGS.lock().get(t).copied().unwrap_or_default(),
            None => self.local,
        }
    }

    fn set_progress(&mut self, p: Progress) {
        match &self.o.tag {
            Some(t) => {
                TAGS.lock().insert(t.clone(), p);
            }
            None => self.local = p,
        }
    }

    fn results(&self, text: &str, start_ms: u64, end_ms: u64, is_final: bool, speech_final: bool, from_finalize: bool) -> Value {
        let words: Vec<&str> = text.split_whitespace().collect();
        let (start, dur) = (start_ms as f64 / 1000.0, end_ms.saturating_sub(start_ms) as f64 / 1000.0);
        let step = if words.is_empty() { 0.0 } else { dur / words.len() as f64 };
        let w: Vec<Value> = words
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let bare: String = p.chars().filter(|c| c.is_alphanumeric() || *c == '\'').collect::<String>().to_lowercase();
                json!({"word": bare, "start": start + i as f64 * step, "end": start + (i + 1) as f64 * step, "confidence": 0.98, "punctuated_word": p})
            })
            .collect();
        json!({"type": "Results", "channel_index": [0, 1], "duration": dur, "start": start, "is_final": is_final, "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {"alternatives": [{"transcript": text, "confidence": if text.is_empty() { 0.0 } else { 0.98 }, "words": w}]},
            "metadata": {"request_id": self.o.request_id, "model_uuid": "sim-nova-3", "model_info": {"name": "nova-3", "version": "sim", "arch": "sim"}}})
    }

    async fn send(&mut self, socket: &mut WebSocket, v: Value) -> Next {
        self.results_sent += (v["type"] == "Results") as u32;
        self.ctx.faults.message();
        if socket.send(Message::Text(v.to_string().into())).await.is_err() {
            return Next::Drop;
        }
        if self.results_sent == 1 && v["type"] == "Results" {
            match self.fault.take() {
                Some(Fault::Close1011) => return Next::Close(1011, "NET-0000"),
                Some(Fault::DropMidStream) => return Next::Drop,
                Some(Fault::Malformed) => {
                    let _ = socket.send(Message::Text("{\"type\": \"Results\", \"channel\": ".into())).await;
                }
                other => self.fault = other,
            }
        }
        Next::Go
    }

    /// A final result for speech `start..end`: the share of the current utterance's words that
    /// this much speech covers, or (`utterance_over`) all the words still owed.
    async fn finalize(&mut self, socket: &mut WebSocket, start: u64, end: u64, from_finalize: bool, utterance_over: bool) -> Next {
        let mut delay = self.ctx.config.latency.stt_finalize_ms;
        if let Some(Fault::Slow { ms }) = self.fault {
            delay += ms;
        }
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let mut p = self.progress();
        let line = self.line(p.k);
        let words: Vec<&str> = line.split_whitespace().collect();
        p.speech_ms += end.saturating_sub(start);
        let upto = if p.speech_ms == 0 {
            p.words_sent // no speech: nothing to say
        } else if utterance_over {
            words.len()
        } else {
            let share = (p.speech_ms as f64 / speech_ms(&line) as f64).min(0.999);
            ((words.len() as f64 * share).round() as usize).clamp(p.words_sent, words.len())
        };
        let text = words[p.words_sent.min(upto)..upto].join(" ");
        p.words_sent = upto;
        if utterance_over && p.speech_ms > 0 {
            p = Progress { k: p.k + 1, words_sent: 0, speech_ms: 0 };
        }
        self.set_progress(p);
        if !text.is_empty() || from_finalize {
            let r = self.results(&text, start, end, true, !from_finalize, from_finalize);
            let n = self.send(socket, r).await;
            if !matches!(n, Next::Go) {
                return n;
            }
        }
        if utterance_over && !from_finalize && self.o.utterance_end_ms.is_some() && self.o.interim {
            return self.send(socket, json!({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": end as f64 / 1000.0})).await;
        }
        Next::Go
    }

    async fn on_audio(&mut self, socket: &mut WebSocket, bytes: &[u8]) -> Next {
        let pcm = self.o.encoding.decode(bytes);
        self.audio_ms += pcm.len() as f64 * 1000.0 / self.o.rate as f64;
        for ev in self.seg.push(&pcm) {
            if matches!(ev, SegEvent::Start(_)) {
                self.open_since = None;
            }
            let n = match ev {
                SegEvent::Start(t) if self.o.vad_events => self.send(socket, json!({"type": "SpeechStarted", "channel": [0, 1], "timestamp": t as f64 / 1000.0})).await,
                SegEvent::Start(_) => Next::Go,
                SegEvent::End { start, end } => {
                    self.open_since = Some(end);
                    self.finalize(socket, start, end, false, false).await
                }
            };
            if !matches!(n, Next::Go) {
                return n;
            }
        }
        // enough silence after the last segment: the utterance is over
        if let Some(since) = self.open_since
            && self.seg.now_ms() >= since + self.o.utterance_end_ms.unwrap_or(1000) as u64
        {
            self.open_since = None;
            let n = self.finalize(socket, since, since, false, true).await;
            if !matches!(n, Next::Go) {
                return n;
            }
        }
        // interim results every 400 ms of speech, revealing the words spoken so far
        if let (true, Some(start)) = (self.o.interim, self.seg.segment_start()) {
            let now = self.seg.now_ms();
            if now >= self.last_interim_ms + 400 && now >= start + 300 {
                self.last_interim_ms = now;
                let p = self.progress();
                let text = self.line(p.k);
                let words: Vec<&str> = text.split_whitespace().collect();
                let frac = ((now - start) as f64 / speech_ms(&text) as f64).min(0.9);
                let n = ((words.len() as f64 * frac).ceil() as usize).max(1).min(words.len());
                let r = self.results(&words[..n].join(" "), start, now, false, false, false);
                return self.send(socket, r).await;
            }
        }
        Next::Go
    }

    async fn run(mut self, mut socket: WebSocket) {
        let idle = Duration::from_secs(10);
        let outcome = loop {
            let msg = match tokio::time::timeout(idle, socket.recv()).await {
                Err(_) => break Next::Close(1011, "NET-0001"),
                Ok(None) | Ok(Some(Err(_))) => break Next::Drop,
                Ok(Some(Ok(m))) => m,
            };
            self.ctx.faults.message();
            let n = match msg {
                Message::Binary(b) if b.is_empty() => break Next::Close(1000, ""),
                Message::Binary(b) => self.on_audio(&mut socket, &b).await,
                Message::Text(t) => match serde_json::from_str::<Value>(&t).ok().and_then(|v| v["type"].as_str().map(str::to_string)).as_deref() {
                    Some("KeepAlive") => Next::Go,
                    Some("Finalize") => {
                        self.open_since = None;
                        let now = self.seg.now_ms();
                        let (s, e) = self.seg.cut().unwrap_or((now, now));
                        self.finalize(&mut socket, s, e, true, true).await
                    }
                    Some("CloseStream") => {
                        if let Some((s, e)) = self.seg.cut() {
                            let _ = self.finalize(&mut socket, s, e, false, true).await;
                        }
                        let meta = json!({"type": "Metadata", "transaction_key": "deprecated", "request_id": self.o.request_id, "sha256": "sim",
                            "created": "2026-01-01T00:00:00.000Z", "duration": self.audio_ms / 1000.0, "channels": 1});
                        let _ = self.send(&mut socket, meta).await;
                        break Next::Close(1000, "");
                    }
                    _ => break Next::Close(1008, "DATA-0001"),
                },
                Message::Close(_) => break Next::Drop,
                _ => Next::Go,
            };
            if !matches!(n, Next::Go) {
                break n;
            }
        };
        if let Next::Close(code, reason) = outcome {
            let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
        }
        // Next::Drop: the socket is dropped without a close frame
    }
}
