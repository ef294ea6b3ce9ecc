//! Deepgram live transcription (`/v1/listen`, nova-3) over a WebSocket. Audio goes out as
//! binary frames (µ-law for Twilio, linear16 for Exotel); `KeepAlive` every few seconds;
//! `Finalize` when our turn detector ends the turn (its answer has `from_finalize`);
//! `CloseStream` at hangup. A dropped connection (1011 or a cut socket) is reopened and the
//! audio not yet covered by a final result is sent again, so no words are lost; a 4xx at the
//! handshake (bad key) fails at once.

use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMsg;

use super::Endpoint;
use super::ws::{ConnectError, HeaderOrSecret, Ws, connect};
use crate::{AiError, Result, SpeechToText, SttConfig, SttEvent, SttInput, SttStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// G.711 µ-law (Twilio).
    Mulaw,
    /// PCM s16le (Exotel, browsers).
    Linear16,
}

#[derive(Debug, Clone)]
pub struct DeepgramConfig {
    pub model: String,
    pub encoding: Encoding,
    pub keepalive: Duration,
    pub connect_timeout: Duration,
    /// Reconnect attempts after a dropped stream before giving up (the chain fails over).
    pub reconnects: u32,
    pub utterance_end_ms: u32,
    pub endpointing_ms: u32,
    /// Extra key terms (nova-3 `keyterm`).
    pub keyterms: Vec<String>,
}

impl Default for DeepgramConfig {
    fn default() -> Self {
        DeepgramConfig { model: "nova-3".into(), encoding: Encoding::Mulaw, keepalive: Duration::from_secs(4), connect_timeout: Duration::from_secs(3), reconnects: 3, utterance_end_ms: 1000, endpointing_ms: 300, keyterms: Vec::new() }
    }
}

pub struct DeepgramStt {
    endpoint: Endpoint,
    config: DeepgramConfig,
}

impl DeepgramStt {
    pub fn new(endpoint: Endpoint, config: DeepgramConfig) -> Self {
        DeepgramStt { endpoint, config }
    }

    fn url(&self, stt: &SttConfig, tag: &str) -> String {
        let c = &self.config;
        let enc = match c.encoding {
            Encoding::Mulaw => "mulaw",
            Encoding::Linear16 => "linear16",
        };
        let mut q = vec![
            ("model", c.model.clone()),
            ("language", stt.language.clone()),
            ("encoding", enc.into()),
            ("sample_rate", stt.sample_rate.to_string()),
            ("channels", "1".into()),
            ("interim_results", "true".into()),
            ("utterance_end_ms", c.utterance_end_ms.to_string()),
            ("endpointing", c.endpointing_ms.to_string()),
            ("vad_events", "true".into()),
            ("smart_format", "true".into()),
            ("punctuate", "true".into()),
            ("tag", tag.into()),
        ];
        q.extend(c.keyterms.iter().map(|k| ("keyterm", k.clone())));
        let qs: Vec<String> = q.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect();
        format!("{}?{}", self.endpoint.ws_url("/v1/listen"), qs.join("&"))
    }

    async fn connect(&self, url: &str) -> std::result::Result<Ws, ConnectError> {
        connect(url, &[("authorization", HeaderOrSecret::Secret("Token ", &self.endpoint.key))], self.config.connect_timeout).await
    }
}

pub(crate) fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[async_trait]
impl SpeechToText for DeepgramStt {
    fn name(&self) -> &'static str {
        "deepgram"
    }

    async fn open(&self, config: SttConfig) -> Result<SttStream> {
        let tag = format!("cf-{}", uuid_like());
        let url = self.url(&config, &tag);
        let ws = self.connect(&url).await.map_err(|e| AiError::Provider { provider: "deepgram", message: e.to_string() })?;
        let (in_tx, in_rx) = mpsc::channel(64);
        let (ev_tx, ev_rx) = mpsc::channel(64);
        let session = Session { stt: DeepgramStt { endpoint: self.endpoint.clone(), config: self.config.clone() }, url, rate: config.sample_rate, replay: VecDeque::new(), replay_start: 0, sent: 0, origin: 0, finalizing: false, events: ev_tx };
        tokio::spawn(session.run(ws, in_rx));
        Ok(SttStream { input: in_tx, events: ev_rx })
    }
}

