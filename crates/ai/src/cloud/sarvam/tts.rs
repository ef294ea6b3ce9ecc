//! Bulbul TTS over `/text-to-speech/ws`: `config` first, then `text`, then `flush`; audio comes
//! back base64 and a `final` event ends the turn (`send_completion_event=true`). There is no
//! cancel: on barge-in the socket is dropped. Finished sockets go back to a small pool (by
//! voice settings) so the next turn skips the handshake; idle ones expire before Sarvam's 60 s.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use futures::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMsg;

use super::language_code;
use crate::cloud::Endpoint;
use crate::cloud::ws::{HeaderOrSecret, Ws, connect};
use crate::text::SentenceSplitter;
use crate::{AiError, Result, TextToSpeech, TtsChunk, TtsConfig, TtsEvent, TtsInput, TtsStream};

#[derive(Debug, Clone)]
pub struct SarvamTtsConfig {
    pub model: String,
    pub default_speaker: String,
    /// `mulaw` (Twilio) or `linear16` (Exotel).
    pub codec: String,
    pub connect_timeout: Duration,
    /// Estimated speaking rate, to place sentence starts in the audio (no timestamps).
    pub chars_per_sec: f64,
}

impl Default for SarvamTtsConfig {
    fn default() -> Self {
        SarvamTtsConfig { model: "bulbul:v2".into(), default_speaker: "anushka".into(), codec: "mulaw".into(), connect_timeout: Duration::from_secs(3), chars_per_sec: 14.0 }
    }
}

/// Pooled sockets older than this are not reused (Sarvam closes idle ones at 60 s).
const POOL_IDLE: Duration = Duration::from_secs(45);
const PING_EVERY: Duration = Duration::from_secs(20);

pub struct SarvamTts {
    endpoint: Endpoint,
    config: SarvamTtsConfig,
    pool: std::sync::Arc<Mutex<HashMap<String, Vec<(Ws, Instant)>>>>,
}

impl SarvamTts {
    pub fn new(endpoint: Endpoint, config: SarvamTtsConfig) -> Self {
        SarvamTts { endpoint, config, pool: Default::default() }
    }
}

#[async_trait]
impl TextToSpeech for SarvamTts {
    fn name(&self) -> &'static str {
        "sarvam"
    }

    async fn open(&self, config: TtsConfig) -> Result<TtsStream> {
        let lang = language_code(&config.language).ok_or_else(|| AiError::Config(format!("sarvam: language `{}` is not one of {:?}", config.language, super::LANGUAGES)))?;
        let speaker = if config.voice.chars().all(|c| c.is_ascii_lowercase()) && !config.voice.is_empty() { config.voice.clone() } else { self.config.default_speaker.clone() };
        let key = format!("{lang}|{speaker}|{}|{}", config.sample_rate, self.config.codec);
        let pooled = {
            let mut pool = self.pool.lock();
            let list = pool.entry(key.clone()).or_default();
            list.retain(|(_, at)| at.elapsed() < POOL_IDLE);
            list.pop().map(|(ws, _)| ws)
        };
        let ws = match pooled {
            Some(ws) => ws,
            None => {
                let url = format!("{}?model={}&send_completion_event=true", self.endpoint.ws_url("/text-to-speech/ws"), crate::cloud::deepgram::urlencode(&self.config.model));
                let mut ws = connect(&url, &[("api-subscription-key", HeaderOrSecret::Secret("", &self.endpoint.key))], self.config.connect_timeout)
                    .await
                    .map_err(|e| AiError::Provider { provider: "sarvam", message: e.to_string() })?;
                let cfg = json!({"type": "config", "data": {
                    "target_language_code": lang, "language_code": lang, "speaker": speaker, "model": self.config.model,
                    "speech_sample_rate": config.sample_rate, "output_audio_codec": self.config.codec,
                    "enable_preprocessing": true, "min_buffer_size": 50, "max_chunk_length": 150}});
                ws.send(WsMsg::Text(cfg.to_string().into())).await.map_err(|e| AiError::Provider { provider: "sarvam", message: e.to_string() })?;
                ws
            }
        };
        let (in_tx, in_rx) = mpsc::channel(64);
        let (ev_tx, ev_rx) = mpsc::channel(64);
        let turn = Turn { rate: config.sample_rate, codec: self.config.codec.clone(), chars_per_sec: self.config.chars_per_sec, sent_chars: 0, emitted: 0, boundaries: Default::default() };
        let pool = self.pool.clone();
        tokio::spawn(async move {
            if let Some(ws) = turn.run(ws, in_rx, ev_tx).await {
                pool.lock().entry(key).or_default().push((ws, Instant::now()));
            }
        });
        Ok(TtsStream { input: in_tx, events: ev_rx })
    }
}

