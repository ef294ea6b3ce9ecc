//! Cartesia `/tts/websocket`: `X-API-Key` + `Cartesia-Version` headers (or the `api_key` and
//! `cartesia_version` query parameters browsers use). Generation requests per `context_id`,
//! `continue` to stream text in, `cancel` to stop a context, `flush` → `flush_done`; replies
//! `chunk` (base64 raw audio at the requested encoding and rate, ~100 ms each), `timestamps`,
//! `done`, `error`. Audio length follows the text. Idle sockets close after `idle_timeout`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::audio::{Encoding, speech_ms, synth};
use crate::{Ctx, Fault};

pub fn routes() -> Router<Ctx> {
    Router::new().route("/tts/websocket", get(socket))
}

async fn socket(State(ctx): State<Ctx>, Query(q): Query<HashMap<String, String>>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    ctx.faults.request();
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
    // `X-API-Key`, `Authorization: Bearer` (the official SDK) or `?api_key=` (browsers)
    let bearer = h("authorization").and_then(|a| a.strip_prefix("Bearer ").map(str::to_string));
    let key = h("x-api-key").or(bearer).or_else(|| q.get("api_key").cloned());
    if key.as_deref() != Some(ctx.config.api_key.as_str()) {
        return (StatusCode::UNAUTHORIZED, "Invalid API key").into_response();
    }
    if h("cartesia-version").or_else(|| q.get("cartesia_version").cloned()).is_none() {
        return (StatusCode::BAD_REQUEST, "Cartesia-Version header is required").into_response();
    }
    let fault = ctx.faults.take();
    if let Some(Fault::RejectHandshake { status }) = fault {
        return (StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), "Injected handshake failure").into_response();
    }
    if let Some(Fault::RateLimited { .. }) = fault {
        return (StatusCode::TOO_MANY_REQUESTS, "Concurrency limit exceeded").into_response();
    }
    ctx.faults.connection();
    ws.on_upgrade(move |s| run(ctx, s, fault))
}

enum Gen {
    Text(String),
    Finish,
}

struct ContextHandle {
    tx: mpsc::UnboundedSender<Gen>,
    cancelled: Arc<AtomicBool>,
}

fn err_msg(context_id: &str, title: &str, message: &str, code: &str) -> Message {
    Message::Text(json!({"type": "error", "done": true, "title": title, "message": message, "error_code": code, "status_code": 400, "context_id": context_id}).to_string().into())
}

async fn run(ctx: Ctx, socket: WebSocket, fault: Option<Fault>) {
    let (mut sink, mut stream) = socket.split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Message>();
    let kill = Arc::new(AtomicBool::new(false));
    let k2 = kill.clone();
    // a simulated drop ends both halves: the TCP connection closes without a close frame
    let dead = tokio_util::sync::CancellationToken::new();
    let d2 = dead.clone();
    let writer = tokio::spawn(async move {
        let _dead = d2.drop_guard();
        while let Some(m) = out_rx.recv().await {
            if k2.load(Ordering::Relaxed) {
                return;
            }
            if sink.send(m).await.is_err() {
                return;
            }
        }
    });
    let fault = Arc::new(parking_lot::Mutex::new(fault));
    let mut contexts: HashMap<String, ContextHandle> = HashMap::new();
    // contexts whose text is complete but may still be generating (cancel still applies)
    let mut finishing: HashMap<String, Arc<AtomicBool>> = HashMap::new();
    let idle = ctx.config.idle_timeout;
    loop {
        let next = tokio::select! {
            _ = dead.cancelled() => break,
            n = tokio::time::timeout(idle, stream.next()) => n,
        };
        let msg = match next {
            Err(_) => {
                let _ = out_tx.send(Message::Close(Some(CloseFrame { code: 1000, reason: "idle timeout".into() })));
                break;
            }
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => break,
            Ok(Some(Ok(m))) => m,
        };
        if kill.load(Ordering::Relaxed) {
            break;
        }
        ctx.faults.message();
        let Message::Text(t) = msg else { continue };
        let Ok(v) = serde_json::from_str::<Value>(&t) else {
            let _ = out_tx.send(err_msg("", "Invalid JSON", "the message is not valid JSON", "invalid_json"));
            continue;
        };
        let cid = v["context_id"].as_str().unwrap_or_default().to_string();
        if v["cancel"] == json!(true) {
            if let Some(c) = contexts.remove(&cid) {
                c.cancelled.store(true, Ordering::Relaxed);
            }
            if let Some(c) = finishing.remove(&cid) {
                c.store(true, Ordering::Relaxed);
            }
            continue;
        }
        let missing: Vec<&str> = ["context_id", "model_id", "transcript", "voice", "output_format"].into_iter().filter(|k| v.get(*k).is_none()).collect();
        if !missing.is_empty() {
            let _ = out_tx.send(err_msg(&cid, "Invalid request", &format!("missing required fields: {}", missing.join(", ")), "invalid_request"));
            continue;
        }
        let of = &v["output_format"];
        let (Some(enc), Some(rate)) = (of["encoding"].as_str().and_then(Encoding::parse), of["sample_rate"].as_u64().filter(|r| [8000, 16000, 22050, 24000, 44100, 48000].contains(r))) else {
            let _ = out_tx.send(err_msg(&cid, "Invalid output format", "unsupported encoding or sample_rate", "invalid_output_format"));
            continue;
        };
        if of["container"] != "raw" {
            let _ = out_tx.send(err_msg(&cid, "Invalid output format", "the WebSocket only supports container \"raw\"", "invalid_output_format"));
            continue;
        }
        let handle = contexts.entry(cid.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let cancelled = Arc::new(AtomicBool::new(false));
            let w = Worker { ctx: ctx.clone(), id: cid.clone(), enc, rate: rate as u32, timestamps: v["add_timestamps"] == json!(true), out: out_tx.clone(), cancelled: cancelled.clone(), fault: fault.clone(), kill: kill.clone() };
            tokio::spawn(w.run(rx));
            ContextHandle { tx, cancelled }
        });
        let text = v["transcript"].as_str().unwrap_or_default().to_string();
        if !text.trim().is_empty() {
            let _ = handle.tx.send(Gen::Text(text));
        }
        if v["flush"] == json!(true) {
            let _ = out_tx.send(Message::Text(json!({"type": "flush_done", "done": false, "flush_done": true, "flush_id": 1, "status_code": 206, "context_id": cid}).to_string().into()));
        }
        if v["continue"] != json!(true)
            && let Some(c) = contexts.remove(&cid)
        {
            let _ = c.tx.send(Gen::Finish);
            if finishing.len() > 256 {
                finishing.clear();
            }
            finishing.insert(cid, c.cancelled);
        }
    }
    for c in contexts.values() {
        c.cancelled.store(true, Ordering::Relaxed);
    }
    for c in finishing.values() {
        c.store(true, Ordering::Relaxed);
    }
    drop(out_tx);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
}

