//! Sarvam: Bulbul TTS on `/text-to-speech/ws` (`config` first, `text`, `flush`, `ping`;
//! `audio` and, with `send_completion_event=true`, an `event` `final`) and streaming STT on
//! `/speech-to-text/ws` (base64 WAV or PCM audio messages, `flush`, `end_of_stream`; VAD
//! `events` and one `data` transcript per utterance). Key in `api-subscription-key` (header,
//! or the `api-subscription-key.KEY` subprotocol browsers use).

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use serde_json::{Value, json};

use crate::audio::{Encoding, SegEvent, Segmenter, speech_ms, synth};
use crate::{Ctx, Fault};

pub const LANGUAGES: [&str; 11] = ["bn-IN", "en-IN", "gu-IN", "hi-IN", "kn-IN", "ml-IN", "mr-IN", "od-IN", "pa-IN", "ta-IN", "te-IN"];

pub fn routes() -> Router<Ctx> {
    Router::new().route("/text-to-speech/ws", get(tts)).route("/speech-to-text/ws", get(stt))
}

fn authorized(ctx: &Ctx, headers: &HeaderMap) -> bool {
    let key = headers.get("api-subscription-key").and_then(|v| v.to_str().ok()).map(str::to_string).or_else(|| {
        headers.get("sec-websocket-protocol").and_then(|v| v.to_str().ok()).and_then(|p| p.split(',').find_map(|s| s.trim().strip_prefix("api-subscription-key.").map(str::to_string)))
    });
    key.as_deref() == Some(ctx.config.api_key.as_str())
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, [("content-type", "application/json")], json!({"error": {"message": message, "code": status.as_u16()}}).to_string()).into_response()
}

fn error(message: &str, code: u16) -> Message {
    Message::Text(json!({"type": "error", "data": {"message": message, "code": code}}).to_string().into())
}

async fn tts(State(ctx): State<Ctx>, Query(q): Query<HashMap<String, String>>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    ctx.faults.request();
    if !authorized(&ctx, &headers) {
        return refuse(StatusCode::FORBIDDEN, "Invalid API key");
    }
    let fault = ctx.faults.take();
    if let Some(Fault::RejectHandshake { status }) = fault {
        return refuse(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), "Injected handshake failure");
    }
    let model = q.get("model").cloned().unwrap_or_else(|| "bulbul:v2".into());
    if !["bulbul:v2", "bulbul:v3", "bulbul:v3-beta", "bulbul:v4-flash"].contains(&model.as_str()) {
        return refuse(StatusCode::BAD_REQUEST, &format!("unknown model `{model}`"));
    }
    let completion = q.get("send_completion_event").is_some_and(|v| v == "true");
    ctx.faults.connection();
    ws.protocols(["api-subscription-key"]).on_upgrade(move |s| tts_run(ctx, s, completion, fault))
}

async fn tts_run(ctx: Ctx, mut socket: WebSocket, completion: bool, mut fault: Option<Fault>) {
    let mut config: Option<(Encoding, u32)> = None;
    let mut buffer = String::new();
    let mut offset = 0usize;
    let mut first = true;
    loop {
        let msg = match tokio::time::timeout(Duration::from_secs(60), socket.recv()).await {
            Err(_) => {
                let _ = socket.send(Message::Close(Some(CloseFrame { code: 1000, reason: "idle timeout".into() }))).await;
                return;
            }
            Ok(Some(Ok(Message::Text(t)))) => t,
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return,
            Ok(Some(Ok(_))) => continue,
        };
        ctx.faults.message();
        let Ok(v) = serde_json::from_str::<Value>(&msg) else {
            let _ = socket.send(error("invalid JSON message", 400)).await;
            continue;
        };
        match v["type"].as_str() {
            Some("config") => {
                let d = &v["data"];
                // the official SDK sends `language_code`; older clients `target_language_code`
                let lang = d["language_code"].as_str().or(d["target_language_code"].as_str()).unwrap_or_default();
                if !LANGUAGES.contains(&lang) {
                    let _ = socket.send(error(&format!("target_language_code must be one of {LANGUAGES:?}"), 422)).await;
                    continue;
                }
                let rate: u32 = d["speech_sample_rate"].as_str().and_then(|r| r.parse().ok()).or(d["speech_sample_rate"].as_u64().map(|r| r as u32)).unwrap_or(22050);
                let codec = d["output_audio_codec"].as_str().unwrap_or("linear16");
                let Some(enc) = Encoding::parse(codec) else {
                    let _ = socket.send(error(&format!("output_audio_codec `{codec}` is not simulated"), 422)).await;
                    continue;
                };
                config = Some((enc, rate));
            }
            Some("text") => {
                if config.is_none() {
                    let _ = socket.send(error("send a config message first", 400)).await;
                    continue;
                }
                let t = v["data"]["text"].as_str().unwrap_or_default();
                if t.chars().count() > 2500 {
                    let _ = socket.send(error("text longer than 2500 characters", 422)).await;
                    continue;
                }
                buffer.push_str(t);
                buffer.push(' ');
            }
            Some("flush") => {
                let Some((enc, rate)) = config else {
                    let _ = socket.send(error("send a config message first", 400)).await;
                    continue;
                };
                let text = std::mem::take(&mut buffer);
                if first && !text.trim().is_empty() {
                    first = false;
                    let mut d = ctx.config.latency.tts_first_audio_ms;
                    if let Some(Fault::Slow { ms }) = fault {
                        d += ms;
                    }
                    tokio::time::sleep(Duration::from_millis(d)).await;
                }
                let total = if text.trim().is_empty() { 0 } else { (speech_ms(&text) * rate as u64 / 1000) as usize };
                let chunk = rate as usize / 5;
                let mut sent = 0;
                while sent < total {
                    let n = chunk.min(total - sent);
                    let pcm = synth(n, rate, offset);
                    offset += n;
                    sent += n;
                    let audio = base64::engine::general_purpose::STANDARD.encode(enc.encode(&pcm));
                    let ct = match enc { Encoding::Mulaw => "audio/mulaw", Encoding::Alaw => "audio/alaw", _ => "audio/wav" };
                    if socket.send(Message::Text(json!({"type": "audio", "data": {"audio": audio, "content_type": ct, "request_id": "sim"}}).to_string().into())).await.is_err() {
                        return;
                    }
                    match fault.take() {
                        Some(Fault::DropMidStream) => return,
                        Some(Fault::ErrorAfterOk) => {
                            let _ = socket.send(error("internal error (simulated)", 500)).await;
                        }
                        Some(Fault::Malformed) => {
                            let _ = socket.send(Message::Text("{\"type\": \"audio\", ".into())).await;
                        }
                        other => fault = other,
                    }
                    if ctx.config.latency.tts_rtf > 0.0 {
                        tokio::time::sleep(Duration::from_secs_f64(n as f64 / rate as f64 * ctx.config.latency.tts_rtf)).await;
                    }
                }
                if completion && socket.send(Message::Text(json!({"type": "event", "data": {"event_type": "final"}}).to_string().into())).await.is_err() {
                    return;
                }
            }
            Some("ping") => {}
            _ => {
                let _ = socket.send(error("unknown message type", 400)).await;
            }
        }
    }
}

