//! Cartesia streaming TTS over one shared WebSocket per key: each agent turn is a context
//! (`context_id`), its sentences stream in with `continue: true`, the turn ends with
//! `continue: false`, and barge-in sends `cancel`. Audio comes back as raw `pcm_mulaw`/8000
//! (Twilio) or `pcm_s16le` (Exotel). The socket is reopened when it closes (Cartesia closes
//! idle sockets after 5 minutes); contexts cut by a close end early and the failover chain
//! takes over.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use futures::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMsg;

use super::Endpoint;
use super::ws::{HeaderOrSecret, connect};
use crate::text::SentenceSplitter;
use crate::{AiError, Result, TextToSpeech, TtsChunk, TtsConfig, TtsEvent, TtsInput, TtsStream};

pub const API_VERSION: &str = "2026-03-01";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputEncoding {
    Mulaw,
    S16le,
}

#[derive(Debug, Clone)]
pub struct CartesiaConfig {
    pub model: String,
    /// Voice id used when the agent's voice is not a Cartesia id.
    pub default_voice: String,
    pub encoding: OutputEncoding,
    pub connect_timeout: Duration,
}

impl Default for CartesiaConfig {
    fn default() -> Self {
        CartesiaConfig { model: "sonic-3".into(), default_voice: "a0e99841-438c-4a64-b679-ae501e7d6091".into(), encoding: OutputEncoding::Mulaw, connect_timeout: Duration::from_secs(3) }
    }
}

/// Messages for one context, routed from the shared socket.
type Route = mpsc::UnboundedSender<Value>;

struct Conn {
    out: mpsc::UnboundedSender<WsMsg>,
    routes: Arc<Mutex<HashMap<String, Route>>>,
}

pub struct CartesiaTts {
    endpoint: Endpoint,
    config: CartesiaConfig,
    conn: tokio::sync::Mutex<Option<Conn>>,
}

impl CartesiaTts {
    pub fn new(endpoint: Endpoint, config: CartesiaConfig) -> Self {
        CartesiaTts { endpoint, config, conn: tokio::sync::Mutex::new(None) }
    }

    /// The live shared socket, opened (again) if needed; returns its sender and routes.
    async fn socket(&self) -> Result<(mpsc::UnboundedSender<WsMsg>, Arc<Mutex<HashMap<String, Route>>>)> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref().filter(|c| !c.out.is_closed()) {
            return Ok((c.out.clone(), c.routes.clone()));
        }
        let url = self.endpoint.ws_url("/tts/websocket");
        let ws = connect(&url, &[("x-api-key", HeaderOrSecret::Secret("", &self.endpoint.key)), ("cartesia-version", HeaderOrSecret::Plain(API_VERSION))], self.config.connect_timeout)
            .await
            .map_err(|e| AiError::Provider { provider: "cartesia", message: e.to_string() })?;
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<WsMsg>();
        let routes: Arc<Mutex<HashMap<String, Route>>> = Arc::default();
        let r = routes.clone();
        tokio::spawn(async move {
            let (mut sink, mut stream) = ws.split();
            loop {
                tokio::select! {
                    m = out_rx.recv() => match m {
                        Some(m) => if sink.send(m).await.is_err() { break },
                        None => break,
                    },
                    m = stream.next() => match m {
                        Some(Ok(WsMsg::Text(t))) => route(&r, &t),
                        Some(Ok(WsMsg::Close(_))) | Some(Err(_)) | None => break,
                        Some(Ok(_)) => {}
                    },
                }
            }
            tracing::debug!("cartesia: socket closed");
            r.lock().clear(); // every open context ends: its stream closes and fails over
            out_rx.close();
        });
        *guard = Some(Conn { out: out_tx.clone(), routes: routes.clone() });
        Ok((out_tx, routes))
    }
}

