//! Our own dual-channel recording (caller left, agent right), carrier-independent. The listener
//! hands it each caller frame as it takes it from the carrier, the playout each agent frame and
//! each `clear` as it sends them: no task or channel of its own, so recording adds no hop to a
//! frame's way through the call.
//!
//! The caller's frames are the clock; agent audio is laid against the caller audio that
//! arrives while it plays, and audio dropped by a `clear` (never heard) is dropped from the
//! recording too. The WAV on disk is valid up to the last flush (about a second), so a crash
//! loses almost nothing.

use std::collections::VecDeque;
use std::path::PathBuf;

use callfunnel_media_dsp::wav_stream::StereoWavWriter;
use parking_lot::Mutex;
use serde_json::json;

use super::Recorder;

const RATE: u32 = 8000;
/// Flush the file about once a second of caller audio.
const FLUSH_EVERY: usize = RATE as usize;
/// Agent audio queued ahead of the caller clock is bounded (the playout runs ~80 ms ahead).
const AGENT_AHEAD_MAX: usize = 30 * RATE as usize;

/// One call's recording. Writes after [`Tap::finish`] are ignored.
pub struct Tap {
    path: PathBuf,
    rec: Recorder,
    state: Mutex<State>,
}

struct State {
    writer: Option<StereoWavWriter>,
    agent: VecDeque<i16>,
    right: Vec<i16>,
    since_flush: usize,
    failed: Option<String>,
}

impl Tap {
    /// Starts recording to `path`; `None` (after a `recording_failed` event) when the file
    /// cannot be created, and the call goes on unrecorded.
    pub fn create(path: PathBuf, rec: Recorder) -> Option<Tap> {
        match StereoWavWriter::create(&path, RATE) {
            Ok(writer) => {
                rec.record("recording_started", json!({"path": path.display().to_string(), "channels": {"left": "caller", "right": "agent"}, "sample_rate": RATE}));
                let state = State { writer: Some(writer), agent: VecDeque::new(), right: Vec::new(), since_flush: 0, failed: None };
                Some(Tap { path, rec, state: Mutex::new(state) })
            }
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "recording disabled for this call");
                rec.record("recording_failed", json!({"error": e.to_string()}));
                None
            }
        }
    }

    /// A caller frame, as it came from the carrier: it is written with the agent audio that
    /// played meanwhile.
    pub fn caller(&self, left: &[i16]) {
        let mut s = self.state.lock();
        let State { writer, agent, right, since_flush, failed } = &mut *s;
        let Some(w) = writer.as_mut().filter(|_| failed.is_none()) else { return };
        right.clear();
        right.extend(agent.drain(..left.len().min(agent.len())));
        right.resize(left.len(), 0);
        let mut r = w.write(left, right);
        *since_flush += left.len();
        if r.is_ok() && *since_flush >= FLUSH_EVERY {
            *since_flush = 0;
            r = w.flush();
        }
        if let Err(e) = r {
            *failed = Some(e.to_string());
        }
    }

    /// An agent frame sent to the carrier.
    pub fn agent(&self, pcm: &[i16]) {
        let mut s = self.state.lock();
        if s.writer.is_none() {
            return;
        }
        s.agent.extend(pcm);
        let over = s.agent.len().saturating_sub(AGENT_AHEAD_MAX);
        s.agent.drain(..over);
    }

    /// The carrier was told to drop the agent audio it holds: it was never heard.
    pub fn clear(&self) {
        self.state.lock().agent.clear();
    }

    /// Finishes the file (its header, an fsync) and records how it went; once.
    pub async fn finish(&self) {
        let (writer, failed) = {
            let mut s = self.state.lock();
            s.agent = VecDeque::new();
            s.right = Vec::new();
            (s.writer.take(), s.failed.take())
        };
        let Some(w) = writer else { return };
        if let Some(error) = failed {
            tracing::error!(path = %self.path.display(), error, "recording write failed");
            self.rec.record("recording_failed", json!({"error": error}));
        }
        let done = tokio::task::spawn_blocking(move || w.finish()).await;
        match done {
            Ok(Ok(info)) => self.rec.record("recording_saved", json!({"path": info.path.display().to_string(), "duration_ms": info.duration_ms, "bytes": info.bytes})),
            Ok(Err(e)) => self.rec.record("recording_failed", json!({"error": e.to_string()})),
            Err(e) => self.rec.record("recording_failed", json!({"error": format!("finishing the file: {e}")})),
        }
    }
}