fn uuid_like() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Longest audio kept for replay (60 s); older audio is dropped.
const MAX_REPLAY_SECS: u64 = 60;

struct Session {
    stt: DeepgramStt,
    url: String,
    rate: u32,
    /// Audio not yet covered by a final result, starting at absolute sample `replay_start`.
    replay: VecDeque<i16>,
    replay_start: u64,
    /// Samples sent in total (absolute), and the absolute sample where this connection began.
    sent: u64,
    origin: u64,
    /// A `Finalize` is waiting for its `from_finalize` answer.
    finalizing: bool,
    events: mpsc::Sender<SttEvent>,
}

#[derive(Deserialize)]
struct Incoming {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    is_final: bool,
    #[serde(default)]
    from_finalize: bool,
    #[serde(default)]
    start: f64,
    #[serde(default)]
    duration: f64,
    #[serde(default)]
    channel: Option<Channel>,
}

#[derive(Deserialize)]
struct Channel {
    #[serde(default)]
    alternatives: Vec<Alternative>,
}

#[derive(Deserialize)]
struct Alternative {
    #[serde(default)]
    transcript: String,
    #[serde(default)]
    confidence: f32,
}

enum Outcome {
    /// Our input closed and the stream was closed cleanly.
    Finished,
    /// The connection broke: reconnect.
    Dropped(String),
    /// The consumer went away.
    Abandoned,
}

impl Session {
    async fn run(mut self, mut ws: Ws, mut input: mpsc::Receiver<SttInput>) {
        let mut attempts = 0;
        loop {
            match self.pump(&mut ws, &mut input).await {
                Outcome::Finished | Outcome::Abandoned => return,
                Outcome::Dropped(why) => {
                    tracing::warn!(%why, "deepgram: stream dropped, reconnecting");
                    let _ = self.events.send(SttEvent::Warning(format!("deepgram: {why}; reconnecting"))).await;
                    loop {
                        attempts += 1;
                        if attempts > self.stt.config.reconnects {
                            tracing::error!("deepgram: giving up after {} reconnects", attempts - 1);
                            return; // closing `events` tells the failover chain
                        }
                        tokio::time::sleep(Duration::from_millis(100 * 3u64.pow(attempts - 1))).await;
                        match self.stt.connect(&self.url).await {
                            Ok(w) => {
                                ws = w;
                                break;
                            }
                            Err(e) if e.is_permanent() => {
                                tracing::error!(error = %e, "deepgram: reconnect refused");
                                return;
                            }
                            Err(e) => tracing::warn!(error = %e, attempt = attempts, "deepgram: reconnect failed"),
                        }
                    }
                    if self.resend(&mut ws).await.is_err() {
                        continue;
                    }
                }
            }
        }
    }