fn route(routes: &Mutex<HashMap<String, Route>>, text: &str) {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        tracing::warn!("cartesia: unreadable message");
        return;
    };
    let ctx = v.get("context_id").and_then(Value::as_str).unwrap_or_default().to_string();
    let mut r = routes.lock();
    if let Some(tx) = r.get(&ctx) {
        let done = v.get("done").and_then(Value::as_bool).unwrap_or(false);
        if tx.send(v).is_err() || done {
            r.remove(&ctx);
        }
    }
}

#[async_trait]
impl TextToSpeech for CartesiaTts {
    fn name(&self) -> &'static str {
        "cartesia"
    }

    async fn open(&self, config: TtsConfig) -> Result<TtsStream> {
        let (out, routes) = self.socket().await?;
        let context_id = format!("cf-{:016x}", rand::random::<u64>());
        let (route_tx, route_rx) = mpsc::unbounded_channel();
        routes.lock().insert(context_id.clone(), route_tx);
        let (in_tx, in_rx) = mpsc::channel(64);
        let (ev_tx, ev_rx) = mpsc::channel(64);
        let voice = if looks_like_voice_id(&config.voice) { config.voice.clone() } else { self.config.default_voice.clone() };
        let encoding = match self.config.encoding {
            OutputEncoding::Mulaw => "pcm_mulaw",
            OutputEncoding::S16le => "pcm_s16le",
        };
        let language = config.language.split(['-', '_']).next().unwrap_or("en").to_ascii_lowercase();
        let template = json!({
            "context_id": context_id, "model_id": self.config.model, "transcript": "",
            "voice": {"mode": "id", "id": voice},
            "output_format": {"container": "raw", "encoding": encoding, "sample_rate": config.sample_rate},
            "language": language, "continue": true, "add_timestamps": true, "max_buffer_delay_ms": 0,
        });
        let ctx = Context { id: context_id, template, out, routes, encoding: self.config.encoding, rate: config.sample_rate, sentences: VecDeque::new(), words_seen: 0, emitted: 0, boundaries: VecDeque::new(), labelled_upto: 0 };
        tokio::spawn(ctx.run(in_rx, route_rx, ev_tx));
        Ok(TtsStream { input: in_tx, events: ev_rx })
    }
}

fn looks_like_voice_id(v: &str) -> bool {
    v.len() == 36 && v.chars().filter(|c| *c == '-').count() == 4
}

struct Context {
    id: String,
    template: Value,
    out: mpsc::UnboundedSender<WsMsg>,
    routes: Arc<Mutex<HashMap<String, Route>>>,
    encoding: OutputEncoding,
    rate: u32,
    /// Sentences sent, with their word counts, not yet placed in the audio.
    sentences: VecDeque<(String, usize)>,
    words_seen: usize,
    /// Samples of audio emitted so far.
    emitted: u64,
    /// Sample positions where a sentence starts (from word timestamps), with its text.
    boundaries: VecDeque<(u64, String)>,
    labelled_upto: usize,
}

impl Context {
    fn send(&self, transcript: &str, cont: bool) -> bool {
        let mut m = self.template.clone();
        m["transcript"] = json!(transcript);
        m["continue"] = json!(cont);
        self.out.send(WsMsg::Text(m.to_string().into())).is_ok()
    }

    async fn run(mut self, mut input: mpsc::Receiver<TtsInput>, mut from_ws: mpsc::UnboundedReceiver<Value>, events: mpsc::Sender<TtsEvent>) {
        let mut splitter = SentenceSplitter::default();
        let mut input_open = true;
        let mut finished = false;
        loop {
            tokio::select! {
                m = input.recv(), if input_open => match m {
                    Some(TtsInput::Text(t)) => for s in splitter.push(&t) { self.sentence(s) },
                    Some(TtsInput::Flush) => {
                        if let Some(s) = splitter.finish() { self.sentence(s) }
                        finished = true;
                        if !self.send("", false) { return }
                    }
                    None => {
                        input_open = false;
                        if !finished { return self.cancel() } // dropped mid-turn: barge-in
                    }
                },
                m = from_ws.recv() => match m {
                    None => return, // socket closed: our events end without Done
                    Some(v) => match self.on_message(v, &events).await {
                        Step::Continue => {}
                        Step::Done => { let _ = events.send(TtsEvent::Done).await; return }
                        Step::Failed(e) => { tracing::warn!(context = %self.id, error = %e, "cartesia: context failed"); return }
                    },
                },
                _ = events.closed() => return self.cancel(),
            }
        }
    }