struct Turn {
    rate: u32,
    codec: String,
    chars_per_sec: f64,
    sent_chars: usize,
    emitted: u64,
    /// Estimated sample where each sentence starts.
    boundaries: std::collections::VecDeque<(u64, String)>,
}

impl Turn {
    /// Runs one turn; gives the socket back if it can be reused.
    async fn run(mut self, mut ws: Ws, mut input: mpsc::Receiver<TtsInput>, events: mpsc::Sender<TtsEvent>) -> Option<Ws> {
        let mut splitter = SentenceSplitter::default();
        let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
        let mut input_open = true;
        loop {
            tokio::select! {
                m = input.recv(), if input_open => match m {
                    Some(TtsInput::Text(t)) => for s in splitter.push(&t) { if !self.text(&mut ws, s).await { return None } },
                    Some(TtsInput::Flush) => {
                        if let Some(s) = splitter.finish() && !self.text(&mut ws, s).await { return None }
                        if ws.send(WsMsg::Text(r#"{"type":"flush"}"#.into())).await.is_err() { return None }
                        input_open = false;
                    }
                    None => return None, // barge-in: no cancel in the protocol, drop the socket
                },
                _ = ping.tick() => if ws.send(WsMsg::Text(r#"{"type":"ping"}"#.into())).await.is_err() { return None },
                _ = events.closed() => return None,
                m = ws.next() => match m {
                    Some(Ok(WsMsg::Text(t))) => {
                        let Ok(v) = serde_json::from_str::<Value>(&t) else { tracing::warn!("sarvam tts: unreadable message"); return None };
                        match v["type"].as_str().unwrap_or_default() {
                            "audio" => {
                                let Some(pcm) = self.decode(v["data"]["audio"].as_str().unwrap_or_default()) else { return None };
                                let text = self.label_for(pcm.len() as u64);
                                self.emitted += pcm.len() as u64;
                                if events.send(TtsEvent::Audio(TtsChunk { pcm, text })).await.is_err() { return None }
                            }
                            "event" if v["data"]["event_type"] == "final" => {
                                let rest: Vec<String> = self.boundaries.drain(..).map(|(_, t)| t).collect();
                                if !rest.is_empty() { let _ = events.send(TtsEvent::Audio(TtsChunk { pcm: Vec::new(), text: Some(rest.join(" ")) })).await; }
                                let _ = events.send(TtsEvent::Done).await;
                                return Some(ws);
                            }
                            "error" => { tracing::warn!(message = %v["data"]["message"], "sarvam tts: error"); return None }
                            _ => {}
                        }
                    }
                    Some(Ok(WsMsg::Close(_))) | Some(Err(_)) | None => return None,
                    Some(Ok(_)) => {}
                },
            }
        }
    }

    async fn text(&mut self, ws: &mut Ws, s: String) -> bool {
        let s = s.trim().to_string();
        if s.is_empty() {
            return true;
        }
        let at = (self.sent_chars as f64 / self.chars_per_sec * self.rate as f64) as u64;
        self.sent_chars += s.chars().count() + 1;
        let msg = json!({"type": "text", "data": {"text": s}});
        self.boundaries.push_back((at, s));
        ws.send(WsMsg::Text(msg.to_string().into())).await.is_ok()
    }

    fn decode(&self, b64: &str) -> Option<Vec<i16>> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        Some(match self.codec.as_str() {
            "mulaw" => callfunnel_media_dsp::g711::mulaw_decode_all(&bytes),
            _ => {
                let body = if bytes.starts_with(b"RIFF") && bytes.len() >= 44 { &bytes[44..] } else { &bytes[..] };
                body.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
            }
        })
    }

    fn label_for(&mut self, len: u64) -> Option<String> {
        let end = self.emitted + len;
        let mut parts = Vec::new();
        while self.boundaries.front().is_some_and(|(at, _)| *at < end) {
            parts.extend(self.boundaries.pop_front().map(|(_, t)| t));
        }
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}
