//! A fake carrier: Twilio- and Exotel-shaped REST servers that accept outbound-call requests
//! and then behave as the carrier does — status callbacks (signed, with sequence numbers),
//! fetching our TwiML, opening the media WebSocket back to us with the right credentials,
//! answering-machine detection, the after-stream TwiML (hang-up, `<Dial>`, a whisper for warm
//! transfers), REST hang-ups, and Exotel's Passthru applet. The media leg itself is played by a
//! pluggable [`Callee`] (the scripted caller in the CLI tests).

mod exotel;
mod twilio;
pub mod twiml;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CarrierKind {
    Twilio,
    Exotel,
}

/// How the called number behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Human,
    /// A voicemail: Twilio's AMD reports `machine_end_beep` after `greeting_ms`.
    Machine { greeting_ms: u64 },
    Busy,
    NoAnswer,
}

/// The media leg of an answered call, for the callee to play.
#[derive(Debug, Clone)]
pub struct MediaLeg {
    pub carrier: CarrierKind,
    pub ws_url: String,
    /// `X-Twilio-Signature` or `Authorization: Basic …`, as the carrier sends them.
    pub headers: Vec<(String, String)>,
    pub call_sid: String,
    pub from: String,
    pub to: String,
    pub custom_parameters: HashMap<String, String>,
    pub answer: Answer,
    /// Cancelled when the call is ended through the REST API.
    pub hangup: CancellationToken,
}

#[async_trait]
pub trait Callee: Send + Sync {
    /// Plays the leg to its end; returns why it ended.
    async fn answer(&self, leg: MediaLeg) -> String;
}

/// What the fake carrier did, in order, for assertions.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CarrierEvent {
    CallCreated { carrier: CarrierKind, call_sid: String, to: String },
    StatusSent { call_sid: String, status: String, sequence: u64, http_status: u16 },
    TwimlFetched { call_sid: String, http_status: u16 },
    StreamOpened { call_sid: String, url: String },
    StreamEnded { call_sid: String, ended_by: String },
    AmdSent { call_sid: String, answered_by: String },
    HungUpByApi { call_sid: String },
    Dialed { call_sid: String, to: String, whisper: Option<String> },
    Whispered { call_sid: String, said: String },
    Passthru { call_sid: String, http_status: u16, branch: String },
    Refused { reason: String },
}

#[derive(Clone)]
pub struct FakeCarrierConfig {
    pub twilio_account_sid: String,
    pub twilio_auth_token: String,
    pub exotel_account_sid: String,
    pub exotel_api_key: String,
    pub exotel_api_token: String,
    /// The Exotel flow's Voicebot applet URL (`wss://…` or an `https://` dynamic-URL endpoint)
    /// and the Passthru applet after it.
    pub exotel_voicebot_url: String,
    pub exotel_passthru_url: String,
    /// Behaviour per called number (default: a person answers).
    pub answers: HashMap<String, Answer>,
    /// Send `ringing` before `initiated` (callbacks out of order, as Twilio may).
    pub reorder_status: bool,
    pub callee: Arc<dyn Callee>,
}

pub(crate) struct Call {
    pub hangup: CancellationToken,
    pub ended: bool,
}

pub(crate) struct State {
    pub cfg: FakeCarrierConfig,
    pub http: reqwest::Client,
    pub events: Mutex<Vec<CarrierEvent>>,
    pub calls: Mutex<HashMap<String, Call>>,
}

impl State {
    pub fn log(&self, e: CarrierEvent) {
        tracing::debug!(event = ?e, "fake carrier");
        self.events.lock().push(e);
    }

    pub fn answer_for(&self, to: &str) -> Answer {
        self.cfg.answers.get(to).copied().unwrap_or(Answer::Human)
    }
}

pub struct FakeCarrier {
    pub addr: SocketAddr,
    state: Arc<State>,
    stop: CancellationToken,
}

impl FakeCarrier {
    pub async fn start(cfg: FakeCarrierConfig) -> anyhow::Result<FakeCarrier> {
        let state = Arc::new(State { cfg, http: reqwest::Client::new(), events: Mutex::new(Vec::new()), calls: Mutex::new(HashMap::new()) });
        let app: Router = twilio::routes().merge(exotel::routes()).with_state(state.clone());
        let l = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = l.local_addr()?;
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move { axum::serve(l, app).with_graceful_shutdown(async move { s.cancelled().await }).await });
        Ok(FakeCarrier { addr, state, stop })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn events(&self) -> Vec<CarrierEvent> {
        self.state.events.lock().clone()
    }

    /// Waits until an event matches (or `timeout` passes) and returns all events so far.
    pub async fn wait_for(&self, timeout: Duration, pred: impl Fn(&CarrierEvent) -> bool) -> Result<Vec<CarrierEvent>, Vec<CarrierEvent>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let ev = self.events();
            if ev.iter().any(&pred) {
                return Ok(ev);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ev);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for FakeCarrier {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A random id: `prefix` + 32 hex digits.
pub(crate) fn sid(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// Basic credentials from an `Authorization` header.
pub(crate) fn basic(headers: &axum::http::HeaderMap) -> Option<(String, String)> {
    use base64::Engine as _;
    let v = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Basic ")?;
    let d = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(v.trim()).ok()?).ok()?;
    let (u, p) = d.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// A form-encoded POST body.
pub(crate) fn form_body<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))).finish()
}

/// `url` with `pairs` appended to its query string.
pub(crate) fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse_with_params(url, pairs) {
        Ok(u) => u.to_string(),
        Err(_) => url.to_string(),
    }
}

/// POSTs a form; returns the status (0 when unreachable) and body.
pub(crate) async fn post_form<K: AsRef<str>, V: AsRef<str>>(http: &reqwest::Client, url: &str, headers: &[(&str, String)], pairs: &[(K, V)]) -> (u16, String) {
    let mut req = http.post(url).header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(form_body(pairs)).timeout(Duration::from_secs(15));
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    match req.send().await {
        Ok(r) => {
            let s = r.status().as_u16();
            (s, r.text().await.unwrap_or_default())
        }
        Err(e) => {
            tracing::warn!(error = %e.without_url(), "fake carrier: webhook failed");
            (0, String::new())
        }
    }
}
