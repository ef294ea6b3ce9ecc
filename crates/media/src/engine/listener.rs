//! The listener: carrier audio → VAD → turn-taking. Sends the caller's speech (with pre-roll)
//! to STT, asks the end-of-turn model at pauses, forwards marks to playout, and reports speech,
//! turn and DTMF events to the controller.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use callfunnel_ai::{SttInput, TurnDetector, TurnPrediction, Vad};
use callfunnel_media_dsp::beep::BeepDetector;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::TurnConfig;
use super::playout::PlayoutCmd;
use super::turn::{EndBy, TurnSignal, TurnTaker, reads_complete};
use super::CarrierIn;

const RATE: u32 = 8000;
/// Audio resent to STT when speech resumes after a pause (200 ms).
const RESUME_LEAD: usize = 1600;
/// The end-of-turn model looks at the last 8 s.
const TURN_AUDIO_MAX: usize = 8 * RATE as usize;
/// The caller's speech goes to STT in 80 ms chunks rather than 20 ms carrier frames: a quarter
/// of the messages and socket writes (providers ask for 20–250 ms). What is pending is sent
/// before a pause or the end of a turn, so it never delays a final transcript.
const STT_CHUNK: usize = 640;

#[derive(Debug, Clone, PartialEq)]
pub enum ListenerEvent {
    SpeechStarted,
    SpeechSustained,
    Resumed,
    TurnEnded { speech_end: Instant, decided: Instant, by: EndBy },
    Dtmf(char),
    /// A steady tone ended (a voicemail's record beep), heard while screening.
    Beep { freq_hz: f32 },
    Hangup(String),
}

pub struct Listener {
    pub vad: Box<dyn Vad>,
    pub taker: TurnTaker,
    pub cfg: TurnConfig,
    pub detector: Option<Arc<dyn TurnDetector>>,
    pub stt: mpsc::Sender<SttInput>,
    pub events: mpsc::Sender<ListenerEvent>,
    pub playout: mpsc::Sender<PlayoutCmd>,
    /// Listens for a voicemail beep while `screening` is set (outbound calls being screened).
    pub beep: Option<BeepDetector>,
    pub screening: Arc<std::sync::atomic::AtomicBool>,
    pub meter: Arc<super::usage::UsageMeter>,
    /// Speculative transcripts of the speech so far (STT interim results), a second opinion on
    /// whether a pause ends the turn.
    pub hints: Option<mpsc::Receiver<String>>,
    /// The call's recording, when it is recorded.
    pub tap: Option<Arc<super::tap::Tap>>,
}

struct Buffers {
    frame: Vec<f32>,
    /// Since the last VAD frame over the energy gate.
    quiet_ms: u64,
    vad_counts: VadCounts,
    preroll: VecDeque<i16>,
    turn_audio: VecDeque<i16>,
    forwarding: bool,
    /// Speech not yet sent to STT (less than a chunk).
    stt_pending: Vec<i16>,
    vad_errors: u64,
}

impl Listener {
    pub async fn run(mut self, mut carrier: mpsc::Receiver<CarrierIn>, cancel: CancellationToken) {
        let (pred_tx, mut pred_rx) = mpsc::channel::<(u64, TurnPrediction)>(4);
        let mut b = Buffers { frame: Vec::with_capacity(512), preroll: VecDeque::new(), turn_audio: VecDeque::new(), forwarding: false, stt_pending: Vec::new(), vad_errors: 0, quiet_ms: u64::MAX / 2, vad_counts: VadCounts::default() };
        let mut hints = self.hints.take().unwrap_or_else(|| mpsc::channel(1).1);
        loop {
            let signals = tokio::select! {
                _ = cancel.cancelled() => return,
                msg = carrier.recv() => match msg {
                    Some(CarrierIn::Audio(pcm)) => self.on_audio(&mut b, pcm).await,
                    Some(CarrierIn::Mark(name)) => { let _ = self.playout.send(PlayoutCmd::MarkEchoed(name)).await; continue }
                    Some(CarrierIn::Dtmf(d)) => { let _ = self.events.send(ListenerEvent::Dtmf(d)).await; continue }
                    Some(CarrierIn::Hangup(why)) => { let _ = self.events.send(ListenerEvent::Hangup(why)).await; return }
                    None => { let _ = self.events.send(ListenerEvent::Hangup("stream closed".into())).await; return }
                },
                Some((seq, p)) = pred_rx.recv() => self.taker.on_prediction(seq, p.complete).into_iter().collect(),
                Some(text) = hints.recv() => match reads_complete(&text) {
                    true => self.taker.on_transcript_complete().into_iter().collect(),
                    false => continue,
                },
            };
            for s in signals {
                if self.on_signal(&mut b, s, &pred_tx).await.is_err() {
                    return;
                }
            }
        }
    }