struct Worker {
    ctx: Ctx,
    id: String,
    enc: Encoding,
    rate: u32,
    timestamps: bool,
    out: mpsc::UnboundedSender<Message>,
    cancelled: Arc<AtomicBool>,
    fault: Arc<parking_lot::Mutex<Option<Fault>>>,
    kill: Arc<AtomicBool>,
}

impl Worker {
    fn send(&self, v: Value) -> bool {
        !self.cancelled.load(Ordering::Relaxed) && self.out.send(Message::Text(v.to_string().into())).is_ok()
    }

    async fn run(self, mut rx: mpsc::UnboundedReceiver<Gen>) {
        let lat = self.ctx.config.latency.clone();
        let mut first = true;
        let mut t_samples = 0usize;
        while let Some(g) = rx.recv().await {
            let text = match g {
                Gen::Text(t) => t,
                Gen::Finish => {
                    self.send(json!({"type": "done", "done": true, "status_code": 206, "context_id": self.id}));
                    return;
                }
            };
            if first {
                first = false;
                let mut delay = lat.tts_first_audio_ms;
                if let Some(Fault::Slow { ms }) = *self.fault.lock() {
                    delay += ms;
                }
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            let total = (speech_ms(&text) * self.rate as u64 / 1000) as usize;
            if self.timestamps {
                let words: Vec<&str> = text.split_whitespace().collect();
                let per = total as f64 / self.rate as f64 / words.len().max(1) as f64;
                let t0 = t_samples as f64 / self.rate as f64;
                let starts: Vec<f64> = (0..words.len()).map(|i| t0 + i as f64 * per).collect();
                let ends: Vec<f64> = (1..=words.len()).map(|i| t0 + i as f64 * per).collect();
                if !self.send(json!({"type": "timestamps", "done": false, "status_code": 206, "context_id": self.id, "word_timestamps": {"words": words, "start": starts, "end": ends}})) {
                    return;
                }
            }
            let chunk = self.rate as usize / 10;
            let mut sent = 0;
            while sent < total {
                if self.cancelled.load(Ordering::Relaxed) {
                    return;
                }
                let n = chunk.min(total - sent);
                let pcm = synth(n, self.rate, t_samples + sent);
                let data = base64::engine::general_purpose::STANDARD.encode(self.enc.encode(&pcm));
                if !self.send(json!({"type": "chunk", "data": data, "done": false, "status_code": 206, "step_time": 10, "context_id": self.id})) {
                    return;
                }
                sent += n;
                let injected = {
                    let mut f = self.fault.lock();
                    match f.as_ref() {
                        Some(Fault::ErrorAfterOk | Fault::DropMidStream | Fault::Malformed) => f.take(),
                        _ => None,
                    }
                };
                match injected {
                    Some(Fault::ErrorAfterOk) => {
                        let _ = self.out.send(err_msg(&self.id, "Internal error", "generation failed (simulated)", "internal_error"));
                        self.cancelled.store(true, Ordering::Relaxed);
                        return;
                    }
                    Some(Fault::DropMidStream) => {
                        self.kill.store(true, Ordering::Relaxed);
                        let _ = self.out.send(Message::Text("".into())); // wakes the writer, which then drops the socket
                        return;
                    }
                    Some(Fault::Malformed) => {
                        let _ = self.out.send(Message::Text("{\"type\": \"chunk\", \"data\": ".into()));
                    }
                    _ => {}
                }
                if lat.tts_rtf > 0.0 {
                    tokio::time::sleep(Duration::from_secs_f64(n as f64 / self.rate as f64 * lat.tts_rtf)).await;
                }
            }
            t_samples += total;
        }
    }
}
