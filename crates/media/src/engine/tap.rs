//! Our own dual-channel recording (caller left, agent right), carrier-independent: a tap on the
//! carrier channels. The caller's frames are the clock; agent audio is laid against the caller
//! audio that arrives while it plays, and audio dropped by a `clear` (never heard) is dropped
//! from the recording too. The WAV on disk is valid up to the last flush (about a second), so
//! a crash loses almost nothing.

use std::collections::VecDeque;
use std::path::PathBuf;

use callfunnel_media_dsp::wav_stream::StereoWavWriter;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{CarrierIn, CarrierIo, CarrierOut, Recorder, AUDIO_QUEUE};

const RATE: u32 = 8000;
/// Flush the file about once a second of caller audio.
const FLUSH_EVERY: usize = RATE as usize;
/// Agent audio queued ahead of the caller clock is bounded (the playout runs ~80 ms ahead).
const AGENT_AHEAD_MAX: usize = 30 * RATE as usize;

enum Tapped {
    Caller(Vec<i16>),
    Agent(Vec<i16>),
    Clear,
}

/// Wraps `io` so that both directions are recorded to `path`. The returned task ends, after
/// finishing the file, when `done` is cancelled or the call's channels close.
pub fn tap(io: CarrierIo, path: PathBuf, rec: Recorder, done: CancellationToken) -> (CarrierIo, JoinHandle<()>) {
    let (tap_tx, tap_rx) = mpsc::channel::<Tapped>(AUDIO_QUEUE * 2);
    let (in_tx, in_rx) = mpsc::channel(AUDIO_QUEUE);
    let (out_tx, out_rx) = mpsc::channel(AUDIO_QUEUE);
    let mut carrier_in = io.inbound;
    let carrier_out = io.outbound;
    let t_in = tap_tx.clone();
    let d = done.clone();
    tokio::spawn(async move {
        while let Some(msg) = tokio::select! { _ = d.cancelled() => None, m = carrier_in.recv() => m } {
            if let CarrierIn::Audio(pcm) = &msg {
                let _ = t_in.try_send(Tapped::Caller(pcm.clone()));
            }
            if in_tx.send(msg).await.is_err() {
                break;
            }
        }
    });
    let t_out = tap_tx;
    let mut engine_out: mpsc::Receiver<CarrierOut> = out_rx;
    tokio::spawn(async move {
        while let Some(msg) = tokio::select! { biased; m = engine_out.recv() => m, _ = done.cancelled() => None } {
            match &msg {
                CarrierOut::Audio(pcm) => {
                    let _ = t_out.try_send(Tapped::Agent(pcm.clone()));
                }
                CarrierOut::Clear => {
                    let _ = t_out.try_send(Tapped::Clear);
                }
                _ => {}
            }
            if carrier_out.send(msg).await.is_err() {
                break;
            }
        }
    });
    let task = tokio::spawn(write(tap_rx, path, rec));
    (CarrierIo { inbound: in_rx, outbound: out_tx }, task)
}

async fn write(mut rx: mpsc::Receiver<Tapped>, path: PathBuf, rec: Recorder) {
    let mut w = match StereoWavWriter::create(&path, RATE) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "recording disabled for this call");
            rec.record("recording_failed", json!({"error": e.to_string()}));
            while rx.recv().await.is_some() {}
            return;
        }
    };
    rec.record("recording_started", json!({"path": path.display().to_string(), "channels": {"left": "caller", "right": "agent"}, "sample_rate": RATE}));
    let mut agent: VecDeque<i16> = VecDeque::new();
    let mut since_flush = 0usize;
    let mut failed = None;
    while let Some(t) = rx.recv().await {
        match t {
            Tapped::Agent(pcm) => {
                agent.extend(pcm);
                let over = agent.len().saturating_sub(AGENT_AHEAD_MAX);
                agent.drain(..over);
            }
            Tapped::Clear => agent.clear(),
            Tapped::Caller(left) => {
                let mut right: Vec<i16> = agent.drain(..left.len().min(agent.len())).collect();
                right.resize(left.len(), 0);
                if failed.is_none() {
                    if let Err(e) = w.write(&left, &right) {
                        failed = Some(e.to_string());
                    }
                    since_flush += left.len();
                    if since_flush >= FLUSH_EVERY {
                        since_flush = 0;
                        if let Err(e) = w.flush() {
                            failed = Some(e.to_string());
                        }
                    }
                }
            }
        }
    }
    if let Some(error) = failed {
        tracing::error!(path = %path.display(), error, "recording write failed");
        rec.record("recording_failed", json!({"error": error}));
    }
    match w.finish() {
        Ok(info) => rec.record("recording_saved", json!({"path": info.path.display().to_string(), "duration_ms": info.duration_ms, "bytes": info.bytes})),
        Err(e) => rec.record("recording_failed", json!({"error": e.to_string()})),
    }
}
