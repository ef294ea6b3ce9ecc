//! A simulated caller that behaves exactly as Twilio does on a Media Streams WebSocket:
//! `connected`/`start`, 20 ms µ-law `media` frames in real time, marks echoed only once the
//! audio before them has played, `clear` honoured. It speaks a script, records both sides and
//! measures what a caller experiences (time from end of speech to the agent's first audio).

pub mod script;
pub mod wire;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;

use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

use crate::dsp::wav;
pub use script::{Line, Script, ScriptError};
pub use wire::{CallerCarrier, ServerMsg, Wire};

const FRAME: usize = 160;
/// The agent counts as done after this much silence from it.
const AGENT_QUIET_MS: u64 = 900;
/// With nothing left to say, the caller waits this long after the agent's last audio for the
/// agent to hang up before hanging up itself (a slow box can leave a gap between two sentences
/// of a goodbye that is longer than `AGENT_QUIET_MS`).
const HANG_UP_AFTER_MS: u64 = 3000;
/// Give up waiting for a reply after this long.
const REPLY_TIMEOUT_MS: u64 = 20_000;

#[derive(Debug, Clone)]
pub struct CallerOptions {
    pub url: String,
    pub record: Option<PathBuf>,
    pub carrier: CallerCarrier,
    /// Extra headers on the WebSocket upgrade (a carrier's signature or Basic auth).
    pub headers: Vec<(String, String)>,
    /// The carrier's call id (a random one when None).
    pub call_sid: Option<String>,
    /// Custom parameters for `start` (the script's tenant/agent/from/to when None).
    pub params: Option<std::collections::HashMap<String, String>>,
    /// Cancelled when the carrier ends the call (a REST hang-up or redirect).
    pub hangup: Option<CancellationToken>,
}