async fn stt(State(ctx): State<Ctx>, Query(q): Query<HashMap<String, String>>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    ctx.faults.request();
    if !authorized(&ctx, &headers) {
        return refuse(StatusCode::FORBIDDEN, "Invalid API key");
    }
    let fault = ctx.faults.take();
    if let Some(Fault::RejectHandshake { status }) = fault {
        return refuse(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), "Injected handshake failure");
    }
    let lang = q.get("language-code").or_else(|| q.get("language_code")).cloned().unwrap_or_else(|| "unknown".into());
    if lang != "unknown" && !LANGUAGES.contains(&lang.as_str()) {
        return refuse(StatusCode::BAD_REQUEST, &format!("unsupported language code `{lang}`"));
    }
    let rate: u32 = q.get("sample_rate").and_then(|r| r.parse().ok()).unwrap_or(16000);
    let vad = q.get("vad_signals").is_some_and(|v| v == "true");
    let lang = if lang == "unknown" { "hi-IN".to_string() } else { lang };
    ctx.faults.connection();
    ws.protocols(["api-subscription-key"]).on_upgrade(move |s| stt_run(ctx, s, lang, rate, vad, fault))
}

async fn stt_run(ctx: Ctx, mut socket: WebSocket, lang: String, rate: u32, vad: bool, fault: Option<Fault>) {
    let mut seg = Segmenter::new(rate, 400);
    let mut k = 0usize;
    let script = ctx.config.script.clone();
    let line = |k: usize| if script.is_empty() { "नमस्ते".to_string() } else { script[k % script.len()].clone() };
    loop {
        let msg = match tokio::time::timeout(Duration::from_secs(60), socket.recv()).await {
            Err(_) => return,
            Ok(Some(Ok(Message::Text(t)))) => t,
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return,
            Ok(Some(Ok(_))) => continue,
        };
        ctx.faults.message();
        let Ok(v) = serde_json::from_str::<Value>(&msg) else {
            let _ = socket.send(error("invalid JSON message", 400)).await;
            continue;
        };
        let mut finals: Vec<u64> = Vec::new();
        let mut out: Vec<Value> = Vec::new();
        match v["type"].as_str() {
            Some("flush") => {
                if let Some((s, e)) = seg.cut() {
                    if vad {
                        out.push(json!({"type": "events", "data": {"signal_type": "END_SPEECH"}}));
                    }
                    finals.push(e - s);
                }
            }
            Some("end_of_stream") => {
                if let Some((s, e)) = seg.cut() {
                    finals.push(e - s);
                }
            }
            _ if v.get("audio").is_some() => {
                let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(v["audio"]["data"].as_str().unwrap_or_default()) else {
                    let _ = socket.send(error("audio.data is not valid base64", 400)).await;
                    continue;
                };
                let body = if bytes.starts_with(b"RIFF") && bytes.len() >= 44 { &bytes[44..] } else { &bytes[..] };
                for ev in seg.push(&Encoding::S16le.decode(body)) {
                    match ev {
                        SegEvent::Start(_) if vad => out.push(json!({"type": "events", "data": {"signal_type": "START_SPEECH"}})),
                        SegEvent::Start(_) => {}
                        SegEvent::End { start, end } => {
                            if vad {
                                out.push(json!({"type": "events", "data": {"signal_type": "END_SPEECH"}}));
                            }
                            finals.push(end - start);
                        }
                    }
                }
            }
            _ => {
                let _ = socket.send(error("unknown message", 400)).await;
                continue;
            }
        }
        for ms in finals {
            tokio::time::sleep(Duration::from_millis(ctx.config.latency.stt_finalize_ms)).await;
            out.push(json!({"type": "data", "data": {"transcript": line(k), "language_code": lang, "request_id": "sim", "metrics": {"audio_duration": ms as f64 / 1000.0, "processing_latency": 0.05}}}));
            k += 1;
        }
        for o in out {
            if socket.send(Message::Text(o.to_string().into())).await.is_err() {
                return;
            }
            if let Some(Fault::DropMidStream) = fault {
                return;
            }
        }
        if v["type"] == "end_of_stream" {
            let _ = socket.send(Message::Close(Some(CloseFrame { code: 1000, reason: "".into() }))).await;
            return;
        }
    }
}