    /// After a reconnect: the new stream's time 0 is the first replayed sample.
    async fn resend(&mut self, ws: &mut Ws) -> std::result::Result<(), ()> {
        self.origin = self.replay_start;
        let audio: Vec<i16> = self.replay.iter().copied().collect();
        for chunk in audio.chunks(self.rate as usize / 5) {
            ws.send(WsMsg::Binary(self.encode(chunk).into())).await.map_err(|_| ())?;
        }
        if self.finalizing {
            ws.send(WsMsg::Text(r#"{"type":"Finalize"}"#.into())).await.map_err(|_| ())?;
        }
        Ok(())
    }

    fn encode(&self, pcm: &[i16]) -> Vec<u8> {
        match self.stt.config.encoding {
            Encoding::Mulaw => callfunnel_media_dsp::g711::mulaw_encode_all(pcm),
            Encoding::Linear16 => pcm.iter().flat_map(|s| s.to_le_bytes()).collect(),
        }
    }

    async fn pump(&mut self, ws: &mut Ws, input: &mut mpsc::Receiver<SttInput>) -> Outcome {
        let mut keepalive = tokio::time::interval(self.stt.config.keepalive);
        keepalive.tick().await;
        loop {
            tokio::select! {
                _ = self.events.closed() => {
                    let _ = ws.close(None).await;
                    return Outcome::Abandoned;
                }
                msg = input.recv() => match msg {
                    Some(SttInput::Audio(pcm)) if !pcm.is_empty() => {
                        self.replay.extend(pcm.iter().copied());
                        self.sent += pcm.len() as u64;
                        let max = MAX_REPLAY_SECS * self.rate as u64;
                        while self.replay.len() as u64 > max {
                            self.replay.pop_front();
                            self.replay_start += 1;
                        }
                        if let Err(e) = ws.send(WsMsg::Binary(self.encode(&pcm).into())).await {
                            return Outcome::Dropped(e.to_string());
                        }
                    }
                    Some(SttInput::Audio(_)) | Some(SttInput::Prepare) => {} // never send an empty frame
                    Some(SttInput::Finalize) => {
                        self.finalizing = true;
                        if let Err(e) = ws.send(WsMsg::Text(r#"{"type":"Finalize"}"#.into())).await {
                            return Outcome::Dropped(e.to_string());
                        }
                    }
                    None => return self.close(ws).await,
                },
                _ = keepalive.tick() => {
                    if let Err(e) = ws.send(WsMsg::Text(r#"{"type":"KeepAlive"}"#.into())).await {
                        return Outcome::Dropped(e.to_string());
                    }
                }
                msg = ws.next() => match msg {
                    Some(Ok(WsMsg::Text(t))) => if !self.on_text(&t).await { return Outcome::Abandoned },
                    Some(Ok(WsMsg::Close(f))) => return Outcome::Dropped(f.map_or("closed".into(), |f| format!("closed {} {}", u16::from(f.code), f.reason))),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Outcome::Dropped(e.to_string()),
                    None => return Outcome::Dropped("connection lost".into()),
                },
            }
        }
    }

    /// Handles one server message; false when the consumer is gone.
    async fn on_text(&mut self, text: &str) -> bool {
        let msg: Incoming = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => return self.events.send(SttEvent::Warning(format!("deepgram: unreadable message: {e}"))).await.is_ok(),
        };
        let ev = match msg.kind.as_str() {
            "Results" => {
                let alt = msg.channel.as_ref().and_then(|c| c.alternatives.first());
                let (text, confidence) = alt.map_or((String::new(), 0.0), |a| (a.transcript.clone(), a.confidence));
                if msg.is_final {
                    // audio up to the end of this result is transcribed: no need to replay it
                    let end = self.origin + ((msg.start + msg.duration) * self.rate as f64) as u64;
                    while self.replay_start < end && self.replay.pop_front().is_some() {
                        self.replay_start += 1;
                    }
                    if msg.from_finalize {
                        self.finalizing = false;
                    }
                    SttEvent::Final { text, confidence, flushed: msg.from_finalize }
                } else if text.is_empty() {
                    return true;
                } else {
                    SttEvent::Interim { text }
                }
            }
            "SpeechStarted" => SttEvent::SpeechStarted,
            _ => return true, // UtteranceEnd, Metadata and anything new
        };
        self.events.send(ev).await.is_ok()
    }

    /// Hangup: `CloseStream`, then read the last results until the server closes (bounded).
    async fn close(&mut self, ws: &mut Ws) -> Outcome {
        let _ = ws.send(WsMsg::Text(r#"{"type":"CloseStream"}"#.into())).await;
        let drain = async {
            while let Some(Ok(m)) = ws.next().await {
                match m {
                    WsMsg::Text(t) => {
                        self.on_text(&t).await;
                    }
                    WsMsg::Close(_) => break,
                    _ => {}
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
        Outcome::Finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::Secret;

    #[test]
    fn url_has_the_twilio_parameters() {
        let d = DeepgramStt::new(Endpoint::new("https://api.deepgram.com", Secret::new("k")), DeepgramConfig { keyterms: vec!["Riverside Clinic".into()], ..Default::default() });
        let u = d.url(&SttConfig { language: "en-US".into(), sample_rate: 8000 }, "t1");
        assert!(u.starts_with("wss://api.deepgram.com/v1/listen?model=nova-3&language=en-US&encoding=mulaw&sample_rate=8000&channels=1&interim_results=true"), "{u}");
        assert!(u.contains("vad_events=true") && u.contains("utterance_end_ms=1000") && u.contains("keyterm=Riverside%20Clinic"));
        assert!(!u.contains('k') || !u.contains("Token"), "no key in the URL");
    }
}