impl CallerOptions {
    /// A Twilio caller for `url` with no extras.
    pub fn new(url: impl Into<String>) -> Self {
        CallerOptions { url: url.into(), record: None, carrier: CallerCarrier::Twilio, headers: Vec::new(), call_sid: None, params: None, hangup: None }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LineReport {
    pub said: String,
    pub started_ms: u64,
    pub ended_ms: u64,
    pub barge_in: bool,
    /// From the end of the caller's speech to the first agent audio the caller heard.
    pub reply_after_ms: Option<u64>,
    /// From the start of the caller's speech to the `clear` that stopped the agent.
    pub clear_after_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CallerReport {
    pub call_sid: String,
    pub lines: Vec<LineReport>,
    pub ended_by: String,
    pub duration_ms: u64,
    pub agent_audio_ms: u64,
    pub marks_echoed: u64,
    pub clears: u64,
    pub recording: Option<PathBuf>,
    /// Wall-clock time of tick 0 (`started_ms` of each line counts from here), Unix ms: lets a
    /// report line the caller's clock up with the server's.
    pub started_unix_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CallerError {
    #[error(transparent)]
    Script(#[from] ScriptError),
    #[error("cannot connect to {url}: {message}")]
    Connect { url: String, message: String },
    #[error("connection failed: {0}")]
    Io(String),
}

enum Play {
    Audio(VecDeque<i16>),
    Mark(String),
}

enum Phase {
    /// Waiting for the agent to reply and fall quiet (or, for a barge-in line, to talk for a while).
    Waiting { since_ms: u64 },
    Speaking { pcm: Vec<i16>, pos: usize },
    Closing,
}

/// Places a scripted call against `opts.url`.
pub async fn run(script: &Script, opts: &CallerOptions) -> Result<CallerReport, CallerError> {
    let audio = render(script)?;
    run_rendered(script, &audio, opts).await
}

/// Each line's audio (8 kHz), rendered once: many callers of one script share it.
pub fn render(script: &Script) -> Result<Vec<Vec<i16>>, CallerError> {
    Ok(script.lines.iter().map(|l| script::line_audio(l, &script.call)).collect::<Result<_, _>>()?)
}

/// [`run`] with the script's audio already rendered ([`render`]).
pub async fn run_rendered(script: &Script, audio: &[Vec<i16>], opts: &CallerOptions) -> Result<CallerReport, CallerError> {
    let connect_err = |message: String| CallerError::Connect { url: opts.url.clone(), message };
    let mut request = opts.url.as_str().into_client_request().map_err(|e| connect_err(e.to_string()))?;
    for (k, v) in &opts.headers {
        let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).map_err(|e| connect_err(e.to_string()))?;
        let value = tokio_tungstenite::tungstenite::http::HeaderValue::from_str(v).map_err(|e| connect_err(e.to_string()))?;
        request.headers_mut().insert(name, value);
    }
    let (ws, _) = tokio_tungstenite::connect_async(request).await.map_err(|e| connect_err(e.to_string()))?;
    let (mut sink, mut stream) = ws.split();
    let suffix: String = format!("{:032x}", rand_u128());
    let call_sid = opts.call_sid.clone().unwrap_or_else(|| format!("CA{suffix}"));
    let stream_sid = match opts.carrier {
        CallerCarrier::Twilio => format!("MZ{suffix}"),
        CallerCarrier::Exotel { .. } => suffix.clone(),
    };
    let mut w = Wire::new(opts.carrier, call_sid.clone(), stream_sid, "AC00000000000000000000000000000000".into());
    let io = |e: tokio_tungstenite::tungstenite::Error| CallerError::Io(e.to_string());
    let c = &script.call;
    sink.send(Message::Text(w.connected().into())).await.map_err(io)?;
    let params = opts.params.clone().unwrap_or_else(|| {
        [("tenant_id", &c.tenant_id), ("agent_id", &c.agent_id), ("from", &c.from), ("to", &c.to)].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    });
    let start = w.start(&c.from, &c.to, &params);
    sink.send(Message::Text(start.into())).await.map_err(io)?;
    let hangup = opts.hangup.clone().unwrap_or_default();
    let media_every = opts.carrier.frame_ms() / 20;
    let mut media_pending: Vec<i16> = Vec::new();

    let mut buf: VecDeque<Play> = VecDeque::new();
    // both sides as heard, kept only to write a recording (a load test runs hundreds of callers)
    let recording = opts.record.is_some();
    let (mut caller_track, mut agent_track) = (Vec::<i16>::new(), Vec::<i16>::new());
    let mut reports: Vec<LineReport> = Vec::new();
    let (mut marks_echoed, mut clears, mut agent_audio_ms) = (0u64, 0u64, 0u64);
    let mut last_agent_ms: Option<u64> = None;
    let mut reply_started_ms: Option<u64> = None; // first agent audio since the last line ended
    let mut line = 0usize;
    let mut phase = Phase::Waiting { since_ms: 0 };
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tick = 0u64;
    let started_unix_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let max_ms = c.max_call_secs * 1000;
    let ended_by: String;

    loop {
        tokio::select! {
            _ = hangup.cancelled() => { ended_by = "carrier ended the call".into(); break }
            msg = stream.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None => { ended_by = "agent closed the stream".into(); break }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => { ended_by = format!("connection error: {e}"); break }
                };
                match w.parse(&text).map_err(CallerError::Io)? {
                    ServerMsg::Media(pcm) => buf.push_back(Play::Audio(pcm.into())),
                    ServerMsg::Mark(name) => buf.push_back(Play::Mark(name)),
                    ServerMsg::Clear => {
                        clears += 1;
                        let now = tick * 20;
                        if let Some(r) = reports.last_mut() {
                            if r.clear_after_ms.is_none() && now >= r.started_ms {
                                r.clear_after_ms = Some(now - r.started_ms);
                            }
                        }
                        // The carrier empties its buffer and sends pending marks back at once.
                        for p in buf.drain(..) {
                            if let Play::Mark(name) = p {
                                marks_echoed += 1;
                                sink.send(Message::Text(w.mark(&name).into())).await.map_err(io)?;
                            }
                        }
                    }
                }
            }
            _ = ticker.tick() => {
                tick += 1;
                let now = tick * 20;
                if now > max_ms { ended_by = "caller timeout".into(); break }
                // 1. Play 20 ms of agent audio; echo the marks it passes.
                let mut played = Vec::with_capacity(FRAME);
                let mut out_msgs = Vec::new();
                while played.len() < FRAME {
                    match buf.front_mut() {
                        Some(Play::Mark(_)) => if let Some(Play::Mark(name)) = buf.pop_front() {
                            marks_echoed += 1;
                            out_msgs.push(w.mark(&name));
                        },
                        Some(Play::Audio(a)) => {
                            while played.len() < FRAME { match a.pop_front() { Some(s) => played.push(s), None => break } }
                            if a.is_empty() { buf.pop_front(); }
                        }
                        None => break,
                    }
                }
                // Marks right after the audio just played are due now too.
                while let Some(Play::Mark(_)) = buf.front() {
                    if let Some(Play::Mark(name)) = buf.pop_front() { marks_echoed += 1; out_msgs.push(w.mark(&name)); }
                }
                if !played.is_empty() {
                    agent_audio_ms += 20;
                    last_agent_ms = Some(now);
                    if reply_started_ms.is_none() {
                        reply_started_ms = Some(now);
                        if let Some(r) = reports.last_mut() {
                            if r.reply_after_ms.is_none() && now >= r.ended_ms && r.ended_ms > 0 {
                                r.reply_after_ms = Some(now - r.ended_ms);
                            }
                        }
                    }
                }
                played.resize(FRAME, 0);
                if recording {
                    agent_track.extend_from_slice(&played);
                }

                // 2. The script decides what the caller does now.
                let agent_quiet = buf.is_empty() && last_agent_ms.is_none_or(|t| now - t >= AGENT_QUIET_MS);
                let mut frame = vec![0i16; FRAME];
                phase = match phase {
                    Phase::Waiting { since_ms } => {
                        let timed_out = now - since_ms > REPLY_TIMEOUT_MS;
                        if line >= script.lines.len() {
                            let done = buf.is_empty() && last_agent_ms.is_some_and(|t| now - t >= HANG_UP_AFTER_MS);
                            if (reply_started_ms.is_some() && done) || timed_out { Phase::Closing } else { Phase::Waiting { since_ms } }
                        } else {
                            let l: &Line = &script.lines[line];
                            let go = match l.barge_in_after_ms {
                                _ if l.start_ms.is_some() => l.start_ms.is_some_and(|at| now >= at),
                                Some(after) => reply_started_ms.is_some_and(|t| now - t >= after) && !agent_quiet,
                                None => reply_started_ms.is_some() && agent_quiet && last_agent_ms.is_some_and(|t| now - t >= AGENT_QUIET_MS.max(l.pause_ms)),
                            };
                            if go || timed_out {
                                reports.push(LineReport { said: describe(l), started_ms: now, ended_ms: 0, barge_in: l.barge_in_after_ms.is_some(), reply_after_ms: None, clear_after_ms: None });
                                if let Some(digits) = &l.dtmf {
                                    for d in digits.chars() {
                                        out_msgs.push(w.dtmf(d));
                                    }
                                    if let Some(r) = reports.last_mut() { r.ended_ms = now; }
                                    line += 1;
                                    reply_started_ms = None;
                                    Phase::Waiting { since_ms: now }
                                } else {
                                    Phase::Speaking { pcm: audio[line].clone(), pos: 0 }
                                }
                            } else { Phase::Waiting { since_ms } }
                        }
                    }
                    Phase::Speaking { pcm, pos } => {
                        let end = (pos + FRAME).min(pcm.len());
                        frame[..end - pos].copy_from_slice(&pcm[pos..end]);
                        if end >= pcm.len() {
                            if let Some(r) = reports.last_mut() { r.ended_ms = now + 20; }
                            line += 1;
                            reply_started_ms = None;
                            Phase::Waiting { since_ms: now }
                        } else { Phase::Speaking { pcm, pos: end } }
                    }
                    Phase::Closing => { ended_by = "script finished".into(); break }
                };
                if recording {
                    caller_track.extend_from_slice(&frame);
                }
                media_pending.extend_from_slice(&frame);
                if media_pending.len() >= FRAME * media_every as usize {
                    let started = (now + 20).saturating_sub(media_pending.len() as u64 / 8);
                    out_msgs.push(w.media(&media_pending, started));
                    media_pending.clear();
                }
                for m in out_msgs {
                    if sink.send(Message::Text(m.into())).await.is_err() { break }
                }
            }
        }
    }
    let _ = sink.send(Message::Text(w.stop().into())).await;
    let _ = sink.close().await;
    let recording = match &opts.record {
        Some(p) => {
            wav::write_stereo_i16(p, 8000, &caller_track, &agent_track).map_err(|e| CallerError::Io(e.to_string()))?;
            Some(p.clone())
        }
        None => None,
    };
    Ok(CallerReport { call_sid, lines: reports, ended_by, duration_ms: tick * 20, agent_audio_ms, marks_echoed, clears, recording, started_unix_ms })
}

fn describe(l: &Line) -> String {
    if let Some(s) = &l.say {
        s.clone()
    } else if let Some(w) = &l.wav {
        w.display().to_string()
    } else if let Some(hz) = l.tone_hz {
        format!("tone {hz} Hz {} ms", l.tone_ms)
    } else {
        format!("DTMF {}", l.dtmf.as_deref().unwrap_or(""))
    }
}

fn rand_u128() -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let s = std::collections::hash_map::RandomState::new();
    let mut h = s.build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    let a = h.finish() as u128;
    h.write_u64(a as u64);
    (a << 64) | h.finish() as u128
}
