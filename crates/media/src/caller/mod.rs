//! A simulated caller that behaves exactly as Twilio does on a Media Streams WebSocket:
//! `connected`/`start`, 20 ms µ-law `media` frames in real time, marks echoed only once the
//! audio before them has played, `clear` honoured. It speaks a script, records both sides and
//! measures what a caller experiences (time from end of speech to the agent's first audio).

pub mod script;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;

use crate::dsp::{g711, wav};
use crate::twilio::protocol::{self, DtmfInfo, Inbound, MediaFormat, MediaInfo, StartInfo, StopInfo};
pub use script::{Line, Script, ScriptError};

const FRAME: usize = 160;
/// The agent counts as done after this much silence from it.
const AGENT_QUIET_MS: u64 = 900;
/// Give up waiting for a reply after this long.
const REPLY_TIMEOUT_MS: u64 = 20_000;

#[derive(Debug, Clone)]
pub struct CallerOptions {
    pub url: String,
    pub record: Option<PathBuf>,
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
    let audio: Vec<Vec<i16>> = script.lines.iter().map(|l| script::line_audio(l, &script.call)).collect::<Result<_, _>>()?;
    let (ws, _) = tokio_tungstenite::connect_async(opts.url.as_str()).await.map_err(|e| CallerError::Connect { url: opts.url.clone(), message: e.to_string() })?;
    let (mut sink, mut stream) = ws.split();
    let suffix: String = format!("{:032x}", rand_u128());
    let (call_sid, stream_sid) = (format!("CA{suffix}"), format!("MZ{suffix}"));
    let mut seq = 0u64;
    let send = |msg: Inbound| serde_json::to_string(&msg).map(|t| Message::Text(t.into()));
    let c = &script.call;
    let connected = send(Inbound::Connected { protocol: "Call".into(), version: "1.0.0".into() }).map_err(|e| CallerError::Io(e.to_string()))?;
    sink.send(connected).await.map_err(|e| CallerError::Io(e.to_string()))?;
    seq += 1;
    let params = [("tenant_id", &c.tenant_id), ("agent_id", &c.agent_id), ("from", &c.from), ("to", &c.to)];
    let start = StartInfo {
        account_sid: "AC00000000000000000000000000000000".into(),
        stream_sid: stream_sid.clone(),
        call_sid: call_sid.clone(),
        tracks: vec!["inbound".into()],
        custom_parameters: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        media_format: MediaFormat { encoding: "audio/x-mulaw".into(), sample_rate: 8000, channels: 1 },
    };
    let m = send(Inbound::Start { sequence_number: seq.to_string(), stream_sid: stream_sid.clone(), start }).map_err(|e| CallerError::Io(e.to_string()))?;
    sink.send(m).await.map_err(|e| CallerError::Io(e.to_string()))?;

    let mut buf: VecDeque<Play> = VecDeque::new();
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
    let max_ms = c.max_call_secs * 1000;
    let ended_by: String;