    async fn on_audio(&mut self, b: &mut Buffers, pcm: Vec<i16>) -> Vec<TurnSignal> {
        if let Some(tap) = &self.tap {
            tap.caller(&pcm);
        }
        if !self.screening.load(std::sync::atomic::Ordering::Relaxed) {
            self.beep = None;
        }
        if let Some(beep) = self.beep.as_mut().and_then(|d| d.push(&pcm)) {
            let _ = self.events.send(ListenerEvent::Beep { freq_hz: beep.freq_hz }).await;
        }
        let preroll_max = self.cfg.preroll_ms as usize * RATE as usize / 1000;
        b.preroll.extend(pcm.iter().copied());
        while b.preroll.len() > preroll_max {
            b.preroll.pop_front();
        }
        // The turn's audio is kept only for the end-of-turn model.
        if self.taker.in_turn() && self.detector.is_some() {
            b.turn_audio.extend(pcm.iter().copied());
            while b.turn_audio.len() > TURN_AUDIO_MAX {
                b.turn_audio.pop_front();
            }
        }
        if b.forwarding {
            self.meter.stt_audio(pcm.len());
            b.stt_pending.extend_from_slice(&pcm);
            if b.stt_pending.len() >= STT_CHUNK && self.stt.send(SttInput::Audio(std::mem::replace(&mut b.stt_pending, Vec::with_capacity(STT_CHUNK)))).await.is_err() {
                tracing::warn!("STT stream closed");
            }
        }
        b.frame.extend(pcm.iter().map(|&s| s as f32 / 32768.0));
        let n = self.vad.frame_len();
        let frame_ms = (n as u64 * 1000) / self.vad.sample_rate() as u64;
        let mut out = Vec::new();
        while b.frame.len() >= n {
            // -120 turns the gate off: Silero judges every frame
            if self.cfg.vad_gate_dbfs <= -120.0 || rms_dbfs(&b.frame[..n]) >= self.cfg.vad_gate_dbfs {
                b.quiet_ms = 0;
            } else {
                b.quiet_ms = b.quiet_ms.saturating_add(frame_ms);
            }
            let silero = b.quiet_ms <= u64::from(self.cfg.vad_gate_hold_ms) || self.taker.in_turn();
            b.vad_counts.count(silero);
            let prob = if !silero {
                0.0
            } else {
                match self.vad.score(&b.frame[..n]).await {
                    Ok(p) => p,
                    Err(e) => {
                        b.vad_errors += 1;
                        if b.vad_errors == 1 {
                            tracing::error!(error = %e, "VAD failed; treating frames as silence");
                        }
                        0.0
                    }
                }
            };
            b.frame.drain(..n);
            out.extend(self.taker.on_frame(prob, frame_ms));
        }
        out
    }

    /// Sends the speech still pending (before a pause or the end of the turn).
    async fn flush_stt(&mut self, b: &mut Buffers) {
        if !b.stt_pending.is_empty() {
            let _ = self.stt.send(SttInput::Audio(std::mem::take(&mut b.stt_pending))).await;
        }
    }

