//! Saarika/Saaras streaming STT over `/speech-to-text/ws`: audio as base64 WAV chunks, a
//! `flush` when our turn detector ends the turn, `end_of_stream` at hangup. Sarvam sends one
//! final transcript per utterance (no partials); the answer to a flush is the flushed final,
//! and if everything was already sent the flush is answered with an empty flushed final.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMsg;

use super::language_code;
use crate::cloud::Endpoint;
use crate::cloud::deepgram::urlencode;
use crate::cloud::ws::{HeaderOrSecret, connect};
use crate::{AiError, Result, SpeechToText, SttConfig, SttEvent, SttInput, SttStream};

#[derive(Debug, Clone)]
pub struct SarvamSttConfig {
    pub model: String,
    /// `transcribe`, `codemix` (Hinglish), `translit`, ... (saaras models).
    pub mode: Option<String>,
    pub connect_timeout: Duration,
    /// How long a flush may go unanswered before we take it that nothing was pending.
    pub flush_grace: Duration,
}

impl Default for SarvamSttConfig {
    fn default() -> Self {
        SarvamSttConfig { model: "saarika:v2.5".into(), mode: None, connect_timeout: Duration::from_secs(3), flush_grace: Duration::from_millis(800) }
    }
}

pub struct SarvamStt {
    endpoint: Endpoint,
    config: SarvamSttConfig,
}

impl SarvamStt {
    pub fn new(endpoint: Endpoint, config: SarvamSttConfig) -> Self {
        SarvamStt { endpoint, config }
    }
}

/// PCM16 mono as a WAV file (what the endpoint expects for `audio/wav`).
pub fn wav_bytes(pcm: &[i16], rate: u32) -> Vec<u8> {
    let data_len = (pcm.len() * 2) as u32;
    let mut v = Vec::with_capacity(44 + pcm.len() * 2);
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data_len).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * 2).to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data_len.to_le_bytes());
    for s in pcm {
        v.extend_from_slice(&s.to_le_bytes());
    }
    v
}

#[async_trait]
impl SpeechToText for SarvamStt {
    fn name(&self) -> &'static str {
        "sarvam"
    }

    async fn open(&self, config: SttConfig) -> Result<SttStream> {
        let lang = if config.language.eq_ignore_ascii_case("unknown") { "unknown" } else { language_code(&config.language).ok_or_else(|| AiError::Config(format!("sarvam: language `{}` is not supported", config.language)))? };
        let mut url = format!(
            "{}?language-code={lang}&model={}&sample_rate={}&input_audio_codec=wav&vad_signals=true&flush_signal=true&high_vad_sensitivity=true",
            self.endpoint.ws_url("/speech-to-text/ws"),
            urlencode(&self.config.model),
            config.sample_rate
        );
        if let Some(m) = &self.config.mode {
            url.push_str(&format!("&mode={}", urlencode(m)));
        }
        let mut ws = connect(&url, &[("api-subscription-key", HeaderOrSecret::Secret("", &self.endpoint.key))], self.config.connect_timeout)
            .await
            .map_err(|e| AiError::Provider { provider: "sarvam", message: e.to_string() })?;
        let (in_tx, mut in_rx) = mpsc::channel::<SttInput>(64);
        let (ev_tx, ev_rx) = mpsc::channel(64);
        let rate = config.sample_rate;
        let grace = self.config.flush_grace;
        tokio::spawn(async move {
            let b64 = base64::engine::general_purpose::STANDARD;
            let mut flush_deadline: Option<tokio::time::Instant> = None;
            let mut buf: Vec<i16> = Vec::new();
            loop {
                let deadline = flush_deadline;
                tokio::select! {
                    _ = ev_tx.closed() => return,
                    m = in_rx.recv() => match m {
                        Some(SttInput::Audio(pcm)) => {
                            // send in ≥ 100 ms pieces (fewer, larger messages)
                            buf.extend_from_slice(&pcm);
                            if buf.len() >= rate as usize / 10 {
                                let msg = json!({"audio": {"data": b64.encode(wav_bytes(&buf, rate)), "encoding": "audio/wav", "sample_rate": rate}});
                                buf.clear();
                                if ws.send(WsMsg::Text(msg.to_string().into())).await.is_err() { return }
                            }
                        }
                        Some(SttInput::Prepare) => {}
                        Some(SttInput::Finalize) => {
                            if !buf.is_empty() {
                                let msg = json!({"audio": {"data": b64.encode(wav_bytes(&buf, rate)), "encoding": "audio/wav", "sample_rate": rate}});
                                buf.clear();
                                if ws.send(WsMsg::Text(msg.to_string().into())).await.is_err() { return }
                            }
                            if ws.send(WsMsg::Text(r#"{"type":"flush"}"#.into())).await.is_err() { return }
                            flush_deadline = Some(tokio::time::Instant::now() + grace);
                        }
                        None => {
                            let end = json!({"type": "end_of_stream", "audio": {"data": "", "encoding": "audio/wav", "sample_rate": rate}});
                            let _ = ws.send(WsMsg::Text(end.to_string().into())).await;
                            let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                            return;
                        }
                    },
                    _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                        flush_deadline = None;
                        if ev_tx.send(SttEvent::Final { text: String::new(), confidence: 0.0, flushed: true }).await.is_err() { return }
                    }
                    m = ws.next() => match m {
                        Some(Ok(WsMsg::Text(t))) => {
                            let Ok(v) = serde_json::from_str::<Value>(&t) else { let _ = ev_tx.send(SttEvent::Warning("sarvam: unreadable message".into())).await; continue };
                            let ev = match v["type"].as_str().unwrap_or_default() {
                                "data" => {
                                    let flushed = flush_deadline.take().is_some();
                                    SttEvent::Final { text: v["data"]["transcript"].as_str().unwrap_or_default().to_string(), confidence: 1.0, flushed }
                                }
                                "events" if v["data"]["signal_type"] == "START_SPEECH" => SttEvent::SpeechStarted,
                                "error" => { tracing::warn!(message = %v["data"]["message"], "sarvam stt: error"); return }
                                _ => continue,
                            };
                            if ev_tx.send(ev).await.is_err() { return }
                        }
                        Some(Ok(WsMsg::Close(_))) | Some(Err(_)) | None => return, // the chain fails over
                        Some(Ok(_)) => {}
                    },
                }
            }
        });
        Ok(SttStream { input: in_tx, events: ev_rx })
    }
}