    loop {
        tokio::select! {
            msg = stream.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None => { ended_by = "agent closed the stream".into(); break }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => { ended_by = format!("connection error: {e}"); break }
                };
                let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| CallerError::Io(format!("bad message from server: {e}")))?;
                match v["event"].as_str() {
                    Some("media") => {
                        let payload = v["media"]["payload"].as_str().unwrap_or_default();
                        let bytes = protocol::decode_payload(payload).map_err(|e| CallerError::Io(e.to_string()))?;
                        buf.push_back(Play::Audio(g711::mulaw_decode_all(&bytes).into()));
                    }
                    Some("mark") => buf.push_back(Play::Mark(v["mark"]["name"].as_str().unwrap_or_default().to_string())),
                    Some("clear") => {
                        clears += 1;
                        let now = tick * 20;
                        if let Some(r) = reports.last_mut() {
                            if r.clear_after_ms.is_none() && now >= r.started_ms {
                                r.clear_after_ms = Some(now - r.started_ms);
                            }
                        }
                        // Twilio empties its buffer and sends pending marks back at once.
                        for p in buf.drain(..) {
                            if let Play::Mark(name) = p {
                                seq += 1;
                                marks_echoed += 1;
                                let m = send(mark_msg(seq, &stream_sid, name)).map_err(|e| CallerError::Io(e.to_string()))?;
                                sink.send(m).await.map_err(|e| CallerError::Io(e.to_string()))?;
                            }
                        }
                    }
                    other => return Err(CallerError::Io(format!("unexpected event {other:?} from server"))),
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
                            seq += 1;
                            marks_echoed += 1;
                            out_msgs.push(mark_msg(seq, &stream_sid, name));
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
                    if let Some(Play::Mark(name)) = buf.pop_front() { seq += 1; marks_echoed += 1; out_msgs.push(mark_msg(seq, &stream_sid, name)); }
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
                agent_track.extend_from_slice(&played);

                // 2. The script decides what the caller does now.
                let agent_quiet = buf.is_empty() && last_agent_ms.is_none_or(|t| now - t >= AGENT_QUIET_MS);
                let mut frame = vec![0i16; FRAME];
                phase = match phase {
                    Phase::Waiting { since_ms } => {
                        let timed_out = now - since_ms > REPLY_TIMEOUT_MS;
                        if line >= script.lines.len() {
                            if (reply_started_ms.is_some() && agent_quiet) || timed_out { Phase::Closing } else { Phase::Waiting { since_ms } }
                        } else {
                            let l: &Line = &script.lines[line];
                            let go = match l.barge_in_after_ms {
                                Some(after) => reply_started_ms.is_some_and(|t| now - t >= after) && !agent_quiet,
                                None => reply_started_ms.is_some() && agent_quiet && last_agent_ms.is_some_and(|t| now - t >= AGENT_QUIET_MS.max(l.pause_ms)),
                            };
                            if go || timed_out {
                                reports.push(LineReport { said: describe(l), started_ms: now, ended_ms: 0, barge_in: l.barge_in_after_ms.is_some(), reply_after_ms: None, clear_after_ms: None });
                                if let Some(digits) = &l.dtmf {
                                    for d in digits.chars() {
                                        seq += 1;
                                        out_msgs.push(Inbound::Dtmf { sequence_number: seq.to_string(), stream_sid: stream_sid.clone(), dtmf: DtmfInfo { track: "inbound_track".into(), digit: d.to_string() } });
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
                caller_track.extend_from_slice(&frame);
                seq += 1;
                out_msgs.push(Inbound::Media { sequence_number: seq.to_string(), stream_sid: stream_sid.clone(), media: MediaInfo {
                    track: "inbound".into(), chunk: tick.to_string(), timestamp: (now - 20).to_string(),
                    payload: protocol::encode_payload(&g711::mulaw_encode_all(&frame)) } });
                for m in out_msgs {
                    let m = send(m).map_err(|e| CallerError::Io(e.to_string()))?;
                    if sink.send(m).await.is_err() { break }
                }
            }
        }
    }
    seq += 1;
    if let Ok(m) = send(Inbound::Stop { sequence_number: seq.to_string(), stream_sid: stream_sid.clone(), stop: Some(StopInfo { account_sid: "AC00000000000000000000000000000000".into(), call_sid: call_sid.clone() }) }) {
        let _ = sink.send(m).await;
    }
    let _ = sink.close().await;
    let recording = match &opts.record {
        Some(p) => {
            wav::write_stereo_i16(p, 8000, &caller_track, &agent_track).map_err(|e| CallerError::Io(e.to_string()))?;
            Some(p.clone())
        }
        None => None,
    };
    Ok(CallerReport { call_sid, lines: reports, ended_by, duration_ms: tick * 20, agent_audio_ms, marks_echoed, clears, recording })
}

fn mark_msg(seq: u64, stream_sid: &str, name: String) -> Inbound {
    Inbound::Mark { sequence_number: seq.to_string(), stream_sid: stream_sid.to_string(), mark: protocol::MarkInfo { name } }
}

fn describe(l: &Line) -> String {
    if let Some(s) = &l.say { s.clone() } else if let Some(w) = &l.wav { w.display().to_string() } else { format!("DTMF {}", l.dtmf.as_deref().unwrap_or("")) }
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