    async fn on_signal(&mut self, b: &mut Buffers, s: TurnSignal, pred_tx: &mpsc::Sender<(u64, TurnPrediction)>) -> Result<(), ()> {
        let ev = match s {
            TurnSignal::SpeechStarted { .. } => {
                b.forwarding = true;
                let pre: Vec<i16> = b.preroll.iter().copied().collect();
                if self.detector.is_some() {
                    b.turn_audio = pre.iter().copied().collect();
                }
                self.meter.stt_audio(pre.len());
                let _ = self.stt.send(SttInput::Audio(pre)).await;
                ListenerEvent::SpeechStarted
            }
            TurnSignal::SpeechSustained { .. } => ListenerEvent::SpeechSustained,
            TurnSignal::Resumed => {
                // Speech is back: STT gets it again, with a little lead-in.
                b.forwarding = true;
                let lead: Vec<i16> = b.preroll.iter().rev().take(RESUME_LEAD).rev().copied().collect();
                self.meter.stt_audio(lead.len());
                let _ = self.stt.send(SttInput::Audio(lead)).await;
                ListenerEvent::Resumed
            }
            TurnSignal::Paused { seq, .. } => {
                // The pause is silence: STT need not hear (and decode) it, and may start
                // transcribing while the end-of-turn model decides.
                b.forwarding = false;
                self.flush_stt(b).await;
                let _ = self.stt.send(SttInput::Prepare).await;
                if let Some(det) = self.detector.clone() {
                    let audio: Vec<i16> = b.turn_audio.iter().copied().collect();
                    let tx = pred_tx.clone();
                    tokio::spawn(async move {
                        match det.predict(audio).await {
                            Ok(p) => { let _ = tx.send((seq, p)).await; }
                            Err(e) => tracing::warn!(error = %e, "end-of-turn model failed; waiting for max pause"),
                        }
                    });
                }
                return Ok(());
            }
            TurnSignal::TurnEnded { speech_end_ms, by } => {
                b.forwarding = false;
                // Up to 8 s of audio (128 KB): give it back between turns rather than hold it
                // for the rest of the call.
                b.turn_audio = VecDeque::new();
                self.flush_stt(b).await;
                let _ = self.stt.send(SttInput::Finalize).await;
                let now = Instant::now();
                let back = Duration::from_millis(self.taker.now_ms().saturating_sub(speech_end_ms));
                ListenerEvent::TurnEnded { speech_end: now.checked_sub(back).unwrap_or(now), decided: now, by }
            }
        };
        self.events.send(ev).await.map_err(|_| ())
    }
}

/// VAD frames judged by Silero and by the gate, added to the process metric in batches: every
/// call touching one shared counter family 31 times a second would contend on it.
#[derive(Default)]
struct VadCounts {
    silero: u64,
    gated: u64,
}

impl VadCounts {
    const BATCH: u64 = 32;

    fn count(&mut self, silero: bool) {
        *if silero { &mut self.silero } else { &mut self.gated } += 1;
        if self.silero + self.gated >= Self::BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        for (result, n) in [("silero", std::mem::take(&mut self.silero)), ("gated", std::mem::take(&mut self.gated))] {
            if n > 0 {
                callfunnel_metrics::VAD_FRAMES.add([result], n);
            }
        }
    }
}

/// The call's last frames are counted when its listener ends.
impl Drop for VadCounts {
    fn drop(&mut self) {
        self.flush();
    }
}

/// A frame's RMS level in dBFS (samples in [-1, 1]; digital silence is -inf).
fn rms_dbfs(frame: &[f32]) -> f32 {
    let power = frame.iter().map(|s| s * s).sum::<f32>() / frame.len().max(1) as f32;
    10.0 * power.log10()
}

#[cfg(test)]
mod tests {
    use super::rms_dbfs;

    #[test]
    fn levels() {
        assert_eq!(rms_dbfs(&[0.0; 256]), f32::NEG_INFINITY);
        let full: Vec<f32> = (0..256).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
        assert!(rms_dbfs(&full).abs() < 1e-4);
        let quiet: Vec<f32> = full.iter().map(|s| s * 0.001).collect(); // -60 dBFS
        assert!((rms_dbfs(&quiet) + 60.0).abs() < 0.01);
    }
}