    fn sentence(&mut self, s: String) {
        let words = s.split_whitespace().count();
        if words == 0 {
            return;
        }
        self.send(&format!("{} ", s.trim()), true);
        self.sentences.push_back((s.trim().to_string(), words));
    }

    fn cancel(&self) {
        self.routes.lock().remove(&self.id);
        let _ = self.out.send(WsMsg::Text(json!({"context_id": self.id, "cancel": true}).to_string().into()));
    }

    async fn on_message(&mut self, v: Value, events: &mpsc::Sender<TtsEvent>) -> Step {
        match v.get("type").and_then(Value::as_str).unwrap_or_default() {
            "chunk" => {
                let Some(data) = v.get("data").and_then(Value::as_str) else { return Step::Continue };
                let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data) else { return Step::Failed("bad base64 audio".into()) };
                let pcm: Vec<i16> = match self.encoding {
                    OutputEncoding::Mulaw => callfunnel_media_dsp::g711::mulaw_decode_all(&bytes),
                    OutputEncoding::S16le => bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect(),
                };
                let text = self.label_for(pcm.len() as u64);
                self.emitted += pcm.len() as u64;
                if events.send(TtsEvent::Audio(TtsChunk { pcm, text })).await.is_err() {
                    self.cancel();
                    return Step::Failed("consumer gone".into());
                }
                Step::Continue
            }
            "timestamps" => {
                let wt = &v["word_timestamps"];
                let starts: Vec<f64> = wt["start"].as_array().map(|a| a.iter().filter_map(Value::as_f64).collect()).unwrap_or_default();
                for start in starts {
                    // the first word of each sentence marks where that sentence's audio begins
                    let mut acc = 0;
                    for (i, (text, n)) in self.sentences.iter().enumerate() {
                        if self.words_seen == acc && i >= self.labelled_upto {
                            self.boundaries.push_back(((start * self.rate as f64) as u64, text.clone()));
                            self.labelled_upto = i + 1;
                            break;
                        }
                        acc += n;
                    }
                    self.words_seen += 1;
                }
                Step::Continue
            }
            "done" => {
                // sentences never placed (no timestamps) still count as said, at the end
                let pending: Vec<String> = self.boundaries.drain(..).map(|(_, t)| t).collect();
                let rest: Vec<String> = pending.into_iter().chain(self.sentences.iter().skip(self.labelled_upto).map(|(t, _)| t.clone())).collect();
                if !rest.is_empty() {
                    let _ = events.send(TtsEvent::Audio(TtsChunk { pcm: Vec::new(), text: Some(rest.join(" ")) })).await;
                }
                Step::Done
            }
            "error" => Step::Failed(format!("{} {}", v["title"].as_str().or(v["error"].as_str()).unwrap_or("error"), v["message"].as_str().unwrap_or_default())),
            _ => Step::Continue, // flush_done, phoneme_timestamps, future types
        }
    }

    /// The label of a chunk of `len` samples starting at `emitted`: the sentence that starts in
    /// it (or started before it without a chunk of its own yet).
    fn label_for(&mut self, len: u64) -> Option<String> {
        let end = self.emitted + len;
        let mut label = None;
        while let Some((at, _)) = self.boundaries.front() {
            if *at >= end {
                break;
            }
            let (_, t) = self.boundaries.pop_front().expect("front exists");
            label = Some(match label {
                None => t,
                Some(prev) => format!("{prev} {t}"),
            });
        }
        label
    }
}

enum Step {
    Continue,
    Done,
    Failed(String),
}
